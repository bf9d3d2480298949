"""A mobile manipulator with a head camera, acting in a :class:`~robomem_sim.scene.Scene`.

Navigation is teleport-style along shortest paths of the free-space grid; manipulation is
kinematic (a held object rides in front of the robot). Every skill returns a
:class:`SkillResult` and never raises for a failure the world causes (too far, closed,
hand full, ...): the failure is a typed :class:`~robomem.planner.results.Failure` (kind, object and
receptacle by type); the robot counts skill calls, navigation cells and metres.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robomem.planner.results import Failure, FailureKind
from robomem_sim.camera import CameraFrame, render
from robomem_sim.navigation import NavGrid
from robomem_sim.placement import find_spot, goes_inside
from robomem_sim.scene import Scene, SimObject
from robomem_sim.truth import snapshot


@dataclass(frozen=True)
class RobotConfig:
    """Body, camera and timing of the robot."""

    radius_m: float = 0.2
    body_height_m: float = 0.9
    camera_height_m: float = 1.5
    reach_m: float = 1.0
    yaw_step_deg: float = 30.0
    pitch_deg: float = 30.0  # camera tilt down at start and after navigation without a target
    width: int = 320
    height: int = 240
    vfov_deg: float = 60.0
    carry_ahead_m: float = 0.35  # a held object rides this far in front of the base center
    carry_height_m: float = 0.9
    visibility_px: int = 3  # pixels of an object the head camera must see to pick it
    speed_mps: float = 0.5
    turn_s: float = 1.0
    manipulation_s: float = 2.0
    animate_joints: bool = False
    #: Continuous perception: while driving, a frame every ``en_route_every_m`` of path (looking
    #: along the heading) goes to :attr:`Robot.on_frame`, as from a camera that is always on.
    perceive_en_route: bool = False
    en_route_every_m: float = 1.0
    en_route_width: int = 160
    en_route_height: int = 120


@dataclass
class SkillResult:
    """Outcome of one skill call; ``failure`` (None on success) says why it failed."""

    skill: str
    failure: Failure | None = None
    target: str | None = None
    cells: int = 0
    distance_m: float = 0.0

    @property
    def success(self) -> bool:
        return self.failure is None

    @property
    def reason(self) -> str:
        return "" if self.failure is None else self.failure.text

    def __bool__(self) -> bool:
        return self.success


@dataclass
class RobotPose:
    x: float
    y: float
    yaw_deg: float


@dataclass
class _Held:
    main: str
    offsets: dict[str, np.ndarray] = field(default_factory=dict)  # object -> center - carry point


class Robot:
    """A round base with a head camera at ``camera_height_m``. Start pose: ``pose`` (map
    frame), else the most open free cell facing +x."""

    def __init__(self, scene: Scene, pose: RobotPose | None = None, config: RobotConfig | None = None) -> None:
        self.scene = scene
        self.config = config or RobotConfig()
        if pose is None:
            grid = NavGrid(scene, None, self.config.radius_m)
            seed = grid.nearest_open(grid.free, None)
            xy = grid.xy_of(seed) if seed is not None else (scene.floor_lo + scene.floor_hi) / 2
            pose = RobotPose(float(xy[0]), float(xy[1]), 0.0)
        self.pose = pose
        self.pitch_deg = self.config.pitch_deg
        self.held: _Held | None = None
        self.counters: Counter[str] = Counter()
        self.nav_cells = 0
        self.nav_distance_m = 0.0
        self.on_frame: Callable[[CameraFrame], None] | None = None  # receives en-route frames
        self.en_route_frames = 0
        c = scene.client
        visual = c.createVisualShape(c.GEOM_CYLINDER, radius=self.config.radius_m, length=self.config.body_height_m,
                                     rgbaColor=(0.3, 0.3, 0.35, 1.0))
        self.body = c.createMultiBody(0.0, -1, visual, basePosition=self._body_position().tolist())

    @classmethod
    def at_thor_pose(cls, scene: Scene, position: dict[str, float], yaw_deg: float,
                     config: RobotConfig | None = None) -> Robot:
        """A robot at an AI2-THOR agent pose (e.g. a RoomR episode's agent_position/rotation)."""
        return cls(scene, RobotPose(float(position["z"]), float(position["x"]), float(yaw_deg)), config)

    # ------------------------------------------------------------------ geometry

    @property
    def holding(self) -> str | None:
        return None if self.held is None else self.held.main

    def _body_position(self) -> np.ndarray:
        return np.array([self.pose.x, self.pose.y, self.scene.floor_z + self.config.body_height_m / 2])

    def camera_position(self) -> np.ndarray:
        return np.array([self.pose.x, self.pose.y, self.scene.floor_z + self.config.camera_height_m])

    def distance_to(self, ref: str) -> float:
        """Horizontal distance from the base center to the object's box footprint."""
        lo, hi = self.scene.box(ref)
        xy = np.array([self.pose.x, self.pose.y])
        return float(np.linalg.norm(xy - np.clip(xy, lo[:2], hi[:2])))

    def in_reach(self, ref: str) -> bool:
        lo, _ = self.scene.box(ref)
        top = self.scene.floor_z + self.config.camera_height_m + 0.4
        return self.distance_to(ref) <= self.config.reach_m and lo[2] <= top

    def _home_in_reach(self, obj: SimObject) -> bool:
        """The furniture's closed box is in reach (an open drawer slides away from where it was reached)."""
        xy = np.array([self.pose.x, self.pose.y])
        lo, hi = obj.home[:2] - obj.size[:2] / 2, obj.home[:2] + obj.size[:2] / 2
        return float(np.linalg.norm(xy - np.clip(xy, lo, hi))) <= self.config.reach_m

    def _carry_point(self) -> np.ndarray:
        yaw = math.radians(self.pose.yaw_deg)
        ahead = self.config.carry_ahead_m
        return np.array([self.pose.x + ahead * math.cos(yaw), self.pose.y + ahead * math.sin(yaw),
                         self.scene.floor_z + self.config.carry_height_m])

    def _sync(self) -> None:
        """Move the base body and whatever is held to the current pose."""
        self.scene.client.resetBasePositionAndOrientation(self.body, self._body_position().tolist(), [0, 0, 0, 1])
        if self.held is not None:
            carry = self._carry_point()
            for oid, offset in self.held.offsets.items():
                self.scene.set_center(oid, carry + offset)

    def _aim(self, ref: str) -> None:
        """Turn base and head toward the object's box center."""
        center = self.scene.center(ref)
        cam = self.camera_position()
        delta = center - cam
        self.pose.yaw_deg = math.degrees(math.atan2(delta[1], delta[0]))
        self.pitch_deg = float(np.clip(math.degrees(math.atan2(-delta[2], np.hypot(delta[0], delta[1]))), -30, 80))
        self._sync()

    def _done(self, skill: str, target: str | None, seconds: float = 0.0, **kw: float) -> SkillResult:
        self.counters[skill] += 1
        self.scene.t += seconds
        return SkillResult(skill, None, target, **kw)

    def _failed(self, skill: str, target: str | None, kind: FailureKind, obj: str | None = None,
                receptacle: str = "", detail: str = "") -> SkillResult:
        """A failed skill on ``target`` (an object id or a name); the failure names objects by type
        (``obj`` defaults to the target's)."""
        self.counters[skill] += 1
        return SkillResult(skill, Failure(kind, self._type_of(target) if obj is None else obj, receptacle, detail),
                           target)

    def _type_of(self, ref: str | None) -> str:
        """The object type of an object id ("" for none; the name itself when the scene has no such object)."""
        if ref is None:
            return ""
        try:
            return self.scene.get(ref).object_type
        except KeyError:
            return ref

    def _known(self, ref: str) -> str | None:
        try:
            obj = self.scene.get(ref)
        except KeyError:
            return None
        return obj.object_id if obj.present else None

    # ------------------------------------------------------------------ perception

    def observe(self) -> CameraFrame:
        """The head camera's frame now."""
        cfg = self.config
        return self._camera(cfg.width, cfg.height)

    def _camera(self, width: int, height: int) -> CameraFrame:
        """A head-camera frame, self-filtered as a robot's perception is (robot_self_filter): what the
        gripper holds is part of the robot, not a detection (else a carried object would leave a trail
        of copies along the way in memory). Its depth still hides what is behind it."""
        frame = render(self.scene, self.camera_position(), self.pose.yaw_deg, self.pitch_deg, width, height,
                       self.config.vfov_deg)
        if self.held is None:
            return frame
        held = [b for b, oid in frame.object_ids.items() if oid in self.held.offsets]
        if held:
            frame.instance_mask[np.isin(frame.instance_mask, held)] = -1
            for body in held:
                for table in (frame.labels, frame.object_ids, frame.states):
                    table.pop(body, None)
        return frame

    def visible_pixels(self, ref: str) -> int:
        """How many pixels of the object the head camera sees now (low-resolution render)."""
        oid = self.scene.get(ref).object_id
        cfg = self.config
        frame = render(self.scene, self.camera_position(), self.pose.yaw_deg, self.pitch_deg,
                       max(cfg.width // 2, 160), max(cfg.height // 2, 120), cfg.vfov_deg)
        return sum(int(np.count_nonzero(frame.instance_mask == b)) for b, o in frame.object_ids.items() if o == oid)

    def rotate(self, degrees: float | None = None) -> SkillResult:
        """Turn in place (default: one yaw step to the left)."""
        self.pose.yaw_deg = (self.pose.yaw_deg + (self.config.yaw_step_deg if degrees is None else degrees)) % 360
        self._sync()
        return self._done("rotate", None, seconds=self.config.turn_s)

    def tilt(self, pitch_deg: float) -> SkillResult:
        """Set the head's downward tilt (degrees, -30 .. 80)."""
        self.pitch_deg = float(np.clip(pitch_deg, -30, 80))
        return self._done("tilt", None, seconds=self.config.turn_s)

    def look_around(self) -> list[CameraFrame]:
        """A full turn in yaw steps, one frame per heading (the first before turning)."""
        frames = []
        for _ in range(max(1, round(360 / self.config.yaw_step_deg))):
            frames.append(self.observe())
            self.rotate()
        return frames

    def look_inside(self, ref: str, tilts_deg: tuple[float, ...] = (0.0, 15.0)) -> list[CameraFrame]:
        """Frames of what an open receptacle holds: the head aimed at it, then tilted lower (a drawer's
        floor, a low shelf), each a moment later (no skill call: part of opening it)."""
        oid = self._known(ref)
        if oid is None:
            return []
        self._aim(oid)
        aimed = self.pitch_deg
        frames = []
        for tilt in tilts_deg:
            self.pitch_deg = float(np.clip(aimed + tilt, -30, 80))
            self._sync()
            self.scene.t += self.config.turn_s / 2
            frames.append(self.observe())
        return frames

    def look_at(self, ref: str) -> SkillResult:
        """Turn base and head toward an object."""
        oid = self._known(ref)
        if oid is None:
            return self._failed("look_at", ref, FailureKind.UNKNOWN_OBJECT)
        self._aim(oid)
        return self._done("look_at", oid, seconds=self.config.turn_s)

    # ------------------------------------------------------------------ navigation

    def navigate_to(self, target: str | tuple[float, float]) -> SkillResult:
        """Go next to an object (a free cell from which it is in reach, nearest by path; then
        face it) or to a map (x, y) point."""
        grid = NavGrid(self.scene, np.array([self.pose.x, self.pose.y]), self.config.radius_m)
        xs, ys = grid.centers()
        if isinstance(target, str):
            oid = self._known(target)
            if oid is None:
                return self._failed("navigate", target, FailureKind.UNKNOWN_OBJECT)
            lo, hi = self.scene.box(oid)
            dx = np.maximum(np.maximum(lo[0] - xs, xs - hi[0]), 0.0)
            dy = np.maximum(np.maximum(lo[1] - ys, ys - hi[1]), 0.0)
            goals = grid.same_side(np.hypot(dx, dy) <= self.config.reach_m - grid.cell, lo, hi)
        else:
            oid = None
            goals = np.zeros(grid.shape, dtype=bool)
            goals[grid.cell_of(np.asarray(target, float))] = True
        route = grid.plan(np.array([self.pose.x, self.pose.y]), goals)
        if route is None:
            kind = FailureKind.NO_PATH if goals.any() else FailureKind.UNREACHABLE
            return self._failed("navigate", oid or str(target), kind, obj=self._type_of(oid))
        cells, length = route
        if self.config.perceive_en_route and self.on_frame is not None:
            self._drive_and_look(grid, cells)
        end = grid.xy_of(cells[-1])
        if len(cells) > 1:
            last = np.asarray(cells[-1]) - np.asarray(cells[-2])
            self.pose.yaw_deg = math.degrees(math.atan2(last[1], last[0]))
        self.pose.x, self.pose.y = float(end[0]), float(end[1])
        self.pitch_deg = self.config.pitch_deg
        self._sync()
        if oid is not None:
            self._aim(oid)
        self.nav_cells += len(cells) - 1
        self.nav_distance_m += length
        return self._done("navigate", oid or str(target), seconds=length / self.config.speed_mps,
                          cells=len(cells) - 1, distance_m=length)

    def _drive_and_look(self, grid: NavGrid, cells: list[tuple[int, int]]) -> None:
        """Follow the path; every ``en_route_every_m`` render a frame along the heading for :attr:`on_frame`
        (the sim clock advances with the driving)."""
        cfg = self.config
        xy = np.array([grid.xy_of(c) for c in cells])
        steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        t0, travelled, next_at = self.scene.t, 0.0, cfg.en_route_every_m
        for k, step in enumerate(steps, start=1):
            travelled += float(step)
            if travelled + 1e-9 < next_at or k == len(cells) - 1:
                continue
            next_at += cfg.en_route_every_m
            ahead = xy[min(k + 3, len(xy) - 1)] - xy[k - 1]
            self.pose = RobotPose(float(xy[k, 0]), float(xy[k, 1]), math.degrees(math.atan2(ahead[1], ahead[0])))
            self.pitch_deg = cfg.pitch_deg
            self._sync()
            self.scene.t = t0 + travelled / cfg.speed_mps
            frame = self._camera(cfg.en_route_width, cfg.en_route_height)
            self.en_route_frames += 1
            assert self.on_frame is not None
            self.on_frame(frame)
        self.scene.t = t0  # the skill's own duration is added when it completes

    # ------------------------------------------------------------------ manipulation

    def _hidden_by(self, oid: str) -> str | None:
        """The closed receptacle whose box holds the object, if any."""
        truth = snapshot(self.scene)
        me = truth.objects.get(oid)
        for rec in me.receptacles if me else ():
            r = truth.objects[rec]
            if r.is_open is False and np.all(np.abs(me.center - r.center) <= r.size / 2 + 0.02):
                return r.object_type
        return None

    def pick(self, ref: str) -> SkillResult:
        """Pick up a pickupable object in reach that the camera sees (things in or on it come along)."""
        oid = self._known(ref)
        if self.held is not None:
            return self._failed("pick", oid or ref, FailureKind.HAND_FULL)
        if oid is None:
            return self._failed("pick", ref, FailureKind.UNKNOWN_OBJECT)
        if not self.scene.get(oid).pickupable:
            return self._failed("pick", oid, FailureKind.NOT_PICKUPABLE)
        if not self.in_reach(oid):
            return self._failed("pick", oid, FailureKind.UNREACHABLE)
        closed = self._hidden_by(oid)
        if closed is not None:
            return self._failed("pick", oid, FailureKind.INSIDE_CLOSED, receptacle=closed)
        self._aim(oid)
        if self.visible_pixels(oid) < self.config.visibility_px:
            return self._failed("pick", oid, FailureKind.NOT_VISIBLE)
        riders = self.scene.riders(oid)
        main_center = self.scene.center(oid)
        self.held = _Held(oid, {o: self.scene.center(o) - main_center for o in [oid, *riders]})
        self.scene.held.update(self.held.offsets)
        self._sync()
        return self._done("pick", oid, seconds=self.config.manipulation_s)

    def place(self, ref: str) -> SkillResult:
        """Put the held object on (or into, for openable receptacles and containers) a
        receptacle in reach, at the free spot nearest the robot."""
        rec = self._known(ref)
        held = self._type_of(self.holding)

        def failed(target: str, kind: FailureKind) -> SkillResult:
            return self._failed("place", target, kind, obj=held, receptacle=self._type_of(target))

        if self.held is None:
            return failed(rec or ref, FailureKind.HAND_EMPTY)
        if rec is None:
            return failed(ref, FailureKind.UNKNOWN_RECEPTACLE)
        target = self.scene.get(rec)
        if not target.receptacle:
            return failed(rec, FailureKind.NOT_RECEPTACLE)
        if rec in self.held.offsets:
            return failed(rec, FailureKind.RECEPTACLE_HELD)
        if not self.in_reach(rec):
            return failed(rec, FailureKind.UNREACHABLE)
        if goes_inside(self.scene, rec) and target.is_open is False:
            return failed(rec, FailureKind.RECEPTACLE_CLOSED)
        here = np.array([self.pose.x, self.pose.y])
        spot = find_spot(self.scene, self.held.main, rec, here, set(self.held.offsets),
                         max_xy_dist=self.config.reach_m + self.config.radius_m)
        if spot is None:
            return failed(rec, FailureKind.NO_FREE_SPOT)
        main = self.held.offsets[self.held.main]
        for oid, offset in self.held.offsets.items():
            self.scene.set_center(oid, spot + offset - main)
        self.scene.held.difference_update(self.held.offsets)
        placed, self.held = self.held.main, None
        self._aim(placed)  # the head follows the hand: the next frame shows where the object now is
        return self._done("place", rec, seconds=self.config.manipulation_s)

    def _set_open(self, skill: str, ref: str, value: float) -> SkillResult:
        oid = self._known(ref)
        if oid is None:
            return self._failed(skill, ref, FailureKind.UNKNOWN_OBJECT)
        obj = self.scene.get(oid)
        if obj.openness is None:
            return self._failed(skill, oid, FailureKind.NOT_OPENABLE)
        if oid in self.scene.held:
            return self._failed(skill, oid, FailureKind.OBJECT_HELD)
        if not self.in_reach(oid) and not self._home_in_reach(obj):
            return self._failed(skill, oid, FailureKind.UNREACHABLE)
        if obj.is_open == (value > 0):
            return self._failed(skill, oid, FailureKind.ALREADY, detail="open" if value > 0 else "closed")
        self._aim(oid)
        self.scene.set_openness(oid, value, carry=True, animate=self.config.animate_joints)
        if value > 0:
            self._aim(oid)  # look into what it opened (a drawer pulled out is no longer where it was)
        return self._done(skill, oid, seconds=self.config.manipulation_s)

    def open(self, ref: str) -> SkillResult:
        """Open a door, drawer or lid in reach fully."""
        return self._set_open("open", ref, 1.0)

    def close(self, ref: str) -> SkillResult:
        """Close it."""
        return self._set_open("close", ref, 0.0)

    def toggle(self, ref: str, on: bool) -> SkillResult:
        """Switch an appliance in reach on or off."""
        skill = "toggle_on" if on else "toggle_off"
        oid = self._known(ref)
        if oid is None:
            return self._failed(skill, ref, FailureKind.UNKNOWN_OBJECT)
        obj = self.scene.get(oid)
        if obj.toggled is None:
            return self._failed(skill, oid, FailureKind.NOT_TOGGLEABLE)
        if not self.in_reach(oid):
            return self._failed(skill, oid, FailureKind.UNREACHABLE)
        if obj.toggled == on:
            return self._failed(skill, oid, FailureKind.ALREADY, detail="on" if on else "off")
        self._aim(oid)
        self.scene.set_toggled(oid, on)
        return self._done(skill, oid, seconds=self.config.manipulation_s)

    @property
    def skill_calls(self) -> int:
        return sum(self.counters.values())
