"""Free spots to put an object down on top of, or inside, a receptacle."""

from __future__ import annotations

import numpy as np

from robomem_sim.layout import CONTAINER_TYPES
from robomem_sim.scene import Scene
from robomem_sim.shapes import WALL_M

EDGE_M = 0.02  # a placed box stays this far inside the receptacle's footprint
CLEARANCE_M = 0.005  # boxes may touch by this much
GRID_M = 0.04  # spacing of the candidate spots
LIFT_M = 0.002  # a placed object floats this much above its support


def goes_inside(scene: Scene, rec: str) -> bool:
    """Objects go into openable receptacles and containers, onto everything else."""
    obj = scene.get(rec)
    return obj.openable or obj.object_type in CONTAINER_TYPES


def _overlaps(lo: np.ndarray, hi: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return any(np.all(b_lo + CLEARANCE_M < hi) and np.all(lo < b_hi - CLEARANCE_M) for b_lo, b_hi in boxes)


def _supported(xy: np.ndarray, half: np.ndarray, surfaces: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Every corner of the footprint lies over some surface panel."""
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            corner = xy + np.array([sx, sy]) * half
            if not any(np.all(corner >= lo[:2] - 1e-9) and np.all(corner <= hi[:2] + 1e-9) for lo, hi in surfaces):
                return False
    return True


def find_spot(
    scene: Scene, obj: str, rec: str, near_xy: np.ndarray, ignore: set[str], max_xy_dist: float = np.inf
) -> np.ndarray | None:
    """Center for ``obj``'s box on top of (or inside) ``rec``, the free one nearest ``near_xy``
    within ``max_xy_dist`` of it; None when nothing fits. ``ignore``: objects moving along."""
    size = scene.get(obj).size
    r_lo, r_hi = scene.box(rec)
    inside = goes_inside(scene, rec)
    wall = min(WALL_M, 0.2 * float(np.min(r_hi - r_lo))) if inside else 0.0
    margin = size / 2 + EDGE_M + wall
    lo_xy, hi_xy = r_lo[:2] + margin[:2], r_hi[:2] - margin[:2]
    if np.any(lo_xy > hi_xy):
        return None
    if inside:
        z = r_lo[2] + wall + size[2] / 2 + LIFT_M
        if z + size[2] / 2 > r_hi[2] - wall:
            return None
        surfaces = [(r_lo, r_hi)]
    else:
        target = scene.get(rec)
        parts = target.panel_boxes(scene.center(rec))
        top = max(hi[2] for _, hi in parts)
        surfaces = [(lo, hi) for lo, hi in parts if hi[2] >= top - 0.01]
        z = top + size[2] / 2 + LIFT_M
    center_r = (r_lo + r_hi) / 2
    holders = {o.object_id for o in scene.objects.values()
               if o.present and np.all(np.abs(center_r - scene.center(o.object_id)) <= o.size / 2)}
    skip = ignore | holders | {rec, obj}
    boxes = [scene.box(o.object_id) for o in scene.objects.values()
             if o.present and o.object_id not in skip and (o.kind == "movable" or not inside)]
    gx = np.arange(lo_xy[0], hi_xy[0] + 1e-9, GRID_M) if hi_xy[0] > lo_xy[0] else np.array([lo_xy[0]])
    gy = np.arange(lo_xy[1], hi_xy[1] + 1e-9, GRID_M) if hi_xy[1] > lo_xy[1] else np.array([lo_xy[1]])
    xs, ys = np.meshgrid(gx, gy, indexing="ij")
    cand = np.stack([xs.ravel(), ys.ravel()], axis=1)
    dist = np.linalg.norm(cand - np.asarray(near_xy[:2]), axis=1)
    for k in np.argsort(dist, kind="stable"):
        if dist[k] > max_xy_dist:
            break
        center = np.array([cand[k, 0], cand[k, 1], z])
        if not _supported(center[:2], size[:2] / 2, surfaces):
            continue
        if not _overlaps(center - size / 2, center + size / 2, boxes):
            return center
    return None
