"""Data association: detections of one frame to tracked objects, by label/embedding and 3D distance.

Pairs are gated by a box around each track (it grows with object size; margins per class) and
solved jointly with scipy's
Hungarian solver, so two nearby mugs never both claim the same track.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.tracks import GONE, REJECTED, TENTATIVE, Track
from robomem.core.types import Detection

_INFEASIBLE = 1e6
_STATUS_PENALTY = {GONE: 0.35, REJECTED: 0.35, TENTATIVE: 0.1}
_SYNONYM_PENALTY = 0.5


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
) -> tuple[list[tuple[int, Track]], list[int]]:
    """Match detections to candidate tracks; returns (detection index, track) pairs and unmatched indices.

    ``candidates[i]`` are the tracks near detection i (from a spatial query); a pair is feasible when
    labels agree (or embeddings say synonyms) and the detection's center lies inside the track's gate box.
    ``noise_margin`` (per axis) widens the gates to the position noise measured so far.
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
    margins = np.array([config.class_gates.get(normalize_label(t.label), config.gate_m) for t in tracks])[:, None]
    if noise_margin is not None:  # never tighter than the measured position noise allows
        margins = np.maximum(margins, noise_margin[None, :])
    # gate: the detection's center must lie in the track's box grown per axis (see MemoryConfig)
    half = np.maximum(track_sizes[c], det_sizes[r]) / 2.0
    gate = np.minimum(half * (1.0 + config.gate_size_fraction) + margins[c], config.max_gate_m)
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
    same = plain & (det_keys[r] == track_keys[c])
    cost[r[same], c[same]] = base[same] + penalty[c[same]]
    for k in np.flatnonzero(feasible & ~plain):  # both carry embeddings: synonyms may match
        extra = label_compatibility(detections[r[k]], tracks[c[k]], config)
        if extra is not None:
            cost[r[k], c[k]] = base[k] + extra + penalty[c[k]]
    rows, cols = linear_sum_assignment(cost)
    pairs = [(int(r), tracks[c]) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _INFEASIBLE]
    matched = {r for r, _ in pairs}
    return pairs, [i for i in range(len(detections)) if i not in matched]
