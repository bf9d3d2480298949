"""Priors for the unseen (robomem.core.priors, Memory.likely_places, the planner's likely_places tool):
AI2-THOR's placement statistics read from the installed procthor package, where this home's memory has
seen these things, where things were put since one was lost; the floor plan's path lengths."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from robomem.core import Memory, MemoryConfig
from robomem.core.priors import PlacementStatistics, placement_statistics, procthor_databases
from robomem.core.types import ObservationBatch, make_detection, make_view
from robomem.planner import CountingTools, InProcessTools
from robomem.planner.travel import FloorPlan

REPO = Path(__file__).resolve().parents[1]

EAST = make_view(position=(0, 0, 1.2), yaw_deg=0, fov_deg=90, range_m=4)
WEST = make_view(position=(0, 0, 1.2), yaw_deg=180, fov_deg=90, range_m=4)
NORTH = make_view(position=(0, 0, 1.2), yaw_deg=90, fov_deg=90, range_m=4)


def _desk():
    return make_detection("Desk", center=(2.0, 0.0, 0.4), size=(1.0, 0.6, 0.8), confidence=0.95)


def _side_table():
    return make_detection("SideTable", center=(-2.0, 0.0, 0.3), size=(0.5, 0.5, 0.6), confidence=0.95)


def _sofa():
    return make_detection("Sofa", center=(0.0, 2.5, 0.4), size=(2.0, 0.9, 0.8), confidence=0.95)


def _on(label: str, x: float, y: float, z: float):
    return make_detection(label, center=(x, y, z), size=(0.1, 0.1, 0.1), confidence=0.9)


class _Feed:
    def __init__(self, memory: Memory) -> None:
        self.memory, self.t = memory, 0.0

    def see(self, view, *detections, times: int = 2) -> None:
        for _ in range(times):
            self.t += 1.0
            self.memory.ingest(ObservationBatch(t=self.t, robot="r", view=view, detections=list(detections)))


@pytest.fixture
def home():
    """A mug seen on the desk, then on the side table, then on the desk again, then gone from the desk;
    a sofa seen empty all along."""
    memory = Memory(MemoryConfig(db_path=":memory:"))
    feed = _Feed(memory)
    feed.see(EAST, _desk(), _on("Mug", 2.0, 0.0, 0.85))
    feed.see(NORTH, _sofa())
    feed.see(WEST, _side_table())
    feed.see(WEST, _side_table(), _on("Mug", -2.0, 0.0, 0.65))
    feed.see(EAST, _desk(), times=3)
    feed.see(EAST, _desk(), _on("Mug", 2.0, 0.0, 0.85))
    feed.see(WEST, _side_table(), times=3)
    feed.see(EAST, _desk(), times=10)
    yield memory, feed
    memory.close()


@pytest.mark.data("thor")
def test_statistics_come_from_the_installed_procthor_package_not_the_repository() -> None:
    folder = procthor_databases()
    assert folder is not None and "site-packages" in folder.parts  # the installed package's own files
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "receptacles.json" not in tracked and "placement-annotations.json" not in tracked  # never copied
    stats = placement_statistics()
    assert stats is not None
    egg = stats.type_prior("Egg", {"fridge", "sofa", "bed", "countertop"})
    assert max(egg, key=egg.get) == "fridge" and math.isclose(sum(egg.values()), 1.0)
    pillow = stats.type_prior("Pillow", {"fridge", "sofa", "bed", "countertop"})
    assert max(pillow, key=pillow.get) == "bed"
    assert stats.room_factor("Egg", "kitchen") > stats.room_factor("Egg", "bathroom")
    assert stats.room_factor("Egg", "hallway") == 1.0  # no annotation for a hallway


@pytest.mark.data("thor")
def test_history_ranks_where_these_things_have_been(home) -> None:
    memory, _ = home
    assert memory.where_is("Mug") is None  # gone from the desk: memory does not know where it is
    places = memory.likely_places("Mug", 5)
    labels = [p.label for p in places]
    assert set(labels[:2]) == {"Desk", "SideTable"}, places
    assert labels.index("Sofa") == 2  # nothing of the mug's history, and mugs seldom sit on sofas
    for place in places[:2]:
        assert place.evidence["history"] > 0 and "Mug was on this" in place.reason
    assert sum(p.score for p in places) <= 1.0 + 1e-9
    assert places == sorted(places, key=lambda p: -p.score)
    assert all(p.room == "home" for p in places)
    # without AI2-THOR's statistics only memory's history speaks: the sofa is no candidate at all
    from robomem.core.priors import likely_places

    bare = likely_places(memory, "Mug", 5, statistics=None)
    assert {p.label for p in bare} == {"Desk", "SideTable"}


def test_a_stay_that_ended_gone_counts_less_than_one_that_did_not(home) -> None:
    """The mug was on the desk twice, on the side table once; its last stay on the desk ended with memory
    calling it gone (someone took it from there), so that stay counts GONE_FACTOR of one, and the desk's
    history weighs (1 + GONE_FACTOR) times the side table's (all stays ended minutes ago)."""
    memory, _ = home
    from robomem.core.priors import GONE_FACTOR, likely_places

    bare = {p.label: p for p in likely_places(memory, "Mug", 5, statistics=None)}
    assert "2x" in bare["Desk"].reason and "1x" in bare["SideTable"].reason
    ratio = bare["Desk"].evidence["history"] / bare["SideTable"].evidence["history"]
    assert math.isclose(ratio, 1.0 + GONE_FACTOR, rel_tol=1e-3)


@pytest.mark.data("thor")
def test_things_put_somewhere_since_the_thing_was_lost_point_there() -> None:
    """After the mug was lost someone moved a book from the side table to the sofa (memory saw both): that
    is where things have been put since, so the sofa gains evidence of that kind (the others none)."""
    from robomem.core.priors import likely_places

    memory = Memory(MemoryConfig(db_path=":memory:"))
    try:
        feed = _Feed(memory)
        feed.see(WEST, _side_table(), _on("Book", -2.0, 0.1, 0.65))
        feed.see(NORTH, _sofa())
        feed.see(EAST, _desk(), _on("Mug", 2.0, 0.0, 0.85))
        feed.see(EAST, _desk(), times=10)  # the mug is gone
        lost_at = memory.now
        feed.see(NORTH, _sofa(), _on("Book", 0.0, 2.5, 0.85), times=3)
        feed.see(WEST, _side_table(), times=4)
        assert [c.change for c in memory.what_changed(lost_at) if c.label == "Book"] == ["moved"]
        places = {p.label: p for p in memory.likely_places("Mug", 5)}
        assert places["Sofa"].evidence["changes"] > 0.99
        assert places["Desk"].evidence["changes"] == 0.0 and places["SideTable"].evidence["changes"] == 0.0
        before = {p.label: p for p in likely_places(memory, "Mug", 5, since=memory.now)}  # nothing since now
        assert "changes" not in before["Sofa"].evidence and before["Sofa"].score < places["Sofa"].score
    finally:
        memory.close()


@pytest.mark.data("thor")
def test_bad_requests_and_a_home_without_receptacles() -> None:
    memory = Memory(MemoryConfig(db_path=":memory:"))
    try:
        with pytest.raises(ValueError):
            memory.likely_places("", 3)
        assert memory.likely_places("Mug", 3) == []  # knows no furniture yet
        feed = _Feed(memory)
        feed.see(EAST, _desk())
        assert memory.likely_places("Mug", 0) == []
        assert [p.label for p in memory.likely_places("Mug", 10_000)] == ["Desk"]  # k is capped, not an error
    finally:
        memory.close()


def test_custom_statistics_decide_the_prior() -> None:
    memory = Memory(MemoryConfig(db_path=":memory:"))
    try:
        feed = _Feed(memory)
        feed.see(EAST, _desk())
        feed.see(NORTH, _sofa())
        from robomem.core.priors import likely_places

        stats = PlacementStatistics({"sofa": {"widget": 9.0}, "desk": {"widget": 1.0}}, {})
        places = likely_places(memory, "Widget", 2, statistics=stats)
        assert [p.label for p in places] == ["Sofa", "Desk"] and places[0].score > 0.8
        assert "AI2-THOR" in places[0].reason
    finally:
        memory.close()


def test_a_place_no_evidence_points_to_is_not_informed() -> None:
    """Smoothing gives a receptacle type the statistics never saw a widget on a small share; only a type
    they saw it on (or memory's own evidence) makes a place informed."""
    memory = Memory(MemoryConfig(db_path=":memory:"))
    try:
        feed = _Feed(memory)
        feed.see(EAST, _desk())
        feed.see(NORTH, _sofa())
        feed.see(WEST, _side_table())
        from robomem.core.priors import likely_places

        stats = PlacementStatistics({"sofa": {"widget": 9.0}, "desk": {"pen": 4.0}, "sidetable": {}}, {})
        places = {p.label: p for p in likely_places(memory, "Widget", 5, statistics=stats)}
        assert places["Sofa"].informed
        assert set(places) == {"Sofa", "Desk", "SideTable"}
        assert not places["Desk"].informed and not places["SideTable"].informed
        assert places["Desk"].score < places["Sofa"].score / 10
        feed.see(EAST, _desk(), _on("Widget", 2.0, 0.0, 0.85))  # seen on the desk: memory's evidence
        places = {p.label: p for p in likely_places(memory, "Widget", 5, statistics=stats)}
        assert places["Desk"].informed and not places["SideTable"].informed
    finally:
        memory.close()


@pytest.mark.data("thor")
def test_the_planner_tool_gives_receptacle_records_with_their_state_and_is_counted(home) -> None:
    memory, _ = home
    tools = CountingTools(InProcessTools(memory))
    places = tools.likely_places("Mug", 3)
    assert tools.calls["likely_places"] == 1
    assert [p.place.label for p in places] == [p.label for p in memory.likely_places("Mug", 3)]
    assert all(p.place.track_id >= 0 and p.reason for p in places)


def test_floor_plan_paths_go_through_doorways() -> None:
    """Two rooms side by side along a hallway (y < 0), a wall between them: from one room to the other
    the way is out through one doorway, along the hallway and in through the other -- not the 2 m
    straight line through the wall."""
    rooms = {
        "kitchen": [(1.0, 1.0)], "bedroom": [(3.0, 1.0)],
        "floor:kitchen": [(0.0, 0.0), (1.9, 2.0)], "floor:bedroom": [(2.1, 0.0), (4.0, 2.0)],
        "door:kitchen": [(0.5, 0.4), (0.5, -0.5)], "door:bedroom": [(3.5, 0.4), (3.5, -0.5)],
    }
    plan = FloorPlan.from_rooms(rooms)
    assert plan is not None and plan.room_at((1.0, 1.0)) == "kitchen" and plan.room_at((1.0, -0.5)) == ""
    d = plan.distance((1.0, 1.5), (3.0, 1.5))
    expected = (math.dist((1.0, 1.5), (0.5, 0.4)) + 0.9 + 3.0 + 0.9 + math.dist((3.5, 0.4), (3.0, 1.5)))
    assert math.isclose(d, expected, rel_tol=1e-9) and d > 2 * math.dist((1.0, 1.5), (3.0, 1.5))
    assert math.isclose(plan.distance((0.2, 0.2), (1.5, 1.8)), math.dist((0.2, 0.2), (1.5, 1.8)))  # one room
    hall = plan.distance((2.0, -0.5), (3.0, 1.5))  # from the hallway: in through the bedroom's doorway
    assert math.isclose(hall, 1.5 + 0.9 + math.dist((3.5, 0.4), (3.0, 1.5)))
    assert FloorPlan.from_rooms({"kitchen": [(1.0, 1.0)]}) is None  # no plan: straight lines


class _Home:
    """A small home for the planner: things are truly where ``world`` says; going next to something (or
    looking around) shows memory what lies within reach of the eyes (1.2 m; 3 m for a look-around)."""

    def __init__(self, memory: Memory, world: dict[str, tuple[float, float, float]],
                 rooms: dict[str, list[tuple[float, float]]]) -> None:
        self.memory, self.world, self._rooms = memory, dict(world), rooms
        self.t, self.calls, self.held, self.here = 100.0, 0, None, (0.0, 0.0)
        self.trail: list[str] = []

    def position(self):
        return self.here

    def now(self):
        return self.t

    def holding(self):
        return self.held

    def viewpoints(self):
        return [p for pts in self._rooms.values() for p in pts]

    def rooms(self):
        return self._rooms

    def _show(self, radius: float) -> None:
        near = [make_detection(label, center=c, size=(0.1, 0.1, 0.1) if label[0].islower() or c[2] > 0.6
                               else (1.0, 0.6, 0.8), confidence=0.95)
                for label, c in self.world.items() if math.dist(c[:2], self.here) < radius]
        view = make_view(position=(*self.here, 1.2), yaw_deg=0, fov_deg=360, range_m=radius)
        for dt in (0.0, 0.1):
            self.memory.ingest(ObservationBatch(t=self.t + dt, robot="r", view=view, detections=near))
        self.t += 1.0

    def act(self, step):
        from robomem.planner.results import FailureKind, StepResult

        self.calls += 1
        label, at = step.target.label, step.target.center
        self.trail.append(f"{step.skill} {label}")
        if step.skill == "navigate_to":
            self.here = (at[0] - 0.6, at[1])
            self._show(1.2)
        here = self.world.get(label)
        if here is None or math.dist(here[:2], at[:2]) > 0.3:
            return StepResult.failed(FailureKind.NOT_FOUND, label)
        if step.skill == "pick":
            self.held = label
            del self.world[label]
        return StepResult(True)

    def go_to(self, xy):
        from robomem.planner.results import StepResult

        self.calls += 1
        self.trail.append(f"go_to {xy}")
        self.here = xy
        return StepResult(True)

    def look_around(self):
        self.calls += 1
        self.trail.append("look_around")
        self._show(3.0)

    def observe(self):
        self.t += 0.5

    def spent(self):
        from robomem.planner.agent import Spent

        return Spent(self.calls, 0.0, 0.0)


@pytest.mark.data("thor")
def test_the_planner_goes_first_where_a_thing_never_seen_is_likely_kept() -> None:
    """Memory knows the home's furniture (seen this morning) but has never seen a pillow. From the
    middle of the home the nearest viewpoint is by the counter; AI2-THOR's statistics say pillows are
    kept on beds and sofas: the robot goes to the bed (nearer than the sofa) first and finds it there.
    Memory off (only what it sees in the task, so no such ranking) goes to the nearest viewpoint."""
    from robomem.planner.agent import Agent

    furniture = {"CounterTop": (2.0, 0.0, 0.45), "Bed": (-4.0, 0.0, 0.3), "Sofa": (0.0, 7.0, 0.4)}
    rooms = {"kitchen": [(2.5, 1.5)], "bedroom": [(-4.0, 1.5)], "living_room": [(0.0, 5.5)]}
    morning = Memory(MemoryConfig(db_path=":memory:"))
    off = Memory(MemoryConfig(db_path=":memory:"))
    try:
        feed = _Feed(morning)
        for label, c in furniture.items():
            here = make_view(position=(c[0] - 1.0, c[1], 1.2), yaw_deg=0, fov_deg=120, range_m=3)
            feed.see(here, make_detection(label, center=c, size=(1.0, 0.6, 0.8), confidence=0.95))
        world = {**furniture, "Pillow": (-4.0, 0.1, 0.7)}
        robot = _Home(morning, world, rooms)
        robot.here = (5.0, 5.0)  # far from everything: the first look-around sees nothing
        outcome = Agent(InProcessTools(morning), robot).run("bring me the pillow")
        assert outcome.done and robot.held == "Pillow", outcome.reason
        assert robot.trail[:2] == ["look_around", "navigate_to Bed"], robot.trail
        assert outcome.search[0].startswith("likely Bed@") and "AI2-THOR" in outcome.search[0]

        robot_off = _Home(off, dict(world), rooms)
        robot_off.here = (5.0, 5.0)
        assert getattr(CountingTools(InProcessTools(off, long_term=False)), "likely_places", None) is None
        Agent(InProcessTools(off, long_term=False), robot_off).run("bring me the pillow")
        assert robot_off.trail[1] == "go_to (2.5, 1.5)"  # the nearest viewpoint: no ranking without memory
    finally:
        morning.close()
        off.close()


@pytest.mark.data("thor")
def test_a_thing_not_where_memory_had_it_is_looked_for_in_other_rooms_before_its_whole_room() -> None:
    """Memory saw the mug on the kitchen counter this morning; someone carried it to the bedroom next
    door. After it is not found at the counter, the robot looks from one more kitchen viewpoint (moves
    within a room are most common), then home-wide: the bedroom's two surfaces, nearer per metre than
    the kitchen's sofa at its far end, are looked at first and the mug is found there. Without the limit on its
    own room's viewpoints, the robot would go on to the kitchen's far end first."""
    from robomem.planner import agent as planner_agent
    from robomem.planner.agent import Agent
    furniture = {"CounterTop": (2.0, 0.0, 0.4), "Stool": (3.0, 5.0, 0.4), "Ottoman": (3.0, 8.5, 0.4),
                 "Sofa": (3.0, 12.0, 0.4), "Bed": (-2.0, 4.6, 0.4), "ArmChair": (-2.0, 6.0, 0.4)}
    things = {"apple": (3.0, 5.0, 0.85), "book": (3.0, 8.5, 0.85), "cloth": (3.0, 12.0, 0.85),
              "pillow": (-2.0, 4.4, 0.85), "newspaper": (-2.0, 6.0, 0.85)}
    rooms = {"kitchen": [(2.5, 1.5), (2.5, 5.0), (2.5, 8.5), (2.5, 12.0)], "bedroom": [(-1.5, 5.2)]}
    morning = Memory(MemoryConfig(db_path=":memory:"))
    try:
        feed = _Feed(morning)
        seen = {**furniture, **things, "Mug": (2.0, 0.1, 0.85)}
        for label, c in seen.items():
            size = (0.1, 0.1, 0.1) if c[2] > 0.6 else (1.0, 0.6, 0.8)
            here = make_view(position=(c[0] - 1.0, c[1], 1.2), yaw_deg=0, fov_deg=120, range_m=3)
            feed.see(here, make_detection(label, center=c, size=size, confidence=0.95))
        world = {**furniture, **things}
        world["Mug"] = (-2.0, 4.8, 0.85)  # carried to the bed
        robot = _Home(morning, world, rooms)
        robot.here = (2.0, -1.0)
        robot.t = feed.t + 10.0
        outcome = Agent(InProcessTools(morning), robot).run("bring me the mug")
        assert outcome.done and robot.held == "Mug", (outcome.reason, robot.trail)
        gone = [step for step in robot.trail if step.startswith("go_to")]
        assert gone[-1] == "go_to (-1.5, 5.2)", robot.trail  # found from the bedroom's viewpoint
        assert "go_to (2.5, 12.0)" not in gone, robot.trail  # before the kitchen's far end
        kitchen = [g for g in gone if g != "go_to (-1.5, 5.2)"]
        assert len(kitchen) == planner_agent.LOST_ROOM_LOOKS, robot.trail
    finally:
        morning.close()
