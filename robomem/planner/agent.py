"""The offline planner's loop: parse, resolve with memory, plan, validate, execute, replan, explore.

The robot is reached through an :class:`Executor` (the simulator's runner, later a ROS action
client); memory only through :class:`~robomem.planner.tools.MemoryTools`. Plans come from the offline
planner (:meth:`Agent._plan`) unless a :class:`~robomem.planner.llm.Planner` (e.g. the LLM planner) is
given: then every subgoal's plan is asked of it, a rejected plan is never executed, and a step that
fails makes the robot look again and ask for a new plan with the failure as feedback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from robomem.core.config import MemoryConfig
from robomem.planner.language import Intent, ParseError, parse
from robomem.planner.llm import PlanRejected
from robomem.planner.plan import RECEPTACLE_OPENABLE, Plan, Step, is_open, validate
from robomem.planner.results import FailureKind, StepResult
from robomem.planner.tools import MemoryTools, ObjectRecord

if TYPE_CHECKING:
    from robomem.planner.llm import Planner

LOOKED_HERE_M = 0.75  # a look-around covers viewpoints this close
RULED_OUT_M = 0.4  # a belief this close to where the object was not found is not trusted again
SURFACE_VIEW_M = 2.5  # a look-around from a viewpoint checks the surfaces this close to it
SURFACE_TRAVEL_M = 2.0  # exploring: unchecked surfaces near a viewpoint / (this + metres to drive there)
_FURNITURE = MemoryConfig()  # which labels are receptacles and furniture


@dataclass(frozen=True)
class Budget:
    """What one task may spend (the same for every memory mode)."""

    max_skill_calls: int = 40
    max_nav_m: float = 30.0
    max_time_s: float = math.inf
    max_replans: int = 6


@dataclass
class Spent:
    skill_calls: int = 0
    nav_m: float = 0.0
    time_s: float = 0.0


class Executor(Protocol):
    """The robot as the planner drives it; every call also lets the robot's camera feed memory."""

    def position(self) -> tuple[float, float]: ...

    def now(self) -> float: ...

    def holding(self) -> str | None: ...  # label of the held object

    def viewpoints(self) -> list[tuple[float, float]]: ...

    def act(self, step: Step) -> StepResult: ...

    def go_to(self, xy: tuple[float, float]) -> StepResult: ...

    def look_around(self) -> None: ...

    def observe(self) -> None: ...

    def spent(self) -> Spent: ...


@dataclass
class Subgoal:
    kind: str  # place | fetch | toggle | close
    obj: str
    rec: str | None = None
    relation: str | None = None
    on: bool | None = None
    rec_near: tuple[float, ...] | None = None


@dataclass
class Outcome:
    """What the planner believes happened (the runner checks the truth)."""

    done: bool
    reason: str = ""
    intent: Intent | None = None
    explore_steps: int = 0
    replans: int = 0
    invalid_plans: int = 0
    plans: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)  # plan steps that succeeded, as "skill(Label)"
    planner_calls: int = 0  # requests for a plan made of the planner (with one)
    llm_turns: int = 0  # chat requests, prompt and completion tokens of an LLM planner (summed)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OutOfBudget(RuntimeError):
    pass


class Failed(RuntimeError):
    pass


def _room_of(point: tuple[float, ...], rooms: dict[tuple[float, float], str]) -> str | None:
    """The room of the viewpoint nearest ``point``."""
    if not rooms:
        return None
    return rooms[min(rooms, key=lambda p: (math.dist(p, point[:2]), p))]


class Agent:
    """Runs one instruction to completion (or failure) with the given tools, robot and budget.

    ``times`` maps time phrases of instructions ("this morning") to memory times. ``planner``: where
    the subgoals' plans come from (default: the offline planner); with one, an instruction the
    templates do not parse is given to it whole."""

    def __init__(self, tools: MemoryTools, executor: Executor, budget: Budget | None = None,
                 times: Mapping[str, float] | None = None, planner: Planner | None = None) -> None:
        self.tools = tools
        self.planner = planner
        self.robot = executor
        self.budget = budget or Budget()
        self.times = dict(times or {})
        self.visited: set[tuple[float, float]] = set()
        self.looked: list[tuple[float, float]] = []  # where the robot has looked around
        self.opened: set[tuple[str, float, float, float]] = set()  # receptacles opened to look inside
        self.failed: dict[str, list[tuple[tuple[float, ...], float]]] = {}
        self.full: dict[str, list[tuple[float, ...]]] = {}  # receptacles that had no free spot for a place
        self.started = -math.inf  # when the task started (robot clock)
        self.outcome = Outcome(False)

    # ------------------------------------------------------------------ entry point

    def run(self, instruction: str) -> Outcome:
        out = self.outcome
        self.started = self.robot.now()
        try:
            try:
                out.intent = parse(instruction, search=self.tools.search)
            except ParseError:
                if self.planner is None:
                    raise
                goals = [Subgoal("task", instruction)]  # free text: the planner reads it whole
            else:
                goals = self._subgoals(out.intent)
            for goal in goals:
                self._achieve(goal, self._goal_text(goal, instruction, len(goals)))
            out.done = True
        except ParseError as exc:
            out.reason = f"parse: {exc}"
        except OutOfBudget as exc:
            out.reason = f"budget: {exc}"
        except Failed as exc:
            out.reason = str(exc)
        return out

    # ------------------------------------------------------------------ budget

    def _check_budget(self) -> None:
        s, b = self.robot.spent(), self.budget
        if s.skill_calls >= b.max_skill_calls:
            raise OutOfBudget("skill calls")
        if s.nav_m >= b.max_nav_m:
            raise OutOfBudget("navigation distance")
        if s.time_s >= b.max_time_s:
            raise OutOfBudget("time")

    # ------------------------------------------------------------------ intent -> subgoals

    def _when(self, intent: Intent) -> float:
        phrase = intent.when or "this morning"
        if phrase not in self.times:
            raise Failed(f"no time known for {phrase!r}")
        return self.times[phrase]

    def _subgoals(self, intent: Intent) -> list[Subgoal]:
        if intent.kind == "place":
            goals = [Subgoal("place", o, intent.receptacle, intent.relation) for o in intent.objects]
            for action, target in intent.then:
                goals.append(Subgoal("close", target) if action == "close" else Subgoal("toggle", target, on=True))
            return goals
        if intent.kind == "toggle":
            return [Subgoal("toggle", o, on=intent.on) for o in intent.objects]
        if intent.kind == "fetch":
            return [Subgoal("fetch", o) for o in intent.objects]
        if intent.kind == "put_back":
            return [self._back_where_it_was(o, self._when(intent)) for o in intent.objects]
        if intent.kind == "moved_from":
            return [self._back_where_it_was(self._moved_from(intent.receptacle, self._when(intent)),
                                            self._when(intent))]
        raise Failed(f"unsupported intent {intent.kind}")

    def _back_where_it_was(self, label: str, when: float) -> Subgoal:
        was = self.tools.where_is(label, at=when)
        if was is None or was.receptacle is None:
            raise Failed(f"no memory of where the {label} was")
        relation = "in" if was.relation == "in" else "on"
        return Subgoal("place", label, was.receptacle, relation, rec_near=was.center)

    def _moved_from(self, receptacle: str, when: float) -> str:
        """The object moved away from ``receptacle`` since ``when``: from memory's changes, or by going to
        each thing that was there then: one memory now reports moved, or one the robot did not find where
        it was (memory may need more than one look before it calls a thing gone; the robot was there)."""
        def moved() -> str | None:
            for change in self.tools.what_changed(when):
                if change.change not in ("moved", "disappeared"):
                    continue
                was = self.tools.where_is(change.label, at=when)
                if was is not None and was.receptacle == receptacle:
                    return change.label
            return None

        found = moved()
        if found:
            return found
        before = [r for r in self.tools.contents(receptacle, at=when)]
        if not before:
            raise Failed(f"no memory of what was on the {receptacle}")
        here = self.robot.position()
        for rec in sorted(before, key=lambda r: r.distance_to(here)):
            self._check_budget()
            self._run_step(Step("navigate_to", rec), record_failure=True)
            self.robot.observe()
            found = moved() or (rec.label if self._not_found_there(rec) else None)
            if found:
                return found
        raise Failed(f"found nothing moved from the {receptacle}")

    def _not_found_there(self, was: ObjectRecord) -> bool:
        """The robot went to where ``was`` is recorded and did not find it, and memory has not seen it
        there since."""
        tried = [center for center, _ in self.failed.get(was.label, [])]
        if not any(math.dist(center[:2], was.center[:2]) <= RULED_OUT_M for center in tried):
            return False
        now = self.tools.where_is(was.label, near=was.center)
        return now is None or math.dist(now.center[:2], was.center[:2]) > RULED_OUT_M or self._ruled_out(now)

    # ------------------------------------------------------------------ finding objects

    def _ruled_out(self, rec: ObjectRecord) -> bool:
        """Looked for here in vain (unless seen again since), or a receptacle found without room."""
        if any(math.dist(center[:2], rec.center[:2]) <= RULED_OUT_M for center in self.full.get(rec.label, [])):
            return True  # seeing it again does not make room on it
        for center, t in self.failed.get(rec.label, []):
            far = math.dist(center[:2], rec.center[:2]) > RULED_OUT_M
            if not far and (rec.last_seen is None or rec.last_seen <= t):
                return True
        return False

    def _instances(self, label: str) -> list[ObjectRecord]:
        get = getattr(self.tools, "instances", None)
        return list(get(label)) if get is not None else []

    def _lookup(self, label: str, near: tuple[float, ...] | None = None) -> ObjectRecord | None:
        """Memory's record nearest ``near`` (default: the robot); when memory's first answer was already
        looked for in vain, another instance memory knows."""
        point = near if near is not None else self.robot.position()
        rec = self.tools.where_is(label, near=point)
        if rec is None or not self._ruled_out(rec):
            return rec
        others = [r for r in self._instances(label) if not self._ruled_out(r)]
        return min(others, key=lambda r: (r.distance_to(point), r.center), default=None)

    def _find(self, label: str, near: tuple[float, ...] | None = None) -> ObjectRecord:
        """Memory's record of the object, exploring viewpoints (nearest first) until it is seen."""
        rec = self._lookup(label, near)
        while rec is None:
            self._explore_step(label)
            rec = self._lookup(label, near)
        return rec

    def _explore_step(self, label: str) -> None:
        """Look around here; else go to the next viewpoint and look around. Which one: when the object was
        not found where memory had it, first those of that room near furniture no look-around of this task
        came close to (someone moved it, most likely within the room); then those near surfaces memory
        knows that have not been seen since the task began (this room first); else this room's nearest
        (when the robot knows its rooms). When every viewpoint is done, open the nearest closed receptacle
        memory knows and look inside (closing it again if the object is not there)."""
        self._check_budget()
        here = self.robot.position()
        self.outcome.explore_steps += 1
        if all(math.dist(here, p) > LOOKED_HERE_M for p in self.looked):
            self.looked.append(here)  # first look around where the robot stands
            self.robot.look_around()
            return
        todo = [v for v in self.robot.viewpoints()
                if v not in self.visited and all(math.dist(v, p) > LOOKED_HERE_M for p in self.looked)]
        if not todo:
            if not self._open_next(label):
                raise Failed(f"{label} not found after visiting every viewpoint")
            return
        known = self.tools.instances(None)
        rooms = self._rooms()
        lost = self.failed.get(label)
        target = None
        if lost and rooms:  # not where memory had it: someone moved it, most likely within its room
            room = _room_of(lost[-1][0], rooms)
            target = self._surface_viewpoint([v for v in todo if rooms.get(v) == room], here,
                                             self._surfaces_not_looked_at(known, room, rooms))
        if target is None:
            unchecked = self._unchecked_surfaces(known)
            current = [v for v in todo if rooms.get(v) == _room_of(here, rooms)] if rooms else []
            room_todo = current or todo
            target = (self._surface_viewpoint(room_todo, here, unchecked)
                      or self._surface_viewpoint(todo, here, unchecked)
                      or min(room_todo, key=lambda v: (math.dist(v, here), v)))
        self.visited.add(target)
        if self.robot.go_to(target).success:
            self._check_budget()
            self.looked.append(self.robot.position())
            self.robot.look_around()

    def _surfaces_not_looked_at(self, known: list[ObjectRecord], room: str,
                                rooms: dict[tuple[float, float], str]) -> list[tuple[float, ...]]:
        """The furniture of ``room`` things are put on or in (not the closed kinds: those are opened when
        all else fails) that no look-around of this task was close enough to for small things."""
        looked = [p for p in self.looked if _room_of(p, rooms) == room]
        return [r.center[:2] for r in known
                if _FURNITURE.is_receptacle(r.label) and _FURNITURE.is_static(r.label)
                and r.label not in RECEPTACLE_OPENABLE and _room_of(r.center, rooms) == room
                and all(math.dist(r.center[:2], p) > SURFACE_VIEW_M for p in looked)]

    def _unchecked_surfaces(self, known: list[ObjectRecord]) -> list[tuple[float, ...]]:
        """Where the surfaces things are put on (the holders of objects in memory) are that have not been
        seen since the task started. A robot without memory of the home knows none: everything it knows
        it saw during the task."""
        holders = {r.receptacle for r in known if r.receptacle} - RECEPTACLE_OPENABLE  # a look does not see inside
        return [r.center[:2] for r in known if r.label in holders
                and (r.last_seen is None or r.last_seen < self.started)]

    def _surface_viewpoint(self, todo: list[tuple[float, float]], here: tuple[float, float],
                           unchecked: list[tuple[float, ...]]) -> tuple[float, float] | None:
        """The viewpoint of ``todo`` from which a look-around checks the most ``unchecked`` surfaces per
        metre to drive there; None when there is none near any of them."""
        if not unchecked:
            return None
        best, best_value = None, 0.0
        for v in sorted(todo):
            near = sum(1 for c in unchecked if math.dist(c, v) <= SURFACE_VIEW_M)
            value = near / (SURFACE_TRAVEL_M + math.dist(v, here))
            if value > best_value:
                best, best_value = v, value
        return best

    def _rooms(self) -> dict[tuple[float, float], str]:
        """Each viewpoint's room ({} when the robot does not know its rooms)."""
        rooms = getattr(self.robot, "rooms", None)
        return {p: name for name, pts in rooms().items() for p in pts} if rooms is not None else {}

    def _open_next(self, label: str) -> bool:
        """Open the nearest closed (or never seen open) receptacle not opened yet; False if none is left."""
        here = self.robot.position()
        cands = []
        for kind in sorted(RECEPTACLE_OPENABLE):
            for rec in self._instances(kind):
                key = (kind, round(rec.center[0], 1), round(rec.center[1], 1), round(rec.center[2], 1))
                if key not in self.opened and is_open(rec) is not True:
                    cands.append((rec.distance_to(here), key, rec))
        if not cands:
            return False
        _, key, rec = min(cands, key=lambda c: (c[0], c[1]))
        self.opened.add(key)
        if not self._run_step(Step("navigate_to", rec), record_failure=False).success:
            return True
        self._check_budget()
        if self._run_step(Step("open", rec), record_failure=False).success and self._lookup(label) is None:
            self._check_budget()
            self._run_step(Step("close", rec), record_failure=False)
        return True

    # ------------------------------------------------------------------ planning and execution

    def _plan(self, goal: Subgoal) -> Plan:
        plan = Plan()
        if goal.kind in ("place", "fetch") and self.robot.holding() != goal.obj:
            obj = self._find(goal.obj)
            plan.add("navigate_to", obj)
            if obj.relation == "in" and obj.receptacle in RECEPTACLE_OPENABLE:
                holder = self.tools.where_is(obj.receptacle, near=obj.center)
                if holder is not None:  # opened even if memory has it open: a drawer seen open may have been
                    plan.add("open", holder)  # pushed in since ("already open" costs one skill call)
            plan.add("pick", obj)
        if goal.kind == "place":
            near = goal.rec_near
            if near is None and plan.steps:
                near = plan.steps[0].target.center
            rec = self._find(goal.rec, near)
            plan.add("navigate_to", rec)
            opened = rec.label in RECEPTACLE_OPENABLE and is_open(rec) is not True
            if opened:
                plan.add("open", rec)
            plan.add("place", rec)
            if opened:
                plan.add("close", rec)
        elif goal.kind in ("toggle", "close"):
            target = self._find(goal.obj)
            plan.add("navigate_to", target)
            plan.add("close" if goal.kind == "close" else ("toggle_on" if goal.on else "toggle_off"), target)
        return plan

    def _run_step(self, step: Step, record_failure: bool = True) -> StepResult:
        result = self.robot.act(step)
        if (record_failure and step.skill in ("navigate_to", "pick", "open")
                and result.kind is FailureKind.NOT_FOUND):
            self.failed.setdefault(step.target.label, []).append((step.target.center, self.robot.now()))
        if record_failure and step.skill == "place" and result.kind is FailureKind.NO_FREE_SPOT:
            self.full.setdefault(step.target.label, []).append(step.target.center)  # try another instance
        return result

    def _open_and_pick(self, pick: Step, failed: StepResult) -> StepResult:
        """The object is inside a closed receptacle memory did not know of (or had open): open the
        nearest one of that kind memory knows and pick again."""
        assert failed.failure is not None
        holder = self.tools.where_is(failed.failure.receptacle, near=pick.target.center)
        if holder is None:
            return failed
        self._check_budget()
        if not self._run_step(Step("open", holder), record_failure=False).success:
            return failed
        self._check_budget()
        return self._run_step(pick)

    def _goal_text(self, goal: Subgoal, instruction: str, n_goals: int) -> str:
        """What the planner is asked for this subgoal: the instruction itself when it is the only
        subgoal (and needed no memory to resolve), else the subgoal in words."""
        intent = self.outcome.intent
        if goal.kind == "task" or (n_goals == 1 and (intent is None or intent.kind in ("place", "toggle", "fetch"))):
            return instruction
        if goal.kind == "place":
            text = f"put the {goal.obj} {goal.relation or 'on'} the {goal.rec}"
            if goal.rec_near is not None:
                text += f" at ({goal.rec_near[0]:.2f}, {goal.rec_near[1]:.2f})"
            return text
        if goal.kind == "fetch":
            return f"bring me the {goal.obj}"
        if goal.kind == "close":
            return f"close the {goal.obj}"
        return f"turn {'on' if goal.on else 'off'} the {goal.obj}"

    def _ask_planner(self, text: str, feedback: list[str]) -> Plan:
        """The planner's plan (its cost counted in the outcome); PlanRejected passes through."""
        self.outcome.planner_calls += 1
        try:
            plan = self.planner.plan(text, holding=self.robot.holding(), feedback=tuple(feedback))
        except PlanRejected as exc:
            self._count_llm(exc)
            raise
        self._count_llm(plan)
        return plan

    def _count_llm(self, cost: object) -> None:
        out = self.outcome
        out.llm_turns += int(getattr(cost, "turns", 0) or 0)
        out.prompt_tokens += int(getattr(cost, "prompt_tokens", 0) or 0)
        out.completion_tokens += int(getattr(cost, "completion_tokens", 0) or 0)

    def _execute(self, plan: Plan) -> str | None:
        """Runs the plan's steps; None if all succeeded, else what failed (after looking again)."""
        out = self.outcome
        out.plans.append(str(plan))
        for step in plan.steps:
            self._check_budget()
            result = self._run_step(step)
            if step.skill == "pick" and result.kind is FailureKind.INSIDE_CLOSED:
                result = self._open_and_pick(step, result)
            if not result.success:
                out.plans[-1] += f"  [failed {step.skill} {step.target.label}: {result.reason}]"
                self.robot.observe()  # look again: memory takes in what is really there
                return f"{step.skill}({step.target.label}) failed: {result.reason}"
            out.executed.append(f"{step.skill}({step.target.label})")
        return None

    def _achieve(self, goal: Subgoal, text: str = "") -> None:
        out = self.outcome
        feedback: list[str] = []  # for the planner: why earlier attempts failed
        for _ in range(self.budget.max_replans + 1):
            self._check_budget()
            if self.planner is None:
                plan = self._plan(goal)
            else:
                try:
                    plan = self._ask_planner(text or goal.obj, feedback)
                except PlanRejected as exc:  # nothing of a rejected plan is executed
                    out.invalid_plans += 1
                    out.replans += 1
                    last = "; ".join(exc.attempts[-1]) if exc.attempts else "no plan submitted"
                    feedback.append(f"no valid plan was submitted ({last})")
                    continue
            errors = validate(plan, self.tools, self.robot.holding())
            if errors:
                out.invalid_plans += 1
                out.replans += 1
                feedback.append("plan rejected: " + "; ".join(errors))
                continue
            failure = self._execute(plan)
            if failure is None:
                return
            feedback.append(failure)
            out.replans += 1
        raise Failed(f"gave up on {goal.kind} {goal.obj} after {out.replans} replans")
