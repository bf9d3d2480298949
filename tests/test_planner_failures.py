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
