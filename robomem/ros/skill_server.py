"""A robot's skills as ROS services, for the planner node: ``~/execute_skill`` and ``~/get_state``.

:class:`SkillServerNode` serves any :class:`robomem.planner.Executor` (the simulator's robot; a real
robot's driver implements the same protocol). Objects arrive as memory names them (label + believed
position); grounding them is the executor's job. Bad requests (unknown skill, empty label, NaN
position) are answered with ``success = false`` and ``FAILURE_REJECTED``, counted, and never reach the
robot; every failure travels typed (kind, object, receptacle, detail) beside its reason in words. A
request repeated with the same ``request_id`` (its answer was lost on the way) gets the first answer
again: a skill never runs twice.
"""

from __future__ import annotations

import math
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from rclpy.node import Node

from robomem import msg as rmsg
from robomem import srv
from robomem.planner.plan import SKILLS, Step
from robomem.planner.results import FailureKind, StepResult
from robomem.planner.tools import ObjectRecord
from robomem.ros import convert
from robomem.ros.calls import AnsweredRequests

MOTION_SKILLS = ("go_to", "look_around", "observe")


def request_error(request: srv.ExecuteSkill.Request) -> str:
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
        error = request_error(request) or ("no_robot" if self.robot is None else "")
        if error:
            self.counters[f"rejected_requests.{error}"] += 1
            result = StepResult.failed(FailureKind.REJECTED, request.label, detail=error)
        else:
            self.counters[f"skills.{request.skill}"] += 1
            try:
                result = self._run(request)
            except Exception as exc:  # a robot failure answers the call; the node keeps serving
                self.counters["skill_errors"] += 1
                self.get_logger().error(f"{request.skill} failed: {exc}\n{traceback.format_exc(limit=4)}")
                result = StepResult.failed(FailureKind.ERROR, request.label, detail=str(exc))
        convert.step_result_to_response(result, response)
        response.state = self.state()
        return response

    def _run(self, request: srv.ExecuteSkill.Request) -> StepResult:
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
