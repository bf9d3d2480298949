"""Objects taken out of the room and brought into it during the shuffle.

RoomR only moves objects and opens or closes things.  On top of that the episode
generator removes a few pickupable objects that the walkthrough detected and adds a few
objects of types the room does not hold (taken from the other iTHOR rooms of the same
kind), put down on a free spot of a surface such as a CounterTop or a SideTable.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from robomem.eval.simulate import View, in_view
from robomem.thor.scene import (
    UNDETECTED_TYPES,
    UNMOVED_TOL,
    ThorObject,
    WorldState,
    foreign_pickupables,
    object_from_metadata,
)

#: Receptacles with a flat top that an object can be put down on.
SURFACE_TYPES = frozenset({
    "ArmChair", "Bed", "CoffeeTable", "CounterTop", "Desk", "DiningTable", "Dresser",
    "Ottoman", "Shelf", "ShelvingUnit", "SideTable", "Sofa", "TVStand",
})
EDGE_MARGIN_M = 0.03  # an added object stays this far inside its surface's footprint
ANCHOR_RADIUS_M = (0.1, 0.45)  # distance of a new spot from an object already on the surface
CLEARANCE_M = 0.005  # boxes may touch by this much without counting as a collision
PLACE_TRIES = 40  # random spots tried per preference tier
DONOR_TRIES = 6  # object types tried per added object
SEEN_LOOKS = 2  # walkthrough views that should hold an added object's place
STRAIGHT_M = 0.8  # a CounterTop this narrow is a straight run: its whole box top is surface


def _with(world: WorldState, objects: list[ThorObject]) -> WorldState:
    """A new arrangement of the same room (chains recomputed on copies)."""
    return WorldState(world.scene, [copy.copy(o) for o in objects], world.floor_y)


def removal_candidates(
    target: WorldState, start: WorldState, seen: set[str]
) -> list[str]:
    """Pickupable objects the walkthrough detected that can be taken away cleanly.

    Their place must be visible in both arrangements (not inside a closed receptacle,
    judged with the walkthrough chain) and nothing may rest on or in them in either one.
    Objects that RoomR moves, opens or closes are kept: the RoomR changes stay as they are.
    """
    holders = {k for w in (target, start) for o in w.objects for k in o.chain}
    out = []
    for obj in target.objects:
        if (not obj.pickupable or obj.label in UNDETECTED_TYPES or obj.key not in seen
                or obj.key not in start.by_key or obj.key in holders):
            continue
        later = start.by_key[obj.key]
        if (float(np.linalg.norm(later.center - obj.center)) > UNMOVED_TOL
                or later.openness != obj.openness):
            continue
        if target.hidden(obj.key) or start.hides(obj.center, obj.chain):
            continue
        out.append(obj.key)
    return out


def remove_objects(world: WorldState, keys: Sequence[str]) -> WorldState:
    """``world`` without the objects ``keys``."""
    gone = set(keys)
    return _with(world, [o for o in world.objects if o.key not in gone])


def _free(world: WorldState, lo: np.ndarray, hi: np.ndarray, skip: set[str]) -> bool:
    """No box of ``world`` (but ``skip``) overlaps the box [lo, hi]."""
    for other in world.objects:
        if other.key in skip or other.label in UNDETECTED_TYPES:
            continue
        o_lo = other.center - other.size / 2 + CLEARANCE_M
        o_hi = other.center + other.size / 2 - CLEARANCE_M
        if np.all(o_lo < hi) and np.all(lo < o_hi):
            return False
    return True


def _spot(
    world: WorldState,
    surface: ThorObject,
    anchors: list[np.ndarray],
    size: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """A random free spot on top of ``surface`` near one of ``anchors`` (or None)."""
    half = size / 2
    lo = surface.center - surface.size / 2 + half + EDGE_MARGIN_M
    hi = surface.center + surface.size / 2 - half - EDGE_MARGIN_M
    if lo[0] > hi[0] or lo[2] > hi[2]:
        return None
    anchor = anchors[int(rng.integers(len(anchors)))]
    angle = rng.uniform(0.0, 2 * np.pi)
    radius = rng.uniform(*ANCHOR_RADIUS_M)
    x = float(np.clip(anchor[0] + radius * np.sin(angle), lo[0], hi[0]))
    z = float(np.clip(anchor[2] + radius * np.cos(angle), lo[2], hi[2]))
    center = np.array([x, surface.center[1] + surface.size[1] / 2 + half[1], z])
    if not _free(world, center - half, center + half, {surface.key, *surface.chain}):
        return None
    return center


def _surfaces(
    worlds: Sequence[WorldState], world: WorldState, size: np.ndarray
) -> list[tuple[ThorObject, list[np.ndarray]]]:
    """Visible surfaces of ``world`` big enough for ``size``, each with anchor points.

    Anchors are the centers of the pickupable objects resting on the surface in any of
    ``worlds`` (proof that its box top is real surface: an L-shaped CounterTop's box
    also spans empty air), plus the center of a surface other than a wide CounterTop.
    """
    out = []
    for surf in world.objects:
        if surf.label not in SURFACE_TYPES or world.hidden(surf.key):
            continue
        if (surf.size[0] < size[0] + 2 * EDGE_MARGIN_M
                or surf.size[2] < size[2] + 2 * EDGE_MARGIN_M):
            continue
        anchors = [
            o.center for w in worlds for o in w.objects
            if o.pickupable and o.chain[:1] == [surf.key]
        ]
        if surf.label != "CounterTop" or min(surf.size[0], surf.size[2]) <= STRAIGHT_M:
            anchors.append(surf.center)
        if anchors:
            out.append((surf, anchors))
    return out


def place_object(
    target: WorldState,
    world: WorldState,
    proto: ThorObject,
    views1: list[View],
    seen: set[str],
    rng: np.random.Generator,
) -> WorldState | None:
    """``world`` with ``proto`` put down on a surface, or None when no spot is found.

    Preferred, in order: a surface the walkthrough detected and a spot inside the cone
    of at least SEEN_LOOKS walkthrough views (not hidden in the walkthrough's
    arrangement); a surface the walkthrough detected; any visible surface.  The
    object's center is the surface top plus half its height; its box overlaps no other
    box; its containment chain starts with the surface and it holds nothing.
    """
    surfaces = _surfaces([target, world], world, proto.size)
    seen_surfaces = [s for s in surfaces if s[0].key in seen]
    tiers = (seen_surfaces, seen_surfaces, surfaces)  # tier 0 also wants walkthrough looks
    for tier, options in enumerate(tiers):
        if not options:
            continue
        for _ in range(PLACE_TRIES):
            surf, anchors = options[int(rng.integers(len(options)))]
            center = _spot(world, surf, anchors, proto.size, rng)
            if center is None:
                continue
            if tier == 0:
                if target.hides(center, surf.chain + [surf.key]):
                    continue
                looks = sum(1 for v in views1 if in_view(center, v)[0])
                if looks < SEEN_LOOKS:
                    continue
            obj = copy.copy(proto)
            obj.center = center
            new = _with(world, [*world.objects, obj])
            placed = new.by_key[obj.key]
            holds = any(obj.key in o.chain for o in new.objects)
            if placed.chain[:1] == [surf.key] and not holds and not new.hidden(obj.key):
                return new
    return None


def add_objects(
    target: WorldState,
    world: WorldState,
    n: int,
    views1: list[View],
    seen: set[str],
    rng: np.random.Generator,
) -> tuple[WorldState, list[str]]:
    """Add ``n`` objects of types that neither arrangement holds; return the new world
    and the keys of the objects added (fewer when no donor or no spot is found)."""
    present = {o.label for w in (target, world) for o in w.objects}
    donors = [m for m in foreign_pickupables(world.scene) if m["objectType"] not in present]
    added: list[str] = []
    for i in range(n):
        types = sorted({m["objectType"] for m in donors})
        for label in [types[int(j)] for j in rng.permutation(len(types))][:DONOR_TRIES]:
            metas = [m for m in donors if m["objectType"] == label]
            meta = metas[int(rng.integers(len(metas)))]
            key = f"{label}_added{i + 1}"
            proto = object_from_metadata(meta, key, np.zeros(3))
            placed = place_object(target, world, proto, views1, seen, rng)
            if placed is not None:
                world = placed
                added.append(key)
                donors = [m for m in donors if m["objectType"] != label]
                break
    return world, added


def shuffle_extras(
    target: WorldState,
    start: WorldState,
    removed_range: tuple[int, int],
    added_range: tuple[int, int],
    views1: list[View],
    seen: set[str],
    rng: np.random.Generator,
) -> tuple[WorldState, list[str], list[str]]:
    """The start arrangement with objects removed and added: (world, removed, added)."""
    cands = removal_candidates(target, start, seen)
    n_removed = min(int(rng.integers(removed_range[0], removed_range[1] + 1)), len(cands))
    picks = rng.choice(len(cands), n_removed, replace=False) if n_removed else []
    removed = sorted(cands[int(i)] for i in picks)
    world = remove_objects(start, removed) if removed else start
    n_added = int(rng.integers(added_range[0], added_range[1] + 1))
    world, added = add_objects(target, world, n_added, views1, seen, rng)
    return world, removed, added
