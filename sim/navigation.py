"""Free space on the floor and shortest paths for a round mobile base.

The scene's floor regions (a room's Floor footprint; a house's rooms, hallway and door sills) are
cut into square cells; cells off every floor region and under walls are blocked; a cell is free when a
disc of the robot's radius around its center touches no box that stands between
``OBSTACLE_MIN_M`` and ``OBSTACLE_MAX_M`` above the floor, and when it is connected to the
seed cell (where the robot is). Paths are 8-connected shortest paths (scipy's Dijkstra).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from robomem_sim.scene import Scene

CELL_M = 0.1
ROBOT_RADIUS_M = 0.2
OBSTACLE_MIN_M = 0.05  # rugs and flat things on the floor can be driven over
OBSTACLE_MAX_M = 1.6  # things hung higher (cabinets on the wall) do not block the base
_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, math.sqrt(2)), (1, -1, math.sqrt(2)))


class NavGrid:
    """Occupancy of the room now, with the component reachable from ``seed_xy`` (the largest
    one without a seed)."""

    def __init__(self, scene: Scene, seed_xy: np.ndarray | None = None, radius: float = ROBOT_RADIUS_M,
                 cell: float = CELL_M, ignore: frozenset[str] = frozenset()) -> None:
        """``ignore``: object types that do not block (e.g. to plan where a doorway could go)."""
        self.cell = cell
        self.origin = scene.floor_lo.astype(float)
        shape = np.maximum(np.ceil((scene.floor_hi - scene.floor_lo) / cell).astype(int), 1)
        self.shape = (int(shape[0]), int(shape[1]))
        xs, ys = self.centers()
        walkable = np.zeros(self.shape, dtype=bool)
        for lo, hi in scene.floors or [(scene.floor_lo, scene.floor_hi)]:
            walkable |= (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        blocked = ~walkable
        zmin, zmax = scene.floor_z + OBSTACLE_MIN_M, scene.floor_z + OBSTACLE_MAX_M
        for obj in scene.objects.values():
            if not obj.present or obj.object_id in scene.held or obj.object_type in ignore:
                continue
            parts = obj.panel_boxes(obj.home) if obj.kind == "static" else [scene.box(obj.object_id)]
            for lo, hi in parts:
                if hi[2] < zmin or lo[2] > zmax:
                    continue
                blocked |= (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        self.walls = np.zeros(self.shape, dtype=bool)
        for lo, hi in scene.wall_boxes:
            self.walls |= (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        blocked |= self.walls
        clearance = ndimage.distance_transform_edt(~blocked) * cell
        edge = np.minimum.reduce([xs - scene.floor_lo[0], scene.floor_hi[0] - xs,
                                  ys - scene.floor_lo[1], scene.floor_hi[1] - ys])
        self.clearance = np.minimum(clearance, edge)
        open_cells = self.clearance >= radius
        labels, count = ndimage.label(open_cells, structure=np.ones((3, 3)))
        if seed_xy is None and count:  # no seed: the largest connected area
            biggest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
            self.free = labels == biggest
        else:
            seed = self.nearest_open(open_cells, seed_xy)
            self.free = open_cells & (labels == labels[seed]) if seed is not None else open_cells
        self._graph = self._build_graph()

    def same_side(self, goals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The goal cells with no wall between them and the nearest point of the box [lo, hi] (x, y): a
        thing is in reach from this side of the wall it stands against, not from the room behind it.
        All of ``goals`` if that leaves none."""
        cells = np.argwhere(goals)
        if cells.size == 0:
            return goals
        xy = self.origin + (cells + 0.5) * self.cell
        target = np.clip(xy, np.asarray(lo, float)[:2], np.asarray(hi, float)[:2])
        steps = np.linspace(0.0, 1.0, max(2, int(np.ceil(np.max(np.linalg.norm(target - xy, axis=1)) / (self.cell / 2)))
                                          + 1))
        points = xy[:, None, :] + steps[None, :, None] * (target - xy)[:, None, :]
        ij = np.floor((points - self.origin) / self.cell).astype(int)
        ij[..., 0] = np.clip(ij[..., 0], 0, self.shape[0] - 1)
        ij[..., 1] = np.clip(ij[..., 1], 0, self.shape[1] - 1)
        walled = self.walls[ij[..., 0], ij[..., 1]].any(axis=1)
        if walled.all():
            return goals
        out = goals.copy()
        out[cells[walled, 0], cells[walled, 1]] = False
        return out

    def centers(self) -> tuple[np.ndarray, np.ndarray]:
        """x and y of every cell center, each of the grid's shape."""
        i, j = np.indices(self.shape)
        return self.origin[0] + (i + 0.5) * self.cell, self.origin[1] + (j + 0.5) * self.cell

    def cell_of(self, xy: np.ndarray) -> tuple[int, int]:
        """The cell holding a map point (clipped to the grid)."""
        ij = np.floor((np.asarray(xy[:2], float) - self.origin) / self.cell).astype(int)
        return int(np.clip(ij[0], 0, self.shape[0] - 1)), int(np.clip(ij[1], 0, self.shape[1] - 1))

    def xy_of(self, cell: tuple[int, int]) -> np.ndarray:
        return self.origin + (np.asarray(cell, float) + 0.5) * self.cell

    def nearest_open(self, mask: np.ndarray, xy: np.ndarray | None) -> tuple[int, int] | None:
        """The open cell nearest to ``xy``, or the most open cell when ``xy`` is None."""
        if not mask.any():
            return None
        if xy is None:
            score = np.where(mask, self.clearance, -np.inf)
            return tuple(int(v) for v in np.unravel_index(int(np.argmax(score)), self.shape))
        xs, ys = self.centers()
        dist = np.where(mask, (xs - xy[0]) ** 2 + (ys - xy[1]) ** 2, np.inf)
        return tuple(int(v) for v in np.unravel_index(int(np.argmin(dist)), self.shape))

    def _build_graph(self) -> coo_matrix:
        n = self.shape[0] * self.shape[1]
        index = np.arange(n).reshape(self.shape)
        rows, cols, weights = [], [], []
        for di, dj, w in _STEPS:
            a = self.free[max(0, -di): self.shape[0] - max(0, di), max(0, -dj): self.shape[1] - max(0, dj)]
            b = self.free[max(0, di):, max(0, dj):][: a.shape[0], : a.shape[1]]
            ia = index[max(0, -di): self.shape[0] - max(0, di), max(0, -dj): self.shape[1] - max(0, dj)]
            ib = index[max(0, di):, max(0, dj):][: a.shape[0], : a.shape[1]]
            ok = a & b
            rows += [ia[ok], ib[ok]]
            cols += [ib[ok], ia[ok]]
            weights += [np.full(2 * int(ok.sum()), w)]
        if not rows:
            return coo_matrix((n, n))
        return coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

    def plan(self, start_xy: np.ndarray, goals: np.ndarray) -> tuple[list[tuple[int, int]], float] | None:
        """Shortest path (cells, length in metres) from the free cell nearest ``start_xy`` to
        the nearest of the ``goals`` cells (boolean grid), or None."""
        start = self.nearest_open(self.free, start_xy)
        targets = goals & self.free
        if start is None or not targets.any():
            return None
        s = start[0] * self.shape[1] + start[1]
        dist, pred = dijkstra(self._graph.tocsr(), indices=s, return_predecessors=True)
        dist = dist.reshape(self.shape)
        best = np.where(targets, dist, np.inf)
        goal = int(np.argmin(best))
        if not np.isfinite(best.flat[goal]):
            return None
        path = [goal]
        while path[-1] != s:
            path.append(int(pred[path[-1]]))
        cells = [divmod(k, self.shape[1]) for k in reversed(path)]
        return cells, float(best.flat[goal]) * self.cell
