"""Track lifecycle: the few changes every ingest step makes to a track, each recorded as facts in
the journal and mirrored in the track store's indexes: creation, status (tentative → confirmed →
gone, rejected, merged), placement (a new box), states (open, on, ...), change events.

Ingest steps (update, negative evidence, moved-vs-new, relations) change tracks only through here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robomem.core import states
from robomem.core.config import MemoryConfig
from robomem.core.journal import Journal, pose_value
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, POSE, STATUS, TENTATIVE, Track
from robomem.core.types import Detection


@dataclass(eq=False)
class Lifecycle:
    """Creates tracks and changes their status, placement and states, as facts."""

    config: MemoryConfig
    tracks: TrackStore
    journal: Journal
    counters: Counter[str]
    # confirmed this frame: did they appear, or were they found?
    _appear_checks: list[Track] = field(default_factory=list, init=False, repr=False)
    _single_checks: list[Track] = field(default_factory=list, init=False, repr=False)

    def create(self, det: Detection, t: float, robot: str) -> Track:
        """A new track for a detection no track explains."""
        cfg = self.config
        track = Track(
            track_id=self.tracks.next_id(),
            label=det.label,
            first_seen=t,
            last_seen=t,
            center=det.center.copy(),
            size=det.size.copy(),
            log_odds=cfg.hit_base + cfg.hit_confidence_gain * det.confidence,
            max_confidence=det.confidence,
            robot=robot,
            embedding=det.embedding,
        )
        self.tracks.add(track)
        self.tracks.include(track)
        self.place(track, track.center, track.size, t)
        self.set_status(track, TENTATIVE, t)
        self.observe_states(track, det.state, t)
        if det.embedding is not None:
            self.tracks.index_vector(track)
        self.counters["tracks_created"] += 1
        self.maybe_confirm(track, t)
        self.reindex(track)
        return track

    def place(self, track: Track, center: np.ndarray, size: np.ndarray, t: float) -> None:
        """A new placement: the open one is closed with its final estimate, a new one starts here."""
        current = track.history(POSE).current
        if current is not None:
            current.value = pose_value(track)  # the final estimate of the placement being closed
        track.center = np.array(center, dtype=float)
        track.size = np.array(size, dtype=float)
        track.placement_hits = 1
        self.journal.record_fact(track, POSE, pose_value(track), t)
        self.journal.relations_changed((track.track_id,))

    def set_status(self, track: Track, status: str, t: float) -> None:
        if track.status == status and len(track.history(STATUS)):
            return
        track.status = status
        track.ever_confirmed = track.ever_confirmed or status == CONFIRMED
        self.tracks.note_status(track)
        if status == CONFIRMED:
            self.tracks.note_latest(track)
        else:
            self.tracks.forget_latest(track)
        self.journal.record_fact(track, STATUS, status, t)
        self.journal.relations_changed((track.track_id,))

    def observe_states(self, track: Track, observed: dict[str, Any], t: float) -> None:
        """Record the states that differ from the current ones; a confirmed track's change is an event."""
        cfg = self.config
        for raw_key, value in observed.items():
            key = states.canonical_key(raw_key)
            history = track.history(f"state:{key}")
            previous = history.value_now()
            if not states.differs(previous, value, cfg.numeric_state_tolerance):
                continue
            self.journal.record_fact(track, f"state:{key}", value, t)
            if not track.ever_confirmed:
                continue
            change = states.change_kind(key, previous, value, cfg.numeric_state_tolerance, cfg.fraction_change)
            if change is not None:
                self.emit(t, track, change, {"key": key, "from": previous, "to": value})

    def maybe_confirm(self, track: Track, t: float) -> None:
        """Believe a track after repeated sightings, or after one confident enough detection of a thing
        that rests on something (decided after this frame's relations: see :meth:`take_single_checks`)."""
        cfg = self.config
        if track.status != TENTATIVE:
            return
        repeated = track.log_odds >= cfg.confirm_log_odds and track.hits >= cfg.confirm_min_hits
        if not repeated:
            if track.max_confidence < cfg.confirm_single_confidence:
                return
            if cfg.single_needs_support:  # a thing floating in the air is more likely a false detection
                self._single_checks.append(track)
                return
        self.confirm(track, t)

    def take_single_checks(self) -> list[Track]:
        """Single confident sightings of this frame, to believe once they are known to rest on something."""
        taken, self._single_checks = self._single_checks, []
        return taken

    def confirm(self, track: Track, t: float) -> None:
        self.set_status(track, CONFIRMED, t)
        self._appear_checks.append(track)  # decided once this frame's containment is known

    def take_confirmed(self) -> list[Track]:
        """Tracks confirmed since the last call (whether each appeared is decided after relations)."""
        taken, self._appear_checks = self._appear_checks, []
        return taken

    def emit(self, t: float, track: Track, change: str, detail: dict[str, Any]) -> None:
        self.journal.emit(t, track, change, detail)

    def touch(self, track: Track) -> None:
        """The track's row changed, not its place in any index."""
        self.journal.touch(track.track_id)

    def reindex(self, track: Track) -> None:
        """The track's row changed: keep the indexes in step."""
        self.journal.touch(track.track_id)
        self.tracks.reindex(track)

    def drop(self, track: Track, keep_position: bool = False) -> None:
        """The track is no longer present: out of the indexes of present things."""
        self.tracks.drop(track, keep_position)
        self.journal.relations_changed((track.track_id,))
