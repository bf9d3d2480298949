"""A pick and a place the skill server ran reach the memory node (its own process, real DDS) on
``skill_events``: the object is held by the robot, then where the place put it."""

from __future__ import annotations

import threading

import pytest
from ros_helpers import require_ros

require_ros()

from frames import det, frame, looking  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from ros_helpers import NodeProcess, call, handshake, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.planner import Spent, Step, StepResult  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.memory_node import observation_qos  # noqa: E402
from robomem.ros.robot_client import RobotClient  # noqa: E402
from robomem.ros.skill_server import SkillServerNode  # noqa: E402

pytestmark = pytest.mark.ros

NODE = "memory"
COUNTER_SIZE = (2.0, 0.6, 0.9)


class _Arm:
    """A robot whose pick and place always succeed (the skill server, not the robot, is under test)."""

    def __init__(self) -> None:
        self.held: str | None = None
        self.t = 10.0

    def position(self) -> tuple[float, float]:
        return (0.5, 0.0)

    def now(self) -> float:
        return self.t

    def holding(self) -> str | None:
        return self.held

    def viewpoints(self) -> list[tuple[float, float]]:
        return [(0.0, 0.0)]

    def spent(self) -> Spent:
        return Spent(0, 0.0, 0.0)

    def act(self, step: Step) -> StepResult:
        self.t += 1.0
        self.held = step.target.label if step.skill == "pick" else None
        return StepResult.ok()


def _where(ros, label: str) -> srv.WhereIs.Response:
    return call(ros, srv.WhereIs, f"/{NODE}/where_is", srv.WhereIs.Request(label=label))


def test_a_reported_pick_and_place_reach_memory(ros, tmp_path) -> None:
    import rclpy

    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(tmp_path / "memory.sqlite")}, name=NODE,
                       log_path=tmp_path / "node.log")
    server = SkillServerNode("robot", robot_id="r1", robot=_Arm(), context=ros.context)
    spin = SingleThreadedExecutor(context=ros.context)
    spin.add_node(server)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    client_node = rclpy.create_node("holding_planner", context=ros.context)
    robot = RobotClient(client_node, "robot", transport="service")
    try:
        publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
        handshake(ros, srv.GetStats, f"/{NODE}/get_stats")
        batches = [frame(t, looking(0, 0, yaw=0), det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 2.0, 0.1, 0.95))
                   for t in (0.0, 1.0, 2.0)]
        batches += [frame(t, looking(0, 0, yaw=180), det("CounterTop", -2.0, 0.0, 0.45)) for t in (3.0, 4.0, 5.0)]
        for k, batch in enumerate(batches, start=1):
            publisher.publish(convert.batch_to_msg(batch, sequence=k))
        assert wait_for(lambda: _where(ros, "Mug").found and _where(ros, "CounterTop").found, ros, 20.0)
        mug = _where(ros, "Mug").object
        counter_b = call(ros, srv.WhereIs, f"/{NODE}/where_is",
                         srv.WhereIs.Request(label="CounterTop", use_near=True,
                                             near=convert.point_to_msg([-2.0, 0.0, 0.45]))).object
        assert counter_b.center.x < -1.5
        robot.wait_until_ready(10.0)
        handshake(ros, srv.GetStats, f"/{NODE}/get_stats")

        picked = robot.execute("pick", "Mug", convert.xyz(mug.center), track_id=mug.track_id)
        assert picked.success
        assert wait_for(lambda: _where(ros, "Mug").object.receptacle == "robot:r1", ros, 10.0), node.log()
        held = _where(ros, "Mug").object
        assert (held.relation, held.receptacle_id) == ("held", -1)
        assert (held.center.x, held.center.y) == pytest.approx((0.5, 0.0))  # the robot's position

        placed = robot.execute("place", "CounterTop", convert.xyz(counter_b.center), convert.xyz(counter_b.size),
                               track_id=counter_b.track_id)
        assert placed.success
        assert wait_for(lambda: _where(ros, "Mug").object.receptacle == "CounterTop", ros, 10.0), node.log()
        there = _where(ros, "Mug").object
        assert there.receptacle_id == counter_b.track_id and there.relation == "on"
        top = counter_b.center.z + counter_b.size.z / 2.0
        assert (there.center.x, there.center.y, there.center.z) == pytest.approx(
            (counter_b.center.x, counter_b.center.y, top + 0.05), abs=1e-3)  # the mug's bottom on the top
        assert server.counters["skill_events.picked_up"] == server.counters["skill_events.placed"] == 1

        # reports memory cannot use are refused and counted; the node keeps serving, the mug stays put
        bad = ros.create_publisher(rmsg.MemoryEvent, "skill_events", 10)
        handshake(ros, srv.GetStats, f"/{NODE}/get_stats")
        bad.publish(rmsg.MemoryEvent(stamp=convert.time_to_msg(20.0), track_id=999, label="Mug", change="picked_up",
                                     detail=convert.state_to_msgs({"robot": "r1"})))
        bad.publish(rmsg.MemoryEvent(stamp=convert.time_to_msg(20.0), track_id=-1, label="Mug", change="dropped"))

        def counted() -> dict[str, int]:
            response = call(ros, srv.GetStats, f"/{NODE}/get_stats", srv.GetStats.Request())
            return {c.name: c.value for c in response.counters}

        assert wait_for(lambda: counted().get("skill_events_rejected") == 2, ros, 10.0), node.log()
        assert counted()["rejected.unknown_track"] == 1 and counted()["rejected.bad_skill_event"] == 1
        assert _where(ros, "Mug").object.receptacle_id == counter_b.track_id and node.alive()
    finally:
        robot.close()
        client_node.destroy_node()
        spin.shutdown()
        thread.join(timeout=10.0)
        server.destroy_node()
        node.stop()
