"""Rebuild a memory from a bag: every ObservationBatch of the bag goes through exactly what the memory
node does with one (robomem.ros.convert.batch_from_msg, then Memory.ingest; rejections counted and
stored), in the order they were recorded, so the memory answers as the live one did.

No DDS: messages are deserialized with rclpy from the bag's CDR bytes. As fast as the CPU allows by
default, or paced (``rate``: 1.0 = as recorded). All or nothing: the memory is built in a temporary
file next to the target and moved into place only when the whole bag was read; a corrupt or truncated
bag, a missing topic or a foreign type leaves the target as it was and raises BagError.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.serialization import deserialize_message

from robomem import msg as rmsg
from robomem.core import Memory, MemoryConfig
from robomem.core.types import RejectedInput
from robomem.record.bag import BagError, BagReader
from robomem.record.schemas import OBSERVATION_TYPE, definition
from robomem.ros import convert
from robomem.view.snapshot import read_only_uri

DEFAULT_TOPIC = "/observations"


@dataclass
class ReplayReport:
    """What a replay took: batches ingested and rejected, change events, bag span and wall time."""

    bag: str
    db: str
    batches: int = 0
    batches_rejected: int = 0
    observations_rejected: int = 0
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, label, change)
    bag_span_s: float = 0.0
    wall_s: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """How many times faster than the recording this replay ran."""
        return self.bag_span_s / self.wall_s if self.wall_s > 0 else math.inf


def replay(bag: Path | str, db: Path | str, *, rate: float | None = None, topic: str = DEFAULT_TOPIC,
           config: MemoryConfig | None = None, map_frame: str = "map", max_observations: int = 512,
           append: bool = False) -> ReplayReport:
    """Ingest the bag's ObservationBatch messages on ``topic`` into the memory file ``db``.

    ``rate``: None = as fast as possible; X = X times the recorded speed. ``db`` must not hold a memory
    unless ``append``. ``map_frame``/``max_observations``: the memory node's parameters of the live run."""
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number, got {rate}")
    db = Path(db)
    if db.exists() and not append:
        raise FileExistsError(f"{db} already holds a memory: pass append to continue it, or choose a new file")
    reader = BagReader(bag)
    reader.require(topic, OBSERVATION_TYPE, definition(OBSERVATION_TYPE)[1])
    report = ReplayReport(str(bag), str(db))
    db.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{db.name}.replay-", dir=db.parent))
    work_db = workdir / db.name
    try:
        if db.exists():
            _copy_sqlite(db, work_db)
        memory_config = config or MemoryConfig()
        memory_config.db_path = str(work_db)
        started = time.perf_counter()
        memory = Memory(memory_config)
        try:
            _ingest_all(reader, topic, memory, report, rate, map_frame, max_observations)
        finally:
            memory.close()
        report.wall_s = time.perf_counter() - started
        report.counters = {k: int(v) for k, v in memory.counters.items()}
        for suffix in ("-wal", "-shm"):  # the old file's, already in the copy: they must not meet the new one
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        os.replace(work_db, db)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _ingest_all(reader: BagReader, topic: str, memory: Memory, report: ReplayReport, rate: float | None,
                map_frame: str, max_observations: int) -> None:
    first_ns: int | None = None
    wall_start = time.perf_counter()
    last_ns = 0
    for index, (_topic, log_ns, data) in enumerate(reader.messages([topic])):
        try:
            message = deserialize_message(data, rmsg.ObservationBatch)
        except Exception as error:  # noqa: BLE001 (rclpy raises plain errors on bad CDR)
            raise BagError(f"{reader.file}: message {index} on {topic} does not deserialize as "
                           f"{OBSERVATION_TYPE}: {error}") from error
        first_ns = log_ns if first_ns is None else first_ns
        last_ns = max(last_ns, log_ns)
        if rate is not None:
            delay = (log_ns - first_ns) / 1e9 / rate - (time.perf_counter() - wall_start)
            if delay > 0:
                time.sleep(delay)
        _ingest_one(message, memory, report, map_frame, max_observations)
    report.bag_span_s = (last_ns - first_ns) / 1e9 if first_ns is not None else 0.0


def _ingest_one(message: rmsg.ObservationBatch, memory: Memory, report: ReplayReport, map_frame: str,
                max_observations: int) -> None:
    """What robomem.ros.memory_node.MemoryNode.on_observations does with a batch (without publishing)."""
    stamp = convert.time_from_msg(message.header.stamp)
    try:
        batch, rejected = convert.batch_from_msg(message, map_frame, max_observations)
    except RejectedInput as error:
        memory.record_rejection(error, stamp if math.isfinite(stamp) else 0.0)
        report.batches_rejected += 1
        return
    for error in rejected:
        memory.record_rejection(error, stamp if math.isfinite(stamp) else 0.0)
    report.observations_rejected += len(rejected)
    try:
        events = memory.ingest(batch)
    except RejectedInput:
        report.batches_rejected += 1
        return
    report.batches += 1
    report.events += [(float(e.t), e.label, e.change) for e in events]


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite memory (its WAL included), read only from the source."""
    with contextlib.closing(sqlite3.connect(read_only_uri(source), uri=True)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def summary(report: ReplayReport) -> str:
    changes = Counter(change for _, _, change in report.events)
    return (f"{report.bag}: {report.batches} batches into {report.db} in {report.wall_s:.2f} s "
            f"({report.bag_span_s:.1f} s recorded, {report.speedup:.0f}x real time); "
            f"{report.batches_rejected} batches and {report.observations_rejected} observations rejected; "
            f"events: {dict(changes) or 'none'}")
