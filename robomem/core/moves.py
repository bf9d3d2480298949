"""Moved or new: an unmatched detection is the same object moved when a same-label object is
missing from its place; a newcomer seen elsewhere merges into a move once the old place is seen empty."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from robomem.core.config import normalize_label
from robomem.core.geometry import distance
from robomem.core.tracks import CONFIRMED, GONE, MERGED, Track
from robomem.core.types import Detection

if TYPE_CHECKING:
    from robomem.core.memory import Memory


class MovesMixin:
    """Relocation and merging of :class:`robomem.core.memory.Memory` tracks."""

    def _has_co_present_instance(self: Memory, track: Track) -> bool:
        """Whether another believed instance of the label was known while this one was last seen."""
        return any(
            True
            for other_id in self.by_label[normalize_label(track.label)]
            if other_id != track.track_id
            and self.tracks[other_id].ever_confirmed
            and self.tracks[other_id].first_seen <= track.last_seen
            and self.tracks[other_id].status != GONE
        )

    def _missing(self: Memory, track: Track) -> bool:
        """Looked for where memory had it and not found (strongly enough to accept a move)."""
        if track.status == GONE:
            return True
        if track.status != CONFIRMED or track.misses_since_hit == 0:
            return False
        return track.misses_since_hit >= 2 or not self._has_co_present_instance(track)

    def _find_moved_track(self: Memory, det: Detection, seen: set[int]) -> Track | None:
        """An unmatched detection is a moved object when a same-label object is missing from its place."""
        cfg = self.config
        if cfg.is_static(det.label) or det.confidence < cfg.relocate_min_confidence:
            return None
        key = normalize_label(det.label)
        options = [
            self.tracks[i] for i in self._missing_by_label[key]
            if i not in seen and self.tracks[i].status in (CONFIRMED, GONE) and self._missing(self.tracks[i])
        ]
        if not options:
            return None
        return max(
            options,
            key=lambda tr: (tr.status == GONE, tr.misses_since_hit, -distance(tr.center, det.center)),
        )

    def _merge_newcomer(self: Memory, track: Track, t: float) -> None:
        """``track`` was just missed: if a same-label object appeared elsewhere since, that is it, moved."""
        key = normalize_label(track.label)
        if self._newest_first_seen.get(key, -math.inf) <= track.last_seen:
            return  # nothing of this label was first seen after this object's last sighting
        if self.config.is_static(track.label) or not self._missing(track):
            return
        newcomers = [
            self.tracks[i]
            for i in self.by_label[key]
            if i != track.track_id
            and self.tracks[i].is_live
            and self.tracks[i].first_seen > track.last_seen
            and self.tracks[i].max_confidence >= self.config.relocate_min_confidence
        ]
        if not newcomers:
            return
        newcomer = max(newcomers, key=lambda n: (n.status == CONFIRMED, n.hits, n.last_seen))
        was_gone = track.status == GONE
        self._new_placement(track, newcomer.center, newcomer.size, t)
        track.hits += newcomer.hits
        track.last_seen = max(track.last_seen, newcomer.last_seen)
        track.log_odds = max(track.log_odds, newcomer.log_odds)
        track.misses_since_hit = newcomer.misses_since_hit
        track.miss_evidence = newcomer.miss_evidence
        track.max_confidence = max(track.max_confidence, newcomer.max_confidence)
        for state_key in newcomer.state_keys():
            value = newcomer.history(f"state:{state_key}").value_now()
            if value is not None:
                self._observe_states(track, {state_key: value}, t)
        self._set_status(track, CONFIRMED, t)
        self._note_latest(track)
        newcomer.merged_into = track.track_id
        self._set_status(newcomer, MERGED, t)
        self._drop_from_indexes(newcomer)
        self._aliases[track.track_id].append(newcomer.track_id)
        self._emit(t, track, "moved", {"merged": newcomer.track_id, "was_gone": was_gone})
        self._reindex(track)
        self.counters["merges"] += 1
