"""Send a household instruction to the planner node and wait for the outcome (``robomem instruct``).

The command-line counterpart of ``ros2 action send_goal /planner/execute_instruction ...`` for machines
without the ``ros2`` CLI; :func:`send_goal` is the same from Python (tests, the demo).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.action import ActionClient
from rclpy.node import Node

from robomem.action import ExecuteInstruction

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
    with ``status`` and ``result``), the response None if the goal was not accepted. Raises TimeoutError."""
    own = isinstance(planner, str)
    client = planner_client(node, planner) if own else planner
    try:
        if not client.wait_for_server(timeout_sec=server_timeout_s):
            raise TimeoutError(f"no planner action server {client._action_name}")
        if own:  # a brand-new client: give the server a moment to discover it (see planner_client)
            deadline = time.monotonic() + SETTLE_S
            while time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.05)
        callback = (lambda message: on_feedback(message.feedback)) if on_feedback is not None else None
        sent = client.send_goal_async(goal, feedback_callback=callback)
        rclpy.spin_until_future_complete(node, sent, timeout_sec=server_timeout_s)
        handle = sent.result()
        if handle is None:
            raise TimeoutError("the planner did not answer the goal request")
        if not handle.accepted:
            return handle, None
        done = handle.get_result_async()
        rclpy.spin_until_future_complete(node, done, timeout_sec=timeout_s)
        if not done.done():
            raise TimeoutError(f"the planner did not finish within {timeout_s} s")
        return handle, done.result()
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
