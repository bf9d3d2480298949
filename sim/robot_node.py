"""The simulated robot as a ROS 2 node: its skills served to the planner node, its camera published.

:class:`SimRobotNode` serves a :class:`robomem_sim.runner.SimExecutor` (PyBullet robot in a house) on
``~/execute_skill`` and ``~/get_state`` (robomem.ros.skill_server) and publishes what its camera
perceives on ``observations`` (robomem/ObservationBatch, numbered), so memory learns from every skill.
The demo runs it inside its own process (it owns the simulator) with :func:`spinning`; the memory and
planner nodes run in their own processes.
"""

from __future__ import annotations

import threading
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
