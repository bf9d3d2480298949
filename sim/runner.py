"""Simulated household task runs with memory ``off``, ``short_term`` or ``full``.

Per task: the robot explores the room as it should be (RoomR target arrangement, "this morning"),
leaves for an hour while things are moved (start arrangement), comes back, and the offline
planner (:mod:`robomem.planner`) carries out the instruction.
Memory is fed only through perception of the robot's rendered frames (:mod:`robomem_sim.perceive`).

* ``off``: the planner's tools see only a memory fed during the task itself;
* ``short_term``: that, plus the short-term buffer of change events (with positions) of the
  robot's memory (which saw the morning); nothing from long-term memory;
* ``full``: the robot's long-term + short-term memory.

Every mode gets the same task, seed and :class:`~robomem.planner.Budget`. Success is the goal on
the simulator's true state.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.core import Memory, MemoryConfig
from robomem.core.types import ObservationBatch
from robomem.planner import (
    Agent,
    Budget,
    CountingTools,
    FailureKind,
    InProcessTools,
    ShortTermTools,
    Spent,
    Step,
    StepResult,
)
from robomem_sim.navigation import NavGrid
from robomem_sim.perceive import Eyes, MemoryFeed, event_center
from robomem_sim.robot import Robot, RobotConfig
from robomem_sim.scene import Scene, build_scene
from robomem_sim.tasks import Task
from robomem_sim.truth import snapshot

MODES = ("off", "short_term", "full")
AWAY_S = 3600.0  # the robot is away this long while things are moved
VIEWPOINT_SPACING_M = 1.5
DEFAULT_BUDGET = Budget(max_skill_calls=40, max_nav_m=40.0)  # a household robot's few minutes for one task
CAMERA = RobotConfig()  # 320x240, 12 frames per look-around
GROUND_TOL_M = 0.35  # an object is "there" if its true center is this close to memory's belief


# ---------------------------------------------------------------------- viewpoints


def viewpoints(scene: Scene, spacing: float = VIEWPOINT_SPACING_M, clearance: float = 0.3) -> list[tuple[float, float]]:
    """A deterministic sweep over reachable poses: a lattice of ``spacing`` snapped to free cells
    with some clearance (nearest-first order is the explorer's job)."""
    grid = NavGrid(scene, None, CAMERA.radius_m)
    ok = grid.free & (grid.clearance >= clearance)
    if not ok.any():
        ok = grid.free
    xs, ys = grid.centers()
    out: list[tuple[float, float]] = []
    lo, hi = scene.floor_lo, scene.floor_hi
    for x in np.arange(lo[0] + spacing / 2, hi[0], spacing):
        for y in np.arange(lo[1] + spacing / 2, hi[1], spacing):
            d = np.where(ok, np.hypot(xs - x, ys - y), np.inf)
            k = np.unravel_index(int(np.argmin(d)), d.shape)
            if d[k] <= spacing / 2:
                p = (round(float(xs[k]), 3), round(float(ys[k]), 3))
                if p not in out:
                    out.append(p)
    return out


def sweep_order(points: Sequence[tuple[float, float]], start: tuple[float, float]) -> list[tuple[float, float]]:
    """Greedy nearest-first tour."""
    todo, here, out = list(points), start, []
    while todo:
        nxt = min(todo, key=lambda p: (math.dist(p, here), p))
        todo.remove(nxt)
        out.append(nxt)
        here = nxt
    return out


# ---------------------------------------------------------------------- the robot for the planner


class SimExecutor:
    """Drives the simulated robot for the planner; every action is followed by a camera frame that
    feeds the attached memories. Objects are named by memory's record (label + position); the
    simulator grounds a record to the physical object of that type at that place (as the robot's
    gripper would), or the action fails with ``FailureKind.NOT_FOUND`` ("not found at believed
    position"). "Already open" (closed, on, off) counts as done."""

    def __init__(self, scene: Scene, robot: Robot, eyes: Eyes, points: list[tuple[float, float]]) -> None:
        self.scene, self.robot, self.eyes, self.points = scene, robot, eyes, points
        self.t0 = scene.t
        self.calls = 0
        self.nav0, self.cells0 = robot.nav_distance_m, robot.nav_cells

    # -- Executor protocol
    def position(self) -> tuple[float, float]:
        return (self.robot.pose.x, self.robot.pose.y)

    def now(self) -> float:
        return self.scene.t

    def holding(self) -> str | None:
        held = self.robot.holding
        return None if held is None else self.scene.get(held).object_type

    def viewpoints(self) -> list[tuple[float, float]]:
        return self.points

    def spent(self) -> Spent:
        return Spent(self.calls, self.robot.nav_distance_m - self.nav0, self.scene.t - self.t0)

    def observe(self) -> None:
        self.eyes.see(self.robot.observe())

    def look_around(self) -> None:
        self.calls += 1
        self.eyes.see(self.robot.look_around())

    def go_to(self, xy: tuple[float, float]) -> StepResult:
        self.calls += 1
        result = self.robot.navigate_to(xy)
        return StepResult(result.success, result.failure)

    def act(self, step: Step) -> StepResult:
        self.calls += 1
        rec = step.target
        oid = self.ground(rec)
        if step.skill == "navigate_to":
            result = self.robot.navigate_to(oid) if oid else self._approach(np.asarray(rec.center))
            self.observe()
            if oid is None:
                return StepResult.failed(FailureKind.NOT_FOUND, rec.label) if result else self._failed(result, rec)
            return StepResult(result.success, result.failure)
        if oid is None:
            self.observe()
            return StepResult.failed(FailureKind.NOT_FOUND, *self._names(step))
        if step.skill in ("toggle_on", "toggle_off"):
            result = self.robot.toggle(oid, step.skill == "toggle_on")
        else:
            result = getattr(self.robot, step.skill)(oid)
        if step.skill == "open" and result.success:
            for frame in self.robot.look_inside(oid):  # what it holds, seen from a few head tilts
                self.eyes.see(frame)
        self.observe()
        if result.success or result.failure.kind is FailureKind.ALREADY:
            return StepResult.ok()
        return StepResult(False, result.failure)

    def _names(self, step: Step) -> tuple[str, str]:
        """The failure fields (object, receptacle) of a step whose target was not found: a place's target
        is the receptacle (the object is the one held)."""
        if step.skill == "place":
            return (self.holding() or "", step.target.label)
        return (step.target.label, "")

    @staticmethod
    def _failed(result: Any, rec: Any) -> StepResult:
        """Driving toward a believed place where nothing was failed: the failure names the record."""
        return StepResult.failed(result.failure.kind, rec.label, detail=result.failure.detail)

    # -- helpers
    def ground(self, rec: Any) -> str | None:
        """The present object of the record's type at the record's place (nearest), or None."""
        center = np.asarray(rec.center, float)
        best, best_d = None, math.inf
        for obj in self.scene.of_type(rec.label):
            lo, hi = self.scene.box(obj.object_id)
            if obj.kind == "movable":
                if obj.object_id in self.scene.held and obj.object_id != self.robot.holding:
                    continue
                here = self.scene.center(obj.object_id)  # or where it was seen, in its drawer pulled open
                d = min(float(np.linalg.norm(here - center)),
                        float(np.linalg.norm(here + self.scene.drawer_shift(obj.object_id) - center)))
                ok = d <= max(GROUND_TOL_M, 0.6 * float(np.max(obj.size)))
            else:
                boxes = [(lo, hi)]
                if obj.kind == "drawer":  # a drawer is where it was seen, pulled open or pushed in
                    half = obj.size / 2
                    travel = obj.joint.front * obj.joint.upper
                    boxes += [(obj.home - half, obj.home + half), (obj.home + travel - half, obj.home + travel + half)]
                d = min(float(np.linalg.norm(center - np.clip(center, b_lo, b_hi))) for b_lo, b_hi in boxes)
                ok = d <= GROUND_TOL_M
            if ok and d < best_d:
                best, best_d = obj.object_id, d
        return best

    def _approach(self, point: np.ndarray) -> Any:
        """Drive next to a believed place where nothing is, and look at it."""
        grid = NavGrid(self.scene, np.array(self.position()), self.robot.config.radius_m)
        xs, ys = grid.centers()
        goals = grid.same_side(np.hypot(xs - point[0], ys - point[1]) <= self.robot.config.reach_m, point, point)
        route = grid.plan(np.array(self.position()), goals)
        if route is None:
            return self.robot.navigate_to((float(point[0]), float(point[1])))
        result = self.robot.navigate_to(tuple(float(v) for v in grid.xy_of(route[0][-1])))
        cam = self.robot.camera_position()
        yaw = math.degrees(math.atan2(point[1] - cam[1], point[0] - cam[0]))
        self.robot.rotate((yaw - self.robot.pose.yaw_deg + 180.0) % 360.0 - 180.0)
        self.robot.tilt(math.degrees(math.atan2(cam[2] - point[2], math.hypot(*(point[:2] - cam[:2])))))
        return result


# ---------------------------------------------------------------------- history


@dataclass
class History:
    """What the robot saw this morning (perceived batches) and when."""

    batches: list[ObservationBatch]
    morning_end: float
    points: list[tuple[float, float]]
    seen: frozenset[str] = frozenset()  # objectIds in any frame (ground truth, for tests only)


def explore_history(scene: Scene, task: Task) -> History:
    """The morning walk: the room as it should be, every viewpoint visited, a look-around at each."""
    ep = task.roomr()
    scene.apply_episode(ep, "target")
    scene.t = 0.0
    points = viewpoints(scene)
    robot = Robot.at_thor_pose(scene, ep["agent_position"], ep["agent_rotation"], CAMERA)
    eyes = Eyes()
    batches: list[ObservationBatch] = []
    seen: set[str] = set()
    for p in sweep_order(points, (robot.pose.x, robot.pose.y)):
        if robot.navigate_to(p):
            for frame in robot.look_around():
                batches.append(eyes.perceive(frame))
                seen.update(frame.object_ids.values())
    scene.client.removeBody(robot.body)
    return History(batches, scene.t, points, frozenset(seen))


@functools.lru_cache(maxsize=1)
def _embedder() -> Any:
    from robomem.core.embedding import MiniLMEmbedder

    return MiniLMEmbedder()


def new_memory() -> Memory:
    return Memory(MemoryConfig(db_path=":memory:"), embedder=_embedder())


# ---------------------------------------------------------------------- one run


def mode_tools(mode: str, view: Memory, robot_memory: Memory | None) -> Any:
    """The planner's memory tools in a memory mode: ``view`` is what the robot sees during the task,
    ``robot_memory`` its memory since the morning (unused when ``off``)."""
    if mode == "off" or robot_memory is None:
        return InProcessTools(view, long_term=False)
    if mode == "full":
        return InProcessTools(robot_memory)

    def events() -> list[tuple[Any, np.ndarray]]:
        return [(e, c) for e in robot_memory.stm.events() if (c := event_center(e)) is not None]

    return ShortTermTools(events, InProcessTools(view, long_term=False))


def phrase_times(morning_end: float) -> dict[str, float]:
    """What the time phrases of instructions mean: the end of the morning walk."""
    return dict.fromkeys(("this morning", "today", "earlier"), morning_end)


def run_task(task: Task, mode: str, scene: Scene, history: History, budget: Budget = DEFAULT_BUDGET
             ) -> dict[str, Any]:
    """Run one task in one memory mode on ``scene`` (reset to the start arrangement); metrics."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    wall = time.perf_counter()
    ep = task.roomr()
    scene.apply_episode(ep, "start")
    scene.t = history.morning_end + AWAY_S
    eyes = Eyes()
    memories: list[Memory] = []
    view = new_memory()  # what the robot sees during the task itself
    memories.append(view)
    eyes.feeds.append(MemoryFeed(view))
    robot_memory = None
    if mode != "off":
        robot_memory = new_memory()
        memories.append(robot_memory)
        feed = MemoryFeed(robot_memory)
        for batch in history.batches:
            feed.ingest(batch)
        eyes.feeds.append(feed)
    tools = mode_tools(mode, view, robot_memory)
    counted = CountingTools(tools)
    robot = Robot.at_thor_pose(scene, ep["agent_position"], ep["agent_rotation"], CAMERA)
    executor = SimExecutor(scene, robot, eyes, history.points)
    try:
        agent = Agent(counted, executor, budget, times=phrase_times(history.morning_end))
        outcome = agent.run(task.instruction)
        success = task.check(snapshot(scene))
    finally:
        scene.client.removeBody(robot.body)
        for m in memories:
            m.close()
    spent = executor.spent()
    reason = "" if success else (outcome.reason or "goal not met")
    return {
        "task": task.task_id, "scene": task.scene, "kind": task.kind, "mode": mode,
        "instruction": task.instruction, "success": bool(success), "failure": reason,
        "nav_steps": robot.nav_cells, "nav_m": round(spent.nav_m, 2), "explore_steps": outcome.explore_steps,
        "skill_calls": spent.skill_calls, "memory_queries": counted.total, "queries": dict(counted.calls),
        "replans": outcome.replans, "invalid_plans": outcome.invalid_plans, "sim_time_s": round(spent.time_s, 1),
        "frames": eyes.frames, "plans": outcome.plans, "wall_s": round(time.perf_counter() - wall, 3),
    }


# ---------------------------------------------------------------------- the suite


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values else 0.0


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (scipy's binomtest); (0, 1) for no runs."""
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return (round(float(ci.low), 4), round(float(ci.high), 4))


def success_counts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(bool(r["success"]) for r in runs)
    return {"n": len(runs), "successes": ok, "rate": ok / len(runs) if runs else 0.0, "ci95": wilson(ok, len(runs))}


def aggregate(runs: list[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    """Per mode: success rate (with its 95 % Wilson interval), mean steps, queries, wall time; per kind and
    per category success (with intervals); full/off ratios; driving against the oracle's."""
    out: dict[str, Any] = {}
    for mode in modes:
        rs = [r for r in runs if r["mode"] == mode]
        kinds = sorted({r["kind"] for r in rs})
        categories = sorted({r["category"] for r in rs if r.get("category")})
        out[mode] = {
            "n": len(rs),
            "success_rate": _mean(r["success"] for r in rs),
            "success_ci95": wilson(sum(bool(r["success"]) for r in rs), len(rs)),
            "success_by_kind": {k: _mean(r["success"] for r in rs if r["kind"] == k) for k in kinds},
            "success_by_category": {c: success_counts([r for r in rs if r["category"] == c]) for c in categories},
            **{f"mean_{key}": _mean(r[key] for r in rs)
               for key in ("nav_steps", "nav_m", "explore_steps", "skill_calls", "memory_queries", "frames", "wall_s")},
        }
    ratios: dict[str, float | None] = {}
    if "off" in out:
        for mode in ("short_term", "full"):
            if mode not in out:
                continue
            off, mem = out["off"], out[mode]
            ratios[f"{mode}/off success"] = mem["success_rate"] / off["success_rate"] if off["success_rate"] else None
            ratios[f"{mode}/off explore_steps"] = (
                mem["mean_explore_steps"] / off["mean_explore_steps"] if off["mean_explore_steps"] else None)
            for key in ("nav_steps", "nav_m", "skill_calls", "frames"):
                ratios[f"{mode}/off {key}"] = mem[f"mean_{key}"] / off[f"mean_{key}"] if off[f"mean_{key}"] else None
    oracle = {r["task"]: r["oracle_nav_m"] for r in runs if r.get("oracle_nav_m")}
    for mode in modes:
        both = [r for r in runs if r["mode"] == mode and r["success"] and r["task"] in oracle]
        if both:  # driving on the tasks both this mode and the scripted oracle finish
            ratios[f"{mode}/oracle nav_m"] = sum(r["nav_m"] for r in both) / sum(oracle[r["task"]] for r in both)
    out["ratios"] = ratios
    return out


def run_suite(
    modes: Sequence[str] = MODES,
    tasks: Sequence[Any] | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    budget: Budget = DEFAULT_BUDGET,
    seed: int = 0,
    memory_backend: Any = None,
) -> dict[str, Any]:
    """Run every task in every mode (default: the house suite, :mod:`robomem_sim.house_tasks`; single-room
    :class:`~robomem_sim.tasks.Task` lists run as before). ``progress(done, total, run)`` after each run.

    Returns ``{"runs": [per-run metrics], "summary": {mode: {...}, "ratios": {...}}, "budget": {...},
    "tasks": n, "houses": {house: {"walk_frames", "walk_s", "tasks"}}, "wall_s": s}``."""
    from robomem_sim.house_runner import house_history, run_house_task
    from robomem_sim.house_tasks import HouseTask, build_house_suite

    wall = time.perf_counter()
    tasks = list(build_house_suite(seed, budget=budget) if tasks is None else tasks)
    total, runs = len(tasks) * len(modes), []
    houses: dict[str, dict[str, Any]] = {}

    def done(run: dict[str, Any]) -> None:
        runs.append(run)
        if progress is not None:
            progress(len(runs), total, run)

    by_scene: dict[str, list[Any]] = {}
    for task in tasks:
        by_scene.setdefault(task.scene, []).append(task)
    for name, group in by_scene.items():
        if isinstance(group[0], HouseTask):
            with group[0].setup.build() as house:
                for task in group:
                    t0 = time.perf_counter()
                    history = house_history(house, task.setup)
                    info = houses.setdefault(task.setup.key, {"walk_frames": history.frames, "tasks": 0,
                                                              "walk_s": round(time.perf_counter() - t0, 1)})
                    info["tasks"] += 1
                    for mode in modes:
                        done(run_house_task(task, mode, house, history, budget, memory_backend))
            continue
        with build_scene(name) as scene:
            histories: dict[int, History] = {}
            for task in group:
                if task.episode not in histories:
                    histories[task.episode] = explore_history(scene, task)
                for mode in modes:
                    done(run_task(task, mode, scene, histories[task.episode], budget))
    order = {t.task_id: k for k, t in enumerate(tasks)}
    runs.sort(key=lambda r: (order[r["task"]], list(modes).index(r["mode"])))
    return {"runs": runs, "summary": aggregate(runs, modes), "tasks": len(tasks), "houses": houses,
            "budget": {"max_skill_calls": budget.max_skill_calls, "max_nav_m": budget.max_nav_m,
                       "max_time_s": budget.max_time_s}, "wall_s": round(time.perf_counter() - wall, 1)}
