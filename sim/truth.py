"""Ground truth of the simulated room and the goal predicates ON, INSIDE and STATE.

For goal checking and tests only: a robot's memory must never read this. Containment is
the lenient chain of :mod:`robomem.thor.scene` (box geometry, plus AI2-THOR's own
parents for objects that have not moved) evaluated on the simulator's current poses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robomem_sim.scene import Scene

INSIDE_MARGIN_M = 0.02  # a center this close outside a box still counts as inside
STATE_KEYS = {"isOpen": "isOpen", "open": "isOpen", "isToggled": "isToggled", "on": "isToggled",
              "toggled": "isToggled", "isPickedUp": "held", "held": "held"}


@dataclass(frozen=True)
class ObjectTruth:
    """The true state of one object (map frame)."""

    object_id: str
    object_type: str
    center: np.ndarray
    size: np.ndarray
    receptacles: tuple[str, ...]  # objectIds of the containment chain, innermost first
    is_open: bool | None
    is_toggled: bool | None
    held: bool

    @property
    def lo(self) -> np.ndarray:
        return self.center - self.size / 2

    @property
    def hi(self) -> np.ndarray:
        return self.center + self.size / 2

    @property
    def receptacle(self) -> str | None:
        """The innermost receptacle, or None."""
        return self.receptacles[0] if self.receptacles else None


@dataclass
class SceneTruth:
    """All present objects of a room at one time."""

    t: float
    objects: dict[str, ObjectTruth]

    def matching(self, ref: str) -> list[ObjectTruth]:
        """Objects named by objectId, or every object of an objectType."""
        if ref in self.objects:
            return [self.objects[ref]]
        return [o for o in self.objects.values() if o.object_type == ref]

    def relation(self, obj: str, rec: str) -> str | None:
        """"inside" when ``rec`` is on the chain of ``obj`` and its box holds the object's
        center (below its top), "on" when ``rec`` is on the chain otherwise, else None (objectIds)."""
        o = self.objects.get(obj)
        r = self.objects.get(rec)
        if o is None or r is None or rec not in o.receptacles:
            return None
        d, half = o.center - r.center, r.size / 2
        if np.all(np.abs(d[:2]) <= half[:2] + INSIDE_MARGIN_M) and -half[2] - INSIDE_MARGIN_M <= d[2] < half[2]:
            return "inside"  # (a thin thing lying on a top has its center above the top: "on")
        return "on"


def snapshot(scene: Scene) -> SceneTruth:
    """The simulator's true state now."""
    world = scene.thor_world()
    ids = {o.name: o.object_id for o in scene.objects.values()}
    out: dict[str, ObjectTruth] = {}
    for thor in world.objects:
        obj = scene.get(ids[thor.key])
        out[obj.object_id] = _truth(scene, obj.object_id, tuple(ids[k] for k in thor.chain), held=False)
    for oid in scene.held:
        out[oid] = _truth(scene, oid, (), held=True)
    return SceneTruth(t=scene.t, objects=out)


def _truth(scene: Scene, oid: str, chain: tuple[str, ...], held: bool) -> ObjectTruth:
    obj = scene.get(oid)
    return ObjectTruth(
        object_id=oid, object_type=obj.object_type, center=scene.center(oid), size=obj.size.copy(),
        receptacles=chain, is_open=obj.is_open, is_toggled=obj.toggled, held=held,
    )


# ---------------------------------------------------------------------- predicates


@dataclass(frozen=True)
class _Relation:
    """A relation of obj to a receptacle, on its containment chain. Either argument is an
    objectId or an objectType (then any instance will do)."""

    relation: ClassVar[str]  # SceneTruth.relation's word for it
    obj: str
    receptacle: str

    def holds(self, truth: SceneTruth) -> bool:
        recs = {r.object_id for r in truth.matching(self.receptacle)}
        for o in truth.matching(self.obj):
            if any(truth.relation(o.object_id, r) == self.relation for r in o.receptacles if r in recs):
                return True
        return False


class On(_Relation):
    """ON(obj, receptacle): obj rests on the receptacle, directly or on things on it."""

    relation = "on"


class Inside(_Relation):
    """INSIDE(obj, receptacle): obj is on the receptacle's chain and within its box."""

    relation = "inside"


@dataclass(frozen=True)
class State:
    """STATE(obj, key, value): key is isOpen (open), isToggled (on) or isPickedUp (held)."""

    obj: str
    key: str
    value: bool

    def holds(self, truth: SceneTruth) -> bool:
        attr = STATE_KEYS.get(self.key)
        if attr is None:
            raise ValueError(f"unknown state key {self.key!r}; known: {sorted(STATE_KEYS)}")
        field = {"isOpen": "is_open", "isToggled": "is_toggled", "held": "held"}[attr]
        return any(getattr(o, field) == self.value for o in truth.matching(self.obj))


Predicate = On | Inside | State


def holds(truth: SceneTruth, *predicates: Predicate) -> bool:
    """True when every predicate holds."""
    return all(p.holds(truth) for p in predicates)
