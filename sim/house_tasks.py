"""Task suite v2: household tasks in multi-room houses (:mod:`robomem_sim.house`).

History of every house: "this morning" the robot walks through the whole house as it should be
(every room in its RoomR episode's *target* arrangement) and opens the drawers, cabinets and
appliances it passes; then it is away for an hour while things happen: every room takes its
episode's *start* arrangement (someone moved things, opened or closed things) and a few objects are
carried to another room ("someone took the book to the bedroom"). Then it gets the tasks, one by
one, each from the same place (the middle of the hallway) and the same after-state.

The mix is that of a lived-in home: most targets are where the robot saw them this morning (on
furniture, or stored inside closed drawers, cabinets, the fridge), some were moved while it was
away (RoomR's moves, the cross-room moves), and some tasks need history ("put the book back where
it was this morning", "put back the thing that was moved from the desk", "bring me the keys I left
in the bedroom this morning"). A task is kept only if a scripted oracle (true objectIds) achieves it
from the after-state and its goal does not hold already. Goals are predicates checked on the
simulator's true state.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.planner import Budget
from robomem.planner.language import name_of
from robomem.thor.scene import load_roomr
from robomem_sim.house import TRAIN_INDICES, VAL_INDICES, House, build_house, split_of
from robomem_sim.placement import find_spot
from robomem_sim.robot import Robot, RobotPose
from robomem_sim.tasks import FOOD, ask_moved_from, ask_put_back, back_goal, put_steps, run_oracle
from robomem_sim.truth import Inside, On, Predicate, SceneTruth, State, holds, snapshot

SUITE_HOUSES = (21, 23, 25)  # the demo's suite (22 and 24 are three-room houses: a room has no wall for a doorway)
#: Where things are naturally put, per room.
PUT_ON = {"kitchen": ("DiningTable", "CounterTop", "CoffeeTable"),
          "living_room": ("Sofa", "CoffeeTable", "ArmChair", "SideTable", "DiningTable"),
          "bedroom": ("Bed", "Desk", "Dresser", "SideTable"), "bathroom": ("CounterTop", "Shelf", "Dresser", "Bed")}
#: Cross-room moves while the robot is away: (object types, to room) -- "someone took the book to the bedroom".
CROSS_MOVES = ((("Book", "KeyChain", "CellPhone", "RemoteControl", "Laptop", "Pillow", "CreditCard", "Newspaper"),
                "bedroom"),
               (("Mug", "Cup", "Apple", "Bowl", "Plate", "Bottle", "Statue", "Vase", "Pen", "Pencil", "Watch"),
                "living_room"))
#: Things a household keeps stored inside closed furniture, per room: (object types, receptacle types).
STORED = {"kitchen": (("Spatula", "Ladle", "Fork", "Spoon", "ButterKnife", "Knife", "DishSponge", "PepperShaker",
                       "SaltShaker"), ("Drawer", "Cabinet")),
          "kitchen_food": (("Egg", "Apple", "Tomato", "Lettuce", "Potato", "Bread"), ("Fridge",)),
          "living_room": (("KeyChain", "CreditCard", "RemoteControl", "CellPhone", "Watch", "Pen", "Pencil", "Book"),
                          ("Drawer", "Cabinet", "Box")),
          "bedroom": (("CellPhone", "KeyChain", "CreditCard", "Pen", "Pencil", "CD", "Watch", "Book", "AlarmClock"),
                      ("Drawer", "Cabinet", "Safe")),
          "bathroom": (("SoapBar", "SoapBottle", "ToiletPaper", "Cloth", "SprayBottle", "Candle", "HandTowel"),
                       ("Cabinet", "Drawer"))}
HIDDEN_OPENABLES = frozenset({"Drawer", "Cabinet", "Fridge", "Microwave", "Safe", "Box"})
MOVED_M = 0.05


@dataclass(frozen=True)
class HouseSetup:
    """A house and its history: one RoomR episode per room and the cross-room moves."""

    index: int
    year: int
    episodes: tuple[tuple[str, int], ...]  # (room name, RoomR episode index of its scene, in the index's split)
    moves: tuple[tuple[str, str], ...] = ()  # (objectId, receptacle objectId) carried while the robot was away
    stored: tuple[tuple[str, str], ...] = ()  # (objectId, closed receptacle objectId) kept inside, all day
    arrangement: int = 0  # which of the house's drawn histories (0: the first)

    @property
    def name(self) -> str:
        return f"House{self.index}"

    @property
    def key(self) -> str:
        """The house and its history: ``House21`` for the first arrangement, ``House21a1`` for the next."""
        return self.name if not self.arrangement else f"{self.name}a{self.arrangement}"

    @property
    def split(self) -> str:
        """RoomR split of the house's rooms: train (1-20) or val (21-25)."""
        return split_of(self.index)

    def build(self) -> House:
        return build_house(self.index)

    def roomr(self, house: House) -> dict[str, dict[str, Any]]:
        if not self.episodes:  # nothing to read
            return {}
        data = load_roomr(self.year, split=self.split)
        return {room: data[house.room_scene(room)][i] for room, i in self.episodes}

    def morning(self, house: House) -> None:
        """The house as it should be (with what is stored inside closed furniture)."""
        house.apply_episodes(self.roomr(house), "target")
        self._store(house)

    def after(self, house: House) -> None:
        """The house after the robot was away: RoomR start arrangements, then the cross-room moves."""
        house.apply_episodes(self.roomr(house), "start")
        self._store(house)
        for oid, rec in self.moves:
            spot = find_spot(house, oid, rec, house.center(rec)[:2], set())
            if spot is not None:
                house.set_center(oid, spot)


    def _store(self, house: House) -> None:
        for oid, rec in self.stored:
            house.set_openness(rec, 0.0, carry=True)
            spot = find_spot(house, oid, rec, house.center(rec)[:2], set())
            if spot is not None:
                house.set_center(oid, spot)


def _storage(house: House, setup: HouseSetup, morning: SceneTruth, after: SceneTruth, counts: dict[str, int]
             ) -> list[tuple[str, str]]:
    """One stored object per room group: an unmoved, visible object of a type unique in the house put
    inside a closed drawer / cabinet / fridge of its room."""
    out: list[tuple[str, str]] = []
    taken = {oid for oid, _ in setup.moves}
    for group, (types, rtypes) in STORED.items():
        room = group.split("_food")[0]
        if room not in house.rooms:
            continue
        cands = [o for o in after.objects.values() if o.object_type in types and counts[o.object_type] == 1
                 and o.object_id not in taken and house.room_at(o.center) == room and o.object_id in morning.objects
                 and np.linalg.norm(o.center - morning.objects[o.object_id].center) < MOVED_M]
        recs = sorted(r for r in house.rooms[room].part.object_ids if house.get(r).object_type in rtypes
                      and house.get(r).present)
        done = False
        for o in sorted(cands, key=lambda o: o.object_id):
            for rec in recs:
                if find_spot(house, o.object_id, rec, house.center(rec)[:2], set()) is not None:
                    out.append((o.object_id, rec))
                    taken.add(o.object_id)
                    done = True
                    break
            if done:
                break
    return out


@dataclass(frozen=True)
class HouseTask:
    """One household task in a house (``category``: seen | hidden | moved | cross_room | history)."""

    task_id: str
    setup: HouseSetup
    kind: str  # simple | composite | complex
    category: str
    instruction: str
    goal: tuple[Predicate, ...]
    targets: tuple[str, ...]
    moved: tuple[str, ...]
    oracle: tuple[tuple[str, str], ...]
    oracle_nav_m: float = 0.0  # how far the scripted oracle drove (from the hallway, true object ids)

    @property
    def scene(self) -> str:
        return self.setup.name

    def check(self, truth: SceneTruth) -> bool:
        return holds(truth, *self.goal)


def start_robot(house: House, config: Any = None) -> Robot:
    """The robot at the start of every task: the middle of the hallway, facing +x."""
    return Robot(house, RobotPose(house.start_xy[0], house.start_xy[1], 0.0), config)


def hidden(house: House, truth: SceneTruth, oid: str) -> bool:
    """Inside a closed drawer, cabinet or appliance."""
    return any(truth.relation(oid, r) == "inside" and truth.objects[r].is_open is False
               for r in truth.objects[oid].receptacles if house.get(r).object_type in HIDDEN_OPENABLES)


def _fetch_steps(house: House, truth: SceneTruth, oid: str) -> list[tuple[str, str]]:
    steps = [("navigate_to", oid)]
    for r in truth.objects[oid].receptacles:
        if house.get(r).openable and truth.objects[r].is_open is False and truth.relation(oid, r) == "inside":
            steps.append(("open", r))
            break
    return [*steps, ("pick", oid)]


def _place_steps(house: House, truth: SceneTruth, oid: str, rec: str) -> list[tuple[str, str]]:
    return [*_fetch_steps(house, truth, oid), *put_steps(house, truth, rec)]


def choose_setup(index: int, year: int, rng: random.Random, arrangement: int = 0) -> HouseSetup:
    """Per room a RoomR episode that moved at least two objects; cross-room moves of unmoved,
    visible objects of a type unique in the house, onto furniture of the destination room."""
    with build_house(index) as house:
        data = load_roomr(year, split=split_of(index))
        episodes = []
        for room in house.rooms.values():
            eps = data[room.scene]
            order = [i for i, e in enumerate(eps) if e["position_diff_count"] >= 2]
            episodes.append((room.name, rng.choice(order)))
        setup = HouseSetup(index, year, tuple(episodes), arrangement=arrangement)
        setup.morning(house)
        morning = snapshot(house)
        setup.after(house)
        after = snapshot(house)
        counts: dict[str, int] = {}
        for o in after.objects.values():
            counts[o.object_type] = counts.get(o.object_type, 0) + 1
        moves = []
        for types, dest in CROSS_MOVES:
            if dest not in house.rooms:
                continue
            for otype in types:
                found = [o for o in after.objects.values() if o.object_type == otype and counts[otype] == 1
                         and house.room_at(o.center) not in (dest, None) and o.object_id in morning.objects
                         and np.linalg.norm(o.center - morning.objects[o.object_id].center) < MOVED_M
                         and not hidden(house, after, o.object_id)]
                recs = [r for r in house.rooms[dest].part.object_ids if house.get(r).object_type in PUT_ON[dest]
                        and house.get(r).present]
                if not found or not recs:
                    continue
                oid = found[0].object_id
                rec = next((r for r in sorted(recs) if find_spot(house, oid, r, house.center(r)[:2], set())
                            is not None), None)
                if rec is not None:
                    moves.append((oid, rec))
                    break
        setup = HouseSetup(index, year, tuple(episodes), tuple(moves), arrangement=arrangement)
        return HouseSetup(index, year, tuple(episodes), tuple(moves),
                          tuple(_storage(house, setup, morning, after, counts)), arrangement)


class _HouseBuilder:
    """Candidate tasks of one house, each checked by the oracle from the after-state."""

    def __init__(self, house: House, setup: HouseSetup, rng: random.Random, budget: Budget | None = None) -> None:
        self.house, self.setup, self.rng = house, setup, rng
        if budget is None:
            from robomem_sim.runner import DEFAULT_BUDGET  # the budget every run gets

            budget = DEFAULT_BUDGET
        self.budget = budget
        setup.morning(house)
        self.morning = snapshot(house)
        setup.after(house)
        self.after = snapshot(house)
        counts: dict[str, int] = {}
        for o in [*self.after.objects.values(), *self.morning.objects.values()]:
            counts[o.object_type] = counts.get(o.object_type, 0) + 1
        twice = {t for t, n in counts.items() if n == 2}  # once in each snapshot: unique in the house
        pick = [oid for oid, o in self.after.objects.items() if house.get(oid).pickupable and o.object_type in twice
                and oid in self.morning.objects]
        crossed = {oid for oid, _ in setup.moves}
        self.moved = sorted(o for o in pick if self._dist(o) > MOVED_M and o not in crossed
                            and not hidden(house, self.after, o))
        self.seen = sorted(o for o in pick if self._dist(o) <= MOVED_M and not hidden(house, self.after, o))
        self.hidden = sorted(o for o in pick if self._dist(o) <= MOVED_M and hidden(house, self.after, o))
        self.crossed = sorted(crossed)
        self.n = 0

    def _dist(self, oid: str) -> float:
        return float(np.linalg.norm(self.after.objects[oid].center - self.morning.objects[oid].center))

    def room(self, oid: str, truth: SceneTruth | None = None) -> str:
        return self.house.room_at((truth or self.after).objects[oid].center) or "hallway"

    def keep(self, kind: str, category: str, instruction: str, goal: tuple[Predicate, ...],
             targets: tuple[str, ...], steps: list[tuple[str, str]]) -> HouseTask | None:
        tid = f"{self.setup.key}-{self.n}"
        moved = tuple(t for t in targets if t in self.moved or t in self.crossed)
        task = HouseTask(tid, self.setup, kind, category, instruction, goal, targets, moved, tuple(steps))
        ok = False
        if not task.check(self.after):
            robot = start_robot(self.house)
            ok = run_oracle(self.house, robot, task.oracle) and task.check(snapshot(self.house))
            # a task whose own scripted plan needs more than a run may spend is not a fair task
            ok = ok and robot.nav_distance_m <= self.budget.max_nav_m and len(steps) <= self.budget.max_skill_calls
            task = dataclasses.replace(task, oracle_nav_m=round(float(robot.nav_distance_m), 2))
            self.house.client.removeBody(robot.body)
        self.setup.after(self.house)
        if ok:
            self.n += 1
        return task if ok else None

    def _recs(self, rtype: str, near_room: str) -> list[str]:
        found = [o.object_id for o in self.house.of_type(rtype)]
        return sorted(found, key=lambda r: (self.house.room_at(self.house.center(r)) != near_room, r))

    def place(self, oid: str, category: str) -> HouseTask | None:
        """"put the X on/in the Y", Y a natural place in the object's room (or in the fridge for food)."""
        obj = self.after.objects[oid]
        room = self.room(oid)
        choices = [(t, "on") for t in PUT_ON.get(room, ())]
        self.rng.shuffle(choices)
        if obj.object_type in FOOD:
            choices.insert(0, ("Fridge", "in"))
        for rtype, rel in choices:
            for rec in self._recs(rtype, room)[:1]:
                if rec in obj.receptacles:
                    continue
                goal = (Inside(oid, rtype),) if rel == "in" else (On(oid, rtype),)
                text = f"put the {name_of(obj.object_type)} {rel} the {name_of(rtype)}"
                task = self.keep("simple", category, text, goal, (oid,), _place_steps(self.house, self.after, oid, rec))
                if task:
                    return task
        return None

    def pair(self, a: str, b: str, category: str) -> HouseTask | None:
        ta, tb = self.after.objects[a].object_type, self.after.objects[b].object_type
        room = self.room(a)
        for rtype in PUT_ON.get(room, ()):
            for rec in self._recs(rtype, room)[:1]:
                if rec in self.after.objects[a].receptacles or rec in self.after.objects[b].receptacles:
                    continue
                text = f"put the {name_of(ta)} and the {name_of(tb)} on the {name_of(rtype)}"
                steps = _place_steps(self.house, self.after, a, rec) + _place_steps(self.house, self.after, b, rec)
                task = self.keep("composite", category, text, (On(a, rtype), On(b, rtype)), (a, b), steps)
                if task:
                    return task
        return None

    def then(self, oid: str, category: str) -> HouseTask | None:
        """"put the X in the fridge and close it" (food)."""
        obj = self.after.objects[oid]
        fridges = self._recs("Fridge", "kitchen")
        if obj.object_type not in FOOD or not fridges or fridges[0] in obj.receptacles:
            return None
        goal = (Inside(oid, "Fridge"), State(fridges[0], "isOpen", False))
        steps = _place_steps(self.house, self.after, oid, fridges[0])
        if steps[-1][0] != "close":
            steps.append(("close", fridges[0]))
        text = f"put the {name_of(obj.object_type)} in the fridge and close it"
        return self.keep("composite", category, text, goal, (oid,), steps)

    def fetch_left(self, oid: str, category: str) -> HouseTask | None:
        """"bring me the X I left in the <room> this morning"."""
        room = self.room(oid, self.morning).replace("_", " ")
        text = f"bring me the {name_of(self.after.objects[oid].object_type)} I left in the {room} this morning"
        return self.keep("complex", category, text, (State(oid, "isPickedUp", True),), (oid,),
                         _fetch_steps(self.house, self.after, oid))

    def _back(self, category: str, oid: str, ask: tuple[str, str] | None) -> HouseTask | None:
        """The complex task of putting the object back on or in the furniture of ``ask`` as this morning."""
        if ask is None:
            return None
        rec, text = ask
        goal = back_goal(self.house, self.morning, oid, rec)
        return self.keep("complex", category, text, goal, (oid,), _place_steps(self.house, self.after, oid, rec))

    def put_back(self, oid: str, category: str) -> HouseTask | None:
        return self._back(category, oid, ask_put_back(self.house, self.morning, self.after, oid))

    def moved_from(self, oid: str, category: str) -> HouseTask | None:
        moved = [*self.moved, *self.crossed]
        return self._back(category, oid, ask_moved_from(self.house, self.morning, self.after, oid, moved))


def _first(makers: list[Any]) -> HouseTask | None:
    for make in makers:
        task = make()
        if task:
            return task
    return None


def house_tasks(house: House, setup: HouseSetup, rng: random.Random, per_house: int = 8,
                budget: Budget | None = None) -> list[HouseTask]:
    """Candidates: per room an object where the robot saw it, objects stored inside closed furniture, a
    pair, food into the fridge, objects RoomR moved, and history (a cross-room move put back, an object
    fetched from the room it was left in, moved-from, put back); ``per_house`` of them drawn by :data:`MIX`.
    A candidate whose oracle drives farther (or calls more skills) than ``budget`` allows is left out."""
    b = _HouseBuilder(house, setup, rng, budget)
    used: set[str] = set()
    out: list[HouseTask] = []

    def add(task: HouseTask | None) -> None:
        if task is not None and not used.intersection(task.targets):
            out.append(task)
            used.update(task.targets)

    def free(pool: list[str]) -> list[str]:
        pool = [o for o in pool if o not in used]
        rng.shuffle(pool)
        return pool

    by_room: dict[str, list[str]] = {}
    for oid in free(b.seen):
        by_room.setdefault(b.room(oid), []).append(oid)
    add(_first([lambda o=o: b.then(o, "seen") for o in free(b.seen)]))
    for room in sorted(by_room):  # a pair of things in one room
        cands = [o for o in by_room[room] if o not in used][:8]
        task = _first([lambda a=a, c=c: b.pair(a, c, "seen") for a in cands for c in cands if a < c])
        add(task)
        if task:
            break
    for room in sorted(by_room):  # seen, one per room
        add(_first([lambda o=o: b.place(o, "seen") for o in by_room[room] if o not in used]))
    add(_first([lambda o=o: b.fetch_left(o, "hidden") for o in free(b.hidden)]))
    add(_first([lambda o=o: b.place(o, "hidden") for o in free(b.hidden)]))
    add(_first([lambda o=o: b.place(o, "moved") for o in free(b.moved)]))
    crossed = free(b.crossed)
    add(_first([lambda o=o: b.put_back(o, "cross_room") for o in crossed]))
    add(_first([lambda o=o: b.fetch_left(o, "cross_room") for o in free(crossed)]))
    add(_first([lambda o=o: b.moved_from(o, "history") for o in free(b.moved)]))
    add(_first([lambda o=o: b.put_back(o, "history") for o in free(b.moved)]))
    for oid in free(b.seen)[:6]:  # more objects where the robot saw them
        add(b.place(oid, "seen"))
    return _mix(out, per_house)


#: The order categories are drawn in: most targets are where the robot saw them (on furniture or stored
#: inside), some were moved while it was away, some tasks need history.
MIX = ("seen", "hidden", "moved", "cross_room", "seen", "history", "cross_room", "seen", "hidden", "seen", "seen")


def _mix(tasks: list[HouseTask], n: int) -> list[HouseTask]:
    """Up to ``n`` tasks drawn by :data:`MIX`, then any left, in the order they were made."""
    pools = {c: [t for t in tasks if t.category == c] for c in {t.category for t in tasks}}
    out: list[HouseTask] = []
    for category in MIX:
        if len(out) < n and pools.get(category):
            out.append(pools[category].pop(0))
    rest = [t for t in tasks if t not in out]
    chosen = set(id(t) for t in out + rest[: n - len(out)])
    return [t for t in tasks if id(t) in chosen]


@dataclass(frozen=True)
class HouseJob:
    """One house and history of a suite, with the seeds that draw them: built alone (e.g. in a worker
    process), it gives the same tasks as in the whole suite."""

    index: int
    arrangement: int
    setup_seed: float
    tasks_seed: float
    per_house: int = 8
    year: int = 2022

    def setup(self) -> HouseSetup:
        return choose_setup(self.index, self.year, random.Random(self.setup_seed), self.arrangement)

    def tasks(self, house: House, setup: HouseSetup, budget: Budget | None = None) -> list[HouseTask]:
        return house_tasks(house, setup, random.Random(self.tasks_seed), self.per_house, budget)


def suite_jobs(seed: int = 0, houses: tuple[int, ...] = SUITE_HOUSES, year: int = 2022, per_house: int = 8,
               arrangements: int = 1) -> list[HouseJob]:
    """The suite's houses and histories in order, each with its seeds (drawn from ``seed`` in turn)."""
    rng = random.Random(seed)
    jobs = []
    for index in houses:
        for arrangement in range(arrangements):
            jobs.append(HouseJob(index, arrangement, rng.random(), rng.random(), per_house, year))
    return jobs


@functools.lru_cache(maxsize=4)
def build_house_suite(seed: int = 0, houses: tuple[int, ...] = SUITE_HOUSES, year: int = 2022,
                      per_house: int = 8, budget: Budget | None = None, arrangements: int = 1
                      ) -> tuple[HouseTask, ...]:
    """The house task suite (deterministic for a seed): per house ``arrangements`` histories (RoomR
    episodes, cross-room moves, stored things), ``per_house`` tasks each; every task's oracle fits
    ``budget`` (default: the runner's :data:`~robomem_sim.runner.DEFAULT_BUDGET`)."""
    tasks: list[HouseTask] = []
    for job in suite_jobs(seed, houses, year, per_house, arrangements):
        setup = job.setup()
        with setup.build() as house:
            tasks += job.tasks(house, setup, budget)
    return tuple(tasks)


@dataclass(frozen=True)
class SuiteSpec:
    """A named suite: the houses (room indices), histories per house and tasks per history."""

    houses: tuple[int, ...]
    arrangements: int
    per_house: int

    def build(self, seed: int = 0, budget: Budget | None = None) -> tuple[HouseTask, ...]:
        return build_house_suite(seed, self.houses, per_house=self.per_house, budget=budget,
                                 arrangements=self.arrangements)

    def jobs(self, seed: int = 0) -> list[HouseJob]:
        return suite_jobs(seed, self.houses, per_house=self.per_house, arrangements=self.arrangements)


#: ``demo``: the demo's small default suite (val houses); ``train``: every train room index (tune here);
#: ``val``: every val room index, several histories each (report here, never trace); ``full``: both.
SUITES = {
    "demo": SuiteSpec(SUITE_HOUSES, 1, 8),
    "train": SuiteSpec(TRAIN_INDICES, 1, 6),
    "val": SuiteSpec(VAL_INDICES, 2, 6),
}


def named_jobs(name: str, seed: int = 0) -> list[HouseJob]:
    """The houses and histories of a named suite (:data:`SUITES`, or ``full``: train then val)."""
    if name == "full":
        return named_jobs("train", seed) + named_jobs("val", seed)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}: one of {', '.join([*SUITES, 'full'])}")
    return SUITES[name].jobs(seed)


def named_suite(name: str, seed: int = 0, budget: Budget | None = None) -> tuple[HouseTask, ...]:
    """The tasks of a named suite (:data:`SUITES`, or ``full``: train and val)."""
    if name == "full":
        return named_suite("train", seed, budget) + named_suite("val", seed, budget)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}: one of {', '.join([*SUITES, 'full'])}")
    return SUITES[name].build(seed, budget)
