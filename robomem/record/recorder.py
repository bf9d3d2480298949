"""The recorder node: writes robomem's topics to a rosbag2 MCAP bag (robomem.record.bag), like
``ros2 bag record -s mcap``, which PyPI's ROS 2 lacks.

It subscribes, from the start, to the observation and event topics (``topics``: their types are
robomem's own) and, as they appear on the graph, to the camera topics (``camera_topics``: depth,
camera info, pose, mask, 2D detections, images; their type and reliability are taken from the
publishers). Messages are stored as they arrive, still serialized (raw subscriptions: no decoding),
stamped with the time they were received. SIGINT (Ctrl-C) or SIGTERM closes the bag cleanly.

Parameters: ``bag_path`` (required; must not exist), ``topics``, ``camera_topics``,
``discovery_period_s``. Service ``~/get_stats`` (robomem/srv/GetStats): ``recorded.<topic>`` and
``publishers.<topic>`` (matched publishers), so a caller can wait until the recorder hears a topic.
"""

from __future__ import annotations

import importlib
import signal
import sys
import time
from collections import Counter
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from robomem import msg as rmsg
from robomem import srv
from robomem.record.bag import BagError, BagWriter, qos_dict
from robomem.record.schemas import EVENT_TYPE, OBSERVATION_TYPE
from robomem.ros.qos import EVENTS_QOS, keep_last, observation_qos

#: The topics robomem itself publishes, with their types and the depth the recorder queues.
ROBOMEM_TOPICS = {"observations": (OBSERVATION_TYPE, 100), "events": (EVENT_TYPE, 1000)}
CAMERA_TOPICS = ("depth/image", "depth/camera_info", "camera_pose", "instance_mask", "detections", "rgb/image",
                 "image_raw", "camera_info")
CAMERA_QUEUE = 30


def message_class(msgtype: str) -> Any:
    """The Python class of ``pkg/msg/Name`` (its package's generated module must be importable)."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class RecorderNode(Node):
    """Records topics into one bag; see the module docstring."""

    def __init__(self, node_name: str = "recorder") -> None:
        super().__init__(node_name)
        self.declare_parameter("bag_path", "")
        self.declare_parameter("topics", list(ROBOMEM_TOPICS))
        self.declare_parameter("camera_topics", list(CAMERA_TOPICS))
        self.declare_parameter("discovery_period_s", 0.5)
        path = self.get_parameter("bag_path").value
        if not path:
            raise ValueError("bag_path is required (a folder that does not exist yet)")
        self.bag = BagWriter(path)
        self.counters: Counter[str] = Counter()
        self.subscriptions_by_topic: dict[str, Any] = {}
        for topic in self.get_parameter("topics").value:
            msgtype, depth = ROBOMEM_TOPICS.get(topic.strip("/").rsplit("/", 1)[-1], (None, 0))
            if msgtype is None:
                raise ValueError(f"unknown robomem topic {topic!r} (choose from {', '.join(ROBOMEM_TOPICS)}; "
                                 "other topics go in camera_topics)")
            qos = observation_qos(depth) if msgtype == OBSERVATION_TYPE else EVENTS_QOS
            self._subscribe(self.resolve_topic_name(topic), msgtype, qos)
        cameras = self.get_parameter("camera_topics").value
        self.camera_topics = [self.resolve_topic_name(t) for t in cameras if t.strip()]
        self.create_service(srv.GetStats, "~/get_stats", self._stats)
        self.create_timer(float(self.get_parameter("discovery_period_s").value), self.discover)
        self.get_logger().info(f"recording {', '.join(self.subscriptions_by_topic)} to {self.bag.path}")

    def _subscribe(self, topic: str, msgtype: str, qos: QoSProfile) -> None:
        try:
            self.bag.add_topic(topic, msgtype, [qos_dict(qos.reliability == ReliabilityPolicy.RELIABLE, qos.depth)])
            cls = message_class(msgtype)
        except (BagError, ImportError, AttributeError, ValueError) as error:
            self.counters[f"skipped_topics.{topic}"] += 1
            self.get_logger().warning(f"not recording {topic} ({msgtype}): {error}")
            return

        def store(data: bytes) -> None:
            try:
                self.bag.write(topic, data, time.time_ns())
                self.counters[f"recorded.{topic}"] += 1
            except BagError as error:  # closed while shutting down
                self.counters["write_errors"] += 1
                self.get_logger().warning(f"{topic}: {error}")

        self.subscriptions_by_topic[topic] = self.create_subscription(cls, topic, store, qos, raw=True)

    def discover(self) -> None:
        """Subscribe to camera topics that appeared, with their publishers' type and reliability."""
        types = dict(self.get_topic_names_and_types())
        for topic in self.camera_topics:
            if topic in self.subscriptions_by_topic or topic not in types or self.counters[f"skipped_topics.{topic}"]:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
            self._subscribe(topic, types[topic][0], keep_last(CAMERA_QUEUE, reliable=reliable))
            self.get_logger().info(f"recording {topic} ({types[topic][0]})")

    def _stats(self, request: Any, response: Any) -> Any:
        counters = Counter(self.counters)
        for topic, subscription in self.subscriptions_by_topic.items():
            counters[f"recorded.{topic}"] += 0
            counters[f"publishers.{topic}"] = subscription.get_publisher_count()
        response.counters = [rmsg.MemoryCounter(name=k, value=int(v)) for k, v in sorted(counters.items())]
        return response

    def close(self) -> None:
        self.bag.close()
        self.get_logger().info(f"bag {self.bag.path} closed: {sum(self.bag.counts.values())} messages")


def wait_until_recording(node: Node, recorder: str = "recorder", timeout_s: float = 30.0) -> None:
    """Block until the recorder node ``recorder`` answers (its subscriptions exist): start the nodes
    it records after this, and they find its readers as they start (robomem.ros.calls.ServiceTimeout
    if it does not answer)."""
    from robomem.ros.calls import ServiceCaller

    caller = ServiceCaller(node)
    caller.call(caller.client(srv.GetStats, f"/{recorder}/get_stats"), srv.GetStats.Request(), timeout_s=timeout_s,
                raise_on_error=False)


def main(args: list[str] | None = None) -> int:
    """Entry point (``python -m robomem.record.recorder --ros-args -p bag_path:=BAG``). SIGTERM closes the
    bag as SIGINT does."""
    from robomem.ros.runtime import run_node

    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    sys.exit(main())
