"""Observations in a moving camera's frame, transformed into map at their stamp from /tf and /tf_static
published by another process's publishers (tf2_msgs/TFMessage, as a robot's tf2 publishers send it);
a batch whose transform comes late waits for it; a missing, never-coming or too-old transform is a
rejection with its reason, counted."""

from __future__ import annotations

import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()

from frames import det, frame  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from ros_helpers import NodeProcess, call, wait_for  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.qos import keep_last, observation_qos  # noqa: E402

pytestmark = pytest.mark.ros

NODE = "tf_memory"
CAMERA_IN_BASE = np.array([0.5, 0.0, 0.0])  # the camera: 0.5 m ahead of base_link, turned 90 degrees left
VASE_IN_MAP = np.array([2.0, 1.0, 0.8])


def base_x(t: float) -> float:
    """base_link drives along map x at 1 m/s from x = 0 at t = 100."""
    return t - 100.0


def vase_in_camera(t: float) -> np.ndarray:
    """Where the camera sees the vase at ``t`` (worked out by hand: undo base, then camera)."""
    in_base = VASE_IN_MAP - [base_x(t), 0.0, 0.0] - CAMERA_IN_BASE
    return np.array([in_base[1], -in_base[0], in_base[2]])  # rotate by -90 degrees about z


def stamped(parent: str, child: str, t: float, xyz, yaw_deg: float = 0.0) -> TransformStamped:
    out = TransformStamped()
    out.header.frame_id, out.child_frame_id = parent, child
    out.header.stamp = convert.time_to_msg(t)
    out.transform.translation.x, out.transform.translation.y, out.transform.translation.z = map(float, xyz)
    half = np.radians(yaw_deg) / 2
    out.transform.rotation.z, out.transform.rotation.w = float(np.sin(half)), float(np.cos(half))
    return out


def camera_batch(t: float, sequence: int, frame_id: str = "camera_link") -> rmsg.ObservationBatch:
    x, y, z = vase_in_camera(t)
    message = convert.batch_to_msg(frame(t, None, det("Vase", x, y, z)), frame_id, sequence)
    message.observations[0].size.x, message.observations[0].size.y = 0.1, 0.3  # turned: 0.3 x 0.1 in map
    return message


@pytest.fixture(scope="module")
def world(ros, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tf")
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "tf.sqlite"), "tf_wait_s": 3.0},
                       name=NODE, log_path=folder / "node.log")
    tf = ros.create_publisher(TFMessage, "/tf", keep_last(100))
    tf_static = ros.create_publisher(TFMessage, "/tf_static", keep_last(1, latched=True))
    observations = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(10))
    tf_static.publish(TFMessage(transforms=[stamped("base_link", "camera_link", 0.0, CAMERA_IN_BASE, 90.0)]))
    assert wait_for(lambda: observations.get_subscription_count() > 0 and tf.get_subscription_count() > 0
                    and tf_static.get_subscription_count() > 0, ros, timeout=30), node.log()
    yield {"node": node, "tf": tf, "observations": observations}
    node.stop()


def stats(ros) -> dict[str, int]:
    answer = call(ros, srv.GetStats, f"/{NODE}/get_stats", srv.GetStats.Request())
    return {c.name: c.value for c in answer.counters}


def test_moving_camera_frame_is_transformed_at_each_stamp(ros, world):
    world["tf"].publish(TFMessage(transforms=[stamped("map", "base_link", t, [base_x(t), 0, 0])
                                              for t in (100.0, 101.0, 102.0)]))
    assert wait_for(lambda: world["tf"].get_subscription_count() > 0, ros)
    for sequence, t in ((1, 101.5), (2, 101.8)):  # between tf samples: interpolated
        world["observations"].publish(camera_batch(t, sequence))
    assert wait_for(lambda: stats(ros).get("batches", 0) >= 2, ros, timeout=10), (stats(ros), world["node"].log())
    vase = call(ros, srv.WhereIs, f"/{NODE}/where_is", srv.WhereIs.Request(label="Vase"))
    assert vase.found and vase.header.frame_id == "map"
    np.testing.assert_allclose(convert.xyz(vase.object.center), VASE_IN_MAP, atol=0.02)
    np.testing.assert_allclose(convert.xyz(vase.object.size)[:2], [0.3, 0.1], atol=0.01)  # the box turned too
    assert stats(ros)["batches_transformed"] == 2


def test_a_batch_waits_for_its_late_transform(ros, world):
    before = stats(ros)
    world["observations"].publish(camera_batch(103.0, 3))  # the tf for 103 is not there yet
    assert wait_for(lambda: stats(ros).get("batches_received", 0) > before.get("batches_received", 0), ros)
    assert stats(ros).get("batches", 0) == before["batches"]  # waiting, not ingested, not rejected
    world["tf"].publish(TFMessage(transforms=[stamped("map", "base_link", 103.5, [base_x(103.5), 0, 0])]))
    assert wait_for(lambda: stats(ros).get("batches", 0) == before["batches"] + 1, ros, timeout=10)
    vase = call(ros, srv.WhereIs, f"/{NODE}/where_is", srv.WhereIs.Request(label="Vase"))
    np.testing.assert_allclose(convert.xyz(vase.object.center), VASE_IN_MAP, atol=0.02)


def test_missing_never_coming_and_too_old_transforms_are_rejected_with_reasons(ros, world):
    before = stats(ros)
    world["observations"].publish(camera_batch(103.2, 4, frame_id="gripper_link"))  # /tf never names it
    world["observations"].publish(camera_batch(200.0, 5))  # no tf sample will ever cover 200
    world["observations"].publish(camera_batch(50.0, 6))  # older than the 10 s buffer (latest tf: 103.5)

    def rejected(reason: str) -> int:
        return stats(ros).get(f"rejected.{reason}", 0) - before.get(f"rejected.{reason}", 0)

    assert wait_for(lambda: rejected("transform_too_old") == 1, ros, timeout=5)
    assert rejected("unknown_frame") == rejected("transform_timeout") == 0  # these two still wait (3 s)
    assert wait_for(lambda: rejected("unknown_frame") == 1 and rejected("transform_timeout") == 1, ros, timeout=10)
    assert stats(ros)["batches"] == before["batches"]
    assert world["node"].alive()
