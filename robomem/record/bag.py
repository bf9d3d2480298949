"""rosbag2 bags in MCAP, without a ROS install: a bag folder holds ``metadata.yaml`` (rosbag2's
format, version 9) and one ``.mcap`` file (profile ``ros2``, schemas ``ros2msg``, messages ``cdr``),
as ``ros2 bag record -s mcap`` writes them, so ``ros2 bag info``/``play`` and rosbags open it.

Written with PyPI ``mcap`` (chunked, lz4, chunk and data-section CRCs); read back with CRCs checked,
so a corrupt or truncated file is found, and named, instead of feeding memory garbage. No rclpy here:
messages are CDR bytes in and out (robomem.record.recorder and robomem.record.replay do the ROS part).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mcap.exceptions import McapError
from mcap.reader import NonSeekingReader, SeekingReader
from mcap.writer import CompressionType, Writer

from robomem.record.schemas import UnknownMessageType, definition, hash_of_definition

METADATA_FILE = "metadata.yaml"
ROSBAG2_VERSION = 9
PROFILE = "ros2"


class BagError(Exception):
    """A bag robomem cannot use, with what is wrong and where (``str(error)`` says it all)."""


@dataclass(frozen=True)
class Topic:
    """One topic of a bag: its message type, how many messages, the RIHS01 hash of its definition."""

    name: str
    msgtype: str
    count: int
    type_hash: str
    encoding: str = "cdr"


def qos_dict(reliable: bool = True, depth: int = 10, latched: bool = False) -> dict[str, Any]:
    """An ``offered_qos_profiles`` entry of rosbag2 metadata (version 9), as ``ros2 bag play`` reads it."""
    never = {"sec": 9223372036, "nsec": 854775807}
    return {
        "history": "keep_last", "depth": depth, "reliability": "reliable" if reliable else "best_effort",
        "durability": "transient_local" if latched else "volatile", "deadline": never, "lifespan": never,
        "liveliness": "automatic", "liveliness_lease_duration": never, "avoid_ros_namespace_conventions": False,
    }


class BagWriter:
    """Writes one rosbag2 MCAP bag folder. ``add_topic`` each topic (its definition comes from
    robomem.record.schemas), then ``write`` CDR-serialized messages; ``close`` writes the summary and
    ``metadata.yaml``. Thread-safe (a recorder's callbacks may run on several threads)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already: a bag is never overwritten")
        self.path.mkdir(parents=True)
        self.file_name = f"{self.path.name}_0.mcap"
        self._stream = open(self.path / self.file_name, "wb")  # noqa: SIM115 (closed in close)
        self._writer = Writer(self._stream, compression=CompressionType.LZ4)
        self._writer.start(profile=PROFILE, library="robomem")
        self._lock = threading.Lock()
        self._schemas: dict[str, tuple[int, str]] = {}  # msgtype -> (schema id, hash)
        self._channels: dict[str, int] = {}
        self._topics: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self._first_ns: int | None = None
        self._last_ns = 0
        self.closed = False

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Mapping[str, Any]] = ()) -> None:
        """Register a topic of type ``msgtype`` (e.g. ``sensor_msgs/msg/Image``); again: no-op."""
        with self._lock:
            if topic in self._channels:
                if self._topics[topic]["type"] != msgtype:
                    raise BagError(f"topic {topic} is {self._topics[topic]['type']} in this bag, not {msgtype}")
                return
            if msgtype not in self._schemas:
                try:
                    text, type_hash = definition(msgtype)
                except UnknownMessageType as error:
                    raise BagError(str(error)) from error
                schema_id = self._writer.register_schema(msgtype, "ros2msg", text.encode())
                self._schemas[msgtype] = (schema_id, type_hash)
            schema_id, type_hash = self._schemas[msgtype]
            offered = yaml.safe_dump([dict(q) for q in qos], default_flow_style=False).strip() if qos else ""
            self._channels[topic] = self._writer.register_channel(
                topic, "cdr", schema_id, metadata={"offered_qos_profiles": offered})
            self._topics[topic] = {"name": topic, "type": msgtype, "serialization_format": "cdr",
                                   "offered_qos_profiles": [dict(q) for q in qos], "type_description_hash": type_hash}
            self.counts[topic] = 0

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> None:
        """One CDR-serialized message of a registered topic, received at ``log_time_ns``."""
        with self._lock:
            if self.closed:
                raise BagError(f"bag {self.path} is closed")
            channel = self._channels.get(topic)
            if channel is None:
                raise BagError(f"topic {topic} was not added to bag {self.path}")
            self._writer.add_message(channel, log_time_ns, bytes(data), publish_time_ns or log_time_ns,
                                     sequence=self.counts[topic])
            self.counts[topic] += 1
            self._first_ns = log_time_ns if self._first_ns is None else min(self._first_ns, log_time_ns)
            self._last_ns = max(self._last_ns, log_time_ns)

    def close(self) -> None:
        """Finish the MCAP file (summary, indexes, CRCs) and write ``metadata.yaml``."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            info = self._metadata()
            self._writer.add_metadata("rosbag2", {"serialized_metadata": yaml.safe_dump(info)})
            self._writer.finish()
            self._stream.close()
            (self.path / METADATA_FILE).write_text(yaml.safe_dump({"rosbag2_bagfile_information": info},
                                                                  sort_keys=False))

    def _metadata(self) -> dict[str, Any]:
        start = self._first_ns or 0
        duration = max(0, self._last_ns - start)
        total = sum(self.counts.values())
        return {
            "version": ROSBAG2_VERSION, "storage_identifier": "mcap", "relative_file_paths": [self.file_name],
            "duration": {"nanoseconds": duration}, "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": total,
            "topics_with_message_count": [{"topic_metadata": meta, "message_count": self.counts[name]}
                                          for name, meta in self._topics.items()],
            "compression_format": "", "compression_mode": "",
            "files": [{"path": self.file_name, "starting_time": {"nanoseconds_since_epoch": start},
                       "duration": {"nanoseconds": duration}, "message_count": total}],
            "custom_data": {"writer": "robomem"}, "ros_distro": "kilted",
        }

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mcap_file(path: Path | str) -> Path:
    """The MCAP file of a bag: a bag folder (its ``metadata.yaml`` names the file) or an ``.mcap`` file."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"no bag at {path}")
    if path.is_file():
        return path
    meta = path / METADATA_FILE
    if meta.is_file():
        try:
            info = (yaml.safe_load(meta.read_text()) or {})["rosbag2_bagfile_information"]
            storage, files = info.get("storage_identifier"), list(info.get("relative_file_paths") or [])
        except (yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
            raise BagError(f"{meta} is not rosbag2 metadata: {error!r}") from error
        if storage != "mcap":
            raise BagError(f"bag {path} is stored as {storage!r}; robomem reads MCAP bags (ros2 bag record -s mcap)")
        if len(files) != 1:
            raise BagError(f"bag {path} has {len(files)} files; robomem reads one-file bags")
        return path / files[0]
    found = sorted(path.glob("*.mcap"))
    if len(found) != 1:
        raise BagError(f"{path} has no {METADATA_FILE} and {len(found)} .mcap files (need exactly one)")
    return found[0]


class BagReader:
    """Reads a bag's topics and messages, checking as it goes: the MCAP footer and summary (a
    truncated file has none), the ``ros2`` profile, chunk and data-section CRCs (corruption), CDR
    encoding. Every problem is a :class:`BagError` naming the file and what is wrong."""

    def __init__(self, path: Path | str) -> None:
        self.file = mcap_file(path)
        _check_ends(self.file)
        try:
            with open(self.file, "rb") as stream:
                reader = SeekingReader(stream, validate_crcs=True)
                header = reader.get_header()
                summary = reader.get_summary()
        except (McapError, OSError, ValueError, EOFError) as error:
            raise BagError(f"{self.file} is not a readable MCAP file: {_why(error)}") from error
        except Exception as error:  # noqa: BLE001 (mcap raises assorted errors on garbage)
            raise BagError(f"{self.file} is not a readable MCAP file (corrupt?): {_why(error)}") from error
        if summary is None:
            raise BagError(f"{self.file} is truncated or was not closed: it has no MCAP summary "
                           "(the recorder was killed before it finished the file?)")
        if header.profile != PROFILE:
            raise BagError(f"{self.file} is an MCAP file of profile {header.profile!r}, not a ROS 2 bag ({PROFILE!r})")
        counts = dict(summary.statistics.channel_message_counts) if summary.statistics else {}
        self.topics: dict[str, Topic] = {}
        for channel_id, channel in summary.channels.items():
            schema = summary.schemas.get(channel.schema_id)
            if schema is None:
                raise BagError(f"{self.file}: topic {channel.topic} has no schema")
            try:
                type_hash = hash_of_definition(schema.name, schema.data.decode())
            except (ValueError, UnicodeDecodeError) as error:
                type_hash = f"unreadable ({error})"
            self.topics[channel.topic] = Topic(channel.topic, schema.name, counts.get(channel_id, 0), type_hash,
                                               channel.message_encoding)

    def require(self, topic: str, msgtype: str, type_hash: str) -> Topic:
        """The topic, checked to carry ``msgtype`` in CDR with the same definition as this robomem's."""
        found = self.topics.get(topic)
        if found is None:
            others = ", ".join(f"{t.name} ({t.msgtype})" for t in self.topics.values()) or "none"
            raise BagError(f"{self.file} has no topic {topic}; its topics: {others}")
        if found.msgtype != msgtype:
            raise BagError(f"{self.file}: topic {topic} carries {found.msgtype}, not {msgtype}")
        if found.encoding != "cdr":
            raise BagError(f"{self.file}: topic {topic} is encoded as {found.encoding!r}, not cdr")
        if found.type_hash != type_hash:
            raise BagError(f"{self.file}: topic {topic} was recorded with another definition of {msgtype} "
                           f"({found.type_hash}; this robomem has {type_hash})")
        return found

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log time in ns, CDR bytes) of ``topics`` in file order, CRCs checked; a problem met
        on the way raises BagError (after the messages before it were yielded)."""
        wanted = set(topics)
        try:
            with open(self.file, "rb") as stream:
                for _schema, channel, message in NonSeekingReader(stream, validate_crcs=True).iter_messages():
                    if channel.topic in wanted:
                        yield channel.topic, message.log_time, message.data
        except BagError:
            raise
        except Exception as error:  # noqa: BLE001 (CRC, length, decompression and parse errors alike)
            raise BagError(f"{self.file} is corrupt: {_why(error)}") from error


MAGIC = b"\x89MCAP0\r\n"


def _check_ends(file: Path) -> None:
    """An MCAP file starts and ends with its magic bytes: one that does not end with them was cut short."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as stream:
            head = stream.read(len(MAGIC))
            stream.seek(max(0, size - len(MAGIC)))
            tail = stream.read(len(MAGIC))
    except OSError as error:
        raise BagError(f"cannot read {file}: {error.strerror}") from error
    if head != MAGIC:
        raise BagError(f"{file} is not an MCAP file (it does not start with the MCAP magic bytes)")
    if tail != MAGIC or size < 2 * len(MAGIC):
        raise BagError(f"{file} is truncated: it does not end with the MCAP footer ({size} bytes; the recorder "
                       "was stopped before it closed the file, or the copy was cut short)")


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
