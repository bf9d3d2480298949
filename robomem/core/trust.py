"""Trust and quarantine (after A-MemGuard): memory hears many sources but believes only what is plausible
and comes from a source it trusts.

- A **source** is a robot id, or ``robot/sensor``; the allowlist (``source_allowlist``) refuses the rest.
- Each source has a **trust level** in [0, 1] (``source_trust``, else ``default_source_trust``); a source
  below ``trust_threshold`` is heard but not believed: every report of its batches is held here.
- **Implausible reports** of any source are held too: a burst of new objects in one batch, a piece of
  furniture that teleports, a box larger than its room, a move that other sources outvote (they saw the
  object in place just now).
- A held report never reaches a track, an index, a fact or the file; it is released (``confirmed``) when
  a trusted source reports the same label at the same place again, looking there (a frame with a view
  that holds the place), and expires after ``quarantine_ttl_s``. At most ``quarantine_capacity`` are
  held (the oldest go first).

:meth:`Quarantine.held` is what ``Memory.quarantined()`` answers; counters go to memory's counters
(``quarantine.<reason>``, ``quarantine.confirmed``, ``quarantine.expired``).
"""

from __future__ import annotations

import collections
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.types import Detection

UNTRUSTED = "untrusted_source"
BURST_SAME_LABEL = "burst_same_label"
BURST_NEW_OBJECTS = "burst_new_objects"
TELEPORT = "furniture_teleport"
LARGER_THAN_ROOM = "larger_than_room"
OUTVOTED = "outvoted"
#: reasons a later camera look of a trusted source settles: seen again, the report is believed; a teleport,
#: a box larger than its room or an outvoted move stays held whoever repeats it (it expires)
RELEASED_BY_A_LOOK = (UNTRUSTED, BURST_SAME_LABEL, BURST_NEW_OBJECTS)
CONFIRM_RADIUS_M = 0.15  # a report this close per axis (or within half the held box) is the same one


@dataclass(frozen=True)
class QuarantinedReport:
    """One report memory holds instead of believing it."""

    t: float
    source: str
    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    confidence: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_name(robot: str, sensor: str = "") -> str:
    """The source key of a batch: its robot id, or ``robot/sensor``."""
    return f"{robot}/{sensor}" if sensor else robot


@dataclass
class SourceStats:
    """What memory took from one source (accepted batches only)."""

    batches: int = 0
    last_t: float = float("-inf")
    last_sequence: int | None = None
    quarantined: int = 0


@dataclass(eq=False)
class Quarantine:
    """Trust levels, the allowlist, the plausibility checks, and the reports held."""

    config: MemoryConfig
    counters: Counter[str]
    sources: dict[str, SourceStats] = field(default_factory=dict)
    _held: collections.OrderedDict[int, QuarantinedReport] = field(
        default_factory=collections.OrderedDict, init=False, repr=False)
    _next_key: int = field(default=0, init=False, repr=False)
    _by_label: dict[str, set[int]] = field(default_factory=dict, init=False, repr=False)
    _seen_by: dict[int, dict[str, float]] = field(default_factory=dict, init=False, repr=False)

    # ------------------------------------------------------------------ sources
    def trust(self, robot: str, sensor: str = "") -> float:
        """The source's trust level: ``robot/sensor`` if configured, else ``robot``, else the default."""
        levels = self.config.source_trust
        for key in (source_name(robot, sensor), robot):
            if key in levels:
                return float(levels[key])
        return float(self.config.default_source_trust)

    def trusted(self, robot: str, sensor: str = "") -> bool:
        return self.trust(robot, sensor) >= self.config.trust_threshold

    def allowed(self, robot: str, sensor: str = "") -> bool:
        allow = self.config.source_allowlist
        return not allow or robot in allow or source_name(robot, sensor) in allow

    def room_for_source(self, source: str) -> bool:
        """Whether memory may take batches of one more source (known ones always)."""
        return source in self.sources or len(self.sources) < self.config.max_sources

    def batch_taken(self, source: str, t: float, sequence: int | None) -> None:
        stats = self.sources.get(source)
        if stats is None:
            stats = self.sources[source] = SourceStats()
        stats.batches += 1
        stats.last_t = max(stats.last_t, t)
        if sequence is not None:
            stats.last_sequence = sequence

    # ------------------------------------------------------------------ holding reports
    def hold(self, t: float, source: str, det: Detection, reason: str) -> None:
        """Keep ``det`` out of memory's beliefs, visible through :meth:`held`."""
        report = QuarantinedReport(t, source, det.label, tuple(float(v) for v in det.center),
                                   tuple(float(v) for v in det.size), float(det.confidence), reason)
        repeated = self._matching(det, source)
        if repeated is not None:  # the same report again: refreshed, not held twice
            self._remove(repeated)
            self.counters["quarantine.repeated"] += 1
        self._held[self._next_key] = report
        self._by_label.setdefault(normalize_label(report.label), set()).add(self._next_key)
        self._next_key += 1
        while len(self._held) > self.config.quarantine_capacity:
            self._remove(next(iter(self._held)))
            self.counters["quarantine.evicted"] += 1
        self.counters[f"quarantine.{reason}"] += 1
        self.counters["quarantine.held_total"] += 1
        if source in self.sources:
            self.sources[source].quarantined += 1

    def held(self) -> list[QuarantinedReport]:
        """The reports held now, oldest first."""
        return list(self._held.values())

    def _matching(self, det: Detection, source: str | None = None, reasons: tuple[str, ...] | None = None
                  ) -> int | None:
        """The key of a held report of the same label at the same place (from ``source``, for one of
        ``reasons``, if given)."""
        best: tuple[float, int] | None = None
        for held_key in self._by_label.get(normalize_label(det.label), ()):
            report = self._held[held_key]
            if (source is not None and report.source != source) or (reasons is not None and
                                                                     report.reason not in reasons):
                continue
            offset = np.abs(det.center - np.asarray(report.center))
            if np.all(offset <= np.maximum(np.asarray(report.size) / 2.0, CONFIRM_RADIUS_M)):
                distance = float(np.linalg.norm(offset))
                if best is None or distance < best[0]:
                    best = (distance, held_key)
        return None if best is None else best[1]

    def release(self, det: Detection, in_sight: bool) -> bool:
        """Whether a trusted source's new detection confirms a held report (same label, same place) in a
        camera look (``in_sight``: the batch has a view; a frame without one confirms nothing): the
        report leaves the quarantine and the detection is taken as any other."""
        if not self._held or not in_sight:
            return False
        held_key = self._matching(det, reasons=RELEASED_BY_A_LOOK)
        if held_key is None:
            return False
        self._remove(held_key)
        self.counters["quarantine.confirmed"] += 1
        return True

    def confirm(self, detections: list[Detection]) -> None:
        """A trusted source's detections, taken by memory, release the held reports they confirm."""
        if not self._held:
            return
        for det in detections:
            held_key = self._matching(det)
            if held_key is not None:
                self._remove(held_key)
                self.counters["quarantine.confirmed"] += 1

    def _remove(self, held_key: int) -> None:
        report = self._held.pop(held_key)
        keys = self._by_label.get(normalize_label(report.label))
        if keys is not None:
            keys.discard(held_key)
            if not keys:
                del self._by_label[normalize_label(report.label)]

    def expire(self, now: float) -> None:
        """Held reports older than the quarantine's time to live leave it; sightings older than the
        outvoting window are forgotten."""
        ttl = self.config.quarantine_ttl_s
        while self._held:
            key, report = next(iter(self._held.items()))
            if report.t >= now - ttl:
                break
            self._remove(key)
            self.counters["quarantine.expired"] += 1
        horizon = now - self.config.outvote_window_s
        for track_id in [i for i, seen in self._seen_by.items() if max(seen.values()) < horizon]:
            del self._seen_by[track_id]

    # ------------------------------------------------------------------ outvoting
    def seen(self, track_id: int, source: str, t: float) -> None:
        """A source saw the track in place at ``t``."""
        seen = self._seen_by.setdefault(track_id, {})
        seen[source] = t
        if len(seen) > 8:  # a few recent sources are enough to outvote one
            del seen[min(seen, key=seen.__getitem__)]

    def outvoted(self, track_id: int, source: str, t: float) -> bool:
        """Whether enough other sources saw the track in place recently to outvote ``source`` moving it."""
        seen = self._seen_by.get(track_id, {})
        horizon = t - self.config.outvote_window_s
        others = sum(1 for other, when in seen.items() if other != source and when >= horizon)
        return others >= self.config.outvote_sources

    def forget_track(self, track_id: int) -> None:
        self._seen_by.pop(track_id, None)
