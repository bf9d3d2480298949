"""An iTHOR room rebuilt in PyBullet (DIRECT mode) from its recorded object metadata.

Every metadata object becomes a body keeping its objectId and objectType, at its real box
(map frame, z up). Pickupable objects are movable boxes; drawers slide on a prismatic
joint, cabinets, fridges, microwaves and safes swing a door on a revolute joint (URDFs
written to a temporary folder); everything else is fixed. Nothing collides and gravity
is off: the simulator moves things kinematically (teleport-style), pybullet keeps the
poses, joints and images.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from robomem.thor.scene import (
    OPEN_EPS,
    STATE_FLAGS,
    UNMOVED_TOL,
    ThorObject,
    WorldState,
    build_world,
    floor_height,
    load_roomr,
    load_scene_metadata,
    roomr_split,
)
from robomem_sim.geometry import class_color, map_point, map_size, thor_point, thor_size, toggled_color
from robomem_sim.layout import Plan, plan_bodies
from robomem_sim.shapes import Panel
from robomem_sim.urdf import Joint, write_door, write_drawer

WALL_HEIGHT_M = 2.6
WALL_THICK_M = 0.1
FLOOR_RGBA = (0.78, 0.74, 0.68, 1.0)
WALL_RGBA = (0.9, 0.9, 0.88, 1.0)
PARK_Z = -50.0  # objects taken out of the room wait far below the floor
FURNITURE_KINDS = ("static", "drawer", "door")

Box2 = tuple[np.ndarray, np.ndarray]  # (lo, hi) of a horizontal region, map frame
#: A doorway in a room's wall: (side, center along the wall, width); side is "-x", "+x", "-y" or "+y".
Doorway = tuple[str, float, float]


@dataclass
class RoomPart:
    """One iTHOR room of a scene, translated by ``offset`` (map frame) to its place on the floor."""

    scene: str  # the iTHOR scene, e.g. "FloorPlan21"
    offset: np.ndarray  # map-frame translation applied to the room's metadata
    floor_lo: np.ndarray  # (2,) footprint, map frame (translated)
    floor_hi: np.ndarray
    object_ids: list[str] = field(default_factory=list)


def shift_meta(meta: dict[str, Any], offset: np.ndarray) -> dict[str, Any]:
    """A copy of a metadata object translated by a map-frame ``offset`` (its boxes and position)."""
    thor = thor_point(np.asarray(offset, float))
    delta = {"x": float(thor[0]), "y": float(thor[1]), "z": float(thor[2])}
    out = copy.deepcopy(meta)
    for key in ("position",):
        if out.get(key):
            out[key] = {a: float(out[key][a]) + delta[a] for a in "xyz"}
    box = out.get("axisAlignedBoundingBox")
    if box and box.get("center"):
        box["center"] = {a: float(box["center"][a]) + delta[a] for a in "xyz"}
    return out


#: RoomR years whose episode arrangements furniture is shaped to hold (see :func:`episode_rests`).
ROOMR_YEARS = (2022, 2023)


@functools.lru_cache(maxsize=64)
def episode_rests(scene: str, years: tuple[int, ...] = ROOMR_YEARS) -> tuple[dict[str, Any], ...]:
    """Boxes (pickupable metadata entries, the room's own frame) of every place other than its metadata
    place where a RoomR episode of the room (of its split: train or val), start or target arrangement,
    puts a pickupable; none when the RoomR data is not there or the room has no split here. Furniture is
    shaped to hold them (:func:`plan_bodies`), so that an episode's objects rest on a surface instead of
    inside a solid box (a mug under a coffee machine's spout stays visible)."""
    metas = {m["name"]: m for m in load_scene_metadata(scene)}
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for year in years:
        try:
            episodes = load_roomr(year, split=roomr_split(scene)).get(scene, [])
        except (FileNotFoundError, ValueError):
            continue
        for episode in episodes:
            for which in ("target", "start"):
                for obj in build_world(scene, episode, which).objects:
                    key = (obj.key, *np.round(obj.center, 2))
                    if not obj.pickupable or not obj.moved or key in seen or obj.key not in metas:
                        continue
                    seen.add(key)
                    meta = metas[obj.key]
                    name = f"{obj.key}@rest{len(out)}"
                    center = {a: float(v) for a, v in zip("xyz", obj.center, strict=True)}
                    out.append({"name": name, "objectId": name, "objectType": meta["objectType"], "pickupable": True,
                                "axisAlignedBoundingBox": {"center": center,
                                                           "size": dict(meta["axisAlignedBoundingBox"]["size"])}})
    return tuple(out)


def _meta_flag(key: str) -> property:
    """A read-only bool property: the object's metadata flag ``key`` (False when absent)."""

    def get(obj: SimObject) -> bool:
        return bool(obj.meta.get(key))

    return property(get, doc=f"The metadata flag {key!r}.")


@dataclass
class SimObject:
    """One AI2-THOR object in the simulator."""

    object_id: str
    name: str  # metadata ``name``, unique in the scene (RoomR joins on it)
    object_type: str
    kind: str  # "static", "movable", "drawer" or "door"
    body: int
    home: np.ndarray  # metadata box center, map frame
    size: np.ndarray  # box size, map frame
    meta: dict[str, Any]
    color: tuple[float, float, float, float]
    joint: Joint | None = None
    openness: float | None = None  # openable objects: 0 closed .. 1 open
    toggled: bool | None = None  # toggleable objects
    present: bool = True
    panels: list[Panel] = field(default_factory=list)  # fixed and movable bodies: boxes relative to the center

    def panel_boxes(self, center: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(lo, hi) of each panel for the body centred at ``center``; the whole box if none."""
        if not self.panels:
            return [(center - self.size / 2, center + self.size / 2)]
        return [(center + off - half, center + off + half) for off, half in self.panels]

    # AI2-THOR's capability flags, read-only from the metadata
    pickupable = _meta_flag("pickupable")
    receptacle = _meta_flag("receptacle")
    openable = _meta_flag("openable")
    toggleable = _meta_flag("toggleable")

    @property
    def is_open(self) -> bool | None:
        return None if self.openness is None else self.openness > OPEN_EPS


def _meta_openness(meta: dict[str, Any]) -> float | None:
    if not meta.get("openable"):
        return None
    value = float(meta.get("openness") or 0.0)
    return 1.0 if meta.get("isOpen") and value <= OPEN_EPS else value



@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence writes to file descriptor 1 (C extensions' prints) for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)

class Scene:
    """A simulated iTHOR room. Use as a context manager or call :meth:`close`."""

    def __init__(self, scene: str, walls: bool = True, offset: Sequence[float] | None = None,
                 rooms: bool = True) -> None:
        """``scene``: the iTHOR room (its name names the scene); ``offset``: map-frame translation of
        the room; ``rooms=False`` starts an empty scene (see :meth:`add_room`, used by houses)."""
        self.name = scene
        with _quiet_stdout():  # pybullet's C code prints "argv[0]=" on every connect
            self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self.client.setGravity(0, 0, 0)
        self._closed = False
        self._tmp = tempfile.TemporaryDirectory(prefix="robomem_sim_")
        self.t = 0.0  # simulated seconds, advanced by the robot's skills
        self.held: set[str] = set()  # objects a robot carries (not in or on anything)
        self.objects: dict[str, SimObject] = {}
        self.parts: dict[str, RoomPart] = {}
        self.floors: list[Box2] = []  # walkable floor regions (navigation blocks everything else)
        self.wall_boxes: list[tuple[np.ndarray, np.ndarray]] = []  # 3D (lo, hi) of every wall body
        self.structure: list[int] = []
        self._by_name: dict[str, str] = {}
        self._by_body: dict[int, str] = {}
        self._room_of: dict[str, str] = {}  # objectId -> iTHOR scene of its room
        self.floor_z = 0.0
        self.floor_lo, self.floor_hi = np.zeros(2), np.zeros(2)
        if rooms:
            meta_objects = load_scene_metadata(scene)
            self.floor_z = floor_height(meta_objects)
            self.add_room(scene, offset, walls=walls)

    def add_room(self, scene: str, offset: Sequence[float] | None = None, walls: bool = True,
                 doorways: Sequence[Doorway] = ()) -> RoomPart:
        """Build an iTHOR room translated by ``offset`` (map frame): floor, walls (with ``doorways``)
        and every object. Metadata names must stay unique over the scene's rooms."""
        shift = np.zeros(3) if offset is None else np.asarray(offset, float)
        meta_objects = [shift_meta(m, shift) for m in load_scene_metadata(scene)] if np.any(shift) \
            else load_scene_metadata(scene)
        floor = next((m for m in meta_objects if m["objectType"] == "Floor"), None)
        lo, hi = self._floor_bounds(meta_objects, floor)
        part = RoomPart(scene, shift, lo, hi)
        self.parts[scene] = part
        self.floors.append((lo, hi))
        self._extend_bounds(lo, hi)
        self.structure.append(self.floor_body(lo, hi))
        if walls:
            self.structure += self.wall_bodies(lo, hi, doorways)
        rests = [shift_meta(m, shift) for m in episode_rests(scene)] if np.any(shift) else list(episode_rests(scene))
        for plan in plan_bodies(meta_objects, lo, hi, rests):
            meta = meta_objects[plan.index]
            if meta["name"] in self._by_name or meta["objectId"] in self.objects:
                raise ValueError(f"{scene}: {meta['name']} is already in the scene")
            self._add(plan, meta)
            part.object_ids.append(meta["objectId"])
            self._room_of[meta["objectId"]] = scene
        return part

    def _extend_bounds(self, lo: np.ndarray, hi: np.ndarray) -> None:
        if len(self.floors) == 1:
            self.floor_lo, self.floor_hi = lo.copy(), hi.copy()
        else:
            self.floor_lo, self.floor_hi = np.minimum(self.floor_lo, lo), np.maximum(self.floor_hi, hi)

    def add_floor(self, lo: np.ndarray, hi: np.ndarray, visual: bool = True) -> None:
        """A walkable floor region (a hallway, a door sill) of the scene."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        self.floors.append((lo, hi))
        self._extend_bounds(lo, hi)
        if visual:
            self.structure.append(self.floor_body(lo, hi))

    def room_of(self, ref: str) -> str:
        """The iTHOR scene of the room an object belongs to (where it was built)."""
        return self._room_of[self.get(ref).object_id]

    # ------------------------------------------------------------------ building

    @staticmethod
    def _floor_bounds(meta_objects: list[dict[str, Any]], floor: dict[str, Any] | None) -> tuple[np.ndarray, ...]:
        if floor is not None:
            box = floor["axisAlignedBoundingBox"]
            center, size = map_point(box["center"]), map_size(box["size"])
        else:
            pts = np.array([map_point(m["axisAlignedBoundingBox"]["center"]) for m in meta_objects])
            center, size = (pts.min(0) + pts.max(0)) / 2, pts.max(0) - pts.min(0) + 1.0
        return center[:2] - size[:2] / 2, center[:2] + size[:2] / 2

    def _box_body(self, panels: list[Panel], center: np.ndarray, rgba: tuple[float, ...], mass: float = 0.0) -> int:
        c = self.client
        if len(panels) == 1 and not np.any(panels[0][0]):
            visual = c.createVisualShape(c.GEOM_BOX, halfExtents=panels[0][1].tolist(), rgbaColor=rgba)
        else:
            visual = c.createVisualShapeArray(
                shapeTypes=[c.GEOM_BOX] * len(panels),
                halfExtents=[h.tolist() for _, h in panels],
                visualFramePositions=[o.tolist() for o, _ in panels],
            )
        body = c.createMultiBody(baseMass=mass, baseCollisionShapeIndex=-1, baseVisualShapeIndex=visual,
                                 basePosition=np.asarray(center, dtype=float).tolist())
        c.changeVisualShape(body, -1, rgbaColor=rgba)
        return body

    def floor_body(self, lo: np.ndarray, hi: np.ndarray) -> int:
        """A floor slab over the horizontal box (lo, hi)."""
        size = np.array([*(hi - lo), 0.02])
        center = np.array([*(lo + hi) / 2, self.floor_z - 0.01])
        return self._box_body([(np.zeros(3), size / 2)], center, FLOOR_RGBA)

    def wall_bodies(self, lo: np.ndarray, hi: np.ndarray, doorways: Sequence[Doorway] = ()) -> list[int]:
        """Walls just outside the footprint (lo, hi), each side split around its doorways."""
        z0, t = self.floor_z, WALL_THICK_M
        bodies = []
        for axis in (0, 1):
            along = 1 - axis
            for sign, side in ((-1, lo), (1, hi)):
                name = ("-" if sign < 0 else "+") + "xy"[axis]
                gaps = sorted((c - w / 2, c + w / 2) for s_, c, w in doorways if s_ == name)
                start, stop = lo[along] - t, hi[along] + t
                pieces, at = [], start
                for g_lo, g_hi in gaps:
                    if g_lo > at:
                        pieces.append((at, g_lo))
                    at = max(at, g_hi)
                if stop > at:
                    pieces.append((at, stop))
                for a, b in pieces:
                    w_lo, w_hi = np.zeros(3), np.zeros(3)
                    w_lo[axis], w_hi[axis] = (side[axis] - t, side[axis]) if sign < 0 else (side[axis], side[axis] + t)
                    w_lo[along], w_hi[along] = a, b
                    w_lo[2], w_hi[2] = z0, z0 + WALL_HEIGHT_M
                    self.wall_boxes.append((w_lo, w_hi))
                    bodies.append(self._box_body([(np.zeros(3), (w_hi - w_lo) / 2)], (w_lo + w_hi) / 2, WALL_RGBA))
        return bodies

    def _add(self, plan: Plan, meta: dict[str, Any]) -> None:
        kind = meta["objectType"]
        color = class_color(kind, furniture=plan.kind != "movable")
        obj = SimObject(
            object_id=meta["objectId"], name=meta["name"], object_type=kind, kind=plan.kind, body=-1,
            home=plan.center.copy(), size=plan.size.copy(), meta=meta, color=color,
            openness=_meta_openness(meta), toggled=bool(meta.get("isToggled")) if meta.get("toggleable") else None,
        )
        if plan.kind in ("drawer", "door"):
            path = Path(self._tmp.name) / f"{len(self.objects):03d}_{kind}.urdf"
            if plan.kind == "drawer":
                obj.joint = write_drawer(path, plan.size, plan.front, color)
            else:
                door = class_color(kind + "Door", furniture=True)
                obj.joint = write_door(path, plan.size, plan.front, color, door)
            obj.body = self.client.loadURDF(str(path), basePosition=plan.center.tolist(), useFixedBase=True)
            self.client.setJointMotorControl2(obj.body, 0, self.client.VELOCITY_CONTROL, force=0)
        else:
            mass = float(meta.get("mass") or 0.1) if plan.kind == "movable" else 0.0
            obj.body = self._box_body(plan.panels, plan.center, color, mass)
            obj.panels = plan.panels
        self.objects[obj.object_id] = obj
        self._by_name[obj.name] = obj.object_id
        self._by_body[obj.body] = obj.object_id
        if obj.openness is not None and obj.joint is not None:
            self._set_joint(obj, obj.openness)
        if obj.toggled:
            self._paint(obj)

    # ------------------------------------------------------------------ access

    def get(self, ref: str) -> SimObject:
        """An object by objectId or metadata name (KeyError if unknown)."""
        if ref in self.objects:
            return self.objects[ref]
        return self.objects[self._by_name[ref]]

    def object_of_body(self, body: int) -> SimObject | None:
        """The object a pybullet body belongs to (None for the floor, walls, a robot)."""
        oid = self._by_body.get(body)
        return None if oid is None else self.objects[oid]

    def of_type(self, object_type: str) -> list[SimObject]:
        """Present objects of one objectType."""
        return [o for o in self.objects.values() if o.object_type == object_type and o.present]

    def joint_position(self, ref: str) -> float:
        """The door angle (rad) or drawer travel (m) pybullet reports."""
        obj = self.get(ref)
        if obj.joint is None:
            raise ValueError(f"{obj.object_id} has no joint")
        return float(self.client.getJointState(obj.body, 0)[0])

    def center(self, ref: str) -> np.ndarray:
        """Current box center (map frame) as the simulator holds it."""
        obj = self.get(ref)
        if obj.kind == "movable":
            return np.array(self.client.getBasePositionAndOrientation(obj.body)[0])
        if obj.kind == "drawer":
            return obj.home + obj.joint.front * self.joint_position(ref)
        return obj.home.copy()

    def drawer_shift(self, ref: str) -> np.ndarray:
        """How far opening the closed drawer that holds the object would carry it (zeros if none)."""
        center = self.center(ref)
        for obj in self.objects.values():
            if obj.kind == "drawer" and obj.is_open is False and np.all(np.abs(center - obj.home) <= obj.size / 2):
                return obj.joint.front * obj.joint.upper
        return np.zeros(3)

    def box(self, ref: str) -> tuple[np.ndarray, np.ndarray]:
        """Current axis-aligned box (lo, hi) in the map frame."""
        obj = self.get(ref)
        center = self.center(ref)
        return center - obj.size / 2, center + obj.size / 2

    # ------------------------------------------------------------------ changing

    def set_center(self, ref: str, center: np.ndarray) -> None:
        """Teleport a movable object so its box is centred at ``center`` (map frame)."""
        obj = self.get(ref)
        if obj.kind != "movable":
            raise ValueError(f"{obj.object_id} is fixed")
        self.client.resetBasePositionAndOrientation(obj.body, np.asarray(center, float).tolist(), [0, 0, 0, 1])

    def park(self, ref: str) -> None:
        """Take a movable object out of the room (AI2-THOR removes pickupables an episode omits)."""
        obj = self.get(ref)
        obj.present = False
        self.held.discard(obj.object_id)
        self.set_center(obj.object_id, np.array([0.0, 0.0, PARK_Z - obj.body]))

    def remove(self, ref: str) -> None:
        """Take a fixed object out of the scene for good (a light switch where a doorway goes)."""
        obj = self.get(ref)
        obj.present = False
        self.client.removeBody(obj.body)
        self._by_body.pop(obj.body, None)

    def _set_joint(self, obj: SimObject, openness: float) -> None:
        self.client.resetJointState(obj.body, 0, float(openness) * obj.joint.upper)

    def set_openness(self, ref: str, openness: float, carry: bool = True, animate: bool = False) -> None:
        """Open (1), close (0) or part-open an openable object.

        Drawers carry what lies in them (``carry``). ``animate`` drives the joint with
        position control for a simulated second instead of resetting it."""
        obj = self.get(ref)
        if obj.openness is None:
            raise ValueError(f"{obj.object_id} is not openable")
        openness = float(np.clip(openness, 0.0, 1.0))
        riders = self.riders(obj.object_id) if carry and obj.kind == "drawer" else []
        before = self.center(obj.object_id)
        if obj.joint is not None:
            if animate:
                c = self.client
                c.setJointMotorControl2(obj.body, 0, c.POSITION_CONTROL, targetPosition=openness * obj.joint.upper,
                                        force=200, maxVelocity=1.0)
                for _ in range(240):
                    c.stepSimulation()
                c.setJointMotorControl2(obj.body, 0, c.VELOCITY_CONTROL, force=0)
            self._set_joint(obj, openness)
        obj.openness = openness
        delta = self.center(obj.object_id) - before
        for rider in riders:
            self.set_center(rider, self.center(rider) + delta)

    def set_toggled(self, ref: str, on: bool) -> None:
        """Switch a toggleable object on or off (its colour follows)."""
        obj = self.get(ref)
        if obj.toggled is None:
            raise ValueError(f"{obj.object_id} is not toggleable")
        obj.toggled = bool(on)
        self._paint(obj)

    def _paint(self, obj: SimObject) -> None:
        rgba = toggled_color(obj.color, bool(obj.toggled))
        links = (-1, 0) if obj.joint is not None else (-1,)
        for link in links:
            self.client.changeVisualShape(obj.body, link, rgbaColor=rgba)

    # ------------------------------------------------------------------ arrangements

    def apply_world(self, world: WorldState, room: str | None = None) -> None:
        """Put every object of ``room`` (default: the scene's only room) where ``world`` (a
        :mod:`robomem.thor.scene` arrangement of that iTHOR room, in its own frame) has it.

        Pickupables the arrangement lacks are parked; openness follows it; toggles go back
        to the metadata."""
        part = self.parts[room or world.scene]
        for oid in part.object_ids:
            obj = self.objects[oid]
            self.held.discard(oid)
            thor = world.by_key.get(obj.name)
            if thor is None:
                if obj.kind == "movable":
                    self.park(obj.object_id)
                continue
            if thor.openness is not None and obj.openness is not None:
                self.set_openness(obj.object_id, thor.openness, carry=False)
            if obj.kind == "movable":
                obj.present = True
                self.set_center(obj.object_id, map_point(thor.center) + part.offset)
            if obj.toggled is not None:
                obj.toggled = bool(obj.meta.get("isToggled"))
                self._paint(obj)

    def apply_episode(self, episode: dict[str, Any] | None, which: str = "target", room: str | None = None
                      ) -> WorldState:
        """Apply a RoomR episode's ``"target"`` (as it should be) or ``"start"`` (shuffled)
        arrangement to ``room`` (default: the scene's room), or the plain metadata room with
        ``episode=None``; returns it (in the room's own frame)."""
        world = build_world(room or self.name, episode, which)
        self.apply_world(world, room)
        return world

    # ------------------------------------------------------------------ state snapshot

    def thor_world(self) -> WorldState:
        """The simulator's current state as a :mod:`robomem.thor.scene` :class:`WorldState` (y-up), with the
        same lenient containment chains as robomem.eval. Held and parked objects are left out."""
        id_to_name = {o.object_id: o.name for o in self.objects.values()}
        out = []
        for obj in self.objects.values():
            if not obj.present or obj.object_id in self.held:
                continue
            center = self.center(obj.object_id)
            moved = float(np.linalg.norm(center - obj.home)) > UNMOVED_TOL
            states: dict[str, bool] = {}
            if obj.openness is not None:
                states["open"] = bool(obj.is_open)
            for key, (flag, value) in STATE_FLAGS.items():
                if obj.meta.get(flag):
                    states[key] = bool(obj.toggled) if key == "on" else bool(obj.meta.get(value))
            parents = [] if moved else [
                id_to_name[p] for p in (obj.meta.get("parentReceptacles") or []) if p in id_to_name
            ]
            out.append(ThorObject(
                key=obj.name, label=obj.object_type, center=thor_point(center), size=thor_size(obj.size),
                states=states, receptacle=obj.receptacle, openable=obj.openable, pickupable=obj.pickupable,
                openness=obj.openness, moved=moved, thor_parents=parents,
            ))
        return WorldState(scene=self.name, objects=out, floor_y=self.floor_z)

    def contents(self, ref: str, world: WorldState | None = None) -> list[str]:
        """objectIds of the present objects whose containment chain holds ``ref``."""
        key = self.get(ref).name
        world = world or self.thor_world()
        return [self._by_name[o.key] for o in world.objects if key in o.chain]

    def riders(self, ref: str, world: WorldState | None = None) -> list[str]:
        """Movable objects that move along with ``ref``: in or on it directly or through
        other movable objects only (an apple in a bowl in a drawer)."""
        key = self.get(ref).name
        world = world or self.thor_world()
        out = []
        for o in world.objects:
            if not o.pickupable or key not in o.chain:
                continue
            between = o.chain[: o.chain.index(key)]
            if all(self.get(k).kind == "movable" for k in between):
                out.append(self._by_name[o.key])
        return out

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Disconnect pybullet and delete the URDF folder."""
        if not self._closed:
            self.client.disconnect()
            self._closed = True
        self._tmp.cleanup()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_scene(
    scene: str, episode: dict[str, Any] | None = None, which: str = "target", walls: bool = True
) -> Scene:
    """Build ``scene`` (e.g. "FloorPlan1"), optionally in a RoomR episode's arrangement."""
    sim = Scene(scene, walls=walls)
    if episode is not None:
        sim.apply_episode(episode, which)
    return sim

