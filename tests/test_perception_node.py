"""The perception node in its own process over real DDS: a PyBullet rendering published as depth image,
camera info, camera pose, instance mask and 2D detections comes back as the ObservationBatch the pure
perception computes from the same data; malformed frames are rejected, counted, and harmless."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()
pb = pytest.importorskip("pybullet", reason="pybullet is not installed (requirements.txt)")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from pybullet_scene import OBJECTS, build_scene, render  # noqa: E402
from ros_helpers import NodeProcess, call, handshake, wait_for  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.perception import Frame, Perception, PerceptionParams, make_camera_pose  # noqa: E402
from robomem.ros.perception_node import array_to_image  # noqa: E402

pytestmark = pytest.mark.ros

NODE = "perception_test"
PARAMS = {"map_frame": "map", "robot_id": "r7", "max_range_m": 5.0, "min_pixels": 30, "input_mode": "mask"}


@pytest.fixture(scope="module")
def rendered():
    scene = build_scene()
    try:
        yield scene, render(scene, 320, 240)
    finally:
        pb.disconnect(scene.client)


@pytest.fixture(scope="module")
def node(ros, tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("perception_node")
    process = NodeProcess("robomem.ros.perception_node", PARAMS, name=NODE, log_path=folder / "node.log")
    yield process
    assert process.stop() == 0, process.log()


class Link:
    """The test process's publishers to the node and a subscription to its observations."""

    def __init__(self, ros) -> None:
        self.ros = ros
        self.depth = ros.create_publisher(Image, "depth/image", 10)
        self.info = ros.create_publisher(CameraInfo, "depth/camera_info", 10)
        self.pose = ros.create_publisher(PoseStamped, "camera_pose", 10)
        self.mask = ros.create_publisher(Image, "instance_mask", 10)
        self.dets = ros.create_publisher(rmsg.Detection2DArray, "detections", 10)
        self.received: list[rmsg.ObservationBatch] = []
        self.sub = ros.create_subscription(rmsg.ObservationBatch, "observations", self.received.append, 10)

    def connected(self) -> bool:
        pubs = (self.depth, self.info, self.pose, self.mask, self.dets)
        return all(p.get_subscription_count() > 0 for p in pubs) and self.sub.get_publisher_count() > 0

    def send(self, scene, r, t: float, depth=None, encoding="32FC1", mask=None, position=None, quaternion=None,
             pose_frame="map"):
        stamp = Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
        info = CameraInfo(width=r.intrinsics.width, height=r.intrinsics.height)
        info.k = [float(v) for v in r.intrinsics.k.reshape(-1)]
        info.header.stamp = stamp
        self.info.publish(info)
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, pose_frame
        px, py, pz = r.position if position is None else position
        qx, qy, qz, qw = r.quaternion if quaternion is None else quaternion
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = float(px), float(py), float(pz)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = float(qx), float(qy), float(qz), float(qw)
        detections = rmsg.Detection2DArray()
        detections.header.stamp = stamp
        for name in OBJECTS:
            body = scene.bodies[name].body_id
            detections.detections.append(rmsg.Detection2D(label=name, score=0.9, instance_id=body))
        self.dets.publish(detections)
        self.pose.publish(pose)
        self.mask.publish(array_to_image(r.seg if mask is None else mask, "32SC1", stamp))
        self.depth.publish(array_to_image(r.depth_m if depth is None else depth, encoding, stamp))


@pytest.fixture(scope="module")
def link(ros, node):
    link = Link(ros)
    assert wait_for(link.connected, ros, timeout=15.0), node.log()
    handshake(ros, srv.GetStats, f"/{NODE}/get_stats")  # the node's observations writer has matched our reader
    yield link


def expected(scene, r, t: float, depth=None):
    labels = {scene.bodies[n].body_id: n for n in OBJECTS}
    frame = Frame(
        t,
        "r7",
        r.depth_m if depth is None else depth,
        r.intrinsics,
        make_camera_pose(r.position, r.quaternion),
        mask=r.seg,
        labels=labels,
        scores={k: 0.9 for k in labels},
    )
    return Perception(PerceptionParams(max_range_m=5.0, min_pixels=30)).observe(frame)


def check_same(message: rmsg.ObservationBatch, batch, t: float, frame_id: str = "map") -> None:
    assert message.header.frame_id == frame_id and message.robot_id == "r7"
    assert message.header.stamp.sec + message.header.stamp.nanosec * 1e-9 == pytest.approx(t, abs=1e-6)
    got = {o.label: o for o in message.observations}
    assert sorted(got) == sorted(d.label for d in batch.detections) == ["Book", "Box", "DiningTable", "Mug"]
    for d in batch.detections:
        o = got[d.label]
        assert [o.center.x, o.center.y, o.center.z] == pytest.approx(d.center.tolist(), abs=1e-9)
        assert [o.size.x, o.size.y, o.size.z] == pytest.approx(d.size.tolist(), abs=1e-9)
        assert o.confidence == pytest.approx(0.9, abs=1e-6)
    assert message.has_view
    assert message.view.yaw_deg == pytest.approx(batch.view.yaw_deg, abs=1e-9)
    assert message.view.fov_deg == pytest.approx(batch.view.fov_deg, abs=1e-9)
    assert message.view.range_m == 5.0
    assert [message.view.position.x, message.view.position.y] == pytest.approx(list(batch.view.position[:2]))


def stats(ros) -> dict[str, int]:
    response = call(ros, srv.GetStats, f"/{NODE}/get_stats", srv.GetStats.Request())
    return {c.name: c.value for c in response.counters}


def test_a_rendered_frame_becomes_the_same_observation_batch(ros, node, link, rendered):
    scene, r = rendered
    link.send(scene, r, 100.25)
    assert wait_for(lambda: len(link.received) >= 1, ros, timeout=10.0), node.log()
    check_same(link.received[-1], expected(scene, r, 100.25), 100.25)


def test_uint16_millimetre_depth(ros, node, link, rendered):
    scene, r = rendered
    mm = np.round(r.depth_m * 1000.0).astype(np.uint16)
    before = len(link.received)
    link.send(scene, r, 101.0, depth=mm, encoding="16UC1")
    assert wait_for(lambda: len(link.received) > before, ros, timeout=10.0), node.log()
    check_same(link.received[-1], expected(scene, r, 101.0, depth=mm), 101.0)


def test_malformed_frames_are_rejected_counted_and_harmless(ros, node, link, rendered):
    scene, r = rendered
    before = len(link.received)
    link.send(scene, r, 102.0, depth=r.depth_m.astype(np.float64), encoding="64FC1")  # unsupported encoding
    link.send(scene, r, 103.0, mask=r.seg[:, :-8])  # mask narrower than the depth image
    link.send(scene, r, 104.0, position=(0.0, math.nan, 1.0))  # NaN pose
    link.send(scene, r, 105.0, quaternion=(0.0, 0.0, 0.0, 0.0))  # zero quaternion
    link.send(scene, r, 106.0)  # and a good one after them
    assert wait_for(lambda: len(link.received) > before, ros, timeout=10.0), node.log()
    assert len(link.received) == before + 1
    check_same(link.received[-1], expected(scene, r, 106.0), 106.0)
    counts = stats(ros)
    assert counts["rejected.bad_encoding"] == 1
    assert counts["rejected.size_mismatch"] == 1
    assert counts["rejected.bad_pose"] == 2
    assert counts["published"] == 3
    assert node.alive()
    log = node.log()
    assert "bad_encoding" in log and "bad_pose" in log


def test_a_camera_pose_in_odom_gives_a_batch_in_odom_for_memory_to_transform(ros, node, link, rendered):
    scene, r = rendered
    before = len(link.received)
    link.send(scene, r, 107.0, pose_frame="odom")
    assert wait_for(lambda: len(link.received) > before, ros, timeout=10.0), node.log()
    check_same(link.received[-1], expected(scene, r, 107.0), 107.0, frame_id="odom")


def test_perception_is_a_managed_node_with_described_parameters(ros, node):
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters

    assert call(ros, GetState, f"/{NODE}/get_state", GetState.Request()).current_state.id == State.PRIMARY_STATE_ACTIVE
    described = call(ros, DescribeParameters, f"/{NODE}/describe_parameters",
                     DescribeParameters.Request(names=["max_range_m", "input_mode"])).descriptors
    assert all(d.description for d in described)
    assert described[0].floating_point_range[0].to_value == pytest.approx(100.0) and described[1].read_only
    mode = Parameter(name="input_mode", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="boxes"))
    refused = call(ros, SetParameters, f"/{NODE}/set_parameters", SetParameters.Request(parameters=[mode]))
    assert not refused.results[0].successful
