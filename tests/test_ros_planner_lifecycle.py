"""The planner node as a managed node, in its own process over real DDS: with autostart off it refuses
instructions until a lifecycle manager configures and activates it, then takes them (here: the robot is
not there, so the goal fails with that reason instead of hanging); deactivated, it refuses again."""

from __future__ import annotations

import pytest
from ros_helpers import require_ros

require_ros()

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from ros_helpers import NodeProcess, call, caller  # noqa: E402

from robomem.action import ExecuteInstruction  # noqa: E402

pytestmark = pytest.mark.ros
NODE = "managed_planner"


def send(ros, client: ActionClient) -> tuple[bool, str]:
    """(accepted, result reason) of one instruction."""
    future = client.send_goal_async(ExecuteInstruction.Goal(instruction="bring me the apple"))
    assert caller(ros).spin_until(future.done, 20)
    handle = future.result()
    if not handle.accepted:
        return False, ""
    result = handle.get_result_async()
    assert caller(ros).spin_until(result.done, 30)
    return True, result.result().result.reason


def change(ros, transition_id: int) -> None:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    answer = call(ros, ChangeState, f"/{NODE}/change_state", request)
    assert answer.success


def test_planner_takes_instructions_only_while_active(ros, tmp_path):
    params = {"robot_node": "nobody_here", "service_timeout_s": 2.0, "autostart": False}
    node = NodeProcess("robomem.ros.planner_node", params, name=NODE, log_path=tmp_path / "planner.log")
    client = ActionClient(ros, ExecuteInstruction, f"/{NODE}/execute_instruction")
    try:
        state = call(ros, GetState, f"/{NODE}/get_state", GetState.Request(), timeout=30).current_state
        assert state.id == State.PRIMARY_STATE_UNCONFIGURED
        assert caller(ros).spin_until(client.server_is_ready, 20)
        assert send(ros, client) == (False, "")  # refused: not active

        change(ros, Transition.TRANSITION_CONFIGURE)
        assert send(ros, client) == (False, "")  # configured, still inactive
        change(ros, Transition.TRANSITION_ACTIVATE)
        accepted, reason = send(ros, client)
        assert accepted and reason.startswith("error:") and "get_state" in reason  # ran: no robot answered

        change(ros, Transition.TRANSITION_DEACTIVATE)
        assert send(ros, client) == (False, "")
        assert node.alive()
    finally:
        client.destroy()
        assert node.stop() == 0, node.log()
