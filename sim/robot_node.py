"""The simulated robot as a ROS 2 node: its skills served to the planner node, its camera published.

:class:`SimRobotNode` serves a :class:`robomem_sim.runner.SimExecutor` (PyBullet robot in a house) on
``~/execute_skill`` and ``~/get_state`` (robomem.ros.skill_server) and publishes what its camera
perceives on ``observations`` (robomem/ObservationBatch, numbered), so memory learns from every skill.
The demo runs it inside its own process (it owns the simulator) with :func:`spinning`; the memory and
planner nodes run in their own processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from robomem.ros.memory_client import ObservationPublisher
from robomem.ros.skill_server import SkillServerNode


class SimRobotNode(SkillServerNode):
    """Skills of the attached simulated robot (see :meth:`attach`); ``observations`` is the feed its
    eyes publish through (``Eyes.feeds.append(node.observations)``)."""

    def __init__(self, name: str = "robot", robot_id: str = "robot", **kwargs: Any) -> None:
        super().__init__(name, robot_id, published=lambda: self.observations.published, **kwargs)
        self.observations = ObservationPublisher(self)

    def wait_for_memory(self, memory_node: str, timeout_s: float = 30.0) -> None:
        """Wait until ``memory_node`` subscribes to this robot's observations (batches published before
        that would be lost: the topic is volatile)."""
        publisher = self.observations.publisher
        deadline = time.monotonic() + timeout_s
        while True:
            readers = self.get_subscriptions_info_by_topic(publisher.topic_name)
            if any(r.node_name == memory_node for r in readers) and publisher.get_subscription_count() >= len(readers):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{memory_node} does not subscribe to {publisher.topic_name}")
            time.sleep(0.02)


@contextmanager
def spinning(node: Node) -> Iterator[Node]:
    """Spin ``node`` in a background thread (its own executor) for the duration of the block."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, name=f"spin-{node.get_name()}", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.shutdown()
        thread.join(timeout=10.0)
