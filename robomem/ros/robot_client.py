"""The robot as the planner drives it: skills over the robot's ``run_skill`` action (feedback, cancel;
or the ``execute_skill`` service), its state over ``get_state``.

:class:`RosExecutor` implements :class:`robomem.planner.Executor` on a robot node (the simulator's
``robomem_sim.robot_node``, or a real robot's skill server with the same services). After every skill it
tells the memory client which observation batch the robot had published by then, so memory's next
answer includes what the robot saw while doing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.action import ActionClient
from rclpy.executors import Executor as RosExecutorLoop
from rclpy.node import Node

from robomem import srv
from robomem.action import ExecuteSkill
from robomem.planner.agent import Spent
from robomem.planner.plan import Step
from robomem.planner.results import StepResult
from robomem.ros import convert
from robomem.ros.calls import ServiceCaller, ServiceTimeout

SKILL_TIMEOUT_S = 120.0  # a skill (driving across a home, a look-around) may take this long
SKILL_RESEND_S = 5.0  # an unanswered skill request is sent again (same id) after this long: skills take seconds
TRANSPORTS = ("action", "service")


class RobotClient:
    """Runs skills on ``<robot_node>/run_skill`` (action; ``transport="service"``: ``<robot_node>/execute_skill``)
    and asks ``<robot_node>/get_state`` (relative: in the node's namespace). ``should_cancel``: polled
    while a skill runs over the action; when it returns true the skill's goal is cancelled."""

    def __init__(self, node: Node, robot_node: str = "robot", executor: RosExecutorLoop | None = None,
                 timeout_s: float = 10.0, skill_timeout_s: float = SKILL_TIMEOUT_S, transport: str = "action",
                 should_cancel: Callable[[], bool] = lambda: False) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self.caller = ServiceCaller(node, executor, timeout_s)
        self.skill_timeout_s = skill_timeout_s
        self.transport = transport
        self.should_cancel = should_cancel
        self.feedback: list[ExecuteSkill.Feedback] = []  # of the skill running or last run (action)
        self.clients = {"execute_skill": self.caller.client(srv.ExecuteSkill, f"{robot_node}/execute_skill"),
                        "get_state": self.caller.client(srv.GetRobotState, f"{robot_node}/get_state")}
        self.action = ActionClient(node, ExecuteSkill, f"{robot_node}/run_skill") if transport == "action" else None

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        self.caller.wait_until_ready(timeout_s=timeout_s, what="robot")
        if self.action is not None and not self.caller.spin_until(self.action.server_is_ready, timeout_s):
            raise ServiceTimeout(f"the robot's skill action {self.action._action_name} did not appear")

    def close(self) -> None:
        if self.action is not None:
            self.action.destroy()
            self.action = None

    def get_state(self) -> srv.GetRobotState.Response:
        return self.caller.call(self.clients["get_state"], srv.GetRobotState.Request(), name="get_state",
                                idempotent=True)

    def execute(self, skill: str, label: str = "", position: Any = (0.0, 0.0, 0.0), size: Any = (0.1, 0.1, 0.1),
                track_id: int = -1) -> srv.ExecuteSkill.Response:
        """Run one skill. Sent again when unanswered, with the same request id (filled in by the caller):
        the robot answers a repeat with its first answer, so a skill never runs twice."""
        point = [float(v) for v in position]
        request = srv.ExecuteSkill.Request(
            skill=skill, label=label, position=convert.point_to_msg(point if len(point) == 3 else [*point[:2], 0.0]),
            track_id=int(track_id))
        request.size = convert.vector_to_msg([float(v) for v in size])
        if self.action is not None:
            return self._run_goal(request)
        return self.caller.call(self.clients["execute_skill"], request, name="execute_skill", idempotent=False,
                                timeout_s=self.skill_timeout_s, resend_after_s=SKILL_RESEND_S)

    def _run_goal(self, request: srv.ExecuteSkill.Request) -> ExecuteSkill.Result:
        """One skill as an action goal: sent once (a goal has its own id; a lost send is a timeout, never
        a second run), feedback kept, cancelled when ``should_cancel()`` or when it takes longer than
        ``skill_timeout_s`` (then ServiceTimeout)."""
        assert self.action is not None
        goal = ExecuteSkill.Goal(skill=request.skill, label=request.label, position=request.position,
                                 size=request.size, track_id=request.track_id)
        self.feedback = []
        deadline_s = self.skill_timeout_s
        if not self.caller.spin_until(self.action.server_is_ready, min(deadline_s, self.caller.timeout_s)):
            raise ServiceTimeout(f"the robot's skill action {self.action._action_name} did not appear")
        sent = self.action.send_goal_async(goal, feedback_callback=lambda m: self.feedback.append(m.feedback))
        if not self.caller.spin_until(sent.done, self.caller.timeout_s):
            raise ServiceTimeout(f"run_skill: the robot did not accept {request.skill} in time")
        handle = sent.result()
        if not handle.accepted:
            out = ExecuteSkill.Result(success=False, reason="rejected: goal refused",
                                      failure_kind=ExecuteSkill.Result.FAILURE_REJECTED, failure_detail="refused")
            return out
        result = handle.get_result_async()
        cancelled = False
        timed_out = not self.caller.spin_until(lambda: result.done() or (not cancelled and self.should_cancel()),
                                               deadline_s)
        if not result.done():
            handle.cancel_goal_async()
            cancelled = True
            if not self.caller.spin_until(result.done, self.caller.timeout_s) or timed_out:
                raise ServiceTimeout(f"run_skill: {request.skill} took longer than {deadline_s:.0f} s (cancelled)")
        return result.result().result


class RosExecutor:
    """:class:`robomem.planner.Executor` over a robot node. ``memory``: a client (e.g.
    :class:`robomem.ros.memory_client.MemoryClient`) with ``expect(robot_id, sequence)``; ``on_step``:
    called after every skill with (skill, label, success, reason, state) (action feedback)."""

    def __init__(self, robot: RobotClient, memory: Any = None,
                 on_step: Callable[[str, str, bool, str, Any], None] | None = None) -> None:
        self.robot = robot
        self.memory = memory
        self.on_step = on_step
        response = robot.get_state()
        self._rooms = {r.room: [(float(p.x), float(p.y)) for p in r.points] for r in response.rooms}
        self.start = response.state
        self.state = response.state

    def _expect(self, state: Any) -> None:
        """Memory's next answer must include the batches the robot published during this run's skills
        (not older ones: a memory node started since then never got those)."""
        if self.memory is not None and state.observations_published > self.start.observations_published:
            self.memory.expect(state.robot_id, int(state.observations_published))

    def _run(self, skill: str, label: str = "", position: Any = (0.0, 0.0, 0.0), size: Any = (0.1, 0.1, 0.1),
             track_id: int = -1) -> StepResult:
        response = self.robot.execute(skill, label, position, size, track_id)
        self.state = response.state
        self._expect(response.state)
        if self.on_step is not None:
            self.on_step(skill, label, bool(response.success), response.reason, response.state)
        return convert.step_result_from_response(response)

    # -- Executor protocol
    def position(self) -> tuple[float, float]:
        return (float(self.state.position.x), float(self.state.position.y))

    def now(self) -> float:
        return convert.time_from_msg(self.state.stamp)

    def holding(self) -> str | None:
        return self.state.holding or None

    def viewpoints(self) -> list[tuple[float, float]]:
        return [p for points in self._rooms.values() for p in points]

    def rooms(self) -> dict[str, list[tuple[float, float]]]:
        return dict(self._rooms)

    def spent(self) -> Spent:
        return Spent(int(self.state.skill_calls - self.start.skill_calls), float(self.state.nav_m - self.start.nav_m),
                     self.now() - convert.time_from_msg(self.start.stamp))

    def act(self, step: Step) -> StepResult:
        rec = step.target
        return self._run(step.skill, rec.label, rec.center, rec.size, rec.track_id)

    def go_to(self, xy: tuple[float, float]) -> StepResult:
        return self._run("go_to", position=(*xy[:2], 0.0))

    def look_around(self) -> None:
        self._run("look_around")

    def observe(self) -> None:
        self._run("observe")
