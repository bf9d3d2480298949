"""Negative evidence: an object memory expects in a view (inside the cone, not hidden in a closed
receptacle) that was not detected counts against its presence, weighted by how likely the detector
was to see it there. A tentative track this doubtful is dismissed; a believed one is gone once its
misses outweigh the prior that it is still there. The same view log says whether a newcomer
*appeared* (earlier looks would have seen it) or was merely discovered.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from robomem.core.association import track_open
from robomem.core.config import MemoryConfig
from robomem.core.detector import DetectorModel
from robomem.core.geometry import in_view
from robomem.core.holding import held_by
from robomem.core.lifecycle import Lifecycle
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, GONE, PARENT, REJECTED, TENTATIVE, Track, holders
from robomem.core.types import ViewCone
from robomem.core.views import ViewLog


@dataclass(eq=False)
class NegativeEvidence:
    """Misses of expected objects, and the detector model they calibrate."""

    config: MemoryConfig
    tracks: TrackStore
    lifecycle: Lifecycle
    views: ViewLog
    detector: DetectorModel
    counters: Counter[str]

    def apply(self, t: float, view: ViewCone, seen: set[int], around: tuple[np.ndarray, np.ndarray],
              exempt: set[int] | frozenset[int] = frozenset()) -> list[Track]:
        """Count a miss for every track memory expected in this view (``around``: indexed ids and
        positions near the camera) that was not ``seen``; returns the missed tracks. ``exempt``: tracks
        this view says nothing about (memory has newer evidence of them than this late view)."""
        camera = np.asarray(view.position)
        ids, points = around
        if not len(ids):
            return []
        expected = [self.tracks[i] for i in ids[in_view(points, view)].tolist()]  # indexed positions: a few cm off
        expected = [track for track in expected if track.is_live and held_by(track) is None and not self.hidden(track)
                    and track.track_id not in exempt]
        if not expected:
            return []
        centers = np.array([track.center for track in expected])
        shapes = self.detector.shapes(
            np.linalg.norm(centers - camera, axis=1) / view.range_m, np.array([track.size for track in expected])
        )
        detected = np.array([track.track_id in seen for track in expected])
        confirmed = np.array([track.status == CONFIRMED for track in expected])
        self.detector.record(shapes[confirmed], detected[confirmed])  # calibrate on believed objects only
        missed = []
        p_max = self.detector.p_max
        for k in np.flatnonzero(~detected):
            self._miss(expected[k], t, p_max * float(shapes[k]))
            missed.append(expected[k])
        return missed

    def _miss(self, track: Track, t: float, p_detect: float) -> None:
        cfg = self.config
        # a miss is log(1 - p_detect) of evidence: strong for a big near object, weak for a far tiny one
        surprise = -math.log(max(1.0 - p_detect, 0.05))
        track.log_odds = max(cfg.log_odds_min, track.log_odds - cfg.miss_weight * surprise)
        track.miss_evidence += surprise
        track.misses_since_hit += 1
        track.last_miss = t
        if track.ever_confirmed:
            self.tracks.mark_missing(track, True)
        self.counters["misses"] += 1
        self.lifecycle.touch(track)
        if track.status == TENTATIVE and track.log_odds <= cfg.gone_log_odds:
            self.dismiss(track, t)
        elif track.status == CONFIRMED and track.miss_evidence >= cfg.gone_threshold(t - track.last_seen) * (
            cfg.static_gone_factor if cfg.is_static(track.label) else 1.0
        ):
            # misses a present object would rarely produce, weighed against how likely it is that
            # something changed since it was last seen: it is gone
            self.lifecycle.set_status(track, GONE, t)
            self.lifecycle.emit(t, track, "disappeared", {})

    def dismiss(self, track: Track, t: float, reason: str = "rejected_tracks") -> None:
        """A tentative track is a false detection: out of the indexes of present things (a later detection
        there revives it), forgotten altogether ``rejected_forget_s`` later (see TrackStore.forgettable)."""
        self.lifecycle.set_status(track, REJECTED, t)
        self.lifecycle.drop(track, keep_position=True)
        self.tracks.dismissed(track, t)
        self.counters[reason] += 1

    def hidden(self, track: Track) -> bool:
        """Inside a receptacle that is closed, or openable with its state unknown (at any depth)."""
        if PARENT not in track.histories:
            return False
        return any(
            relation == "in" and self.config.is_openable(holder.label) and track_open(holder) is not True
            for holder, relation in holders(track, self.tracks.tracks)
        )

    def appeared(self, track: Track) -> bool:
        """Whether a newly confirmed object is new where earlier views would almost surely have shown it
        (not furniture, not inside an openable container, which may have been closed then): a change in
        the world, not just a discovery."""
        if self.config.is_static(track.label):
            return False
        parent = track.history(PARENT).value_now()
        holder = self.tracks.get(parent[0]) if parent else None
        if holder is not None and parent[1] == "in" and self.config.is_openable(holder.label):
            return False
        evidence = self.views.miss_evidence_before(
            track.center, track.first_seen, lambda fractions: self.detector.probabilities(fractions, track.size)
        )
        return evidence >= self.config.appeared_min_evidence
