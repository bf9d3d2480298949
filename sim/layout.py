"""How each AI2-THOR object becomes a body: its kind, its panels and, for articulated
receptacles, the side its door or drawer opens to. Pure geometry on metadata boxes
(map frame); nothing here talks to pybullet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from robomem_sim.geometry import front_axis, map_point, map_size
from robomem_sim.shapes import SLAB_M, Panel, slab, solid, tray

DRAWER_TYPES = frozenset({"Drawer"})
DOOR_TYPES = frozenset({"Cabinet", "Fridge", "Microwave", "Safe"})
#: Receptacles things go *into* (open-top trays); the others carry things on top.
CONTAINER_TYPES = frozenset({
    "Bathtub", "BathtubBasin", "Bowl", "Box", "Cup", "GarbageCan", "LaundryHamper", "Mug", "Pot", "Sink",
    "SinkBasin",
})
NOT_BUILT = frozenset({"Floor"})  # the floor is one slab of the room, not an object body
MIN_SIZE_M = 0.005  # flat things (a CreditCard) still get a visible box
ENCLOSE_MARGIN_M = 0.005
REST_BELOW_M, REST_ABOVE_M = 0.03, 0.06  # an object rests on a top this much below/above its bottom
SUPPORT_MIN_M = 0.05  # a support slab this far above a body's bottom is worth adding
FRONT_PROBE_M = 0.35  # depth of the space that must be free in front of a door or drawer
FRONT_BLOCKED = 0.2  # part of that space that may be taken before another side is tried


@dataclass
class Plan:
    """What to build for one metadata object."""

    index: int
    kind: str  # "static", "movable", "drawer", "door"
    center: np.ndarray  # map frame
    size: np.ndarray  # map frame
    panels: list[Panel] = field(default_factory=list)  # static and movable bodies
    front: np.ndarray | None = None  # articulated only


def boxes(meta_objects: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Map-frame box centers and sizes (N, 3) of all metadata objects."""
    centers = np.array([map_point(m["axisAlignedBoundingBox"]["center"]) for m in meta_objects])
    sizes = np.maximum(np.array([map_size(m["axisAlignedBoundingBox"]["size"]) for m in meta_objects]), MIN_SIZE_M)
    return centers.reshape(-1, 3), sizes.reshape(-1, 3)


def enclosed(centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """[i, j]: the center of j lies in the box of i and j is smaller."""
    lo, hi = centers - sizes / 2 - ENCLOSE_MARGIN_M, centers + sizes / 2 + ENCLOSE_MARGIN_M
    inside = np.all((centers[None, :, :] >= lo[:, None, :]) & (centers[None, :, :] <= hi[:, None, :]), axis=2)
    volume = np.prod(sizes, axis=1)
    out = inside & (volume[None, :] < volume[:, None])
    np.fill_diagonal(out, False)
    return out


def _over(centers: np.ndarray, lo: np.ndarray, hi: np.ndarray, j: int) -> np.ndarray:
    """Which boxes' footprints hold the (x, y) center of object j."""
    c = centers[j, :2]
    return np.all((c >= lo[:, :2]) & (c <= hi[:, :2]), axis=1)


def static_panels(
    i: int, meta_objects: list[dict[str, Any]], centers: np.ndarray, sizes: np.ndarray, encl: np.ndarray
) -> list[Panel]:
    """Panels of a fixed body: a tray for containers, a solid box when it holds nothing,
    else top and bottom slabs (plus a support slab or a lower solid block under the
    things standing inside its box: a bed's pillows, a desk's books) so that what it holds
    stays visible."""
    size = sizes[i]
    kind = meta_objects[i]["objectType"]
    if kind in CONTAINER_TYPES:
        return tray(size)
    inner = np.flatnonzero(encl[i])
    if inner.size == 0:
        return solid(size)
    lo, hi = centers - sizes / 2, centers + sizes / 2
    fixed = [j for j in inner if not meta_objects[j]["pickupable"] and meta_objects[j]["objectType"] not in NOT_BUILT]
    loose = []
    for j in inner:
        if not meta_objects[j]["pickupable"]:
            continue
        held_by_part = any(_over(centers, lo, hi, j)[k] and lo[k, 2] <= centers[j, 2] for k in fixed)
        if not held_by_part:
            loose.append(j)
    bottom = lo[i, 2]
    level = min((lo[j, 2] for j in loose), default=bottom)
    half_h = size[2] / 2
    panels = [slab(size, half_h)]  # the top
    if not fixed and level - bottom > SUPPORT_MIN_M:  # a solid block up to what stands inside
        height = level - bottom
        panels.append((np.array([0.0, 0.0, -half_h + height / 2]), np.array([size[0] / 2, size[1] / 2, height / 2])))
        return panels
    panels.append(slab(size, -half_h + SLAB_M))
    if level - bottom > SUPPORT_MIN_M:
        panels.append(slab(size, level - centers[i, 2]))
    return panels


def choose_front(
    i: int, meta_objects: list[dict[str, Any]], centers: np.ndarray, sizes: np.ndarray, encl: np.ndarray,
    floor_lo: np.ndarray, floor_hi: np.ndarray,
) -> np.ndarray:
    """The side a door or drawer opens to: the metadata yaw's axis unless the space in front
    of it is taken (by fixed boxes that do not hold it, or outside the floor), then the
    freest other side."""
    meta = meta_objects[i]
    first = front_axis(float(meta["rotation"]["y"]))
    perp = np.array([-first[1], first[0], 0.0])
    lo_all, hi_all = centers - sizes / 2, centers + sizes / 2
    holders = encl[:, i]
    others = np.array([
        k != i and not holders[k] and not encl[i, k] and not m["pickupable"] and m["objectType"] not in NOT_BUILT
        for k, m in enumerate(meta_objects)
    ])
    best, best_blocked = first, np.inf
    for cand in (first, -first, perp, -perp):
        axis = int(np.argmax(np.abs(cand[:2])))
        depth = min(FRONT_PROBE_M, float(sizes[i, axis]))
        lo, hi = lo_all[i].copy(), hi_all[i].copy()
        if cand[axis] > 0:
            lo[axis], hi[axis] = hi_all[i, axis], hi_all[i, axis] + depth
        else:
            lo[axis], hi[axis] = lo_all[i, axis] - depth, lo_all[i, axis]
        vol = float(np.prod(hi - lo))
        inter = np.clip(np.minimum(hi, hi_all[others]) - np.maximum(lo, lo_all[others]), 0.0, None)
        taken = float(np.max(np.prod(inter, axis=1), initial=0.0))
        in_floor = np.clip(np.minimum(hi[:2], floor_hi) - np.maximum(lo[:2], floor_lo), 0.0, None)
        outside = 1.0 - float(np.prod(in_floor)) / float(np.prod(hi[:2] - lo[:2]))
        blocked = taken / vol + outside
        if blocked <= FRONT_BLOCKED:
            return cand
        if blocked < best_blocked:
            best, best_blocked = cand, blocked
    return best


def plan_bodies(meta_objects: list[dict[str, Any]], floor_lo: np.ndarray, floor_hi: np.ndarray) -> list[Plan]:
    """One :class:`Plan` per metadata object that becomes a body (all but the Floor)."""
    centers, sizes = boxes(meta_objects)
    encl = enclosed(centers, sizes)
    plans = []
    for i, meta in enumerate(meta_objects):
        kind = meta["objectType"]
        if kind in NOT_BUILT:
            continue
        plan = Plan(i, "static", centers[i], sizes[i])
        if kind in DRAWER_TYPES or kind in DOOR_TYPES:
            plan.kind = "drawer" if kind in DRAWER_TYPES else "door"
            plan.front = choose_front(i, meta_objects, centers, sizes, encl, floor_lo, floor_hi)
        elif meta["pickupable"]:
            plan.kind = "movable"
            plan.panels = tray(sizes[i]) if kind in CONTAINER_TYPES else solid(sizes[i])
        else:
            plan.panels = static_panels(i, meta_objects, centers, sizes, encl)
        plans.append(plan)
    return plans
