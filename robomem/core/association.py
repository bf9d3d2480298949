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
) -> tuple[list[tuple[int, Track]], list[int]]:
    """Match detections to candidate tracks; returns (detection index, track) pairs and unmatched indices.

    ``candidates[i]`` are the tracks near detection i (from a spatial query); a pair is feasible when
    labels agree (or embeddings say synonyms) and the detection's center lies inside the track's gate box.
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
    track_centers = np.array([t.center for t in tracks])
    det_centers = np.array([d.center for d in detections])
    offsets = np.abs(det_centers[:, None, :] - track_centers[None, :, :])
    cost = np.full((len(detections), len(tracks)), _INFEASIBLE)
    size_gate = float(np.log(config.size_gate_ratio))
    for row, (det, near) in enumerate(zip(detections, candidates, strict=True)):
        for track in near:
            col = columns[track.track_id]
            gate = config.gate_for(track.label, np.maximum(track.size, det.size) / 2.0)
            ratio = offsets[row, col] / gate
            if np.any(ratio > 1.0):
                continue
            # boxes of very different shape are different objects (stacked shelves of a unit)
            shape = float(np.max(np.abs(np.log(np.maximum(det.size, 0.02) / np.maximum(track.size, 0.02)))))
            if shape > size_gate:
                continue
            extra = label_compatibility(det, track, config)
            if extra is None:
                continue
            closeness = float(np.sqrt(ratio @ ratio / 3.0))
            cost[row, col] = closeness + 0.5 * shape / size_gate + extra + _STATUS_PENALTY.get(track.status, 0.0)
    rows, cols = linear_sum_assignment(cost)
    pairs = [(int(r), tracks[c]) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _INFEASIBLE]
    matched = {r for r, _ in pairs}
    return pairs, [i for i in range(len(detections)) if i not in matched]
