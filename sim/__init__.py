"""robomem_sim: real AI2-THOR rooms rebuilt in PyBullet (DIRECT mode) for simulated household task runs.

Every object of an iTHOR room's recorded metadata (the PyPI wheel procthor==0.0.1.dev2, read
through :mod:`robomem.thor.scene`) becomes a pybullet body at its real box, in the
z-up map frame of :func:`robomem.thor.frames.yup_to_zup`: pickupable objects as movable
boxes, drawers on prismatic joints, cabinets, fridges, microwaves and safes with a door on a
revolute joint, the rest fixed. RoomR episodes (``../shared/data/roomr``) put the room in its
"target" (as it should be) or "start" (after someone moved things) arrangement.

* :mod:`~robomem_sim.scene` — :class:`Scene` / :func:`build_scene`: bodies, openness, toggles,
  arrangements.
* :mod:`~robomem_sim.robot` — :class:`Robot`: navigate, rotate, look, pick, place, open, close,
  toggle; each returns a :class:`SkillResult`.
* :mod:`~robomem_sim.camera` — :class:`CameraFrame`: RGB-D, instance mask, labels, intrinsics and
  the optical-frame pose, for ``robomem.perception``.
* :mod:`~robomem_sim.house` — :class:`House`: the four iTHOR rooms of one index (kitchen, living
  room, bedroom, bathroom) along a hallway with doorways, room regions for ``MemoryConfig.rooms``.
* :mod:`~robomem_sim.house_tasks` / :mod:`~robomem_sim.house_runner` — task suite v2 in houses and its
  runs (morning walk cached per house, memory off / short_term / full).
* :mod:`~robomem_sim.truth` — ground truth and the goal predicates :class:`On`, :class:`Inside`,
  :class:`State` (goal checking and tests only, never memory's input).
"""

from robomem_sim.camera import CameraFrame, render
from robomem_sim.house import House, build_house
from robomem_sim.robot import Robot, RobotConfig, RobotPose, SkillResult
from robomem_sim.scene import Scene, SimObject, build_scene
from robomem_sim.truth import Inside, ObjectTruth, On, SceneTruth, State, holds, snapshot

__all__ = [
    "CameraFrame",
    "House",
    "Inside",
    "ObjectTruth",
    "On",
    "Robot",
    "RobotConfig",
    "RobotPose",
    "Scene",
    "SceneTruth",
    "SimObject",
    "SkillResult",
    "State",
    "build_house",
    "build_scene",
    "holds",
    "render",
    "snapshot",
]
