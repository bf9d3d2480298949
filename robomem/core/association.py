"""Data association: detections of one frame to tracked objects, by label/embedding and 3D distance.

Pairs are gated by a box around each track (it grows with object size; margins per class) and
solved jointly with scipy's
Hungarian solver, so two nearby mugs never both claim the same track.

Furniture gets two more ways to match (at a higher cost than an ordinary match): a *partial* view,
whose box and the track's box mostly overlap (a camera sees only part of a bed or a counter, so
centers and sizes differ a lot), and an *articulated* one: an openable piece of furniture whose
detected open/closed state differs from the track's, displaced along its slide or swing (an open
drawer sits half a metre out of its closed box).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from robomem.core import states
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.tracks import GONE, REJECTED, TENTATIVE, Track
from robomem.core.types import Detection

_INFEASIBLE = 1e6
_STATUS_PENALTY = {GONE: 0.35, REJECTED: 0.35, TENTATIVE: 0.1}
_SYNONYM_PENALTY = 0.5
_PARTIAL_COST = 1.6  # above any ordinary match (at most ~1.5)
_ARTICULATED_COST = 3.0
PARTIAL, ARTICULATED = "partial", "articulated"


def overlap_fraction(
    centers_a: np.ndarray, sizes_a: np.ndarray, centers_b: np.ndarray, sizes_b: np.ndarray, tolerance: float
) -> np.ndarray:
    """Per pair of boxes (rows), how much they overlap relative to the smaller: the product over axes of
    (overlap + tolerance) / (smaller side + tolerance), clipped to [0, 1]. A face seen edge-on (zero
    thickness) lying within the other box counts as fully inside along that axis."""
    lo = np.maximum(centers_a - sizes_a / 2.0, centers_b - sizes_b / 2.0)
    hi = np.minimum(centers_a + sizes_a / 2.0, centers_b + sizes_b / 2.0)
    smaller = np.minimum(sizes_a, sizes_b)
    return np.prod(np.clip((hi - lo + tolerance) / (smaller + tolerance), 0.0, 1.0), axis=-1)


def boxes_intersect(
    centers_a: np.ndarray, sizes_a: np.ndarray, centers_b: np.ndarray, sizes_b: np.ndarray
) -> np.ndarray:
    """Per pair of boxes (rows), whether they share a volume: overlapping along every axis (boxes that
    only touch do not; a face seen edge-on, of zero thickness, may lie within the other box)."""
    lo = np.maximum(centers_a - sizes_a / 2.0, centers_b - sizes_b / 2.0)
    hi = np.minimum(centers_a + sizes_a / 2.0, centers_b + sizes_b / 2.0)
    flat = np.minimum(sizes_a, sizes_b) <= 0.0
    return np.all((hi - lo > 0.0) | (flat & (hi - lo >= 0.0)), axis=-1)


class PositionNoise:
    """Per-axis noise of detected centers: a configured prior, then learned online from the offsets
    of detections of settled tracks (an exponential average over roughly the last hundred)."""

    LEARNING_RATE = 0.01

    def __init__(self, config: MemoryConfig, variance: np.ndarray | None = None) -> None:
        self.variance = np.full(3, config.position_noise_m**2) if variance is None else np.asarray(variance, float)
        self._sigmas = config.gate_sigmas

    def learn(self, residual: np.ndarray) -> None:
        self.variance += self.LEARNING_RATE * (residual * residual - self.variance)

    def margin(self) -> np.ndarray:
        """Per-axis gate margin: gate_sigmas standard deviations of the noise measured so far."""
        return self._sigmas * np.sqrt(self.variance)


def gate_margins(labels: Sequence[str], config: MemoryConfig, noise_margin: np.ndarray | None) -> np.ndarray:
    """Per label and axis (N, 3), the margin a gate adds to a box: the class margin (class_gates, else
    gate_m), never tighter than the measured position noise allows."""
    margins = np.array([config.class_gates.get(normalize_label(label), config.gate_m) for label in labels])[:, None]
    if noise_margin is None:
        return np.broadcast_to(margins, (len(labels), 3))
    return np.maximum(margins, noise_margin[None, :])


def gate_half_widths(half_sizes: np.ndarray, margins: np.ndarray, config: MemoryConfig) -> np.ndarray:
    """Per-axis half-widths of the association gate around a box of these half-sizes: the box grown by
    gate_size_fraction plus the margin, at most max_gate_m (see MemoryConfig)."""
    return np.minimum(half_sizes * (1.0 + config.gate_size_fraction) + margins, config.max_gate_m)


def track_open(track: Track) -> bool | None:
    """The track's current open/closed state (None when never observed)."""
    return states.is_open({k: track.history(f"state:{k}").value_now() for k in states.OPEN_KEYS})


def _furniture_costs(
    detections: Sequence[Detection], tracks: list[Track], r: np.ndarray, c: np.ndarray,
    same: np.ndarray, config: MemoryConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Costs of partial-view and articulated pairs among same-label candidate pairs (inf: not one)."""
    partial = np.full(len(r), np.inf)
    articulated = np.full(len(r), np.inf)
    static = np.array([config.is_static(t.label) for t in tracks])
    rows = np.flatnonzero(same & static[c])
    if not len(rows):
        return partial, articulated
    det_c = np.array([detections[k].center for k in r[rows]])
    det_s = np.array([detections[k].size for k in r[rows]])
    trk_c = np.array([tracks[k].center for k in c[rows]])
    trk_s = np.array([tracks[k].size for k in c[rows]])
    overlap = overlap_fraction(det_c, det_s, trk_c, trk_s, config.partial_tolerance_m)
    ok = overlap >= config.partial_overlap_min
    partial[rows[ok]] = _PARTIAL_COST + (1.0 - overlap[ok])
    # opened or closed, furniture keeps overlapping its former box: a door swings about its body, a
    # drawer slides out by less than its depth (a neighbouring cabinet in the other state is another one)
    overlapping = boxes_intersect(det_c, det_s, trk_c, trk_s)
    for k, row in enumerate(rows):
        track = tracks[c[row]]
        if not config.is_openable(track.label) or not overlapping[k]:
            continue
        det_open = states.is_open(detections[r[row]].state)
        if det_open is None or det_open == track_open(track) or (det_open is False and track_open(track) is None):
            continue
        reach = config.articulation_reach * max(float(np.max(trk_s[k, :2])), float(np.max(det_s[k, :2])))
        shift = float(np.hypot(*(det_c[k, :2] - trk_c[k, :2])))
        z_gate = max(float(max(trk_s[k, 2], det_s[k, 2])) / 2.0, config.gate_m)
        if shift <= reach + config.gate_m and abs(float(det_c[k, 2] - trk_c[k, 2])) <= z_gate:
            articulated[row] = _ARTICULATED_COST + shift / (reach + config.gate_m)
    return partial, articulated


def label_compatibility(det: Detection, track: Track, config: MemoryConfig) -> float | None:
    """Extra cost for pairing this label with this track, or None when they cannot be one object."""
    same_label = normalize_label(det.label) == normalize_label(track.label)
    if det.embedding is not None and track.embedding is not None and det.embedding.shape == track.embedding.shape:
        cosine = float(det.embedding @ track.embedding)
        if same_label:
            return 0.5 * max(0.0, 1.0 - cosine)
        if cosine >= config.embedding_match_min:
            return _SYNONYM_PENALTY + (1.0 - cosine)
        return None
    return 0.0 if same_label else None


def associate(
    detections: Sequence[Detection],
    candidates: Sequence[Sequence[Track]],
    config: MemoryConfig,
    noise_margin: np.ndarray | None = None,
    kinds: dict[int, str] | None = None,
) -> tuple[list[tuple[int, Track]], list[int]]:
    """Match detections to candidate tracks; returns (detection index, track) pairs and unmatched indices.

    ``candidates[i]`` are the tracks near detection i (from a spatial query); a pair is feasible when
    labels agree (or embeddings say synonyms) and the detection's center lies inside the track's gate box.
    ``noise_margin`` (per axis) widens the gates to the position noise measured so far. ``kinds``, if
    given, receives the detection index of every furniture pair matched as a partial view or an
    articulated (opened/closed) one, with that kind.
    """
    columns: dict[int, int] = {}
    tracks: list[Track] = []
    for near in candidates:
        for track in near:
            if track.track_id not in columns:
                columns[track.track_id] = len(tracks)
                tracks.append(track)
    if not tracks:
        return [], list(range(len(detections)))
    rows_of, cols_of = [], []
    for row, near in enumerate(candidates):
        for track in near:
            rows_of.append(row)
            cols_of.append(columns[track.track_id])
    r, c = np.array(rows_of), np.array(cols_of)
    det_centers = np.array([d.center for d in detections])
    det_sizes = np.array([d.size for d in detections])
    track_centers = np.array([t.center for t in tracks])
    track_sizes = np.array([t.size for t in tracks])
    margins = gate_margins([t.label for t in tracks], config, noise_margin)
    # gate: the detection's center must lie in the track's box grown per axis (see MemoryConfig)
    gate = gate_half_widths(np.maximum(track_sizes[c], det_sizes[r]) / 2.0, margins[c], config)
    ratio = np.abs(det_centers[r] - track_centers[c]) / gate
    # boxes of very different shape are different objects (the stacked shelves of a unit)
    size_gate = float(np.log(config.size_gate_ratio))
    shape = np.max(np.abs(np.log(np.maximum(det_sizes[r], 0.02) / np.maximum(track_sizes[c], 0.02))), axis=1)
    feasible = (np.max(ratio, axis=1) <= 1.0) & (shape <= size_gate)
    base = np.sqrt(np.sum(ratio * ratio, axis=1) / 3.0) + 0.5 * shape / size_gate
    penalty = np.array([_STATUS_PENALTY.get(t.status, 0.0) for t in tracks])
    cost = np.full((len(detections), len(tracks)), _INFEASIBLE)
    # the common case, vectorised: no embeddings on either side, labels must agree
    det_keys = np.array([normalize_label(d.label) for d in detections], dtype=object)
    track_keys = np.array([normalize_label(t.label) for t in tracks], dtype=object)
    det_emb = np.array([d.embedding is not None for d in detections])
    track_emb = np.array([t.embedding is not None for t in tracks])
    plain = feasible & ~(det_emb[r] & track_emb[c])
    same_label = det_keys[r] == track_keys[c]
    same = plain & same_label
    cost[r[same], c[same]] = base[same] + penalty[c[same]]
    partial, articulated = _furniture_costs(detections, tracks, r, c, same_label & ~feasible, config)
    extra = np.minimum(partial, articulated)
    usable = np.isfinite(extra)
    cost[r[usable], c[usable]] = extra[usable] + penalty[c[usable]]
    furniture = np.zeros(cost.shape, dtype=np.int8)  # 1: partial view, 2: articulated
    furniture[r[usable], c[usable]] = np.where(articulated[usable] < partial[usable], 2, 1)
    for k in np.flatnonzero(feasible & ~plain):  # both carry embeddings: synonyms may match
        extra = label_compatibility(detections[r[k]], tracks[c[k]], config)
        if extra is not None:
            cost[r[k], c[k]] = base[k] + extra + penalty[c[k]]
    rows, cols = linear_sum_assignment(cost)
    pairs = [(int(r), tracks[c]) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _INFEASIBLE]
    if kinds is not None:
        for row, col in zip(rows, cols, strict=True):
            if furniture[row, col] and cost[row, col] < _INFEASIBLE:
                kinds[int(row)] = ARTICULATED if furniture[row, col] == 2 else PARTIAL
    matched = {r for r, _ in pairs}
    return pairs, [i for i in range(len(detections)) if i not in matched]
