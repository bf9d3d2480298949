"""Moved or new: an unmatched detection is the same object moved when a same-label object is
missing from its place; a newcomer seen elsewhere merges into a move once the old place is seen empty.
Two of a label present at once are two objects. Furniture never moves.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from robomem.core.association import track_open
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.geometry import distance
from robomem.core.lifecycle import Lifecycle
from robomem.core.relations import Relations
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, GONE, MERGED, Track, holders
from robomem.core.types import Detection


@dataclass(eq=False)
class Moves:
    """Tells a moved object from a new one."""

    config: MemoryConfig
    tracks: TrackStore
    lifecycle: Lifecycle
    counters: Counter[str]
    relations: Relations

    def moved_track(self, det: Detection, seen: set[int]) -> Track | None:
        """The track an unmatched detection is, moved: a same-label object missing from its place
        (gone first, then the most missed, then the closest); None if it is new. A sighting too weak to
        be believed on its own (below ``confirm_single_confidence``) moves nothing into a closed (or
        never seen open) container: a false detection there would carry the belief to a place that no
        later look can refute. It starts a tentative newcomer instead."""
        cfg = self.config
        if cfg.is_static(det.label) or det.confidence < cfg.relocate_min_confidence:
            return None
        key = normalize_label(det.label)
        options = [
            self.tracks[i] for i in self.tracks.missing_by_label[key]
            if i not in seen and self.tracks[i].status in (CONFIRMED, GONE) and self._missing(self.tracks[i])
        ]
        if not options or (cfg.single_needs_support and not self.relations.box_supported(det.center, det.size)):
            return None  # nothing missing, or a box floating in the air: more likely a false detection
        if det.confidence < cfg.confirm_single_confidence and not self._checkable(
                self.relations.best_parent(_probe(det.center, det.size))):
            return None  # a weak sighting where no later look can refute it (in a closed fridge)
        return max(
            options,
            key=lambda tr: (tr.status == GONE, tr.misses_since_hit, -distance(tr.center, det.center)),
        )

    def merge_newcomer(self, track: Track, t: float) -> None:
        """``track`` was just missed: if a same-label object appeared elsewhere since, that is it, moved."""
        key = normalize_label(track.label)
        if self.tracks.newest_first_seen.get(key, -math.inf) <= track.last_seen:
            return  # nothing of this label was first seen after this object's last sighting
        if self.config.is_static(track.label) or not self._missing(track):
            return
        cfg = self.config
        newcomers = [  # a weak newcomer only where a later look can refute it
            other for other in self.tracks.of_label(track.label)
            if other.track_id != track.track_id
            and other.is_live
            and other.first_seen > track.last_seen
            and other.max_confidence >= cfg.relocate_min_confidence
            and (other.status == CONFIRMED or not cfg.single_needs_support or self.relations.supported(other))
            and (other.status == CONFIRMED or other.max_confidence >= cfg.confirm_single_confidence
                 or self._checkable(self.relations.best_parent(other)))  # (its holder may not be derived yet)
        ]
        if not newcomers:
            return
        life = self.lifecycle
        newcomer = max(newcomers, key=lambda n: (n.status == CONFIRMED, n.hits, n.last_seen))
        was_gone = track.status == GONE
        life.place(track, newcomer.center, newcomer.size, t)
        track.hits += newcomer.hits
        track.last_seen = max(track.last_seen, newcomer.last_seen)
        track.log_odds = max(track.log_odds, newcomer.log_odds)
        track.misses_since_hit = newcomer.misses_since_hit
        track.miss_evidence = newcomer.miss_evidence
        track.max_confidence = max(track.max_confidence, newcomer.max_confidence)
        for state_key in newcomer.state_keys():
            value = newcomer.history(f"state:{state_key}").value_now()
            if value is not None:
                life.observe_states(track, {state_key: value}, t)
        life.set_status(track, CONFIRMED, t)
        self.tracks.note_latest(track)
        newcomer.merged_into = track.track_id
        life.set_status(newcomer, MERGED, t)
        life.drop(newcomer)
        self.tracks.aliases[track.track_id].append(newcomer.track_id)
        life.emit(t, track, "moved", {"merged": newcomer.track_id, "was_gone": was_gone})
        life.reindex(track)
        self.counters["merges"] += 1

    def _checkable(self, parent: list | None) -> bool:
        """Whether something held by ``parent`` ([id, relation]) is in view when its place is: not in an
        openable container that is closed or whose state is unknown, at any depth."""
        if not parent or parent[0] not in self.tracks:
            return True
        holder = self.tracks[parent[0]]
        chain = [(holder, parent[1]), *holders(holder, self.tracks.tracks)]
        return not any(relation == "in" and self.config.is_openable(h.label) and track_open(h) is not True
                       for h, relation in chain)

    def _missing(self, track: Track) -> bool:
        """Looked for where memory had it and not found (strongly enough to accept a move)."""
        if track.status == GONE:
            return True
        if track.status != CONFIRMED or track.misses_since_hit == 0:
            return False
        return track.misses_since_hit >= 2 or not self._has_co_present_instance(track)

    def _has_co_present_instance(self, track: Track) -> bool:
        """Whether another believed instance of the label was known while this one was last seen."""
        return any(
            other.track_id != track.track_id
            and other.ever_confirmed
            and other.first_seen <= track.last_seen
            and other.status != GONE
            for other in self.tracks.of_label(track.label)
        )


def _probe(center: np.ndarray, size: np.ndarray) -> Track:
    """A track-shaped box for asking what would hold a detection."""
    return Track(track_id=-1, label="", first_seen=0.0, last_seen=0.0, center=center, size=size)
