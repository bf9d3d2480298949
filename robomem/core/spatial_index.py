"""Incremental nearest-neighbour lookups over moving points, on top of scipy's cKDTree.

A KD-tree is rebuilt only when enough points have changed; points added or moved since are kept in
a small side buffer (grown in place) searched by brute force with numpy until the next rebuild.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


class DynamicPointIndex:
    """Points keyed by int id, with radius and nearest queries; points may move or be removed."""

    def __init__(self, rebuild_fraction: float = 0.05, min_rebuild: int = 128, max_buffer: int = 8192) -> None:
        self._positions: dict[int, np.ndarray] = {}
        self._tree: cKDTree | None = None
        self._tree_ids = np.zeros(0, dtype=np.int64)
        self._tree_row: dict[int, int] = {}
        self._tree_stale = np.zeros(0, dtype=bool)  # tree rows whose point moved or left
        self._any_tree_stale = False
        self._buf_row: dict[int, int] = {}
        self._buf_ids = np.zeros(16, dtype=np.int64)
        self._buf_points = np.zeros((16, 3))
        self._buf_alive = np.zeros(16, dtype=bool)
        self._buf_n = 0
        self._rebuild_fraction = rebuild_fraction
        self._min_rebuild = min_rebuild
        self._max_buffer = max_buffer
        self.deferred = False  # while loading many points: new ones are put in the tree by settle()
        self._unsettled = False

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, key: int) -> bool:
        return key in self._positions

    def position(self, key: int) -> np.ndarray:
        return self._positions[key]

    def set(self, key: int, point: np.ndarray) -> None:
        if self.deferred and key not in self._tree_row and key not in self._buf_row:
            self._positions[key] = np.array(point, dtype=float)  # into the tree at settle()
            self._unsettled = True
            return
        point = np.asarray(point, dtype=float)
        self._positions[key] = point.copy()
        self._retire_tree_row(key)
        row = self._buf_row.get(key)
        if row is None:
            if self._buf_n == len(self._buf_ids):
                self._grow_buffer()
            row = self._buf_row[key] = self._buf_n
            self._buf_ids[row] = key
            self._buf_n += 1
        self._buf_points[row] = point
        self._buf_alive[row] = True
        limit = max(self._min_rebuild, min(self._rebuild_fraction * len(self._positions), self._max_buffer))
        if len(self._buf_row) > limit and not self.deferred:
            self.rebuild()

    def settle(self) -> None:
        """End a deferral: one rebuild puts every point set since into the KD-tree."""
        self.deferred = False
        if self._buf_row or self._unsettled:
            self.rebuild()

    def remove(self, key: int) -> None:
        if self._positions.pop(key, None) is None:
            return
        self._retire_tree_row(key)
        row = self._buf_row.get(key)
        if row is not None:
            self._buf_alive[row] = False

    def _retire_tree_row(self, key: int) -> None:
        row = self._tree_row.pop(key, None)
        if row is not None:
            self._tree_stale[row] = True
            self._any_tree_stale = True

    def _grow_buffer(self) -> None:
        size = 2 * len(self._buf_ids)
        self._buf_ids = np.resize(self._buf_ids, size)
        self._buf_points = np.resize(self._buf_points, (size, 3))
        alive = np.zeros(size, dtype=bool)
        alive[: self._buf_n] = self._buf_alive[: self._buf_n]
        self._buf_alive = alive

    def rebuild(self) -> None:
        """Put every point into a fresh KD-tree and empty the side buffer."""
        ids = np.fromiter(self._positions.keys(), dtype=np.int64, count=len(self._positions))
        self._tree_ids = ids
        self._tree_row = {int(key): row for row, key in enumerate(ids)}
        self._tree_stale = np.zeros(len(ids), dtype=bool)
        self._any_tree_stale = False
        self._tree = cKDTree(np.array([self._positions[i] for i in ids])) if len(ids) else None
        self._buf_row.clear()
        self._buf_alive[:] = False
        self._buf_n = 0
        self._unsettled = False

    def query_radius(self, point: np.ndarray, radius: float) -> list[int]:
        """Ids of points within ``radius`` of ``point``."""
        return self.query_radius_points(point, radius)[0].tolist()

    def query_radius_many(self, points: np.ndarray, radius: float | np.ndarray) -> list[list[int]]:
        """For each query point, the ids within its radius (scalar or one per point)."""
        radii = np.broadcast_to(np.asarray(radius, dtype=float), (len(points),))
        results: list[list[int]] = [[] for _ in range(len(points))]
        if self._tree is not None:
            for row, found in enumerate(self._tree.query_ball_point(points, radii, return_sorted=False)):
                if found:
                    rows = np.asarray(found, dtype=np.int64)
                    if self._any_tree_stale:
                        rows = rows[~self._tree_stale[rows]]
                    results[row] = self._tree_ids[rows].tolist()
        n = self._buf_n
        if n:
            diff = points[:, None, :] - self._buf_points[None, :n, :]
            inside = (np.einsum("ijk,ijk->ij", diff, diff) <= (radii * radii)[:, None]) & self._buf_alive[None, :n]
            for row in np.flatnonzero(inside.any(axis=1)):
                results[row].extend(self._buf_ids[:n][inside[row]].tolist())
        return results

    def query_radius_points(self, point: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Ids and indexed positions of the points within ``radius`` of ``point`` (one vectorised query)."""
        point = np.asarray(point, dtype=float)
        ids, points = [], []
        if self._tree is not None:
            rows = np.asarray(self._tree.query_ball_point(point, radius, return_sorted=False), dtype=np.int64)
            if self._any_tree_stale and len(rows):
                rows = rows[~self._tree_stale[rows]]
            ids.append(self._tree_ids[rows])
            points.append(self._tree.data[rows])
        n = self._buf_n
        if n:
            close = self._buf_alive[:n] & (np.sum((self._buf_points[:n] - point) ** 2, axis=1) <= radius * radius)
            ids.append(self._buf_ids[:n][close])
            points.append(self._buf_points[:n][close])
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 3))
        return np.concatenate(ids), np.concatenate(points)

    def nearest(self, point: np.ndarray, accept=lambda key: True, k: int = 16) -> int | None:
        """The closest key to ``point`` that ``accept`` takes (looking at up to ``k`` tree neighbours
        at a time, doubling while none is accepted); None if no point is accepted."""
        point = np.asarray(point, dtype=float)
        best: tuple[float, int] | None = None
        n = self._buf_n
        if n:
            dist = np.linalg.norm(self._buf_points[:n] - point, axis=1)
            for row in np.argsort(dist):
                key = int(self._buf_ids[row])
                if self._buf_alive[row] and accept(key):
                    best = (float(dist[row]), key)
                    break
        if self._tree is not None:
            total = len(self._tree_ids)
            k = min(k, total)
            while k > 0:
                dists, rows = self._tree.query(point, k=k)
                dists, rows = np.atleast_1d(dists), np.atleast_1d(rows)
                for dist, row in zip(dists, rows, strict=True):
                    if best is not None and dist >= best[0]:
                        return best[1]
                    if row < total and not self._tree_stale[row] and accept(int(self._tree_ids[row])):
                        return int(self._tree_ids[row])
                if k == total:
                    break
                k = min(2 * k, total)
        return None if best is None else best[1]
