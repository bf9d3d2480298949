"""Storage behind a small interface; SQLite (WAL) is the embedded default, PostgreSQL
(:mod:`robomem.core.storage_postgres`) the shared one for a fleet. :func:`open_store` picks one by URL.

History is append-only: rows are never deleted, except those of tracks memory forgot altogether
(dismissed false detections never believed, ``WriteBatch.forgotten``). A fact row may be refined while
it is open (``valid_to`` NULL); once closed it is final.

Durability (``MemoryConfig.durability``): ``interval`` hands writes to a background thread (at most the
flush interval is lost to a crash); ``batch`` commits every write before :meth:`MemoryStore.write`
returns (acknowledged means committed). Either way a store marks the file ``clean_close=0`` with its
first write and ``1`` when closed, so the next open knows whether the last session ended in a crash.
"""

from __future__ import annotations

import collections
import json
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from robomem.core.temporal import Fact
from robomem.core.tracks import TRACK_COLUMNS
from robomem.core.types import ChangeEvent

# Tables added later are created if missing (``CREATE TABLE IF NOT EXISTS`` runs on every open), so such
# additions keep the version: older files open unchanged and older readers ignore the new tables.
SCHEMA_VERSION = 1
DURABILITY_MODES = ("interval", "batch")
CLEAN_CLOSE = "clean_close"  # meta key: '0' while a session writes, '1' once it closed


def check_durability(mode: str) -> str:
    """The durability mode, or ValueError naming the valid ones."""
    if mode not in DURABILITY_MODES:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}, got {mode!r}")
    return mode


def json_values(texts: list[str]) -> list:
    """Decode many JSON texts at once (one parse of their concatenation: opening a large memory decodes
    tens of thousands of fact values); one by one when the whole does not parse (a bad row raises there)."""
    if all(type(text) is str for text in texts):
        try:
            values = json.loads("[" + ",".join(texts) + "]")
            if len(values) == len(texts):
                return values
        except ValueError:
            pass
    return [json.loads(text) for text in texts]


def is_postgres_url(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def open_store(db: str | Path, durability: str = "interval") -> MemoryStore:
    """The store for ``db``: PostgreSQL for a ``postgresql://`` URL, else SQLite (a path or ':memory:')."""
    check_durability(durability)
    if is_postgres_url(str(db)):
        from robomem.core.storage_postgres import PostgresStore

        return PostgresStore(str(db), durability=durability)
    return SQLiteStore(db, durability=durability)

_SCHEMA_TEMPLATE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks ({track_columns});
CREATE TABLE IF NOT EXISTS facts (
    fact_id INTEGER PRIMARY KEY, track_id INTEGER NOT NULL, predicate TEXT NOT NULL,
    value TEXT, valid_from REAL NOT NULL, valid_to REAL);
CREATE INDEX IF NOT EXISTS facts_by_track ON facts (track_id, predicate, valid_from);
CREATE TABLE IF NOT EXISTS observations (
    obs_id INTEGER PRIMARY KEY, t REAL NOT NULL, robot TEXT NOT NULL, label TEXT NOT NULL,
    x REAL, y REAL, z REAL, sx REAL, sy REAL, sz REAL, confidence REAL, state TEXT, track_id INTEGER);
CREATE INDEX IF NOT EXISTS observations_by_track ON observations (track_id, t);
CREATE TABLE IF NOT EXISTS views (
    view_id INTEGER PRIMARY KEY, t REAL NOT NULL, robot TEXT NOT NULL,
    x REAL, y REAL, z REAL, yaw_deg REAL, fov_deg REAL, range_m REAL);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY, t REAL NOT NULL, track_id INTEGER, label TEXT, change TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS rejects (reject_id INTEGER PRIMARY KEY, t REAL, reason TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS task_episodes (
    episode_id INTEGER PRIMARY KEY, robot_id TEXT NOT NULL, instruction TEXT NOT NULL, plan TEXT NOT NULL,
    success INTEGER NOT NULL, failure_reason TEXT NOT NULL, objects TEXT NOT NULL,
    started REAL NOT NULL, finished REAL NOT NULL);
"""
_SCHEMA = _SCHEMA_TEMPLATE.replace("{track_columns}", TRACK_COLUMNS)
_TRACK_PLACEHOLDERS = ", ".join("?" * (TRACK_COLUMNS.count(",") + 1))


@dataclass
class WriteBatch:
    """Everything memory changed since the last flush."""

    tracks: dict[int, tuple] = field(default_factory=dict)
    facts: dict[int, Fact] = field(default_factory=dict)
    observations: list[tuple] = field(default_factory=list)
    views: list[tuple] = field(default_factory=list)
    events: list[ChangeEvent] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    # task runs: (episode_id, robot_id, instruction, plan: list[str], success: bool, failure_reason,
    # objects: list[str], started, finished)
    episodes: list[tuple] = field(default_factory=list)
    # fleet log rows committed with this batch (PostgreSQL): (node_seq, robot, t, payload JSON)
    fleet: list[tuple] = field(default_factory=list)
    # tracks memory forgot (dismissed false detections, never believed): their rows leave the store
    forgotten: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(
            (self.tracks, self.facts, self.observations, self.views, self.events, self.rejects, self.meta,
             self.episodes, self.fleet, self.forgotten)
        )


@dataclass
class StoredState:
    """What a store hands back on open."""

    meta: dict[str, str]
    tracks: list[tuple]
    facts: list[Fact]
    views: list[tuple]
    events: list[ChangeEvent]
    reject_counts: dict[str, int]


class MemoryStore(ABC):
    """The persistence interface the memory core needs (SQLite here, PostgreSQL in storage_postgres)."""

    @abstractmethod
    def load(self) -> StoredState: ...

    @abstractmethod
    def write(self, batch: WriteBatch) -> None: ...

    @abstractmethod
    def last_seen(self, track_ids: list[int], until: float) -> float | None:
        """Latest observation time of any of these tracks at or before ``until``."""

    @abstractmethod
    def load_episodes(self) -> list[tuple]:
        """Every task episode written so far (rows shaped as in ``WriteBatch.episodes``), oldest first."""

    @abstractmethod
    def sync(self) -> None:
        """Return once everything written so far is durable."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteStore(MemoryStore):
    """SQLite in WAL mode at a file path (or ':memory:').

    For a file, writes run on one background thread (sqlite releases the GIL while it works), in order;
    reads and :meth:`close` wait for the queued writes (``last_seen`` does not: it also reads the batches
    still queued), and a failed write is raised there. ``:memory:`` is written in the caller's thread.
    With ``durability='batch'`` every write is committed (and synced to disk) in the caller's thread.
    """

    def __init__(self, path: str | Path, background_writes: bool | None = None, durability: str = "interval") -> None:
        path = str(path)
        self.durability = check_durability(durability)
        if background_writes is None:  # an in-memory database is quick to write and has no second reader
            background_writes = path != ":memory:" and durability == "interval"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # batch: a commit is on disk (fsync) when write returns; interval: WAL survives a process crash
        self._db.execute("PRAGMA synchronous=" + ("FULL" if durability == "batch" else "NORMAL"))
        self._session_marked = path == ":memory:"
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.commit()
        elif int(row[0]) != SCHEMA_VERSION:
            self._db.close()
            raise RuntimeError(f"{path}: schema version {row[0]}, this robomem reads {SCHEMA_VERSION}")
        self._queue: queue.Queue[WriteBatch | None] | None = None
        self._error: BaseException | None = None
        # batches handed over but not yet committed, oldest first (a reader looks in them, then on disk)
        self._uncommitted: collections.deque[WriteBatch] = collections.deque()
        self._uncommitted_lock = threading.Lock()
        self._reader = sqlite3.connect(path, check_same_thread=False) if path != ":memory:" else None
        self._reader_lock = threading.Lock()
        if background_writes:
            self._queue = queue.Queue(maxsize=64)
            self._writer = threading.Thread(target=self._write_loop, name="robomem-sqlite-writer", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                if self._error is None:
                    self._write_now(batch)
            except BaseException as error:  # surfaced to the caller on the next read, write or close
                self._error = error
            finally:
                if batch is not None:
                    with self._uncommitted_lock:
                        self._uncommitted.popleft()
                self._queue.task_done()

    def _drain(self) -> None:
        if self._queue is not None:
            self._queue.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"writing memory to SQLite failed: {error}") from error

    def load(self) -> StoredState:
        self._drain()
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        tracks = list(db.execute("SELECT * FROM tracks ORDER BY track_id"))
        rows = db.execute(
            "SELECT fact_id, track_id, predicate, value, valid_from, valid_to FROM facts ORDER BY fact_id"
        ).fetchall()
        values = json_values([row[3] for row in rows])
        facts = [Fact(fid, tid, pred, value, vfrom, vto)
                 for (fid, tid, pred, _, vfrom, vto), value in zip(rows, values, strict=True)]
        views = list(db.execute("SELECT t, robot, x, y, z, yaw_deg, fov_deg, range_m FROM views ORDER BY view_id"))
        events = [
            ChangeEvent(t, tid, label, change, json.loads(detail), eid)
            for eid, t, tid, label, change, detail in db.execute(
                "SELECT event_id, t, track_id, label, change, detail FROM events ORDER BY event_id"
            )
        ]
        rejects = dict(db.execute("SELECT reason, COUNT(*) FROM rejects GROUP BY reason"))
        return StoredState(meta, tracks, facts, views, events, rejects)

    def load_episodes(self) -> list[tuple]:
        self._drain()
        return [
            (eid, robot, instruction, json.loads(plan), bool(success), reason, json.loads(objects), started, finished)
            for eid, robot, instruction, plan, success, reason, objects, started, finished in self._db.execute(
                "SELECT episode_id, robot_id, instruction, plan, success, failure_reason, objects, started, finished "
                "FROM task_episodes ORDER BY episode_id"
            )
        ]

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        if not self._session_marked:  # the first write of a session: a crash from now on is unclean
            batch.meta.setdefault(CLEAN_CLOSE, "0")
            self._session_marked = True
        if self._error is not None:
            self._drain()
        if self._queue is not None:
            with self._uncommitted_lock:
                self._uncommitted.append(batch)
            self._queue.put(batch)
        else:
            self._write_now(batch)

    def _write_now(self, batch: WriteBatch) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                list(batch.meta.items()),
            )
            self._db.executemany(f"INSERT OR REPLACE INTO tracks VALUES ({_TRACK_PLACEHOLDERS})", batch.tracks.values())
            self._db.executemany(
                "INSERT INTO facts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(fact_id) DO UPDATE SET "
                "value=excluded.value, valid_to=excluded.valid_to WHERE facts.valid_to IS NULL",
                [
                    (f.fact_id, f.subject, f.predicate, json.dumps(f.value), f.valid_from, f.valid_to)
                    for f in batch.facts.values()
                ],
            )
            self._db.executemany(
                "INSERT INTO observations (t, robot, label, x, y, z, sx, sy, sz, confidence, state, track_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch.observations,
            )
            self._db.executemany(
                "INSERT INTO views (t, robot, x, y, z, yaw_deg, fov_deg, range_m) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                batch.views,
            )
            self._db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                [(e.event_id, e.t, e.track_id, e.label, e.change, json.dumps(e.detail)) for e in batch.events],
            )
            self._db.executemany("INSERT INTO rejects (t, reason, detail) VALUES (?, ?, ?)", batch.rejects)
            self._db.executemany(
                "INSERT INTO task_episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (eid, robot, instruction, json.dumps(plan), int(success), reason, json.dumps(objects), t0, t1)
                    for eid, robot, instruction, plan, success, reason, objects, t0, t1 in batch.episodes
                ],
            )
            if batch.forgotten:  # last: rows of these tracks written by this very batch go too
                ids = [(track_id,) for track_id in batch.forgotten]
                for table in ("tracks", "facts", "observations"):
                    self._db.executemany(f"DELETE FROM {table} WHERE track_id=?", ids)

    def last_seen(self, track_ids: list[int], until: float) -> float | None:
        if not track_ids:
            return None
        marks = ",".join("?" * len(track_ids))
        query = f"SELECT MAX(t) FROM observations WHERE track_id IN ({marks}) AND t <= ?"
        if self._reader is None or self._error is not None:  # in-memory database: wait for the writer
            self._drain()
            row = self._db.execute(query, (*track_ids, until)).fetchone()
            return None if row is None else row[0]
        # no waiting on the writer: first the batches not committed yet (a batch leaves this list only
        # once committed), then what is on disk, read through a second WAL connection
        with self._uncommitted_lock:
            pending = list(self._uncommitted)
        wanted = set(track_ids)
        times = [row[0] for batch in pending for row in batch.observations if row[-1] in wanted and row[0] <= until]
        with self._reader_lock:
            row = self._reader.execute(query, (*track_ids, until)).fetchone()
        if row is not None and row[0] is not None:
            times.append(row[0])
        return max(times, default=None)

    def sync(self) -> None:
        self._drain()

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a read-only query after pending writes land (for tools and tests)."""
        self._drain()
        return self._db.execute(sql, params).fetchall()

    def close(self) -> None:
        try:
            self._drain()
            if self._session_marked and self._reader is not None:
                with self._db:
                    self._db.execute("UPDATE meta SET value='1' WHERE key=?", (CLEAN_CLOSE,))
        finally:
            if self._queue is not None:
                self._queue.put(None)
                self._writer.join()
                self._queue = None
            if self._reader is not None:
                self._reader.close()
            self._db.close()
