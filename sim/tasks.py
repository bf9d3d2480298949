"""A household task suite over real RoomR rearrangements (ALFRED-L-like: simple, composite, complex).

Every task has a history: the robot explores the room as it should be (the RoomR episode's
*target* arrangement, "this morning"), leaves, someone moves things (the *start* arrangement) and
the robot comes back for the task. Targets are objects RoomR moved, so memory must have noticed
the change or the robot must search. Complex tasks depend on where things were this morning
("put the mug back where it was this morning", "put back the thing that was moved from the
counter", "bring me the keys I left on the desk this morning").

Goals are predicates over objectIds (or objectTypes) checked on the simulator's true state. A task
is kept only if a scripted oracle plan (true objectIds) achieves it in the start arrangement and
the goal does not already hold.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.planner.language import name_of
from robomem.thor.scene import load_roomr
from robomem_sim.placement import goes_inside
from robomem_sim.robot import Robot
from robomem_sim.scene import Scene, build_scene
from robomem_sim.truth import Inside, On, Predicate, SceneTruth, State, holds, snapshot

KINDS = ("simple", "composite", "complex")
#: Rooms of the suite (reachability and pickability are checked per task by the oracle).
SCENES = tuple(f"FloorPlan{base + n}" for base in (20, 220, 320, 420) for n in range(1, 6))  # RoomR val rooms
#: Where things are naturally put, per room group (first scene number digit).
PUT_ON = {
    0: ("DiningTable", "CounterTop"), 2: ("Sofa", "CoffeeTable", "DiningTable", "ArmChair", "SideTable"),
    3: ("Bed", "Desk", "Dresser", "SideTable"), 4: ("CounterTop", "Shelf", "Dresser"),
}
PUT_IN = {0: ("Fridge", "Microwave"), 2: (), 3: (), 4: ()}
FOOD = frozenset({"Apple", "Bread", "Egg", "Lettuce", "Potato", "Tomato", "Cup", "Mug", "Bowl", "Plate"})


@dataclass(frozen=True)
class Task:
    """One household task with its history."""

    task_id: str
    scene: str
    kind: str  # simple | composite | complex
    instruction: str
    goal: tuple[Predicate, ...]
    year: int
    episode: int  # index into the RoomR val episodes of the scene
    targets: tuple[str, ...]  # objectIds the task is about
    moved: tuple[str, ...]  # those of them RoomR moved while the robot was away
    oracle: tuple[tuple[str, str], ...]  # (skill, objectId) steps that achieve the goal

    def roomr(self) -> dict[str, Any]:
        return load_roomr(self.year)[self.scene][self.episode]

    def check(self, truth: SceneTruth) -> bool:
        """The goal on the simulator's true state."""
        return holds(truth, *self.goal)


def _group(scene: str) -> int:
    n = int(scene.removeprefix("FloorPlan"))
    return n // 100 if n >= 100 else 0


def run_oracle(scene: Scene, robot: Robot, steps: tuple[tuple[str, str], ...]) -> bool:
    """Run scripted (skill, objectId) steps with the true ids; False at the first failure."""
    for skill, oid in steps:
        if skill == "toggle_on":
            result = robot.toggle(oid, True)
        elif skill == "toggle_off":
            result = robot.toggle(oid, False)
        else:
            result = getattr(robot, skill)(oid)
        if not result:
            return False
    return True


def _fetch_steps(scene: Scene, truth: SceneTruth, oid: str) -> list[tuple[str, str]]:
    steps = [("navigate_to", oid)]
    holder = truth.objects[oid].receptacle
    if holder and scene.get(holder).openable and truth.objects[holder].is_open is False:
        steps.append(("open", holder))
    return [*steps, ("pick", oid)]


def put_steps(scene: Scene, truth: SceneTruth, rec: str) -> list[tuple[str, str]]:
    """Go to ``rec`` and place what is held there, opening it first and closing it after if it is closed."""
    closed = scene.get(rec).openable and truth.objects[rec].is_open is False
    return [("navigate_to", rec), *([("open", rec), ("place", rec), ("close", rec)] if closed else [("place", rec)])]


def _place_steps(scene: Scene, truth: SceneTruth, oid: str, rec: str) -> list[tuple[str, str]]:
    return [*_fetch_steps(scene, truth, oid), *put_steps(scene, truth, rec)]


def furniture_holder(scene: Scene, truth: SceneTruth, oid: str) -> str | None:
    """The innermost fixed receptacle (furniture) on the object's chain."""
    return next((r for r in truth.objects[oid].receptacles if scene.get(r).kind != "movable"), None)


def _moved_off(scene: Scene, morning: SceneTruth, now: SceneTruth, oid: str) -> str | None:
    """The furniture that held the object this morning, if it holds it no longer now."""
    rec = furniture_holder(scene, morning, oid)
    return None if rec is None or rec in now.objects[oid].receptacles else rec


def ask_put_back(scene: Scene, morning: SceneTruth, now: SceneTruth, oid: str) -> tuple[str, str] | None:
    """(furniture, instruction) of "put the X back where it was this morning", if it is no longer there."""
    rec = _moved_off(scene, morning, now, oid)
    if rec is None:
        return None
    return rec, f"put the {name_of(now.objects[oid].object_type)} back where it was this morning"


def ask_moved_from(scene: Scene, morning: SceneTruth, now: SceneTruth, oid: str,
                   moved: list[str]) -> tuple[str, str] | None:
    """(furniture, instruction) of "put back the thing that was moved from the Y", if the object is no
    longer on it and no other of the ``moved`` objects was on furniture of that type this morning."""
    rec = _moved_off(scene, morning, now, oid)
    if rec is None:
        return None
    rtype = scene.get(rec).object_type
    if any(m != oid and any(scene.get(r).object_type == rtype for r in morning.objects[m].receptacles)
           for m in moved):
        return None  # "the thing moved from the counter" must name one object
    return rec, f"put back the thing that was moved from the {name_of(rtype)}"


def was_inside(scene: Scene, truth: SceneTruth, oid: str, rec: str) -> bool:
    """The object was inside ``rec`` (rather than on it), and ``rec`` takes things inside."""
    return truth.relation(oid, rec) == "inside" and goes_inside(scene, rec)


def back_goal(scene: Scene, morning: SceneTruth, oid: str, rec: str) -> tuple[Predicate, ...]:
    """The object back in or on ``rec`` as it was this morning."""
    return (Inside(oid, rec),) if was_inside(scene, morning, oid, rec) else (On(oid, rec),)


class _Builder:
    """Candidate tasks of one RoomR episode, checked by the oracle in the start arrangement."""

    def __init__(self, scene: Scene, year: int, index: int, rng: random.Random) -> None:
        self.scene, self.year, self.index, self.rng = scene, year, index, rng
        self.episode = load_roomr(year)[scene.name][index]
        scene.apply_episode(self.episode, "target")
        self.morning = snapshot(scene)
        scene.apply_episode(self.episode, "start")
        self.start = snapshot(scene)
        counts: dict[str, int] = {}
        for o in self.start.objects.values():
            counts[o.object_type] = counts.get(o.object_type, 0) + 1
        self.unique = {t for t, n in counts.items() if n == 1}
        self.moved = sorted(
            oid for oid, o in self.start.objects.items()
            if oid in self.morning.objects and scene.get(oid).pickupable and o.object_type in self.unique
            and float(np.linalg.norm(o.center - self.morning.objects[oid].center)) > 0.05
            and not self._hidden(self.start, oid) and not self._hidden(self.morning, oid)
        )
        self.group = _group(scene.name)

    def _hidden(self, truth: SceneTruth, oid: str) -> bool:
        return any(truth.objects[r].is_open is False for r in truth.objects[oid].receptacles
                   if self.scene.get(r).openable)

    def _rec(self, object_type: str) -> str | None:
        found = sorted(o.object_id for o in self.scene.of_type(object_type))
        return found[0] if found else None

    def keep(self, task_id: str, kind: str, instruction: str, goal: tuple[Predicate, ...],
             targets: tuple[str, ...], steps: list[tuple[str, str]]) -> Task | None:
        """The task if its goal is false now and the oracle achieves it (the scene is reset after)."""
        task = Task(task_id, self.scene.name, kind, instruction, goal, self.year, self.index, targets,
                    tuple(t for t in targets if t in self.moved), tuple(steps))
        ok = False
        if not task.check(self.start):
            robot = Robot.at_thor_pose(self.scene, self.episode["agent_position"], self.episode["agent_rotation"])
            ok = run_oracle(self.scene, robot, task.oracle) and task.check(snapshot(self.scene))
            self.scene.client.removeBody(robot.body)
        self.scene.apply_episode(self.episode, "start")
        return task if ok else None

    # ------------------------------------------------------------------ templates

    def simple_place(self, oid: str, tid: str) -> Task | None:
        obj = self.start.objects[oid]
        choices = [(t, "on") for t in PUT_ON[self.group]]
        if obj.object_type in FOOD:
            choices += [(t, "in") for t in PUT_IN[self.group]]
        self.rng.shuffle(choices)
        for rtype, rel in choices:
            rec = self._rec(rtype)
            if rec is None or rec in obj.receptacles:
                continue
            goal = (Inside(oid, rtype),) if rel == "in" else (On(oid, rtype),)
            text = f"put the {name_of(obj.object_type)} {rel} the {name_of(rtype)}"
            task = self.keep(tid, "simple", text, goal, (oid,), _place_steps(self.scene, self.start, oid, rec))
            if task:
                return task
        return None

    def composite_pair(self, a: str, b: str, tid: str) -> Task | None:
        ta, tb = self.start.objects[a].object_type, self.start.objects[b].object_type
        choices = list(PUT_ON[self.group])
        self.rng.shuffle(choices)
        for rtype in choices:
            rec = self._rec(rtype)
            if rec is None or rec in self.start.objects[a].receptacles or rec in self.start.objects[b].receptacles:
                continue
            text = f"put the {name_of(ta)} and the {name_of(tb)} on the {name_of(rtype)}"
            steps = _place_steps(self.scene, self.start, a, rec) + _place_steps(self.scene, self.start, b, rec)
            task = self.keep(tid, "composite", text, (On(a, rtype), On(b, rtype)), (a, b), steps)
            if task:
                return task
        return None

    def composite_then(self, oid: str, tid: str) -> Task | None:
        """Put food in the fridge and close it, or in the microwave and switch it on."""
        obj = self.start.objects[oid]
        if obj.object_type not in FOOD:
            return None
        for rtype, follow in (("Microwave", "turn it on"), ("Fridge", "close it")):
            rec = self._rec(rtype)
            if rec is None:
                continue
            text = f"put the {name_of(obj.object_type)} in the {name_of(rtype)} and {follow}"
            if follow == "close it":
                goal = (Inside(oid, rtype), State(rec, "isOpen", False))
                steps = _place_steps(self.scene, self.start, oid, rec)
                if steps[-1][0] != "close":
                    steps.append(("close", rec))
            else:
                if self.start.objects[rec].is_toggled:
                    continue
                goal = (Inside(oid, rtype), State(rec, "isToggled", True))
                steps = [*_place_steps(self.scene, self.start, oid, rec), ("toggle_on", rec)]
            task = self.keep(tid, "composite", text, goal, (oid,), steps)
            if task:
                return task
        return None

    def _back(self, tid: str, oid: str, ask: tuple[str, str] | None) -> Task | None:
        """The complex task of putting the object back on or in the furniture of ``ask`` as this morning."""
        if ask is None:
            return None
        rec, text = ask
        goal = back_goal(self.scene, self.morning, oid, rec)
        return self.keep(tid, "complex", text, goal, (oid,), _place_steps(self.scene, self.start, oid, rec))

    def complex_put_back(self, oid: str, tid: str) -> Task | None:
        return self._back(tid, oid, ask_put_back(self.scene, self.morning, self.start, oid))

    def complex_moved_from(self, oid: str, tid: str) -> Task | None:
        return self._back(tid, oid, ask_moved_from(self.scene, self.morning, self.start, oid, self.moved))

    def complex_fetch(self, oid: str, tid: str) -> Task | None:
        rec = furniture_holder(self.scene, self.morning, oid)
        if rec is None:
            return None
        otype, rtype = self.start.objects[oid].object_type, self.scene.get(rec).object_type
        rel = "in" if was_inside(self.scene, self.morning, oid, rec) else "on"
        text = f"bring me the {name_of(otype)} I left {rel} the {name_of(rtype)} this morning"
        return self.keep(tid, "complex", text, (State(oid, "isPickedUp", True),), (oid,),
                         _fetch_steps(self.scene, self.start, oid))


def _episode_tasks(b: _Builder, plan: tuple[str, ...], prefix: str) -> list[Task]:
    """Tasks of the kinds in ``plan`` (one each, in order) over the episode's moved objects."""
    out: list[Task] = []
    used: set[str] = set()
    for n, kind in enumerate(plan):
        free = [m for m in b.moved if m not in used]
        b.rng.shuffle(free)
        task = None
        tid = f"{prefix}-{n}"
        if kind == "complex":  # history-dependent tasks first, "bring me" only if none fits
            for maker in (b.complex_moved_from, b.complex_put_back, b.complex_fetch):
                task = next((t for t in (maker(oid, tid) for oid in free) if t), None)
                if task:
                    break
            free = []
        for oid in free:
            if kind == "simple":
                task = b.simple_place(oid, tid)
            elif kind == "composite":
                task = b.composite_then(oid, tid) if b.group == 0 and n % 2 == 0 else None
                partner = next((m for m in free if m != oid), None)
                if task is None and partner is not None:
                    task = b.composite_pair(oid, partner, tid)
            if task:
                break
        if task:
            out.append(task)
            used.update(task.targets)
    return out


@functools.lru_cache(maxsize=4)
def build_suite(seed: int = 0, per_scene: int = 2, scenes: tuple[str, ...] = SCENES, year: int = 2022
                ) -> tuple[Task, ...]:
    """The task suite (deterministic for a seed): per scene, one RoomR episode with enough moved
    objects, and ``per_scene`` tasks over it whose kinds rotate through simple/composite/complex."""
    rng = random.Random(seed)
    tasks: list[Task] = []
    for s, name in enumerate(scenes):
        episodes = load_roomr(year)[name]
        order = [i for i, e in enumerate(episodes) if e["position_diff_count"] >= 3]
        rng.shuffle(order)
        kinds = tuple(KINDS[(s * per_scene + k) % 3] for k in range(per_scene))
        with build_scene(name) as scene:
            for index in order[:12]:
                builder = _Builder(scene, year, index, random.Random(rng.random()))
                if len(builder.moved) < 2:
                    continue
                found = _episode_tasks(builder, kinds, f"{name}-{index}")
                if len(found) == per_scene:
                    tasks.extend(found)
                    break
    return tuple(tasks)
