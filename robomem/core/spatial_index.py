"""Incremental nearest-neighbour lookups over moving points, on top of scipy's cKDTree.

A KD-tree is rebuilt only when enough points have changed; changed points are kept in a small
side buffer searched by brute force (numpy) until the next rebuild.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


class DynamicPointIndex:
    """Points keyed by int id, with radius queries; positions may change and points may be removed."""

    def __init__(self, rebuild_fraction: float = 0.05, min_rebuild: int = 256, max_buffer: int = 2048) -> None:
        self._positions: dict[int, np.ndarray] = {}
        self._tree: cKDTree | None = None
        self._tree_ids = np.zeros(0, dtype=np.int64)
        self._tree_row: dict[int, int] = {}
        self._tree_stale = np.zeros(0, dtype=bool)  # tree rows whose point moved or left
        self._stale: set[int] = set()  # keys whose tree entry is out of date or absent
        self._buffer_ids = np.zeros(0, dtype=np.int64)
        self._buffer_points = np.zeros((0, 3))
        self._buffer_valid = True
        self._rebuild_fraction = rebuild_fraction
        self._min_rebuild = min_rebuild
        self._max_buffer = max_buffer

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, key: int) -> bool:
        return key in self._positions

    def position(self, key: int) -> np.ndarray:
        return self._positions[key]

    def set(self, key: int, point: np.ndarray) -> None:
        self._positions[key] = np.asarray(point, dtype=float).copy()
        self._mark_stale(key)

    def remove(self, key: int) -> None:
        if self._positions.pop(key, None) is not None:
            self._mark_stale(key)

    def _mark_stale(self, key: int) -> None:
        self._stale.add(key)
        row = self._tree_row.get(key)
        if row is not None:
            self._tree_stale[row] = True
        self._buffer_valid = False
        limit = max(self._min_rebuild, min(self._rebuild_fraction * len(self._positions), self._max_buffer))
        if len(self._stale) > limit:
            self.rebuild()

    def rebuild(self) -> None:
        ids = np.fromiter(self._positions.keys(), dtype=np.int64, count=len(self._positions))
        self._tree_ids = ids
        self._tree_row = {int(key): row for row, key in enumerate(ids)}
        self._tree_stale = np.zeros(len(ids), dtype=bool)
        self._tree = cKDTree(np.array([self._positions[i] for i in ids])) if len(ids) else None
        self._stale.clear()
        self._buffer_valid = False

    def _buffer(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._buffer_valid:
            live = [k for k in self._stale if k in self._positions]
            self._buffer_ids = np.array(live, dtype=np.int64)
            self._buffer_points = np.array([self._positions[k] for k in live]) if live else np.zeros((0, 3))
            self._buffer_valid = True
        return self._buffer_ids, self._buffer_points

    def query_radius(self, point: np.ndarray, radius: float) -> list[int]:
        """Ids of points within ``radius`` of ``point``."""
        return self.query_radius_many(np.asarray(point, dtype=float).reshape(1, 3), radius)[0]

    def query_radius_many(self, points: np.ndarray, radius: float | np.ndarray) -> list[list[int]]:
        """For each query point, the ids within its radius (scalar or one per point)."""
        radii = np.broadcast_to(np.asarray(radius, dtype=float), (len(points),))
        results: list[list[int]] = [[] for _ in range(len(points))]
        if self._tree is not None:
            any_stale = bool(self._stale)
            for row, found in enumerate(self._tree.query_ball_point(points, radii, return_sorted=False)):
                if found:
                    rows = np.asarray(found, dtype=np.int64)
                    if any_stale:
                        rows = rows[~self._tree_stale[rows]]
                    results[row] = self._tree_ids[rows].tolist()
        buffer_ids, buffer_points = self._buffer()
        if len(buffer_ids):
            diff = points[:, None, :] - buffer_points[None, :, :]
            inside = np.einsum("ijk,ijk->ij", diff, diff) <= (radii * radii)[:, None]
            for row in np.flatnonzero(inside.any(axis=1)):
                results[row].extend(buffer_ids[inside[row]].tolist())
        return results
