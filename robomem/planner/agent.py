"""The offline planner's loop: parse, resolve with memory, plan, validate, execute, replan, explore.

The robot is reached through an :class:`Executor` (the simulator's runner, later a ROS action
client); memory only through :class:`~robomem.planner.tools.MemoryTools`. Plans come from the offline
planner (:meth:`Agent._plan`) unless a :class:`~robomem.planner.llm.Planner` (e.g. the LLM planner) is
given: then every subgoal's plan is asked of it, a rejected plan is never executed, and a step that
fails makes the robot look again and ask for a new plan with the failure as feedback.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from robomem.core.config import MemoryConfig
from robomem.planner.language import Intent, ParseError, parse
from robomem.planner.llm import PlanRejected
from robomem.planner.plan import RECEPTACLE_OPENABLE, Plan, Step, is_open, validate
from robomem.planner.results import FailureKind, StepResult
from robomem.planner.tools import MemoryTools, ObjectRecord, PlaceRecord
from robomem.planner.travel import FloorPlan, is_plan_entry

if TYPE_CHECKING:
    from robomem.planner.llm import Planner

LOOKED_HERE_M = 0.75  # a look-around covers viewpoints this close
RULED_OUT_M = 0.4  # a belief this close to where the object was not found is not trusted again
STILL_THERE_M = 1.0  # a thing memory has on the same holder this close to where it was has not left it
SURFACE_VIEW_M = 2.5  # a look-around from a viewpoint checks the surfaces this close to it
SURFACE_TRAVEL_M = 2.0  # exploring: unchecked surfaces near a viewpoint / (this + metres to drive there)
UNDER_MARGIN_M = 0.1  # a thing stands on furniture whose footprint, this much larger, holds it
UNDER_GAP_M = 0.35  # ... and whose top is at most this far below the thing's centre
SURFACE_AT_M = 0.06  # a top this close to a thing's bottom is what it stands on
SAME_SURFACE_M = 1.5  # a surface at a thing's height this close is the rest of the one it stood on
PLACES_K = 50  # likely places asked of memory per search step
MIN_SHARE = 0.05  # a likely place scoring less than this share of the best unchecked one is not gone to
SAME_STORAGE_M = 0.15  # records of closed storage this close are taken for one
PLACE_SEEN_M = 1.0  # a surface this close to where the robot went to look at a likely place is checked
PLACE_VISIT_M = 3.0  # a likely place is worth its score / (this + metres to drive there)
LOOK_COVERS_M = 2.0  # a look-around checks the surfaces this close for small things
LOOK_COST_M = 4.0  # a look-around is worth the score of the surfaces it checks / (this + metres to drive there)
OPEN_TO_PICK_M = 0.6  # a thing still inside closed furniture: receptacles of that kind this near it are tried next
OPEN_TO_PICK_TRIES = 3  # ... at most this many, nearest first
LOST_ROOM_LOOKS = 1  # viewpoints of its room looked from for a thing not where memory had it, before the home
LOST_SPREAD_M = 3.0  # ... then surfaces home-wide, one this far from where it was counting half
IN_REACH_M = 0.6  # storage whose box is this close is opened from where the robot stands
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
    """The robot as the planner drives it; every call also lets the robot's camera feed memory. Optional:
    ``rooms()`` (viewpoints by room, and the floor plan: see :mod:`robomem.planner.travel`)."""

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
    search: list[str] = field(default_factory=list)  # where exploring went, in order (for reports)
    executed: list[str] = field(default_factory=list)  # plan steps that succeeded, as "skill(Label)"
    planner_calls: int = 0  # requests for a plan made of the planner (with one)
    llm_turns: int = 0  # chat requests, prompt and completion tokens of an LLM planner (summed)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class OutOfBudget(RuntimeError):
    pass


class Failed(RuntimeError):
    pass


def _footprint_gap(point: tuple[float, ...], rec: ObjectRecord) -> float:
    """Metres from ``point`` to the footprint of ``rec``'s box (0 inside it)."""
    return math.hypot(*[max(abs(point[i] - rec.center[i]) - rec.size[i] / 2, 0.0) for i in (0, 1)])


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
        self.looks: list[tuple[float, tuple[float, float]]] = []  # (when, where) of viewpoints gone to and looked from
        self.opened: set[tuple[str, float, float, float]] = set()  # receptacles opened to look inside
        self.failed: dict[str, list[tuple[tuple[float, ...], float]]] = {}
        self.full: dict[str, list[tuple[float, ...]]] = {}  # receptacles that had no free spot for a place
        self.searched: set[tuple[str, float, float, float]] = set()  # likely places gone to
        self.found_closed: list[tuple[float, ...]] = []  # receptacles a place found closed
        self.hints: dict[str, str] = {}  # label -> the room the instruction says it was left in
        self.started = -math.inf  # when the task started (robot clock)
        self.outcome = Outcome(False)
        self._plan_cache: tuple[FloorPlan | None] | None = None

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

    def _room_named(self, phrase: str | None) -> str | None:
        """The robot's room a phrase names ("the living room" -> living_room), or None."""
        if not phrase:
            return None
        key = phrase.lower().removeprefix("the ").replace(" ", "_")
        names = set(self._rooms().values())
        return key if key in names else None

    def _subgoals(self, intent: Intent) -> list[Subgoal]:
        if intent.kind == "place":
            goals = [Subgoal("place", o, intent.receptacle, intent.relation) for o in intent.objects]
            for action, target in intent.then:
                goals.append(Subgoal("close", target) if action == "close" else Subgoal("toggle", target, on=True))
            return goals
        if intent.kind == "toggle":
            return [Subgoal("toggle", o, on=intent.on) for o in intent.objects]
        if intent.kind == "fetch":
            room = self._room_named(intent.hint)
            if room is not None:
                self.hints.update(dict.fromkeys(intent.objects, room))
            return [Subgoal("fetch", o) for o in intent.objects]
        if intent.kind == "put_back":
            return [self._back_where_it_was(o, self._when(intent)) for o in intent.objects]
        if intent.kind == "moved_from":
            return [self._back_where_it_was(self._moved_from(intent.receptacle, self._when(intent)),
                                            self._when(intent))]
        raise Failed(f"unsupported intent {intent.kind}")

    def _back_where_it_was(self, label: str, when: float) -> Subgoal:
        """Put ``label`` back on (in) what held it at ``when``: memory's holder then, or else the furniture
        memory knows right under where it was (memory saw the thing but not what it stood on)."""
        was = self.tools.where_is(label, at=when)
        if was is None:
            raise Failed(f"no memory of where the {label} was")
        if was.receptacle in (None, label):  # no holder, or memory's double of the thing (no holder either)
            under = self._holder_under(was)
            if under is not None:
                return Subgoal("place", label, under.label, "in" if self._inside(was, under) else "on",
                               rec_near=under.center)
            if was.receptacle is None:
                raise Failed(f"no memory of what the {label} was on")
        relation = "in" if was.relation == "in" else "on"
        return Subgoal("place", label, was.receptacle, relation, rec_near=was.center)

    @staticmethod
    def _inside(thing: ObjectRecord, holder: ObjectRecord) -> bool:
        top = holder.center[2] + holder.size[2] / 2
        return thing.center[2] < top and holder.label in RECEPTACLE_OPENABLE

    def _holder_under(self, was: ObjectRecord) -> ObjectRecord | None:
        """The furniture (a receptacle memory knows) whose footprint holds ``was`` and whose top is nearest
        below it (or whose box holds it), or None. When that top lies well below the thing's bottom (a
        cabinet under a counter memory saw only in parts), a surface at the height of the thing's bottom
        within ``SAME_SURFACE_M`` is the one it stood on: another part of that counter."""
        furniture = [r for r in self._instances(None) if _FURNITURE.is_receptacle(r.label)
                     and _FURNITURE.is_static(r.label) and r.label != "Floor"]
        bottom = was.center[2] - was.size[2] / 2
        best, best_gap = None, math.inf
        for rec in furniture:
            half = [s / 2 for s in rec.size]
            if any(abs(was.center[i] - rec.center[i]) > half[i] + UNDER_MARGIN_M for i in (0, 1)):
                continue
            gap = was.center[2] - (rec.center[2] + half[2])  # > 0: above the top; < 0: within the box
            if gap < -rec.size[2] - UNDER_MARGIN_M or gap > UNDER_GAP_M:
                continue
            if abs(gap) < best_gap:
                best, best_gap = rec, abs(gap)
        if best is None or bottom - (best.center[2] + best.size[2] / 2) <= SURFACE_AT_M:
            return best  # it stands on that top, or lies inside the box
        level = [(_footprint_gap(was.center, r), r.center, r) for r in furniture
                 if r.label not in RECEPTACLE_OPENABLE and abs(r.center[2] + r.size[2] / 2 - bottom) <= SURFACE_AT_M]
        near = min((x for x in level if x[0] <= SAME_SURFACE_M), key=lambda x: (x[0], x[1]), default=None)
        return best if near is None else near[2]

    def _moved_from(self, receptacle: str, when: float) -> str:
        """The object moved away from ``receptacle`` since ``when``: from memory's changes, or by going to
        each thing that was there then: one memory now reports moved, or one the robot did not find where
        it was (memory may need more than one look before it calls a thing gone; the robot was there). Of
        several, the one memory holds more records of there then (seen from more views: a false
        detection is seldom seen twice)."""
        before = list(self.tools.contents(receptacle, at=when))
        records = Counter(r.label for r in before)

        def moved() -> str | None:
            found = []
            for change in self.tools.what_changed(when):
                if change.change not in ("moved", "disappeared"):
                    continue
                was = self.tools.where_is(change.label, at=when)
                if was is None or was.receptacle != receptacle or change.label in found:
                    continue
                now = self.tools.where_is(change.label, near=was.center)
                still = (now is not None and now.receptacle == receptacle
                         and math.dist(now.center[:2], was.center[:2]) <= STILL_THERE_M)
                if not still:  # (a thing shifted on the holder, or a double of it gone, is still there)
                    found.append(change.label)
            return max(found, key=lambda label: records[label], default=None)  # the first of equals

        found = moved()
        if found:
            return found
        if not before:
            raise Failed(f"no memory of what was on the {receptacle}")
        unseen = self._look_at_holder(receptacle, before)
        found = moved()
        if found:
            return found
        if len(unseen) == 1:  # the one thing that was there and is not now
            return unseen[0].label
        here = self.robot.position()
        def order(r: ObjectRecord) -> tuple:
            return (-records[r.label], self.travel_m(r.center, here), r.center)

        for rec in sorted(unseen or before, key=order):
            self._check_budget()
            self._run_step(Step("navigate_to", rec), record_failure=True)
            self.robot.observe()
            found = moved() or (rec.label if self._not_found_there(rec) else None)
            if found:
                return found
        raise Failed(f"found nothing moved from the {receptacle}")

    def _look_at_holder(self, receptacle: str, before: list[ObjectRecord]) -> list[ObjectRecord]:
        """Go to the ``receptacle`` that held ``before`` and look at it once: the things memory has not seen
        there since (each is noted as looked for there in vain)."""
        center = tuple(sum(r.center[i] for r in before) / len(before) for i in range(3))
        holder = self.tools.where_is(receptacle, near=center)
        if holder is None:
            return []
        self._check_budget()
        visit = self.robot.now()
        if not self._run_step(Step("navigate_to", holder), record_failure=False).success:
            return []
        self.robot.observe()
        unseen = []
        for rec in before:
            now = self.tools.where_is(rec.label, near=rec.center)
            if now is None or now.last_seen is None or now.last_seen < visit or math.dist(
                    now.center[:2], rec.center[:2]) > RULED_OUT_M:
                unseen.append(rec)
        if len(unseen) == 1:
            self.failed.setdefault(unseen[0].label, []).append((unseen[0].center, self.robot.now()))
        return unseen

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
        not found where memory had it, first its room's likely places and one viewpoint of that room near
        furniture no look-around of this task came close to (someone moved it, most likely within the room),
        then where such things are kept home-wide; then those near surfaces memory
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
        lost = self.failed.get(label)
        lost_room = self._region(lost[-1][0]) if lost else None
        hint = self.hints.get(label)
        if lost:  # not where memory had it: first the likely places of its room, while the robot is there
            if (lost_room is not None and self._region(here) == lost_room
                    and self._likely_step(label, lost_room, informed_only=True)):
                return  # (once the search has left the room, its places compete with the others by value)
        elif hint and (self._likely_step(label, hint) or self._open_next(label, hint)):
            return  # left in a room: its likely places, then its storage
        if not lost and self._likely_step(label):  # never seen, or lost by memory: where such things are kept
            return
        todo = self._todo_viewpoints()
        if not todo:
            if not self._open_next(label):
                raise Failed(f"{label} not found after visiting every viewpoint")
            return
        known = self.tools.instances(None)
        rooms = self._rooms()
        target, why = None, "its room, furniture not looked at"
        if lost and rooms and self._looks_since(lost[-1][1], lost_room) < LOST_ROOM_LOOKS:
            room = _room_of(lost[-1][0], rooms)  # someone moved it, most likely within its room
            target = self._surface_viewpoint([v for v in todo if rooms.get(v) == room], here,
                                             self._surfaces_not_looked_at(known, room, rooms))
        if target is None and lost and self._likely_step(label, informed_only=True):  # then where such
            return  # things are kept, home-wide
        if target is None and lost:  # then surfaces not seen since the task began, home-wide: it was carried
            target = self._surface_viewpoint(todo, here, self._unchecked_surfaces(known),  # off, the nearer
                                             near=lost[-1][0])  # the likelier
            why = "surfaces not seen today, near where it was lost"
        if target is None:
            unchecked = self._unchecked_surfaces(known)
            current = [v for v in todo if rooms.get(v) == (hint or _room_of(here, rooms))] if rooms else []
            room_todo = current or todo
            target = (self._surface_viewpoint(room_todo, here, unchecked)
                      or self._surface_viewpoint(todo, here, unchecked)
                      or min(room_todo, key=lambda v: (self.travel_m(v), v)))
            why = "surfaces not seen today" if unchecked else "nearest"
        self._look_from(target, why)

    def _looks_since(self, t: float, room: str | None) -> int:
        """Look-arounds from viewpoints of ``room`` gone to since ``t`` (robot clock)."""
        return sum(1 for when, where in self.looks if when >= t and self._region(where) == room)

    def _todo_viewpoints(self) -> list[tuple[float, float]]:
        """The robot's viewpoints not gone to nor looked around near in this task."""
        plan_points = self._plan_points()
        return [v for v in self.robot.viewpoints() if v not in self.visited and v not in plan_points
                and all(math.dist(v, p) > LOOKED_HERE_M for p in self.looked)]

    def _look_from(self, target: tuple[float, float], why: str) -> None:
        """Go to a viewpoint and look around there (``why``: for the search's trail)."""
        self.visited.add(target)
        self._trail(f"viewpoint ({target[0]:.2f},{target[1]:.2f}): {why}")
        if self.robot.go_to(target).success:
            self._check_budget()
            self.looked.append(self.robot.position())
            self.looks.append((self.robot.now(), self.robot.position()))
            self.robot.look_around()

    def _likely_step(self, label: str, room: str | None = None, informed_only: bool = False) -> bool:
        """One step of the search by memory's likely places (in ``room``, if given): go to the unchecked place
        worth most (its score per metre), or look around from the viewpoint whose look checks the most
        score of likely surfaces per metre, whichever is worth more; False when memory ranks none."""
        places = self._likely_candidates(label, room, informed_only)
        if not places:
            return False
        place = max(places, key=lambda p: (p.score / (PLACE_VISIT_M + self.travel_m(p.place.center)),
                                           -p.place.center[0], -p.place.center[1]))
        place_value = place.score / (PLACE_VISIT_M + self.travel_m(place.place.center))
        surfaces = [p for p in places if not self._closed_storage(p.place)]
        views = [v for v in self._todo_viewpoints() if room is None or self._region(v) == room]
        best_view, view_value = None, 0.0
        for v in sorted(views):
            mass = sum(p.score for p in surfaces if math.dist(p.place.center[:2], v) <= LOOK_COVERS_M)
            value = mass / (LOOK_COST_M + self.travel_m(v))
            if value > view_value:
                best_view, view_value = v, value
        if best_view is not None and view_value > place_value:
            self._look_from(best_view, f"likely surfaces {view_value * (LOOK_COST_M + self.travel_m(best_view)):.3f}")
        else:
            self._search_place(place, label)
        return True

    # ------------------------------------------------------------------ travel and likely places

    def floor_plan(self) -> FloorPlan | None:
        """The robot's floor plan (doorways), read once per task; None when it reports none."""
        if self._plan_cache is None:
            rooms = getattr(self.robot, "rooms", None)
            self._plan_cache = (FloorPlan.from_rooms(rooms()) if rooms is not None else None,)
        return self._plan_cache[0]

    def travel_m(self, xy: tuple[float, ...], start: tuple[float, ...] | None = None) -> float:
        """Metres to drive from ``start`` (default: the robot) to ``xy``: through doorways when the robot
        reports its floor plan, else a straight line."""
        here = start if start is not None else self.robot.position()
        plan = self.floor_plan()
        return plan.distance(here[:2], xy[:2]) if plan is not None else math.dist(here[:2], xy[:2])

    @staticmethod
    def _place_key(rec: ObjectRecord) -> tuple[str, float, float, float]:
        return (rec.label, round(rec.center[0], 1), round(rec.center[1], 1), round(rec.center[2], 1))

    @staticmethod
    def _same_storage(a: tuple[str, float, float, float], b: tuple[str, float, float, float]) -> bool:
        """Two records of one drawer / door (memory may hold it pulled open and pushed in)."""
        return a[0] == b[0] and math.dist(a[1:], b[1:]) <= SAME_STORAGE_M

    @staticmethod
    def _closed_storage(rec: ObjectRecord) -> bool:
        return rec.label in RECEPTACLE_OPENABLE and is_open(rec) is not True

    def _place_checked(self, place: PlaceRecord) -> bool:
        """Gone to in this task; or closed storage opened in this task; or a surface a look-around of this
        task was close enough to for small things."""
        rec = place.place
        key = self._place_key(rec)
        if key in self.searched or any(self._same_storage(key, k) for k in self.opened):
            return True
        if self._closed_storage(rec):
            return False  # a look does not show the inside
        return (any(math.dist(rec.center[:2], p) <= LOOK_COVERS_M for p in self.looked)  # looked around near it
                or any(math.dist(rec.center[:2], k[1:3]) <= PLACE_SEEN_M for k in self.searched))  # went next to it

    def _region(self, xy: tuple[float, ...]) -> str | None:
        """The room of a point: by the floor plan, else by the nearest viewpoint; None without rooms."""
        plan = self.floor_plan()
        if plan is not None:
            return plan.room_at(xy[:2])
        return _room_of(xy, self._rooms())

    def _likely_candidates(self, label: str, room: str | None = None, informed_only: bool = False
                           ) -> list[PlaceRecord]:
        """The places memory ranks likely for ``label`` (memory without long-term knowledge ranks none) not
        checked yet, in ``room`` if given; closed storage only where some evidence points (memory's, or
        statistics that have seen such things there: eggs are kept in fridges; none say what is in a drawer,
        and none saw a cup kept in a fridge): opening costs skill calls, a look at a surface only driving.
        ``informed_only``: surfaces too only where evidence points (the search for a thing someone moved)."""
        get = getattr(self.tools, "likely_places", None)
        if get is None:
            return []
        try:
            places = list(get(label, PLACES_K))
        except (AttributeError, NotImplementedError):
            return []
        cands = [p for p in places if p.score > 0 and not self._place_checked(p)
                 and (room is None or self._region(p.place.center) == room)
                 and (p.informed or not (informed_only or self._closed_storage(p.place)))]
        best = max((p.score for p in cands), default=0.0)
        return [p for p in cands if p.score >= MIN_SHARE * best]  # not the places memory all but rules out

    def _search_place(self, place: PlaceRecord, label: str) -> None:
        """Go to a likely place and look at it; open closed storage to look inside (and close it again if
        the thing is not there)."""
        rec = place.place
        key = self._place_key(rec)
        self.searched.add(key)
        self._trail(f"likely {rec.label}@{rec.center[0]:.2f},{rec.center[1]:.2f} ({place.score:.3f}: {place.reason})")
        if not self._run_step(Step("navigate_to", rec), record_failure=False).success:
            return
        if rec.label not in RECEPTACLE_OPENABLE or is_open(rec) is True or self._lookup(label) is not None:
            return
        self._check_budget()
        self.opened.add(key)
        if self._run_step(Step("open", rec), record_failure=False).success and self._lookup(label) is None:
            self._check_budget()
            self._run_step(Step("close", rec), record_failure=False)

    def _trail(self, what: str) -> None:
        self.outcome.search.append(f"{what} [{self.robot.spent().nav_m:.1f} m]")

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
                           unchecked: list[tuple[float, ...]], near: tuple[float, ...] | None = None
                           ) -> tuple[float, float] | None:
        """The viewpoint of ``todo`` from which a look-around checks the most ``unchecked`` surfaces per
        metre to drive there (a surface counting less the farther it is from ``near``, if given: where a
        lost thing was); None when there is none near any of them."""
        if not unchecked:
            return None
        weights = [1.0 if near is None else 1.0 / (1.0 + self.travel_m(c, near) / LOST_SPREAD_M) for c in unchecked]
        best, best_value = None, 0.0
        for v in sorted(todo):
            near_v = sum(w for c, w in zip(unchecked, weights, strict=True) if math.dist(c, v) <= SURFACE_VIEW_M)
            value = near_v / (SURFACE_TRAVEL_M + self.travel_m(v, here))
            if value > best_value:
                best, best_value = v, value
        return best

    def _rooms(self) -> dict[tuple[float, float], str]:
        """Each viewpoint's room ({} when the robot does not know its rooms)."""
        rooms = getattr(self.robot, "rooms", None)
        if rooms is None:
            return {}
        return {tuple(p): name for name, pts in rooms().items() if not is_plan_entry(name) for p in pts}

    def _plan_points(self) -> set[tuple[float, float]]:
        """The floor plan's points among the robot's viewpoints (not places to look around)."""
        rooms = getattr(self.robot, "rooms", None)
        if rooms is None:
            return set()
        return {tuple(p) for name, pts in rooms().items() if is_plan_entry(name) for p in pts}

    def _open_next(self, label: str, room: str | None = None) -> bool:
        """Open the nearest closed (or never seen open) receptacle not opened yet (in ``room``, if given);
        False if none is left."""
        here = self.robot.position()
        cands = []
        for kind in sorted(RECEPTACLE_OPENABLE):
            for rec in self._instances(kind):
                key = (kind, round(rec.center[0], 1), round(rec.center[1], 1), round(rec.center[2], 1))
                if room is not None and self._region(rec.center) != room:
                    continue
                if not any(self._same_storage(key, k) for k in self.opened) and is_open(rec) is not True:
                    cands.append((self.travel_m(rec.center, here), key, rec))
        if not cands:
            return False
        _, key, rec = min(cands, key=lambda c: (c[0], c[1]))
        self.opened.add(key)
        self._trail(f"open {rec.label}@{rec.center[0]:.2f},{rec.center[1]:.2f}")
        if not self._within_reach(rec) and not self._run_step(Step("navigate_to", rec), record_failure=False).success:
            return True
        self._check_budget()
        opened = self._run_step(Step("open", rec), record_failure=False)
        if opened.kind is FailureKind.UNREACHABLE:  # it was not within reach after all: drive there first
            self._check_budget()
            if not self._run_step(Step("navigate_to", rec), record_failure=False).success:
                return True
            self._check_budget()
            opened = self._run_step(Step("open", rec), record_failure=False)
        if opened.success and self._lookup(label) is None:
            self._check_budget()
            self._run_step(Step("close", rec), record_failure=False)
        return True

    def _within_reach(self, rec: ObjectRecord) -> bool:
        """The robot stands this close to the furniture's box (the drawer below the one it just opened): it
        can open it without driving (a drive there would cost a skill call)."""
        return _footprint_gap(self.robot.position(), rec) <= IN_REACH_M

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
            found_closed = any(math.dist(c, rec.center) <= RULED_OUT_M for c in self.found_closed)
            opened = rec.label in RECEPTACLE_OPENABLE and (is_open(rec) is not True or found_closed)
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
        if step.skill == "place" and result.kind is FailureKind.RECEPTACLE_CLOSED:
            self.found_closed.append(step.target.center)  # whatever memory believes: open it next time
        if record_failure and step.skill == "place" and result.kind is FailureKind.NO_FREE_SPOT:
            self.full.setdefault(step.target.label, []).append(step.target.center)  # try another instance
        return result

    def _open_and_pick(self, pick: Step, failed: StepResult) -> StepResult:
        """The object is inside a closed receptacle memory did not know of (or had open): open the nearest
        one of that kind memory knows and pick again; while it is still inside a closed one, the next
        nearest within ``OPEN_TO_PICK_M`` (a drawer above or beside), ``OPEN_TO_PICK_TRIES`` in all, each
        closed again when the thing was not in it."""
        assert failed.failure is not None
        kind = failed.failure.receptacle
        target = tuple(pick.target.center)
        holders = sorted(self._instances(kind), key=lambda r: (math.dist(r.center, target), r.center))
        nearby = holders[:1] + [r for r in holders[1:] if math.dist(r.center, target) <= OPEN_TO_PICK_M]
        result = failed
        for holder in nearby[:OPEN_TO_PICK_TRIES]:  # the failure is newer than memory's word that one is open
            self._check_budget()
            if not self._run_step(Step("open", holder), record_failure=False).success:
                continue
            self._check_budget()
            result = self._run_step(pick)
            if result.kind is not FailureKind.INSIDE_CLOSED:
                return result
            self._check_budget()  # not in that one: close it again (an open drawer hides the one below)
            self._run_step(Step("close", holder), record_failure=False)
        return result

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
