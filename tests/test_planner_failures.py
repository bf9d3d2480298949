"""Typed skill failures: what a step result may hold, and the planner deciding on the kind and fields."""

from __future__ import annotations

import pytest

from robomem.core.types import ObservationBatch, make_detection, make_view
from robomem.planner import Agent, Failure, FailureKind, InProcessTools, Spent, StepResult

APPLE = (2.0, 0.0, 0.95)
HOLDERS = {"Drawer": (2.0, -0.7, 0.4), "Cabinet": (2.0, 0.8, 0.4)}


def test_a_step_result_fails_exactly_when_it_has_a_typed_failure() -> None:
    assert StepResult.ok().success and StepResult.ok().kind is FailureKind.NONE and StepResult.ok().reason == ""
    closed = StepResult.failed(FailureKind.INSIDE_CLOSED, "Apple", "Fridge")
    assert not closed.success and closed.failure == Failure(FailureKind.INSIDE_CLOSED, "Apple", "Fridge")
    assert (closed.kind, closed.reason) == (FailureKind.INSIDE_CLOSED, "inside closed Fridge")
    assert StepResult.failed(FailureKind.ALREADY, "Fridge", detail="open").reason == "already open"
    assert StepResult.failed(FailureKind.REJECTED, detail="unknown_skill").reason == "rejected: unknown_skill"
    with pytest.raises(ValueError):
        StepResult(False)  # a failure without a kind
    with pytest.raises(ValueError):
        StepResult(True, Failure(FailureKind.NOT_FOUND, "Apple"))
    with pytest.raises(TypeError):
        StepResult(False, "no free spot")  # type: ignore[arg-type]  # words are not a failure
    with pytest.raises(ValueError):
        Failure(FailureKind.NONE)


def test_every_kind_has_a_reason_in_words_and_fits_a_uint8() -> None:
    texts = [Failure(kind, "Apple", "Fridge", "x").text for kind in FailureKind if kind is not FailureKind.NONE]
    assert all(texts) and len(set(texts)) == len(texts)
    assert all(0 <= kind.value < 256 for kind in FailureKind)


class _Kitchen:
    """An apple memory has on the counter is really inside a closed ``hidden_in``: picking it fails with
    INSIDE_CLOSED until that receptacle is open."""

    def __init__(self, hidden_in: str) -> None:
        self.hidden_in, self.t, self.held = hidden_in, 10.0, None
        self.opened: set[str] = set()
        self.log: list[str] = []

    def position(self) -> tuple[float, float]:
        return (0.0, 0.0)

    def now(self) -> float:
        return self.t

    def holding(self) -> str | None:
        return self.held

    def viewpoints(self) -> list[tuple[float, float]]:
        return []

    def act(self, step) -> StepResult:
        self.t += 1.0
        self.log.append(f"{step.skill}({step.target.label})")
        if step.skill == "open":
            self.opened.add(step.target.label)
        if step.skill == "pick":
            if self.hidden_in not in self.opened:
                return StepResult.failed(FailureKind.INSIDE_CLOSED, step.target.label, self.hidden_in)
            self.held = step.target.label
        return StepResult.ok()

    def go_to(self, xy) -> StepResult:
        return StepResult.ok()

    def look_around(self) -> None:
        pass

    def observe(self) -> None:
        pass

    def spent(self) -> Spent:
        return Spent(len(self.log), 0.0, 0.0)


@pytest.mark.parametrize("hidden_in", sorted(HOLDERS))
def test_a_pick_inside_closed_furniture_opens_the_receptacle_the_failure_names(memory, hidden_in) -> None:
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=90, range_m=4)
    for t in (1.0, 2.0):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[
            make_detection("Apple", center=APPLE, size=(0.1, 0.1, 0.1)),
            make_detection("CounterTop", center=(2.0, 0.0, 0.45), size=(1.0, 0.6, 0.9)),
            *[make_detection(label, center=c, size=(0.5, 0.5, 0.3)) for label, c in HOLDERS.items()]]))
    robot = _Kitchen(hidden_in)
    outcome = Agent(InProcessTools(memory), robot).run("bring me the apple")
    assert outcome.done, outcome.reason
    assert robot.log == ["navigate_to(Apple)", "pick(Apple)", f"open({hidden_in})", "pick(Apple)"]
    assert robot.held == "Apple" and outcome.replans == 0


class _Chest(_Kitchen):
    """The apple is inside the drawer at ``hidden_at`` of a chest of drawers: picking it fails with
    INSIDE_CLOSED until that very drawer is open."""

    def __init__(self, hidden_at: tuple[float, float, float]) -> None:
        super().__init__("Drawer")
        self.hidden_at = hidden_at
        self.opened_at: list[tuple[float, ...]] = []

    def act(self, step) -> StepResult:
        self.t += 1.0
        where = tuple(round(v, 2) for v in step.target.center)
        self.log.append(f"{step.skill}({step.target.label}@{where[2]})")
        if step.skill == "open":
            self.opened_at.append(where)
        if step.skill == "pick":
            if self.hidden_at not in self.opened_at:
                return StepResult.failed(FailureKind.INSIDE_CLOSED, step.target.label, "Drawer")
            self.held = step.target.label
        return StepResult.ok()


def test_a_pick_still_inside_a_closed_drawer_opens_the_next_drawer_beside_it(memory) -> None:
    """Memory has the apple between two drawers of a chest, nearer the upper one; it is in the lower one.
    After opening the upper drawer in vain, the robot closes it again (pulled out, it hides the one below)
    and opens the lower one (not the drawer across the room)."""
    apple, upper, lower, far = (2.0, 0.0, 0.45), (2.0, 0.0, 0.65), (2.0, 0.05, 0.2), (2.0, 3.0, 0.4)
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=120, range_m=5)
    for t in (1.0, 2.0):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[
            make_detection("Apple", center=apple, size=(0.1, 0.1, 0.1)),
            *[make_detection("Drawer", center=c, size=(0.5, 0.5, 0.25)) for c in (upper, lower, far)]]))
    robot = _Chest(hidden_at=lower)
    outcome = Agent(InProcessTools(memory), robot).run("bring me the apple")
    assert outcome.done, outcome.reason
    assert robot.log == ["navigate_to(Apple@0.45)", "pick(Apple@0.45)", "open(Drawer@0.65)", "pick(Apple@0.45)",
                         "close(Drawer@0.65)", "open(Drawer@0.2)", "pick(Apple@0.45)"], robot.log
    assert robot.held == "Apple" and outcome.replans == 0


def test_a_drawer_memory_had_open_is_opened_when_the_pick_says_it_is_closed(memory) -> None:
    """Memory last saw the drawer open; someone closed it since. The pick's failure is the newer word: the
    robot opens that drawer rather than skipping it as open."""
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=90, range_m=4)
    for t in (1.0, 2.0):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[
            make_detection("Apple", center=APPLE, size=(0.1, 0.1, 0.1)),
            make_detection("CounterTop", center=(2.0, 0.0, 0.45), size=(1.0, 0.6, 0.9)),
            make_detection("Drawer", center=HOLDERS["Drawer"], size=(0.5, 0.5, 0.3), state={"open": True})]))
    robot = _Kitchen("Drawer")
    outcome = Agent(InProcessTools(memory), robot).run("bring me the apple")
    assert outcome.done, outcome.reason
    assert robot.log == ["navigate_to(Apple)", "pick(Apple)", "open(Drawer)", "pick(Apple)"], robot.log


class _Counter(_Kitchen):
    """Everything succeeds; the log names each step's target with its place."""

    def __init__(self) -> None:
        super().__init__("")
        self.opened.add("")

    def act(self, step) -> StepResult:
        self.t += 1.0
        c = step.target.center
        self.log.append(f"{step.skill}({step.target.label}@{c[0]:.1f},{c[1]:.1f})")
        if step.skill == "pick":
            self.held = step.target.label
        if step.skill == "place":
            self.held = None
        return StepResult.ok()


def test_a_thing_seen_over_a_cabinet_below_an_unseen_counter_goes_back_on_the_counter(memory) -> None:
    """This morning the mug stood on a part of the counter memory never saw; memory knows the cabinet
    under it (its top 20 cm below the mug) and the counter's next part 0.6 m away, at the height of the
    mug's bottom. Put back, the mug goes on the counter, not on (into) the cabinet."""
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=120, range_m=5)
    furniture = [make_detection("Cabinet", center=(2.0, 0.3, 0.41), size=(0.45, 0.3, 0.6)),
                 make_detection("CounterTop", center=(2.0, -0.6, 0.9), size=(0.6, 0.6, 0.02)),
                 make_detection("DiningTable", center=(0.5, 2.0, 0.37), size=(1.0, 1.0, 0.74))]
    for t in (1.0, 2.0):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[
            *furniture, make_detection("Mug", center=(2.0, 0.3, 0.98), size=(0.1, 0.1, 0.15))]))
    assert memory.where_is("Mug", at=2.0).receptacle is None  # nothing memory knows under it
    later = make_view(position=(0, 0, 1.5), yaw_deg=60, fov_deg=120, range_m=5)
    for t in (20.0, 21.0):  # moved to the table since
        memory.ingest(ObservationBatch(t=t, robot="r", view=later, detections=[
            *furniture, make_detection("Mug", center=(0.5, 2.0, 0.8), size=(0.1, 0.1, 0.15))]))
    robot = _Counter()
    robot.t = 30.0
    outcome = Agent(InProcessTools(memory), robot, times={"this morning": 2.0}).run(
        "put the mug back where it was this morning")
    assert outcome.done, outcome.reason
    assert robot.log == ["navigate_to(Mug@0.5,2.0)", "pick(Mug@0.5,2.0)", "navigate_to(CounterTop@2.0,-0.6)",
                         "place(CounterTop@2.0,-0.6)"], robot.log


def test_what_was_moved_from_the_sofa_is_the_thing_seen_there_from_more_views_not_a_false_detection(memory) -> None:
    """This morning memory saw a vase on the sofa (a whole box and, in later frames, a part of it too) and,
    in one frame pair, a 'plate' there that was never real. By now both are gone from the sofa (the vase
    stands on the table). What was moved from the sofa is the vase: it goes back on the sofa."""
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=120, range_m=5)
    sofa = make_detection("Sofa", center=(2.0, 0.0, 0.4), size=(1.9, 0.8, 0.8))
    table = make_detection("DiningTable", center=(2.0, 2.5, 0.37), size=(1.0, 1.0, 0.74))
    vase = make_detection("Vase", center=(2.3, 0.1, 0.92), size=(0.19, 0.19, 0.24))
    vase_part = make_detection("Vase", center=(2.3, 0.1, 0.86), size=(0.09, 0.17, 0.1))
    plate = make_detection("Plate", center=(1.5, -0.1, 0.81), size=(0.21, 0.19, 0.02))
    for t, extra in ((1.0, [plate, vase]), (2.0, [plate, vase]), (3.0, [vase, vase_part]), (4.0, [vase, vase_part])):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[sofa, table, *extra]))
    assert sorted(i.label for i in memory.contents("Sofa", at=4.0)) == ["Plate", "Vase", "Vase"]
    for t in range(20, 30):  # the sofa is bare (memory looked long enough to call all three gone from it)
        memory.ingest(ObservationBatch(t=float(t), robot="r", view=view, detections=[
            sofa, table, make_detection("Vase", center=(2.0, 2.5, 0.86), size=(0.19, 0.19, 0.24))]))
    robot = _Counter()
    robot.t = 40.0
    outcome = Agent(InProcessTools(memory), robot, times={"this morning": 4.0}).run(
        "put back the thing that was moved from the sofa")
    assert outcome.done, outcome.reason
    assert [s for s in robot.log if s.startswith(("pick", "place"))] == ["pick(Vase@2.0,2.5)", "place(Sofa@2.0,0.0)"], \
        robot.log
