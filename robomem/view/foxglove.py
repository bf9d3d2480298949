"""A live Foxglove view of a memory: a WebSocket server (PyPI ``foxglove-sdk``, bound to 127.0.0.1 by
default) publishing ``foxglove.SceneUpdate`` messages on ``/robomem/scene`` in the ``map`` frame:

- ``object/<track id>``: a cube (furniture blue, objects orange) and a text with its label, holder and
  states; metadata keys ``label``, ``kind``, ``holder``, ``room``, ``status`` and ``state.<key>``;
- ``relations``: a line from each object to its holder (in / on), metadata ``<child>`` = ``<relation> <parent>``;
- ``room/<name>``: the room's floor area as a flat translucent cube with its name.

``robomem foxglove --db FILE`` rereads the memory file whenever it changes (a memory node writes it as it
goes, see its flush policy) through a copy (robomem.view.snapshot) and publishes the scene every
``period_s``; entities of objects no longer believed are deleted. Open it in Foxglove with a
"Foxglove WebSocket" connection to ws://127.0.0.1:8765 and a 3D panel.
"""

from __future__ import annotations

import time
from pathlib import Path

import foxglove
from foxglove.channels import SceneUpdateChannel
from foxglove.messages import (
    Color,
    CubePrimitive,
    KeyValuePair,
    LinePrimitive,
    LinePrimitiveLineType,
    Point3,
    Pose,
    Quaternion,
    SceneEntity,
    SceneEntityDeletion,
    SceneEntityDeletionType,
    SceneUpdate,
    TextPrimitive,
    Vector3,
)

from robomem.core import MemoryConfig
from robomem.view.snapshot import Snapshot, take_snapshot

TOPIC = "/robomem/scene"
FRAME = "map"
KIND_COLORS = {"receptacle": Color(r=0.36, g=0.55, b=0.84, a=0.35), "object": Color(r=0.94, g=0.55, b=0.15, a=0.9)}
ROOM_COLOR = Color(r=0.5, g=0.5, b=0.5, a=0.12)
TEXT_COLOR = Color(r=1.0, g=1.0, b=1.0, a=1.0)
LINE_COLOR = Color(r=0.2, g=0.9, b=0.3, a=1.0)
IDENTITY = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)


def _pose(x: float, y: float, z: float) -> Pose:
    return Pose(position=Vector3(x=float(x), y=float(y), z=float(z)), orientation=IDENTITY)


def scene_entities(snap: Snapshot) -> list[SceneEntity]:
    """The memory as Foxglove scene entities (objects, relations, rooms)."""
    entities = []
    by_id = {o.track_id: o for o in snap.objects}
    for o in snap.objects:
        states = ", ".join(f"{k}={v}" for k, v in sorted(o.states.items()))
        caption = " ".join(part for part in (o.label, f"({o.holder})" if o.holder else "", states) if part)
        metadata = [KeyValuePair(key=k, value=v) for k, v in (("label", o.label), ("kind", o.kind),
                                                               ("holder", o.holder), ("room", o.room),
                                                               ("status", o.status))]
        metadata += [KeyValuePair(key=f"state.{k}", value=str(v)) for k, v in sorted(o.states.items())]
        top = o.center[2] + o.size[2] / 2 + 0.05
        entities.append(SceneEntity(
            frame_id=FRAME, id=f"object/{o.track_id}", metadata=metadata,
            cubes=[CubePrimitive(pose=_pose(*o.center), size=Vector3(x=o.size[0], y=o.size[1], z=o.size[2]),
                                 color=KIND_COLORS.get(o.kind, KIND_COLORS["object"]))],
            texts=[TextPrimitive(pose=_pose(o.center[0], o.center[1], top), billboard=True, font_size=14.0,
                                 scale_invariant=True, color=TEXT_COLOR, text=caption)]))
    points, relations = [], []
    for child, parent, relation in snap.edges:
        if child in by_id and parent in by_id:
            for end in (by_id[child].center, by_id[parent].center):
                points.append(Point3(x=end[0], y=end[1], z=end[2]))
            relations.append(KeyValuePair(key=str(child), value=f"{relation} {parent}"))
    entities.append(SceneEntity(frame_id=FRAME, id="relations", metadata=relations, lines=[LinePrimitive(
        type=LinePrimitiveLineType.LineList, thickness=2.0, scale_invariant=True, points=points, color=LINE_COLOR)]))
    for name, lo, hi in snap.rooms:
        center = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.0)
        entities.append(SceneEntity(
            frame_id=FRAME, id=f"room/{name}", metadata=[KeyValuePair(key="room", value=name)],
            cubes=[CubePrimitive(pose=_pose(*center), size=Vector3(x=hi[0] - lo[0], y=hi[1] - lo[1], z=0.01),
                                 color=ROOM_COLOR)],
            texts=[TextPrimitive(pose=_pose(center[0], center[1], 0.1), billboard=True, font_size=18.0,
                                 scale_invariant=True, color=TEXT_COLOR, text=name)]))
    return entities


def entity_ids(snap: Snapshot) -> set[str]:
    """The ids of :func:`scene_entities` (the SDK's entities do not expose their fields)."""
    return {f"object/{o.track_id}" for o in snap.objects} | {"relations"} | {f"room/{n}" for n, _, _ in snap.rooms}


class FoxgloveScene:
    """A Foxglove WebSocket server with the scene channel; ``publish`` a snapshot (entities that
    disappeared since the last one are deleted)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, name: str = "robomem") -> None:
        self.server = foxglove.start_server(name=name, host=host, port=port)
        self.channel = SceneUpdateChannel(TOPIC)
        self._ids: set[str] = set()
        self.updates = 0

    @property
    def port(self) -> int:
        return self.server.port

    def publish(self, snap: Snapshot) -> int:
        """Publish the scene of ``snap``; returns how many entities it has."""
        entities = scene_entities(snap)
        ids = entity_ids(snap)
        deletions = [SceneEntityDeletion(type=SceneEntityDeletionType.MatchingId, id=i)
                     for i in sorted(self._ids - ids)]
        self.channel.log(SceneUpdate(deletions=deletions, entities=entities))
        self._ids = ids
        self.updates += 1
        return len(entities)

    def close(self) -> None:
        self.channel.close()
        self.server.stop()


def _version(db: Path) -> tuple[float, ...]:
    """Changes whenever the memory file (or its write-ahead log) is written."""
    return tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (db, Path(f"{db}-wal")))


def serve_file(db: Path | str, host: str = "127.0.0.1", port: int = 8765, period_s: float = 1.0,
               config: MemoryConfig | None = None, max_updates: int | None = None) -> int:
    """Serve ``db`` until Ctrl-C (or ``max_updates`` publications): reread on change, publish every
    ``period_s``."""
    db = Path(db)
    snap = take_snapshot(db, config)  # a missing or broken file fails here, before the server starts
    version = _version(db)
    scene = FoxgloveScene(host, port)
    print(f"robomem foxglove: ws://{host}:{scene.port} topic {TOPIC} ({len(snap.objects)} objects from {db}); "
          "Ctrl-C stops", flush=True)
    try:
        while max_updates is None or scene.updates < max_updates:
            if _version(db) != version:
                version = _version(db)
                try:
                    snap = take_snapshot(db, config)
                except ValueError as error:  # caught mid-write: keep the last good scene
                    print(f"robomem foxglove: kept the last scene ({error})", flush=True)
            scene.publish(snap)
            time.sleep(period_s)
    except KeyboardInterrupt:
        pass
    finally:
        scene.close()
    return 0
