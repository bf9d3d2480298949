"""A robot's skills for the planner node: the action ``~/run_skill`` (robomem/action/ExecuteSkill:
feedback when it starts and ends, cancel, a typed result), the same as a service ``~/execute_skill``,
and ``~/get_state``.

:class:`SkillServerNode` serves any :class:`robomem.planner.Executor` (the simulator's robot; a real
robot's driver implements the same protocol). Objects arrive as memory names them (label + believed
position); grounding them is the executor's job. Bad requests (unknown skill, empty label, NaN
position) are answered with ``success = false`` and ``FAILURE_REJECTED``, counted, and never reach the
robot; every failure travels typed (kind, object, receptacle, detail) beside its reason in words. A
request repeated with the same ``request_id`` (its answer was lost on the way) gets the first answer
again: a skill never runs twice. A cancel request reaches the robot's ``cancel()`` (if it has one) while
the skill runs when the node is spun by a multi-threaded executor; otherwise the goal ends CANCELED
after the skill returns, with what it did in ``state``.

Every pick and place that succeeded is told to memory on ``skill_events`` (robomem/MemoryEvent, change
``picked_up`` or ``placed``; see :func:`skill_event`): the memory node keeps the object "held by" this
robot until it is placed, then at the reported spot until the camera confirms or contradicts it.
"""

from __future__ import annotations

import math
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from robomem import msg as rmsg
from robomem import srv
from robomem.action import ExecuteSkill
from robomem.planner.plan import SKILLS, Step
from robomem.planner.results import FailureKind, StepResult
from robomem.planner.tools import ObjectRecord
from robomem.ros import convert
from robomem.ros.calls import AnsweredRequests

MOTION_SKILLS = ("go_to", "look_around", "observe")
SKILL_EVENTS_TOPIC = "skill_events"  # relative: a namespaced robot's memory hears its own robot
PICKED, PLACED = "picked_up", "placed"


def skill_event(robot_id: str, stamp: float, request: Any, held: str, robot_xy: tuple[float, float],
                placed_at: Any = None) -> rmsg.MemoryEvent | None:
    """What memory is told after a pick or place succeeded (None for other skills).

    picked_up: ``label``/``track_id`` the object as the request named it, ``position`` the robot's base
    (x, y) at the object's height. placed: ``label`` the object that was held (``track_id`` -1), detail
    ``receptacle``/``receptacle_id`` as the request named it, ``position`` where the robot put it (the
    executor's ``placed_at()`` if it has one), else the top of the receptacle's believed box (detail
    ``bottom`` true: the object's bottom rests there). detail ``robot`` is always this robot."""
    if request.skill not in ("pick", "place"):
        return None
    out = rmsg.MemoryEvent(stamp=convert.time_to_msg(stamp), event_id=-1, has_position=True)
    detail: dict[str, Any] = {"robot": robot_id}
    if request.skill == "pick":
        out.change, out.label, out.track_id = PICKED, request.label, int(request.track_id)
        out.position = convert.point_to_msg([robot_xy[0], robot_xy[1], request.position.z])
    else:
        out.change, out.label, out.track_id = PLACED, held, -1
        detail.update(receptacle=request.label, receptacle_id=int(request.track_id))
        if placed_at is not None:
            out.position = convert.point_to_msg(placed_at)
            detail["bottom"] = False
        else:
            top = request.position.z + request.size.z / 2.0
            out.position = convert.point_to_msg([request.position.x, request.position.y, top])
            detail["bottom"] = True
    out.detail = convert.state_to_msgs(detail)
    return out


def request_error(request: Any) -> str:
    """Why a skill request cannot be run ('' if it can)."""
    if request.skill not in SKILLS and request.skill not in MOTION_SKILLS:
        return "unknown_skill"
    values = [*convert.xyz(request.position), request.size.x, request.size.y, request.size.z]
    if not all(math.isfinite(v) for v in values):
        return "non_finite"
    if request.skill in SKILLS and not request.label.strip():
        return "empty_label"
    return ""


class SkillServerNode(Node):
    """Serves ``robot``, a :class:`robomem.planner.Executor` (set now or later with :meth:`attach`).
    ``published``: the number of observation batches the robot has published (reported so that clients
    can wait until memory has taken them)."""

    def __init__(self, name: str = "robot", robot_id: str = "robot", robot: Any = None,
                 published: Callable[[], int] = lambda: 0, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.robot_id = robot_id
        self.robot: Any = robot
        self.published = published
        self.counters: Counter[str] = Counter()
        self.answered = AnsweredRequests()  # a repeated request id gets its first answer (robomem.ros.calls)
        self.create_service(srv.ExecuteSkill, "~/execute_skill", self.answered.serve(self._execute_skill, self._repeat))
        self.create_service(srv.GetRobotState, "~/get_state", self._get_state)
        self.skill_events_pub = self.create_publisher(rmsg.MemoryEvent, SKILL_EVENTS_TOPIC, 50)
        self._action = ActionServer(self, ExecuteSkill, "~/run_skill", execute_callback=self._run_goal,
                                    cancel_callback=self._on_cancel, callback_group=ReentrantCallbackGroup())

    def attach(self, robot: Any) -> None:
        """Serve this robot (a :class:`robomem.planner.Executor`) from now on (e.g. a new task's robot)."""
        self.robot = robot

    def state(self) -> rmsg.RobotState:
        out = rmsg.RobotState(robot_id=self.robot_id, observations_published=int(self.published()))
        if self.robot is None:
            return out
        spent = self.robot.spent()
        x, y = self.robot.position()
        out.stamp = convert.time_to_msg(self.robot.now())
        out.position = convert.point_to_msg([x, y, 0.0])
        out.holding = self.robot.holding() or ""
        out.skill_calls = int(spent.skill_calls)
        out.nav_m = float(spent.nav_m)
        return out

    def _get_state(self, request: srv.GetRobotState.Request, response: srv.GetRobotState.Response
                   ) -> srv.GetRobotState.Response:
        response.state = self.state()
        rooms = getattr(self.robot, "rooms", None)
        by_room = rooms() if rooms is not None else {"": self.robot.viewpoints() if self.robot else []}
        response.rooms = [rmsg.RoomViewpoints(room=name, points=[convert.point_to_msg([x, y, 0.0]) for x, y in pts])
                          for name, pts in by_room.items()]
        return response

    def _repeat(self) -> None:
        self.counters["repeated_requests.execute_skill"] += 1

    def _execute_skill(self, request: srv.ExecuteSkill.Request, response: srv.ExecuteSkill.Response
                       ) -> srv.ExecuteSkill.Response:
        convert.step_result_to_response(self._perform(request), response)
        response.state = self.state()
        return response

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        cancel = getattr(self.robot, "cancel", None)
        if cancel is not None:
            cancel()
        self.counters["skills_cancel_requested"] += 1
        return CancelResponse.ACCEPT

    def _run_goal(self, goal_handle: Any) -> ExecuteSkill.Result:
        """The action: feedback 'started', the skill, feedback 'done', a typed result; CANCELED if a
        cancel was asked for (before the start, the skill does not run)."""
        started = time.monotonic()
        goal = goal_handle.request
        result = ExecuteSkill.Result()

        def feedback(stage: str) -> None:
            goal_handle.publish_feedback(ExecuteSkill.Feedback(stage=stage, elapsed_s=time.monotonic() - started,
                                                               state=self.state()))

        if not goal_handle.is_cancel_requested:
            feedback("started")
            convert.step_result_to_response(self._perform(goal), result)
            feedback("done")
        result.state = self.state()
        if goal_handle.is_cancel_requested:
            self.counters["skills_cancelled"] += 1
            result.success, result.reason = False, "cancelled"
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _perform(self, request: Any) -> StepResult:
        """Run one skill request (a service request or an action goal: the same fields); never raises."""
        error = request_error(request) or ("no_robot" if self.robot is None else "")
        if error:
            self.counters[f"rejected_requests.{error}"] += 1
            result = StepResult.failed(FailureKind.REJECTED, request.label, detail=error)
        else:
            self.counters[f"skills.{request.skill}"] += 1
            try:
                held = (self.robot.holding() or "") if request.skill == "place" else ""
                result = self._run(request)
                if result.success:
                    self._tell_memory(request, held)
            except Exception as exc:  # a robot failure answers the call; the node keeps serving
                self.counters["skill_errors"] += 1
                self.get_logger().error(f"{request.skill} failed: {exc}\n{traceback.format_exc(limit=4)}")
                result = StepResult.failed(FailureKind.ERROR, request.label, detail=str(exc))
        return result

    def _tell_memory(self, request: Any, held: str) -> None:
        robot = self.robot
        placed_at = getattr(robot, "placed_at", None)
        event = skill_event(self.robot_id, float(robot.now()), request, held, tuple(robot.position()),
                            placed_at() if request.skill == "place" and placed_at is not None else None)
        if event is not None:
            self.skill_events_pub.publish(event)
            self.counters[f"skill_events.{event.change}"] += 1

    def _run(self, request: Any) -> StepResult:
        robot = self.robot
        if request.skill == "look_around":
            robot.look_around()
            return StepResult.ok()
        if request.skill == "observe":
            robot.observe()
            return StepResult.ok()
        if request.skill == "go_to":
            return robot.go_to((request.position.x, request.position.y))
        target = ObjectRecord(label=request.label, center=tuple(convert.xyz(request.position)),
                              size=tuple(convert.xyz(request.size)), track_id=int(request.track_id))
        return robot.act(Step(request.skill, target))
