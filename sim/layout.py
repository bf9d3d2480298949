"""How each AI2-THOR object becomes a body: its kind, its panels and, for articulated
receptacles, the side its door or drawer opens to. Pure geometry on metadata boxes
(map frame); nothing here talks to pybullet."""

from __future__ import annotations

from collections.abc import Sequence
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
L_SHAPE_MIN_M = 0.8  # a CounterTop wider than this both ways may be an L: keep the parts with support
L_CELL_M = 0.1
L_UNDER_M = 0.12  # cabinets, drawers, sinks and stoves reach this close under (or through) a counter's top
L_NEAR_M = 0.15  # a counter cell this close to a cabinet below it or to an object on it is real
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
    stays visible. No slab rises above the bottom of the lowest loose thing standing in it."""
    size = sizes[i]
    kind = meta_objects[i]["objectType"]
    if kind in CONTAINER_TYPES:
        return tray(size)
    lo, hi = centers - sizes / 2, centers + sizes / 2
    top = _resting_level(i, meta_objects, centers, lo, hi)
    # things whose bottom is at the (lowered) top rest on it, even when their center dips into the box
    inner = np.array([j for j in np.flatnonzero(encl[i])
                      if not (meta_objects[j]["pickupable"] and lo[j, 2] >= top - 1e-6)], dtype=int)
    if kind == "CounterTop" and min(size[0], size[1]) > L_SHAPE_MIN_M:
        return _l_shape(i, meta_objects, lo, hi, top)
    if inner.size == 0:
        height = max(top - lo[i, 2], SLAB_M / 2)
        return [(np.array([0.0, 0.0, top - height / 2 - centers[i, 2]]), np.array([*size[:2] / 2, height / 2]))]
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
    panels = [slab(size, top - centers[i, 2])]  # the top
    if not fixed and level - bottom > SUPPORT_MIN_M:  # a solid block up to what stands inside
        height = level - bottom
        panels.append((np.array([0.0, 0.0, -half_h + height / 2]), np.array([size[0] / 2, size[1] / 2, height / 2])))
        return panels
    floor_top = min(SLAB_M, level - bottom)  # the bottom slab, thinner under a thing standing on it
    panels.append(slab(size, -half_h + max(floor_top, 1e-3), max(floor_top, 1e-3)))
    if level - bottom > SUPPORT_MIN_M:
        panels.append(slab(size, level - centers[i, 2]))
    return panels


def _resting_level(i: int, meta_objects: list[dict[str, Any]], centers: np.ndarray, lo: np.ndarray,
                   hi: np.ndarray) -> float:
    """The box top, or lower when the pickupables resting on it sink into it (recorded boxes
    of thin counters sit a little above the real surface)."""
    top = hi[i, 2]
    level = top
    for j, m in enumerate(meta_objects):
        if j == i or not m["pickupable"] or not _over(centers, lo, hi, j)[i]:
            continue
        if top - REST_BELOW_M <= lo[j, 2] < top:
            level = min(level, lo[j, 2])
    return float(level)


def _l_shape(i: int, meta_objects: list[dict[str, Any]], lo: np.ndarray, hi: np.ndarray, top: float) -> list[Panel]:
    """Slabs over the parts of a wide CounterTop's box that have cabinets (or anything fixed)
    below them or objects on them; the rest of an L-shaped counter's box is empty floor."""
    n = np.maximum(np.ceil((hi[i, :2] - lo[i, :2]) / L_CELL_M).astype(int), 1)
    step = (hi[i, :2] - lo[i, :2]) / n
    gx = lo[i, 0] + (np.arange(n[0]) + 0.5) * step[0]
    gy = lo[i, 1] + (np.arange(n[1]) + 0.5) * step[1]
    xs, ys = np.meshgrid(gx, gy, indexing="ij")
    real = np.zeros(xs.shape, dtype=bool)
    for j, m in enumerate(meta_objects):
        if j == i or m["objectType"] in NOT_BUILT or m["objectType"] == "CounterTop":
            continue
        below = not m["pickupable"] and top - L_UNDER_M <= hi[j, 2] <= top + 0.3 and lo[j, 2] < top
        on_top = m["pickupable"] and abs(lo[j, 2] - top) <= REST_ABOVE_M
        if not (below or on_top):
            continue
        real |= ((xs >= lo[j, 0] - L_NEAR_M) & (xs <= hi[j, 0] + L_NEAR_M)
                 & (ys >= lo[j, 1] - L_NEAR_M) & (ys <= hi[j, 1] + L_NEAR_M))
    if real.all() or not real.any():
        height = max(top - lo[i, 2], SLAB_M / 2)
        size = hi[i] - lo[i]
        return [(np.array([0.0, 0.0, top - height / 2 - (lo[i, 2] + hi[i, 2]) / 2]),
                 np.array([*size[:2] / 2, height / 2]))]
    center = (lo[i] + hi[i]) / 2
    height = max(top - lo[i, 2], SLAB_M / 2)
    panels: list[Panel] = []
    for a in range(n[0]):  # one slab per run of real cells along y, per x column
        b = 0
        while b < n[1]:
            if not real[a, b]:
                b += 1
                continue
            e = b
            while e + 1 < n[1] and real[a, e + 1]:
                e += 1
            p_lo = np.array([lo[i, 0] + a * step[0], lo[i, 1] + b * step[1], top - height])
            p_hi = np.array([lo[i, 0] + (a + 1) * step[0], lo[i, 1] + (e + 1) * step[1], top])
            panels.append(((p_lo + p_hi) / 2 - center, (p_hi - p_lo) / 2))
            b = e + 1
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


def plan_bodies(meta_objects: list[dict[str, Any]], floor_lo: np.ndarray, floor_hi: np.ndarray,
                rests: Sequence[dict[str, Any]] = ()) -> list[Plan]:
    """One :class:`Plan` per metadata object that becomes a body (all but the Floor). ``rests``: boxes
    (pickupable metadata entries) of other places where loose objects will rest (a RoomR episode's
    arrangements); no body is made for them, but furniture is shaped to hold them as it holds the
    pickupables of ``meta_objects``."""
    every = [*meta_objects, *rests]
    centers, sizes = boxes(every)
    encl = enclosed(centers, sizes)
    plans = []
    for i, meta in enumerate(meta_objects):
        kind = meta["objectType"]
        if kind in NOT_BUILT:
            continue
        plan = Plan(i, "static", centers[i], sizes[i])
        if kind in DRAWER_TYPES or kind in DOOR_TYPES:
            plan.kind = "drawer" if kind in DRAWER_TYPES else "door"
            plan.front = choose_front(i, every, centers, sizes, encl, floor_lo, floor_hi)
        elif meta["pickupable"]:
            plan.kind = "movable"
            plan.panels = tray(sizes[i]) if kind in CONTAINER_TYPES else solid(sizes[i])
        else:
            plan.panels = static_panels(i, every, centers, sizes, encl)
        plans.append(plan)
    return plans
