"""Fleet memory: several memory processes (one per robot) share what their robots observe through one
PostgreSQL database, beside :class:`~robomem.core.memory.Memory` (which stays as it is).

Each node ingests its own robots' batches at once and appends them to the fleet log in the same
transaction as the memory state they changed (:meth:`PostgresStore.stage_publish`); it takes in the
other nodes' batches, in log order, through the *same* ingest (association, negative evidence: a robot
that looks at the place of another's mug and does not see it makes it gone on every node). The log
position it has taken in (the cursor) is committed with the memory state, so after a crash or a late
start a node resumes exactly where its memory is: no batch applied twice, none skipped. New entries
wake it through LISTEN/NOTIFY; it also polls every ``poll_s`` (a lost notification delays, never loses).

Late remote batches (one queued through an outage, or one that arrives after this node's clock moved
past it) are never refused: they are taken as history (``Memory.ingest(..., as_history=True)``). Per
object the newest evidence wins: a sighting of an object this memory saw (or made gone) at or after the
batch's stamp is logged at its own stamp and changes nothing else; anything else (an object memory last
saw earlier, one it did not know, a miss in the batch's view of an object last seen before it) is applied
as any batch is, its facts starting at memory's clock (when memory learnt them) and its sightings, views
and the objects' ``last_seen`` at the batch's own stamp. Counted: ``late_as_history``, ``late_superseded``
(memory stats) and ``remote_late_as_history`` (:attr:`FleetMember.counters`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from typing import Any, Protocol

from robomem.core.memory import Memory
from robomem.core.storage import is_postgres_url
from robomem.core.types import ChangeEvent, ObservationBatch, RejectedInput, make_detection, make_view

log = logging.getLogger(__name__)


def fleet_url(url: str, node: str = "", fallback: str = "default") -> str:
    """``url`` naming this memory in the fleet: ``node`` if given, else the URL's own ``node=``, else
    ``fallback`` (made a valid name: a-z, 0-9, _). ValueError unless it is a ``postgresql://`` URL."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    if not is_postgres_url(url):
        raise ValueError(f"fleet memory needs a postgresql:// database, not {url!r}")
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    name = node or params.get("node") or re.sub(r"[^a-z0-9_]", "_", fallback.lower().strip("/"))[:40] or "default"
    params["node"] = name
    return urlunsplit(parts._replace(query=urlencode(params)))


class FleetLog(Protocol):
    """What a store offers the fleet (PostgresStore does)."""

    node: str
    fleet_cursor: int

    def stage_publish(self, robot: str, t: float, payload: str) -> int: ...
    def unstage_last(self) -> None: ...
    def staged_age_s(self) -> float: ...
    def note_applied(self, seq: int) -> None: ...
    def fetch_fleet(self, after: int, limit: int = 500) -> list[tuple[int, str, int, str, float, str]]: ...
    def wait_for_fleet(self, timeout_s: float) -> bool: ...


def encode_batch(batch: ObservationBatch, **extra: Any) -> str:
    """An observation batch as JSON for the fleet log (``extra``: fields a reader may use, e.g. ``sent``)."""
    view = None if batch.view is None else [*batch.view.position, batch.view.yaw_deg, batch.view.fov_deg,
                                            batch.view.range_m]
    return json.dumps({
        "t": batch.t, "robot": batch.robot, "sensor": getattr(batch, "sensor", ""),
        "sequence": getattr(batch, "sequence", None), "view": view, **extra,
        "detections": [{"label": d.label, "center": d.center.tolist(), "size": d.size.tolist(),
                        "confidence": d.confidence, "state": d.state,
                        "embedding": None if d.embedding is None else d.embedding.tolist()} for d in batch.detections],
    })


def decode_batch(payload: str) -> ObservationBatch:
    """The batch back, validated as any input is (RejectedInput if unsound)."""
    try:
        data = json.loads(payload)
        view = None if data["view"] is None else make_view(data["view"][:3], *data["view"][3:6])
        detections = [make_detection(d["label"], d["center"], d["size"], d["confidence"], d["state"], d["embedding"])
                      for d in data["detections"]]
        batch = ObservationBatch(float(data["t"]), str(data["robot"]), detections, view)
        for name in ("sensor", "sequence"):  # the source's sensor and batch number, where this robomem has them
            if data.get(name) is not None and hasattr(batch, name):
                setattr(batch, name, data[name])
        return batch
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, RejectedInput):
            raise
        raise RejectedInput("bad_fleet_batch", repr(error)[:300]) from error


class FleetMember:
    """One node of the fleet: its memory plus the shared log. Use :meth:`ingest` for this node's robots;
    :meth:`catch_up` (or the thread of :meth:`start`) takes in what the other nodes wrote."""

    def __init__(self, memory: Memory, poll_s: float = 0.5, publish_within_s: float = 0.2,
                 on_remote: Any = None, on_events: Any = None) -> None:
        store = memory.store
        if not all(hasattr(store, name) for name in ("stage_publish", "fetch_fleet", "note_applied")):
            raise TypeError(f"fleet memory needs a store with a fleet log (PostgreSQL), not {type(store).__name__}")
        self.memory = memory
        self.log: FleetLog = store  # type: ignore[assignment]
        self.poll_s = poll_s
        self.publish_within_s = publish_within_s  # a staged batch is committed at most this late
        self.counters: Counter[str] = Counter()
        self.on_remote = on_remote  # called (seq, node, robot, payload) after each remote batch is taken in
        self.on_events = on_events  # called (change events) that a remote batch caused, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def node(self) -> str:
        return self.log.node

    def ingest(self, batch: ObservationBatch, **extra: Any) -> list[ChangeEvent]:
        """Ingest one of this node's batches and publish it to the fleet (committed together)."""
        with self.memory.lock:
            self.log.stage_publish(batch.robot, batch.t, encode_batch(batch, **extra))
            try:
                events = self.memory.ingest(batch)
            except BaseException:
                self.log.unstage_last()
                raise
            self.flush_if_due()
        self.counters["published"] += 1
        return events

    def catch_up(self, limit: int = 500) -> int:
        """Take in the other nodes' batches after the cursor, in log order; returns how many."""
        taken = 0
        while not self._stop.is_set():
            rows = self.log.fetch_fleet(self.log.fleet_cursor, limit)
            for seq, node, _node_seq, robot, _t, payload in rows:
                with self.memory.lock:
                    self.log.note_applied(seq)  # before ingest: a flush inside it commits the cursor with it
                    try:
                        before = self.memory.counters["late_as_history"]
                        events = self.memory.ingest(decode_batch(payload), as_history=True)
                        self.counters["remote_applied"] += 1
                        if events and self.on_events is not None:
                            self.on_events(events)
                        if self.memory.counters["late_as_history"] > before:
                            self.counters["remote_late_as_history"] += 1
                    except RejectedInput as error:
                        self.counters[f"remote_rejected.{error.reason}"] += 1
                        self.memory.record_rejection(error)
                taken += 1
                if self.on_remote is not None:
                    self.on_remote(seq, node, robot, payload)
            if len(rows) < limit:
                break
        return taken

    def flush_if_due(self) -> None:
        """Commit staged publishes that waited ``publish_within_s`` or longer (also an idle robot's last one)."""
        if self.log.staged_age_s() >= self.publish_within_s:
            self.memory.flush()

    # ------------------------------------------------------------------ the background thread
    def start(self) -> FleetMember:
        """Catch up now and keep catching up in a thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"robomem-fleet-{self.node}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
                self.flush_if_due()
            except Exception as error:  # the server away: keep working locally, try again
                self.counters["catch_up_failed"] += 1
                log.debug("fleet catch-up failed: %s", error)
                time.sleep(self.poll_s)
            if not self._stop.is_set():
                self.log.wait_for_fleet(min(self.poll_s, max(0.02, self.publish_within_s / 2)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
