"""Several robots on one machine: two memory nodes in two namespaces keep their own memories (their own
files in the state directory, answers that never mix) and a client in a namespace reaches its own memory
by relative names; with ``observation_topics`` one memory serves both robots, each object keeping the
id of the robot that saw it."""

from __future__ import annotations

import pytest
from ros_helpers import require_ros

require_ros()

from frames import det, frame  # noqa: E402
from ros_helpers import NodeProcess, call, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.memory_client import MemoryClient, RosTools  # noqa: E402
from robomem.ros.qos import observation_qos  # noqa: E402

pytestmark = pytest.mark.ros


def publish_sightings(ros, topic: str, robot: str, label: str, x: float, y: float) -> None:
    """Two sightings of ``label`` at (x, y) by ``robot`` on ``topic``."""
    publisher = ros.create_publisher(rmsg.ObservationBatch, topic, observation_qos(10))
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros, timeout=20), topic
    for sequence, t in ((1, 10.0), (2, 11.0)):
        publisher.publish(convert.batch_to_msg(frame(t, None, det(label, x, y, 0.9), robot=robot), sequence=sequence))


def taken(ros, memory: str, robot: str) -> bool:
    answer = call(ros, srv.GetStats, f"{memory}/get_stats", srv.GetStats.Request())
    return dict(zip(answer.robot_ids, answer.last_sequences, strict=True)).get(robot) == 2


def test_two_robots_two_memories_answers_do_not_mix(ros, tmp_path):
    env = {"ROS_HOME": str(tmp_path / "ros_home")}
    nodes = [NodeProcess("robomem.ros.memory_node", name="memory", namespace=ns, env=env,
                         log_path=tmp_path / f"{ns}.log") for ns in ("r1", "r2")]
    try:
        for node in nodes:
            ready = call(ros, srv.GetStats, f"{node.namespace}/memory/get_stats", srv.GetStats.Request(), timeout=30)
            assert ready.status == srv.GetStats.Response.STATUS_OK, node.log()
        publish_sightings(ros, "/r1/observations", "r1", "Mug", 1.0, 0.0)
        publish_sightings(ros, "/r2/observations", "r2", "Mug", 5.0, 5.0)
        assert wait_for(lambda: taken(ros, "/r1/memory", "r1") and taken(ros, "/r2/memory", "r2"), ros, timeout=20)
        one = call(ros, srv.WhereIs, "/r1/memory/where_is", srv.WhereIs.Request(label="Mug"))
        two = call(ros, srv.WhereIs, "/r2/memory/where_is", srv.WhereIs.Request(label="Mug"))
        assert (one.object.center.x, one.object.robot_id) == (pytest.approx(1.0, abs=0.05), "r1")
        assert (two.object.center.x, two.object.robot_id) == (pytest.approx(5.0, abs=0.05), "r2")
        stats = call(ros, srv.GetStats, "/r1/memory/get_stats", srv.GetStats.Request())
        assert list(stats.robot_ids) == ["r1"] and stats.objects_believed == 1  # nothing of r2 reached r1

        # a planner's client in /r2 names "memory": its own robot's memory, never the other one
        from rclpy.node import Node

        robot_node = Node("r2_client", namespace="/r2", context=ros.context)
        client = MemoryClient(robot_node, memory_node="memory")
        try:
            client.wait_until_ready()
            found = RosTools(client).where_is("Mug")
            assert found is not None and found.center[0] == pytest.approx(5.0, abs=0.05)
        finally:
            client.close()
            robot_node.destroy_node()
    finally:
        for node in nodes:
            assert node.stop() == 0, node.log()
    for ns in ("r1", "r2"):  # the state directory, a file per namespace
        assert (tmp_path / "ros_home" / "robomem" / ns / "memory.sqlite").is_file()


def test_one_memory_shared_by_two_robots_keeps_each_robots_id(ros, tmp_path):
    topics = ["/r1/observations", "/r2/observations"]
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(tmp_path / "shared.sqlite"),
                                                   "observation_topics": topics},
                       name="fleet_memory", log_path=tmp_path / "shared.log")
    try:
        publish_sightings(ros, topics[0], "r1", "Kettle", 1.0, 2.0)
        publish_sightings(ros, topics[1], "r2", "Lamp", -3.0, 1.0)
        assert wait_for(lambda: taken(ros, "/fleet_memory", "r1") and taken(ros, "/fleet_memory", "r2"), ros,
                        timeout=20), node.log()
        kettle = call(ros, srv.WhereIs, "/fleet_memory/where_is", srv.WhereIs.Request(label="Kettle"))
        lamp = call(ros, srv.WhereIs, "/fleet_memory/where_is", srv.WhereIs.Request(label="Lamp"))
        assert kettle.found and kettle.object.robot_id == "r1"
        assert lamp.found and lamp.object.robot_id == "r2"
        stats = call(ros, srv.GetStats, "/fleet_memory/get_stats", srv.GetStats.Request())
        assert list(stats.robot_ids) == ["r1", "r2"] and stats.objects_believed == 2
    finally:
        assert node.stop() == 0, node.log()
