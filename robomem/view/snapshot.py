"""What a view shows, read from a memory file without changing it: the believed objects (box, holder,
room, states), the scene graph's edges, the rooms, and the history of one label's instances.

The file is copied first (SQLite's online backup: a consistent copy, its WAL included) and the copy is
opened, so a view never writes to a memory, even one a node is using."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robomem.core import Memory, MemoryConfig
from robomem.core.tracks import PARENT, POSE, STATUS


@dataclass(frozen=True)
class ObjectView:
    """One believed object as a view draws it."""

    track_id: int
    label: str
    kind: str  # receptacle | object
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    status: str
    holder: str  # "in Fridge" / "on CounterTop" / ""
    holder_id: int | None
    room: str
    states: dict[str, Any]
    last_seen: float


@dataclass(frozen=True)
class Span:
    """One fact of a history: ``value`` held on [start, end) (end None: still holds)."""

    track_id: int
    predicate: str  # status | holder | place | state:<key>
    value: str
    start: float
    end: float | None


@dataclass
class Snapshot:
    source: str
    now: float
    objects: list[ObjectView] = field(default_factory=list)
    edges: list[tuple[int, int, str]] = field(default_factory=list)  # (child, parent, relation)
    rooms: list[tuple[str, tuple[float, float], tuple[float, float]]] = field(default_factory=list)
    focus: str | None = None
    history: list[Span] = field(default_factory=list)
    tracks_total: int = 0


def read_only_uri(path: Path) -> str:
    """A SQLite URI that reads ``path`` without writing anything beside it: immutable when it has no
    write-ahead log (nothing else to read), else read-only (the log read too)."""
    wal = Path(f"{path}-wal")
    return f"file:{path}?mode=ro" if wal.exists() else f"file:{path}?mode=ro&immutable=1"


def copy_memory_file(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite memory, read only from ``source``."""
    if not source.is_file():
        raise FileNotFoundError(f"no memory file at {source}")
    try:
        with contextlib.closing(sqlite3.connect(read_only_uri(source), uri=True)) as src, \
                contextlib.closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{source} is not a SQLite memory file: {error}") from error


def _has_area(size: Any) -> bool:
    """A configured room (the default room of an unconfigured memory has no extent)."""
    return all(math.isfinite(float(v)) for v in size[:2]) and float(size[0]) > 0 and float(size[1]) > 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def take_snapshot(db: Path | str, config: MemoryConfig | None = None, focus: str | None = None) -> Snapshot:
    """Read ``db`` (through a copy) into a :class:`Snapshot`; ``focus``: a label whose instances'
    histories are kept (ValueError if memory never knew it)."""
    db = Path(db)
    with tempfile.TemporaryDirectory(prefix="robomem-view-") as folder:
        copy = Path(folder) / "memory.sqlite"
        copy_memory_file(db, copy)
        cfg = config or MemoryConfig()
        cfg.db_path = str(copy)
        try:
            memory = Memory(cfg)
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{db} is not a robomem memory file: {error}") from error
        try:
            return _read(memory, str(db), focus)
        finally:
            memory.close()


def _read(memory: Memory, source: str, focus: str | None) -> Snapshot:
    with memory.lock:
        nodes, edges = memory.scene_graph()
        kinds = {n.track_id: n.kind for n in nodes if n.track_id >= 0}
        snap = Snapshot(source, float(memory.now) if math.isfinite(memory.now) else 0.0,
                        tracks_total=len(memory.tracks))
        snap.rooms = [(n.label, (float(n.center[0] - n.size[0] / 2), float(n.center[1] - n.size[1] / 2)),
                       (float(n.center[0] + n.size[0] / 2), float(n.center[1] + n.size[1] / 2)))
                      for n in nodes if n.kind == "room" and _has_area(n.size)]
        for track in sorted(memory.believed_tracks(), key=lambda t: (t.label, t.track_id)):
            info = memory.belief.info(track, None)
            holder = f"{info.relation or 'on'} {info.receptacle}" if info.receptacle else ""
            snap.objects.append(ObjectView(
                track.track_id, info.label, kinds.get(track.track_id, "object"),
                tuple(float(v) for v in info.center), tuple(float(v) for v in info.size), info.status, holder,
                info.receptacle_id, info.room, dict(info.state), float(info.last_seen)))
        snap.edges = [(int(e.child), int(e.parent), e.relation) for e in edges
                      if e.child.isdigit() and e.parent.isdigit()]
        if focus:
            snap.focus = focus
            wanted = focus.replace("_", "").replace(" ", "").lower()
            tracks = [t for t in memory.tracks.values() if t.label.replace("_", "").replace(" ", "").lower() == wanted]
            if not tracks:
                known = sorted({t.label for t in memory.tracks.values()})
                raise ValueError(f"memory never knew a {focus!r}; it knows: {', '.join(known[:40]) or 'nothing'}")
            snap.history = _history(memory, tracks)
    return snap


def _history(memory: Memory, tracks: list) -> list[Span]:
    spans: list[Span] = []
    for track in sorted(tracks, key=lambda t: t.track_id):
        for predicate, history in sorted(track.histories.items()):
            for fact in history.facts:
                if predicate == PARENT:
                    name, value = "holder", "none"
                    if fact.value:
                        holder = memory.tracks.get(fact.value[0])
                        value = f"{fact.value[1]} {holder.label if holder else fact.value[0]}"
                elif predicate == POSE:
                    name = "place"
                    value = "({:.2f}, {:.2f}, {:.2f})".format(*fact.value[:3])
                elif predicate == STATUS:
                    name, value = "status", str(fact.value)
                else:
                    name, value = predicate, _fmt(fact.value)
                spans.append(Span(track.track_id, name, value, float(fact.valid_from),
                                  None if fact.valid_to is None else float(fact.valid_to)))
    return spans
