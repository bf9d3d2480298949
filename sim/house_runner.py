"""Household task runs in a house (:mod:`robomem_sim.house_tasks`) with memory off / short_term / full.

The morning walk is done once per house: the robot drives room by room (nearest room first), looks
around at every viewpoint, opens every drawer, cabinet and appliance it can reach to look inside
(and closes it again), and perceives continuously while driving. Its memory is written to one
SQLite file per house; every run with memory opens a copy of it. Every task then starts in the
hallway, in the after-state, with the same :class:`~robomem.planner.Budget` for every mode.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from robomem.core import Memory, MemoryConfig
from robomem.core.experience import TaskEpisode
from robomem.planner import Agent, Budget, CountingTools
from robomem.planner.agent import Outcome
from robomem.planner.experience import run_episode
from robomem.planner.plan import RECEPTACLE_OPENABLE
from robomem.planner.travel import DOOR, FLOOR
from robomem_sim.house import House
from robomem_sim.house_tasks import HouseSetup, HouseTask, start_robot
from robomem_sim.navigation import NavGrid
from robomem_sim.perceive import Eyes, MemoryFeed
from robomem_sim.robot import RobotConfig
from robomem_sim.runner import AWAY_S, SimExecutor, _embedder, mode_tools, phrase_times, sweep_order
from robomem_sim.scene import WALL_THICK_M
from robomem_sim.truth import snapshot

#: The task-run camera: always on while driving (160x120 every metre), 160x120 look-arounds in 45° steps.
HOUSE_CAMERA = RobotConfig(width=160, height=120, yaw_step_deg=45.0, perceive_en_route=True)
#: The morning walk's camera: look-arounds at 320x240 (small objects), en-route frames still 160x120.
WALK_CAMERA = replace(HOUSE_CAMERA, width=320, height=240)
HOUSE_SPACING_M = 2.0  # viewpoint lattice of a house (a look-around sees a few metres)


def room_viewpoints(house: House, spacing: float = HOUSE_SPACING_M, clearance: float = 0.3
                    ) -> dict[str, list[tuple[float, float]]]:
    """Reachable viewpoints of every room (not the hallway): a lattice snapped to free cells."""
    grid = NavGrid(house, np.array(house.start_xy), HOUSE_CAMERA.radius_m)
    ok = grid.free & (grid.clearance >= clearance)
    xs, ys = grid.centers()
    out: dict[str, list[tuple[float, float]]] = {}
    for room in house.rooms.values():
        inside = ok & (xs >= room.lo[0]) & (xs <= room.hi[0]) & (ys >= room.lo[1]) & (ys <= room.hi[1])
        if not inside.any():
            inside = grid.free & (xs >= room.lo[0]) & (xs <= room.hi[0]) & (ys >= room.lo[1]) & (ys <= room.hi[1])
        pts: list[tuple[float, float]] = []
        n = np.maximum(np.round((room.hi - room.lo) / spacing).astype(int), 1)
        for gx in room.lo[0] + (np.arange(n[0]) + 0.5) * (room.hi[0] - room.lo[0]) / n[0]:
            for gy in room.lo[1] + (np.arange(n[1]) + 0.5) * (room.hi[1] - room.lo[1]) / n[1]:
                d = np.where(inside, np.hypot(xs - gx, ys - gy), np.inf)
                k = np.unravel_index(int(np.argmin(d)), d.shape)
                if np.isfinite(d[k]) and d[k] <= spacing:
                    p = (round(float(xs[k]), 3), round(float(ys[k]), 3))
                    if p not in pts:
                        pts.append(p)
        out[room.name] = pts
    return out


def room_order(rooms: dict[str, list[tuple[float, float]]], start: tuple[float, float]) -> list[str]:
    """Rooms nearest first (by their nearest viewpoint), greedily from ``start``."""
    todo, here, out = [r for r in rooms if rooms[r]], start, []
    while todo:
        nxt = min(todo, key=lambda r: min(math.dist(p, here) for p in rooms[r]))
        out.append(nxt)
        todo.remove(nxt)
        here = sweep_order(rooms[nxt], here)[-1]
    return out


@dataclass
class HouseHistory:
    """The morning walk of a house: its memory (SQLite file), when it ended, where it looked."""

    setup: HouseSetup
    db_path: str
    morning_end: float
    rooms: dict[str, list[tuple[float, float]]]
    rooms_config: list[dict[str, Any]]
    frames: int
    seen: frozenset[str]  # objectIds in any frame (ground truth, for tests only)

    @property
    def points(self) -> list[tuple[float, float]]:
        return [p for pts in self.rooms.values() for p in pts]


def house_memory(rooms_config: list[dict[str, Any]], db_path: str = ":memory:") -> Memory:
    return Memory(MemoryConfig(db_path=db_path, rooms=rooms_config), embedder=_embedder())


def walk_house(house: House, setup: HouseSetup, workdir: str | Path | None = None) -> HouseHistory:
    """The morning walk (see module doc); its memory goes to ``workdir``/<house>.sqlite."""
    setup.morning(house)
    house.t = 0.0
    folder = Path(workdir or tempfile.mkdtemp(prefix="robomem_house_"))
    db = folder / f"{setup.key}-{setup.year}.sqlite"
    db.unlink(missing_ok=True)
    rooms = room_viewpoints(house)
    config = house.rooms_config()
    memory = house_memory(config, str(db))
    eyes = Eyes()
    eyes.feeds.append(MemoryFeed(memory))
    seen: set[str] = set()
    robot = start_robot(house, WALK_CAMERA)

    def see(frame: Any) -> None:
        eyes.see(frame)
        seen.update(frame.object_ids.values())

    robot.on_frame = see
    here = house.start_xy
    for name in room_order(rooms, here):
        for p in sweep_order(rooms[name], (robot.pose.x, robot.pose.y)):
            if robot.navigate_to(p):
                for frame in robot.look_around():
                    see(frame)
        part = house.rooms[name].part
        openables = [oid for oid in part.object_ids if house.get(oid).present
                     and house.get(oid).object_type in RECEPTACLE_OPENABLE]
        for oid in sorted(openables, key=lambda o: (float(np.linalg.norm(house.center(o)[:2] - [robot.pose.x,
                                                                                            robot.pose.y])), o)):
            if not robot.navigate_to(oid):
                continue
            if house.get(oid).is_open:
                see(robot.observe())
                continue
            if robot.open(oid):
                for frame in robot.look_inside(oid):
                    see(frame)
                robot.close(oid)
                see(robot.observe())
    house.client.removeBody(robot.body)
    memory.close()
    return HouseHistory(setup, str(db), house.t, rooms, config, eyes.frames, frozenset(seen))


_HISTORIES: dict[HouseSetup, HouseHistory] = {}


def house_history(house: House, setup: HouseSetup) -> HouseHistory:
    """The morning walk of ``setup``'s house, done once per process (its SQLite file is reused)."""
    if setup not in _HISTORIES or not Path(_HISTORIES[setup].db_path).exists():
        _HISTORIES[setup] = walk_house(house, setup)
    return _HISTORIES[setup]


DOOR_POINT_M = 0.45  # a doorway's points: this far inside the room and outside it


def floor_plan(house: House) -> dict[str, list[tuple[float, float]]]:
    """The house's floor plan as ``Executor.rooms()`` entries (:mod:`robomem.planner.travel`): each room's
    floor box and its doorway (a point inside the room, one in the hallway)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for room in house.rooms.values():
        side, at, _ = room.door
        axis = "xy".index(side[1])
        wall = float(room.lo[axis] if side[0] == "-" else room.hi[axis])
        out_dir = -1.0 if side[0] == "-" else 1.0
        inside, outside = [0.0, 0.0], [0.0, 0.0]
        inside[axis], outside[axis] = wall - out_dir * DOOR_POINT_M, wall + out_dir * (WALL_THICK_M + DOOR_POINT_M)
        inside[1 - axis] = outside[1 - axis] = float(at)
        out[f"{FLOOR}{room.name}"] = [tuple(float(v) for v in room.lo), tuple(float(v) for v in room.hi)]
        out[f"{DOOR}{room.name}"] = [(round(inside[0], 3), round(inside[1], 3)), (round(outside[0], 3),
                                                                              round(outside[1], 3))]
    return out


class HouseExecutor(SimExecutor):
    """:class:`SimExecutor` in a house: viewpoints by room, so the planner can sweep room by room, and the
    floor plan (rooms and doorways), so it can tell how far a place is by the way through the doorways."""

    def __init__(self, scene: House, robot: Any, eyes: Eyes, rooms: dict[str, list[tuple[float, float]]]) -> None:
        super().__init__(scene, robot, eyes, [p for pts in rooms.values() for p in pts])
        self._rooms = {**rooms, **floor_plan(scene)}

    def rooms(self) -> dict[str, list[tuple[float, float]]]:
        return self._rooms


def task_episode(task: HouseTask, outcome: Outcome, success: bool, failure: str, started: float,
                 finished: float, robot_id: str = "sim") -> TaskEpisode:
    """A run as experience memory keeps it (see robomem.planner.experience.run_episode)."""
    return run_episode(task.instruction, outcome, success, failure, started, finished, robot_id)


def run_house_task(task: HouseTask, mode: str, house: House, history: HouseHistory, budget: Budget,
                   memory_backend: Any = None, *, record_experience: bool = False,
                   planner: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """One task in one memory mode, from the hallway in the after-state; metrics as runner.run_task.
    ``memory_backend`` (e.g. :class:`robomem_sim.ros_backend.RosMemoryBackend`) serves full memory from
    elsewhere: its ``session(db_copy, rooms_config)`` yields (feed, tools).

    ``record_experience``: a full-memory run (in-process memory only, not with ``memory_backend``) is
    recorded as a :class:`~robomem.core.experience.TaskEpisode` in the experience memory of the house's
    memory file (``history.db_path``), so later runs (which start from a copy of it) can draw few-shot
    examples from it. ``planner``: ``tools -> Planner`` (e.g. an LLM planner over the run's counted
    tools); default the offline planner."""
    wall = time.perf_counter()
    task.setup.after(house)
    house.t = history.morning_end + AWAY_S
    started = house.t
    eyes = Eyes()
    remote_planner = None  # the planner node, when full memory runs through the ROS nodes
    queries: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        view = house_memory(history.rooms_config)  # what the robot sees during the task itself
        stack.callback(view.close)
        eyes.feeds.append(MemoryFeed(view))
        if mode == "off":
            tools: Any = mode_tools(mode, view, None)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="robomem_run_"))
            copy = Path(folder) / "memory.sqlite"
            shutil.copyfile(history.db_path, copy)
            if mode == "full" and memory_backend is not None:
                session = stack.enter_context(memory_backend.session(copy, history.rooms_config))
                eyes.feeds.append(session.feed)
                tools, remote_planner = session.tools, session.run
            else:
                robot_memory = house_memory(history.rooms_config, str(copy))
                stack.callback(robot_memory.close)
                eyes.feeds.append(MemoryFeed(robot_memory))
                tools = mode_tools(mode, view, robot_memory)
        counted = CountingTools(tools)
        robot = start_robot(house, HOUSE_CAMERA)
        stack.callback(house.client.removeBody, robot.body)
        robot.on_frame = eyes.see
        executor = HouseExecutor(house, robot, eyes, history.rooms)
        times = phrase_times(history.morning_end)
        if remote_planner is not None:
            outcome, queries = remote_planner(executor, task.instruction, budget, times["this morning"])
        else:
            agent = Agent(counted, executor, budget, times=times, planner=planner(counted) if planner else None)
            outcome = agent.run(task.instruction)
            queries = dict(counted.calls)
        success = task.check(snapshot(house))
    spent = executor.spent()
    failure = "" if success else (outcome.reason or "goal not met")
    episode_id = None
    if record_experience and mode == "full" and memory_backend is None:
        keep = house_memory(history.rooms_config, history.db_path)
        try:
            episode_id = keep.experience.record(task_episode(task, outcome, bool(success), failure, started, house.t))
        finally:
            keep.close()
    return {
        "task": task.task_id, "scene": task.scene, "house": task.setup.name, "kind": task.kind,
        "category": task.category, "split": task.setup.split, "oracle_nav_m": task.oracle_nav_m, "mode": mode,
        "instruction": task.instruction, "success": bool(success),
        "failure": failure, "nav_steps": robot.nav_cells,
        "nav_m": round(spent.nav_m, 2), "explore_steps": outcome.explore_steps, "skill_calls": spent.skill_calls,
        "memory_queries": sum(queries.values()), "queries": queries, "replans": outcome.replans,
        "invalid_plans": outcome.invalid_plans, "sim_time_s": round(spent.time_s, 1), "frames": eyes.frames,
        "en_route_frames": robot.en_route_frames, "plans": outcome.plans, "search": outcome.search,
        "planner_calls": outcome.planner_calls, "llm_turns": outcome.llm_turns,
        "prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens,
        "experience_id": episode_id,
        "wall_s": round(time.perf_counter() - wall, 3),
    }
