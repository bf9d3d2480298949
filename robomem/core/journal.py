"""The journal: memory's clock and the record of what ingest changed. It hands out fact and event
ids, keeps every fact's start time (so "what changed between two times" looks only at tracks with a
fact in between), buffers what is still to be written to the store, and says when to flush.

Everything that changes a track's history goes through :meth:`Journal.record_fact`, so the store
and the in-memory timelines never disagree.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from robomem.core.config import MemoryConfig
from robomem.core.short_term import ShortTermMemory, make_policy
from robomem.core.storage import CLEAN_CLOSE, MemoryStore, WriteBatch
from robomem.core.temporal import Fact, FactIds
from robomem.core.tracks import POSE, Track
from robomem.core.types import ChangeEvent, Detection, ViewCone
from robomem.core.views import SightingRetention, ViewPersistence

# Event ids handed out before they are committed: each flush commits a reservation this far ahead, and a
# restart after a crash resumes above it, so an id a subscriber saw is never given to another event.
EVENT_ID_RESERVE = 1_000_000
_RESTORED_COUNTERS_SKIP = "rejected."  # counted again from the rejects table on open


def pose_value(track: Track) -> list[float]:
    """A placement fact's value: the track's box, [cx, cy, cz, sx, sy, sz]."""
    return [round(float(v), 4) for v in (*track.center, *track.size)]


class Journal:
    """Memory's time, fact timeline, change events (through the short-term memory) and write buffer."""

    def __init__(self, config: MemoryConfig, counters: Counter[str]) -> None:
        self.config = config
        self.counters = counters
        self.now = -math.inf  # the latest batch time memory has taken
        self.stm = ShortTermMemory(config.stm_capacity, make_policy(config.stm_policy), self._consolidate)
        self._fact_ids = FactIds()
        self._fact_times: list[float] = []  # start time of every fact, in order (time never goes back)
        self._fact_subjects: list[int] = []
        self._forgotten: set[int] = set()  # tracks memory forgot whose entries are still in the two lists
        self._forgotten_entries = 0  # how many (compacted away once they are half of the lists)
        self._next_event_id = 1
        self._pending = WriteBatch()
        self._dirty_tracks: set[int] = set()  # whose rows are to be written
        self._dirty_poses: set[int] = set()  # whose open placement's estimate improved
        self._dirty_relations: set[int] = set()  # whose holder may have changed
        self._batches_since_flush = 0
        self._last_flush = time.monotonic()
        # retention (README "Running for weeks"): sparse sightings and views in the store, reject rows capped
        self.sightings = SightingRetention(config.observation_raw_window_s, config.observation_sparse_s)
        self._view_persistence = ViewPersistence(config.view_cell_m, config.view_cell_deg,
                                                 config.view_persist_interval_s)
        self._reject_minute = (-math.inf, 0)  # (start of the current minute, rows written in it)
        self.restart_gap: dict[str, Any] | None = None  # what a crash before this session may have lost

    # ------------------------------------------------------------------ facts and events
    def record_fact(self, track: Track, predicate: str, value: Any, t: float) -> Fact:
        """Close the track's current fact of ``predicate`` at ``t`` and open one with ``value``."""
        fact = Fact(self._fact_ids.next(), track.track_id, predicate, value, t)
        self._fact_times.append(t)
        self._fact_subjects.append(track.track_id)
        closed = track.history(predicate).replace(fact, t)
        if closed is not None:
            self._pending.facts[closed.fact_id] = closed
        self._pending.facts[fact.fact_id] = fact
        self._dirty_tracks.add(track.track_id)
        return fact

    def close_fact(self, track: Track, predicate: str, t: float) -> None:
        """End the track's current fact of ``predicate`` at ``t`` (nothing holds after it)."""
        closed = track.history(predicate).close(t)
        if closed is not None:
            self._pending.facts[closed.fact_id] = closed

    def emit(self, t: float, track: Track, change: str, detail: dict[str, Any]) -> None:
        """Record a change event; ``detail["at"]`` is where memory had the object when it noticed."""
        detail = {**detail, "at": [round(float(v), 3) for v in track.center]}
        event = ChangeEvent(t, track.track_id, track.label, change, detail, self._next_event_id)
        self._next_event_id += 1
        self.stm.add(event)
        self.counters[f"events.{change}"] += 1

    @property
    def events_recorded(self) -> int:
        return self._next_event_id - 1

    def subjects_between(self, since: float, end: float) -> list[int]:
        """Tracks with a fact starting in (since, end], in id order: the only ones that can differ."""
        first = bisect.bisect_right(self._fact_times, since)
        last = bisect.bisect_right(self._fact_times, end)
        return sorted(set(self._fact_subjects[first:last]) - self._forgotten)

    # ------------------------------------------------------------------ what is still to be written
    def touch(self, track_id: int) -> None:
        """The track's row changed."""
        self._dirty_tracks.add(track_id)

    def refine_pose(self, track_id: int) -> None:
        """The open placement's estimate improved. The track row carries it; the fact row gets the
        final value when the placement closes (or the memory is closed)."""
        self._dirty_poses.add(track_id)
        self._dirty_tracks.add(track_id)

    def relations_changed(self, track_ids: Iterable[int]) -> None:
        """What holds these tracks (or what they hold) may have changed."""
        self._dirty_relations.update(track_ids)

    def take_relation_changes(self) -> set[int]:
        taken = set(self._dirty_relations)
        self._dirty_relations.clear()
        return taken

    def observation(self, t: float, robot: str, det: Detection, track_id: int) -> None:
        state = None if not det.state else json.dumps(det.state, sort_keys=True)
        row = (t, robot, det.label, *map(float, det.center), *map(float, det.size), det.confidence, state, track_id)
        self._pending.observations.extend(self.sightings.sighted(track_id, t, row))

    def view(self, t: float, robot: str, view: ViewCone) -> None:
        if self._view_persistence.keep(robot, t, view):
            self._pending.views.append((t, robot, *view.position, view.yaw_deg, view.fov_deg, view.range_m))

    def reject(self, t: float, reason: str, detail: str) -> None:
        """Count a refusal; its row (reason, detail) is stored unless this minute has had
        max_reject_rows_per_minute already (a flood of bad input must not fill the disk)."""
        self.counters[f"rejected.{reason}"] += 1
        start, rows = self._reject_minute
        wall = time.monotonic()
        if wall - start >= 60.0:
            start, rows = wall, 0
        if rows < self.config.max_reject_rows_per_minute:
            self._pending.rejects.append((t if math.isfinite(t) else 0.0, reason, detail[:500]))
            rows += 1
        else:
            self.counters["rejects_not_stored"] += 1
        self._reject_minute = (start, rows)

    def sweep(self, now: float, forgotten: dict[int, int]) -> None:
        """Retention: sightings older than the raw window leave RAM (held ones go to the store first);
        the timeline forgets the tracks memory forgot (``forgotten``: track id -> how many facts it had),
        their rows leave the store. The timeline is compacted once forgotten entries are half of it, so a
        sweep costs the same after a week as after an hour."""
        self._pending.observations.extend(self.sightings.sweep(now))
        for track_id in forgotten:
            self.sightings.forget(track_id)
            self._dirty_tracks.discard(track_id)
            self._dirty_poses.discard(track_id)
            self._dirty_relations.discard(track_id)
        if not forgotten:
            return
        self._pending.forgotten.extend(forgotten)
        self._forgotten.update(forgotten)
        self._forgotten_entries += sum(forgotten.values())
        if 2 * self._forgotten_entries >= len(self._fact_subjects):
            dead = self._forgotten
            keep = [k for k, subject in enumerate(self._fact_subjects) if subject not in dead]
            self._fact_times = [self._fact_times[k] for k in keep]
            self._fact_subjects = [self._fact_subjects[k] for k in keep]
            self._forgotten, self._forgotten_entries = set(), 0

    def episode(self, row: tuple) -> None:
        self._pending.episodes.append(row)

    def pending_sightings(self, track_ids: set[int], at: float) -> list[float]:
        """Times, at or before ``at``, of observations of these tracks not yet handed to the store."""
        pending = [row[0] for row in self._pending.observations if row[-1] in track_ids and row[0] <= at]
        return pending + self.sightings.sightings(track_ids, at)

    # ------------------------------------------------------------------ flushing
    def batch_taken(self) -> bool:
        """Count one ingested batch; whether it is time to flush (by batches or by wall time)."""
        self._batches_since_flush += 1
        return (self.config.durability == "batch" or self._batches_since_flush >= self.config.flush_every_batches
                or time.monotonic() - self._last_flush >= self.config.flush_interval_s)

    def flush(self, store: MemoryStore, tracks: dict[int, Track], meta: dict[str, str]) -> None:
        """Hand everything pending to the store as one transaction."""
        self.stm.consolidate()
        for track_id in self._dirty_tracks:
            self._pending.tracks[track_id] = tracks[track_id].to_row()
        self._dirty_tracks.clear()
        self._pending.meta.update(meta)
        self._pending.meta.update({
            "next_event_id": str(self._next_event_id),
            "event_ids_reserved": str(self._next_event_id + EVENT_ID_RESERVE),
            "counters": json.dumps({k: v for k, v in self.counters.items()
                                    if not k.startswith(_RESTORED_COUNTERS_SKIP)}, sort_keys=True),
        })
        store.write(self._pending)
        self._pending = WriteBatch()
        self._batches_since_flush = 0
        self._last_flush = time.monotonic()

    def write_open_placements(self, tracks: dict[int, Track]) -> None:
        """Give open placement facts their latest estimate, and hand over the sightings retention held
        back (before closing the memory)."""
        self._pending.observations.extend(self.sightings.take_all_held())
        for track_id in self._dirty_poses:
            fact = tracks[track_id].history(POSE).current
            if fact is not None:
                fact.value = pose_value(tracks[track_id])
                self._pending.facts[fact.fact_id] = fact
        self._dirty_poses.clear()

    def _consolidate(self, events: list[ChangeEvent]) -> None:
        self._pending.events.extend(events)

    # ------------------------------------------------------------------ reopening
    def restore(self, facts: list[Fact], events: list[ChangeEvent], now: float,
                meta: dict[str, str] | None = None) -> None:
        """Resume after the store's facts and events (the tracks' histories are filled by the caller);
        ``meta`` restores the counters and, after a crash, skips the event ids that may have been handed
        out uncommitted (reported in :attr:`restart_gap` and the ``restart.*`` counters)."""
        meta = meta or {}
        for fact in facts:
            self._fact_times.append(fact.valid_from)
            self._fact_subjects.append(fact.subject)
        self._fact_ids = FactIds(max((f.fact_id for f in facts), default=0) + 1)
        self._next_event_id = max((e.event_id for e in events), default=0) + 1
        self.now = now
        if "counters" in meta:
            self.counters.update(json.loads(meta["counters"]))
        if meta.get(CLEAN_CLOSE) == "0":  # the last session crashed: what it had not committed is lost
            resume = max(self._next_event_id, int(meta.get("event_ids_reserved", "0")))
            self.restart_gap = {"committed_until_t": now, "event_ids_skipped": [self._next_event_id, resume - 1]}
            self._next_event_id = resume
            self.counters["restart.unclean"] += 1
        self.counters["restart.count"] += 1
        for event in events[-self.stm.capacity:]:
            self.stm.add(event)
        self.stm.mark_consolidated()
