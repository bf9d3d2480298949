"""Update: what a detection matched to a track does to it. A match in place refines the running
mean of its box; one farther than the move threshold starts a new placement (a move); furniture seen
in part grows its box, and opened or closed furniture takes the detected box and carries its contents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from robomem.core.association import ARTICULATED, PARTIAL, PositionNoise, overlap_fraction
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.geometry import distance
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.scene_graph import SceneGraph
from robomem.core.track_store import INDEX_SLACK_M, TrackStore
from robomem.core.tracks import CONFIRMED, GONE, MERGED, PARENT, REJECTED, TENTATIVE, Track
from robomem.core.types import Detection


@dataclass(eq=False)
class Updater:
    """Applies matched detections to their tracks."""

    config: MemoryConfig
    tracks: TrackStore
    lifecycle: Lifecycle
    journal: Journal
    graph: SceneGraph
    noise: PositionNoise
    counters: Counter[str]

    def matched(self, pairs: list[tuple[Detection, Track]], t: float, robot: str) -> None:
        """Ordinary matches of one frame: the running means of all matched tracks in one vectorised step."""
        if not pairs:
            return
        det_c, det_s = np.array([d.center for d, _ in pairs]), np.array([d.size for d, _ in pairs])
        trk_c, trk_s = np.array([tr.center for _, tr in pairs]), np.array([tr.size for _, tr in pairs])
        weights = 1.0 / np.minimum(np.array([tr.placement_hits for _, tr in pairs]) + 1.0, 20.0)[:, None]
        moved_by = np.linalg.norm(det_c - trk_c, axis=1)
        new_c, new_s = trk_c + weights * (det_c - trk_c), trk_s + weights * (det_s - trk_s)
        for k, (det, track) in enumerate(pairs):
            self.hit(track, det, t, robot, refined=(float(moved_by[k]), new_c[k], new_s[k]))

    def furniture(self, track: Track, det: Detection, t: float, robot: str, kind: str) -> None:
        """A partial view grows the track's box to hold both boxes; an opened or closed piece of furniture
        takes the detected box (a drawer's contents slide with it). Neither is a move."""
        old_center = track.center.copy()
        if kind == PARTIAL:
            center, size = union_box(track.center, track.size, det.center, det.size)
        else:
            center, size = det.center.copy(), det.size.copy()
        self.hit(track, det, t, robot, refined=(0.0, center, size), learn_noise=False)
        self.journal.relations_changed((track.track_id,))
        if kind == PARTIAL:
            self._absorb_duplicates(track, t)
        if kind == ARTICULATED and _slid(track.size, det.size, self.config.size_gate_ratio):
            self._carry_contents(track, center - old_center, t)

    def hit(
        self,
        track: Track,
        det: Detection,
        t: float,
        robot: str,
        refined: tuple[float, np.ndarray, np.ndarray] | None = None,
        learn_noise: bool = True,
    ) -> None:
        """A detection of ``track``: matched in place, with ``refined`` = (displacement, new mean center,
        new mean size) computed for the whole frame at once; or, without it, found after a move.
        ``learn_noise`` False: the detection's offset says nothing about position noise."""
        cfg = self.config
        life = self.lifecycle
        relocate = refined is None
        displacement = distance(det.center, track.center) if relocate else refined[0]
        threshold = cfg.static_move_threshold_m if cfg.is_static(track.label) else cfg.move_threshold_m
        was_gone = track.status == GONE
        if track.status == REJECTED:  # dismissed too early: seen again where it was
            track.log_odds = max(track.log_odds, 0.0)
            life.set_status(track, TENTATIVE, t)
            self.tracks.include(track)
            self.counters["revived_tracks"] += 1
        if relocate or displacement > threshold:
            life.place(track, det.center, det.size, t)
            if track.ever_confirmed:
                life.emit(t, track, "moved", {"distance_m": round(displacement, 3)})
        else:
            if learn_noise and track.placement_hits >= 3:  # a settled estimate: learn how noisy detected positions are
                self.noise.learn(det.center - track.center)
            track.center, track.size = refined[1].copy(), refined[2].copy()
            track.placement_hits += 1
            self.journal.refine_pose(track.track_id)
        track.hits += 1
        track.last_seen = t
        track.robot = robot or track.robot
        track.misses_since_hit = 0
        track.miss_evidence = 0.0
        if track.status != GONE:
            self.tracks.mark_missing(track, False)
        track.max_confidence = max(track.max_confidence, det.confidence)
        track.log_odds = min(cfg.log_odds_max, track.log_odds + cfg.hit_base + cfg.hit_confidence_gain * det.confidence)
        if det.embedding is not None:
            track.embedding = det.embedding if track.embedding is None else _unit(track.embedding + det.embedding)
            self.tracks.index_vector(track)
        life.observe_states(track, det.state, t)
        if was_gone:
            life.set_status(track, CONFIRMED, t)
            if not relocate:
                life.emit(t, track, "appeared", {"reappeared": True})
        else:
            life.maybe_confirm(track, t)
        self.tracks.note_latest(track)
        life.reindex(track)

    def _absorb_duplicates(self, track: Track, t: float) -> None:
        """Other live tracks of the label whose boxes now mostly overlap the grown box were parts of it."""
        cfg = self.config
        key = normalize_label(track.label)
        reach = float(np.linalg.norm(track.size)) / 2.0 + self.tracks.static_reach + INDEX_SLACK_M
        for other_id in self.tracks.label_points[key].query_radius(track.center, reach):
            other = self.tracks[other_id]
            if other_id == track.track_id or not other.is_live:
                continue
            overlap = overlap_fraction(track.center, track.size, other.center, other.size, cfg.partial_tolerance_m)
            if overlap < cfg.partial_overlap_min:
                continue
            track.center, track.size = union_box(track.center, track.size, other.center, other.size)
            track.hits += other.hits
            track.log_odds = max(track.log_odds, other.log_odds)
            track.max_confidence = max(track.max_confidence, other.max_confidence)
            self.journal.relations_changed(self.graph.descendants(other_id) if other_id in self.graph.graph else ())
            other.merged_into = track.track_id
            self.lifecycle.set_status(other, MERGED, t)
            self.lifecycle.drop(other)
            self.tracks.aliases[track.track_id].append(other_id)
            self.counters["furniture_merges"] += 1
        self.journal.refine_pose(track.track_id)
        self.lifecycle.reindex(track)

    def _carry_contents(self, holder: Track, shift: np.ndarray, t: float) -> None:
        """Objects memory has *in* ``holder`` move with it (a drawer slid open or shut)."""
        if holder.track_id not in self.graph.graph:
            return
        for child_id in list(self.graph.descendants(holder.track_id)):
            child = self.tracks[child_id]
            parent = child.history(PARENT).value_now()
            if not child.is_live or not parent or parent[0] != holder.track_id or parent[1] != "in":
                continue
            self.lifecycle.place(child, child.center + shift, child.size, t)
            self.lifecycle.reindex(child)
            self.counters["carried"] += 1


def union_box(
    center_a: np.ndarray, size_a: np.ndarray, center_b: np.ndarray, size_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Center and size of the smallest axis-aligned box holding both boxes."""
    lo = np.minimum(center_a - size_a / 2.0, center_b - size_b / 2.0)
    hi = np.maximum(center_a + size_a / 2.0, center_b + size_b / 2.0)
    return (lo + hi) / 2.0, hi - lo


def _slid(before: np.ndarray, after: np.ndarray, ratio: float) -> bool:
    """Whether a box kept its shape (a drawer slid) rather than changed it (a door swung open)."""
    floor = 0.05
    return bool(np.all(np.abs(np.log(np.maximum(after, floor) / np.maximum(before, floor))) <= np.log(ratio)))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
