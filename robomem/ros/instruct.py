"""Send a household instruction to the planner node and wait for the outcome (``robomem instruct``).

The command-line counterpart of ``ros2 action send_goal /planner/execute_instruction ...`` for machines
without the ``ros2`` CLI; :func:`send_goal` is the same from Python (tests, the demo).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.node import Node
from unique_identifier_msgs.msg import UUID

from robomem.action import ExecuteInstruction
from robomem.ros.calls import ATTEMPT_S

SETTLE_S = 0.5


def planner_client(node: Node, planner: str = "planner") -> ActionClient:
    """An action client of ``/<planner>/execute_instruction``. Keep one per planner and reuse it: a
    server may not yet know a brand-new client and then drops its first answers."""
    return ActionClient(node, ExecuteInstruction, f"/{planner}/execute_instruction")


def send_goal(node: Node, planner: str | ActionClient, goal: ExecuteInstruction.Goal,
              on_feedback: Callable[[Any], None] | None = None, timeout_s: float = 600.0,
              server_timeout_s: float = 30.0) -> tuple[Any, Any]:
    """Send ``goal`` to the planner (a node name, or a :func:`planner_client` kept by the caller),
    spinning ``node`` (rclpy's global executor) until the result. Returns (goal handle, result response
    with ``status`` and ``result``), the response None if the goal was not accepted. Raises TimeoutError.

    Fast DDS may drop the answer to the goal request ("failed to send response": the server had not yet
    matched this client's reader) although the server took the goal. The goal id is chosen here, so a
    goal request left unanswered for ATTEMPT_S is followed by a request for that goal's result: it comes
    when the goal is done, or at once with status UNKNOWN if the goal never arrived (then it is sent again)."""
    own = isinstance(planner, str)
    client = planner_client(node, planner) if own else planner
    callback = (lambda message: on_feedback(message.feedback)) if on_feedback is not None else None
    deadline = time.monotonic() + server_timeout_s
    try:
        if not client.wait_for_server(timeout_sec=server_timeout_s):
            raise TimeoutError(f"no planner action server {client._action_name}")
        if own:  # a brand-new client: give the server a moment to discover it (see planner_client)
            settle = time.monotonic() + SETTLE_S
            while time.monotonic() < settle:
                rclpy.spin_once(node, timeout_sec=0.05)
        while True:
            goal_id = UUID(uuid=list(uuid.uuid4().bytes))
            sent = client.send_goal_async(goal, feedback_callback=callback, goal_uuid=goal_id)
            rclpy.spin_until_future_complete(node, sent, timeout_sec=ATTEMPT_S)
            if sent.done():
                handle = sent.result()
                if not handle.accepted:
                    return handle, None
            else:  # unanswered: ask for the result of the goal the server may have taken
                handle = ClientGoalHandle(client, goal_id, ExecuteInstruction.Impl.SendGoalService.Response(
                    accepted=True))
            done = handle.get_result_async()
            rclpy.spin_until_future_complete(node, done, timeout_sec=timeout_s)
            if not done.done():
                raise TimeoutError(f"the planner did not finish within {timeout_s} s")
            response = done.result()
            if response.status != GoalStatus.STATUS_UNKNOWN or sent.done():
                return handle, response
            if time.monotonic() > deadline:  # the goal never arrived, again and again
                raise TimeoutError("the planner did not answer the goal request")
    finally:
        if own:
            client.destroy()


def instruct(text: str, planner: str = "planner", timeout_s: float = 600.0, max_skill_calls: int = 0) -> int:
    """Print the planner's feedback and outcome; 0 if it believes the instruction done, else 1."""
    rclpy.init()
    node = rclpy.create_node("robomem_instruct")
    try:
        goal = ExecuteInstruction.Goal(instruction=text, max_skill_calls=max_skill_calls)

        def show(feedback: Any) -> None:
            mark = "ok" if feedback.step_succeeded else f"failed: {feedback.reason}"
            print(f"  {feedback.step:<32} {mark}  ({feedback.skill_calls} skills, {feedback.nav_m:.1f} m)", flush=True)

        _, response = send_goal(node, planner, goal, show, timeout_s)
        if response is None:
            print("the planner refused the goal (busy with another)")
            return 1
        r = response.result
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
