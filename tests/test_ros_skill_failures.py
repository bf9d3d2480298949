"""Typed skill failures over ROS: ExecuteSkill carries the kind (uint8 constants), object, receptacle and
detail as fields, and the planner's RosExecutor gets back the same typed StepResult the robot returned."""

from __future__ import annotations

import threading

import pytest
from ros_helpers import require_ros, wait_for

require_ros()

from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from robomem import srv  # noqa: E402
from robomem.planner import Failure, FailureKind, ObjectRecord, Spent, Step, StepResult  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.robot_client import RobotClient, RosExecutor  # noqa: E402
from robomem.ros.skill_server import SkillServerNode  # noqa: E402


def test_the_srv_constants_are_the_failure_kinds() -> None:
    constants = {name[len("FAILURE_"):]: getattr(srv.ExecuteSkill.Response, name)
                 for name in dir(srv.ExecuteSkill.Response) if name.startswith("FAILURE_")}
    assert constants == {kind.name: kind.value for kind in FailureKind}


@pytest.mark.parametrize("kind", [k for k in FailureKind if k is not FailureKind.NONE])
def test_every_failure_survives_the_response_fields(kind) -> None:
    result = StepResult.failed(kind, "Apple", "Fridge", "why")
    response = convert.step_result_to_response(result, srv.ExecuteSkill.Response())
    assert (response.success, response.failure_kind, response.reason) == (False, kind.value, result.reason)
    assert (response.failure_object, response.failure_receptacle, response.failure_detail) == ("Apple", "Fridge", "why")
    assert convert.step_result_from_response(response) == result


def test_a_failure_of_a_kind_the_planner_does_not_know_is_an_error_with_the_robots_words() -> None:
    for kind in (0, 250):  # not filled in, or a newer robot's kind
        response = srv.ExecuteSkill.Response(success=False, reason="gripper jammed", failure_kind=kind)
        assert convert.step_result_from_response(response) == StepResult.failed(FailureKind.ERROR,
                                                                                detail="gripper jammed")
    ok = convert.step_result_to_response(StepResult.ok(), srv.ExecuteSkill.Response())
    assert ok.success and ok.failure_kind == srv.ExecuteSkill.Response.FAILURE_NONE and ok.reason == ""
    assert convert.step_result_from_response(ok) == StepResult.ok()


class _Robot:
    """An Executor whose pick finds the object inside a closed fridge and whose open raises."""

    def __init__(self) -> None:
        self.calls = 0

    def position(self) -> tuple[float, float]:
        return (1.0, 2.0)

    def now(self) -> float:
        return 5.0

    def holding(self) -> str | None:
        return None

    def viewpoints(self) -> list[tuple[float, float]]:
        return [(0.0, 0.0)]

    def spent(self) -> Spent:
        return Spent(self.calls, 0.0, 0.0)

    def act(self, step: Step) -> StepResult:
        self.calls += 1
        if step.skill == "open":
            raise RuntimeError("door motor stalled")
        if step.skill == "pick":
            return StepResult.failed(FailureKind.INSIDE_CLOSED, step.target.label, "Fridge")
        return StepResult.ok()

    def go_to(self, xy) -> StepResult:
        self.calls += 1
        return StepResult.failed(FailureKind.NO_PATH)

    def look_around(self) -> None:
        self.calls += 1

    def observe(self) -> None:
        pass


@pytest.mark.parametrize("transport", ["action", "service"])
def test_failures_travel_typed_from_the_skill_server_to_the_planners_executor(ros, transport) -> None:
    import rclpy

    server = SkillServerNode("failures_robot", robot=_Robot(), context=ros.context)
    spin = SingleThreadedExecutor(context=ros.context)
    spin.add_node(server)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    client_node = rclpy.create_node("failures_planner", context=ros.context)
    try:
        robot = RobotClient(client_node, "failures_robot", transport=transport)
        robot.wait_until_ready(10.0)
        executor = RosExecutor(robot)
        apple = ObjectRecord("Apple", (1.5, 2.0, 0.9))
        assert executor.act(Step("navigate_to", apple)) == StepResult.ok()
        picked = executor.act(Step("pick", apple))
        assert picked.failure == Failure(FailureKind.INSIDE_CLOSED, "Apple", "Fridge")
        assert picked.reason == "inside closed Fridge"
        raw = robot.execute("pick", "Apple", apple.center)
        assert (raw.failure_kind, raw.failure_object, raw.failure_receptacle) == (
            srv.ExecuteSkill.Response.FAILURE_INSIDE_CLOSED, "Apple", "Fridge")
        opened = executor.act(Step("open", ObjectRecord("Fridge", (2.0, 2.0, 0.9))))
        assert opened.failure == Failure(FailureKind.ERROR, "Fridge", detail="door motor stalled")
        assert executor.go_to((3.0, 3.0)).kind is FailureKind.NO_PATH
        rejected = robot.execute("fly", "Apple")
        assert (rejected.failure_kind, rejected.failure_detail, rejected.reason) == (
            srv.ExecuteSkill.Response.FAILURE_REJECTED, "unknown_skill", "rejected: unknown_skill")
        if transport == "action":  # feedback when the skill started and when it ended (it may trail the result)
            wait_for(lambda: len(robot.feedback) >= 2, client_node, timeout=5.0)
            assert [f.stage for f in robot.feedback] == ["started", "done"]
    finally:
        robot.close()
        client_node.destroy_node()
        spin.shutdown()
        thread.join(timeout=10.0)
        server.destroy_node()


class _SlowRobot(_Robot):
    """A robot whose pick runs until it is cancelled (a real driver's ``cancel()``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()

    def cancel(self) -> None:
        self.stop.set()

    def act(self, step: Step) -> StepResult:
        self.calls += 1
        self.stop.wait(60.0)
        return StepResult.failed(FailureKind.ERROR, step.target.label, detail="stopped")


def test_a_running_skill_is_cancelled_through_the_action(ros) -> None:
    import time

    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    robot = _SlowRobot()
    server = SkillServerNode("slow_robot", robot=robot, context=ros.context)
    spin = MultiThreadedExecutor(num_threads=2, context=ros.context)  # the cancel arrives while pick runs
    spin.add_node(server)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    client_node = rclpy.create_node("slow_planner", context=ros.context)
    client = None
    try:
        client = RobotClient(client_node, "slow_robot", should_cancel=lambda: bool(client and client.feedback))
        client.wait_until_ready(10.0)
        started = time.monotonic()
        result = client.execute("pick", "Apple", (1.0, 1.0, 0.9))
        assert time.monotonic() - started < 30  # not the 60 s the pick would have taken
        assert robot.stop.is_set() and robot.calls == 1
        assert (result.success, result.reason) == (False, "cancelled")
        assert [f.stage for f in client.feedback] == ["started", "done"]
    finally:
        if client is not None:
            client.close()
        client_node.destroy_node()
        spin.shutdown()
        thread.join(timeout=10.0)
        server.destroy_node()
