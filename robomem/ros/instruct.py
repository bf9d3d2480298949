"""Send a household instruction to the planner node and wait for the outcome (``robomem instruct``).

The command-line counterpart of ``ros2 action send_goal /planner/execute_instruction ...`` for machines
without the ``ros2`` CLI; :func:`send_goal` is the same from Python (tests, the demo).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.node import Node
from unique_identifier_msgs.msg import UUID

from robomem import srv
from robomem.action import ExecuteInstruction
from robomem.ros.calls import MAX_RESEND_S, RESEND_AFTER_S, ServiceCaller, ServiceTimeout

RESULT_RESEND_MAX_S = 10.0  # a result request is asked again at most this often while the goal runs
LATE_FEEDBACK_S = 2.0  # how long ``robomem instruct`` waits for feedback that comes after the result


def planner_client(node: Node, planner: str = "planner") -> ActionClient:
    """An action client of ``/<planner>/execute_instruction``. Keep one per planner and reuse it: a
    server may not yet know a brand-new client and then drops its first answers (see send_goal)."""
    return ActionClient(node, ExecuteInstruction, f"/{planner}/execute_instruction")


def _spin_until(node: Node, done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return done()
        rclpy.spin_once(node, timeout_sec=min(0.1, remaining))
    return True


def request_goal(node: Node, client: ActionClient, goal: ExecuteInstruction.Goal,
                 on_feedback: Callable[[Any], None] | None = None, answer_s: float = MAX_RESEND_S
                 ) -> tuple[ClientGoalHandle, bool | None]:
    """Send ``goal`` under an id chosen here; (its handle, accepted). ``accepted`` is None when no answer
    came within ``answer_s``: the answer was lost (Fast DDS "failed to send response") or the goal never
    arrived; the handle still names the goal, and :func:`wait_result` tells which (STATUS_UNKNOWN: it
    never arrived). Feedback reaches ``on_feedback`` either way."""
    callback = (lambda message: on_feedback(message.feedback)) if on_feedback is not None else None
    goal_id = UUID(uuid=list(uuid.uuid4().bytes))
    sent = client.send_goal_async(goal, feedback_callback=callback, goal_uuid=goal_id)
    if _spin_until(node, sent.done, answer_s):
        handle = sent.result()
        return handle, bool(handle.accepted)
    return ClientGoalHandle(client, goal_id, ExecuteInstruction.Impl.SendGoalService.Response(accepted=True)), None


def wait_result(node: Node, handle: ClientGoalHandle, timeout_s: float = 600.0,
                resends: Counter[str] | None = None) -> Any:
    """The goal's result response (``status``, ``result``), spinning ``node``. The result request is
    idempotent, so it is asked again while unanswered (after 1 s, doubling up to 10 s: the goal may
    simply still run); the first answer wins. Raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    requests = [handle.get_result_async()]
    interval = RESEND_AFTER_S
    while True:
        due = time.monotonic() + interval
        if _spin_until(node, lambda: any(r.done() for r in requests), max(0.0, min(due, deadline) - time.monotonic())):
            return next(r for r in requests if r.done()).result()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the planner did not finish within {timeout_s:g} s")
        requests.append(handle.get_result_async())
        interval = min(2.0 * interval, RESULT_RESEND_MAX_S)
        if resends is not None:
            resends["get_result"] += 1


def send_goal(node: Node, planner: str | ActionClient, goal: ExecuteInstruction.Goal,
              on_feedback: Callable[[Any], None] | None = None, timeout_s: float = 600.0,
              server_timeout_s: float = 30.0, resends: Counter[str] | None = None) -> tuple[Any, Any]:
    """Send ``goal`` to the planner (a node name, or a :func:`planner_client` kept by the caller),
    spinning ``node`` (rclpy's global executor) until the result. Returns (goal handle, result response
    with ``status`` and ``result``), the response None if the goal was not accepted. Raises TimeoutError.

    Fast DDS may drop the answer to the goal request although the server took the goal. The goal id is
    chosen here, so a goal request left unanswered is followed by a request for that goal's result: it
    comes when the goal is done, or at once with status UNKNOWN if the goal never arrived (then it is
    sent again, counted in ``resends["goal"]``). Result requests are asked again while unanswered. A
    client made here for a planner named ``planner`` is brand new: before the goal goes out, the planner
    must have matched its readers (feedback is not kept for late readers), which a handshake with the
    planner's ``get_stats`` shows (robomem.ros.calls.ServiceCaller.handshake)."""
    own = isinstance(planner, str)
    client = planner_client(node, planner) if own else planner
    deadline = time.monotonic() + server_timeout_s
    try:
        if not _spin_until(node, client.server_is_ready, server_timeout_s):
            raise TimeoutError(f"no planner action server {client._action_name}")
        if own:
            try:
                ServiceCaller(node).handshake(srv.GetStats, f"/{planner}/get_stats", server_timeout_s)
            except ServiceTimeout as exc:
                raise TimeoutError(f"the planner does not answer: {exc}") from exc
        while True:
            handle, accepted = request_goal(node, client, goal, on_feedback)
            if accepted is False:
                return handle, None
            response = wait_result(node, handle, timeout_s, resends)
            if response.status != GoalStatus.STATUS_UNKNOWN or accepted:
                return handle, response
            if time.monotonic() > deadline:  # the goal never arrived, again and again
                raise TimeoutError("the planner did not answer the goal request")
            if resends is not None:
                resends["goal"] += 1
    finally:
        if own:
            client.destroy()


def instruct(text: str, planner: str = "planner", timeout_s: float = 600.0, max_skill_calls: int = 0) -> int:
    """Print the planner's feedback and outcome; 0 if it believes the instruction done, else 1."""
    rclpy.init()
    node = rclpy.create_node("robomem_instruct")
    try:
        goal = ExecuteInstruction.Goal(instruction=text, max_skill_calls=max_skill_calls)

        shown_ok: Counter[str] = Counter()

        def show(feedback: Any) -> None:
            mark = "ok" if feedback.step_succeeded else f"failed: {feedback.reason}"
            print(f"  {feedback.step:<32} {mark}  ({feedback.skill_calls} skills, {feedback.nav_m:.1f} m)", flush=True)
            if feedback.step_succeeded:
                shown_ok[feedback.step] += 1

        _, response = send_goal(node, planner, goal, show, timeout_s)
        if response is None:
            print("the planner refused the goal (busy with another)")
            return 1
        r = response.result
        # feedback and result travel on different DDS channels: the last step's feedback may come after
        # the result. Wait for it briefly; a step whose feedback never came is printed from the result.
        executed = Counter(r.executed)
        _spin_until(node, lambda: not executed - shown_ok, LATE_FEEDBACK_S)
        for step, missing in (executed - shown_ok).items():
            for _ in range(missing):
                print(f"  {step:<32} ok  (its feedback was lost)", flush=True)
        print(f"{'done' if r.success else 'not done: ' + r.reason}: {len(r.executed)} steps, {r.skill_calls} skill "
              f"calls, {r.nav_m:.1f} m, {r.memory_queries} memory queries, {r.explore_steps} exploration steps, "
              f"{r.replans} replans, {r.invalid_plans} invalid plans" + (f", episode {r.episode_id}"
                                                                          if r.episode_id >= 0 else ""))
        return 0 if r.success else 1
    except TimeoutError as exc:
        print(f"robomem instruct: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
