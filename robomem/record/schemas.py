"""ROS 2 message definitions and type hashes for bags, without a ROS install: rosbags' typestore of
ROS 2 Kilted's standard messages, plus robomem's own interfaces read from their ``.msg`` files.

A bag names each topic's type (``robomem/msg/ObservationBatch``), carries its full definition (the
``ros2msg`` schema: the type's fields, then every type it uses after a ``MSG:`` line) and its RIHS01
hash, which must match what rosidl computes for the same definition (robomem's build writes it to
``share/robomem/msg/<Type>.json``)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

ROBOMEM_PACKAGE = "robomem"
OBSERVATION_TYPE = "robomem/msg/ObservationBatch"
EVENT_TYPE = "robomem/msg/MemoryEvent"


class UnknownMessageType(LookupError):
    """A message type this robomem has no definition for."""


def robomem_msg_dirs() -> list[Path]:
    """Where robomem's ``.msg`` files may be: the source checkout's ``msg/``, the venv's or an
    install space's ``share/robomem/msg`` (``AMENT_PREFIX_PATH``)."""
    source = Path(__file__).resolve().parents[2] / "msg"
    prefixes = [Path(sys.prefix), *(Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p)]
    return [d for d in (source, *(p / "share" / ROBOMEM_PACKAGE / "msg" for p in prefixes)) if d.is_dir()]


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Kilted's standard messages plus robomem's (from the first folder that has them)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for folder in robomem_msg_dirs():
        files = sorted(folder.glob("*.msg"))
        if files:
            types = {}
            for path in files:
                types.update(get_types_from_msg(path.read_text(), f"{ROBOMEM_PACKAGE}/msg/{path.stem}"))
            store.register(types)
            break
    return store


def definition(msgtype: str) -> tuple[str, str]:
    """(the ``ros2msg`` schema text, the RIHS01 type hash) of a type such as ``sensor_msgs/msg/Image``."""
    store = typestore()
    if msgtype not in store.fielddefs:
        raise UnknownMessageType(f"no definition of {msgtype!r} (not a ROS 2 Kilted standard message nor robomem's)")
    text, _ = store.generate_msgdef(msgtype, ros_version=2)
    return text, store.hash_rihs01(msgtype)


def hash_of_definition(msgtype: str, text: str) -> str:
    """The RIHS01 hash of ``msgtype`` as defined by a bag's schema text (raises ValueError when the text
    does not parse or lacks a type it uses)."""
    store = get_typestore(Stores.EMPTY)
    try:
        store.register(get_types_from_msg(text, msgtype))
        return store.hash_rihs01(msgtype)
    except Exception as error:  # rosbags raises its own parse/lookup errors
        raise ValueError(f"cannot read the definition of {msgtype}: {error}") from error
