"""Full memory served by robomem's memory node in its own process, over real DDS.

For each run the node starts on a copy of the house's morning memory (SQLite), the robot's perception
publishes its observation batches to the node's ``observations`` topic, and the planner asks memory
only through the node's services (:class:`robomem.ros.memory_client.RosTools`). The node is stopped
(SIGINT, clean shutdown) after the run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from robomem.core.types import ObservationBatch

NODE_NAME = "demo_memory"


def isolate_ros(prefix: str = "robomem-demo-") -> dict[str, str]:
    """Keep this program's DDS traffic on this machine and off other ROS systems: a random domain unless
    ROS_DOMAIN_ID is set, discovery limited to localhost, logs in a temp folder. Call before rclpy.init."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(120, 220)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix=prefix))
    return {k: os.environ[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")}


class PublishingFeed:
    """An :class:`robomem_sim.perceive.Eyes` feed that publishes each batch to the memory node."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.batches = 0

    def ingest(self, batch: ObservationBatch) -> list:
        self.client.ingest(batch)
        self.batches += 1
        return []


class RosMemoryBackend:
    """Starts memory nodes for runs and connects to them from ``node`` (this process's rclpy node)."""

    def __init__(self, node: Any, workdir: Path | None = None) -> None:
        self.node = node
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="robomem-demo-nodes-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runs = 0
        self.startup_s: list[float] = []

    @contextmanager
    def session(self, db_copy: Path, rooms_config: list[dict[str, Any]]) -> Iterator[tuple[PublishingFeed, Any]]:
        """A memory node on ``db_copy``; yields (feed for the robot's eyes, the planner's tools)."""
        from robomem.ros.bringup import ros_command
        from robomem.ros.memory_client import MemoryClient, RosTools

        self.runs += 1
        config = self.workdir / f"memory-{self.runs}.yaml"
        config.write_text(yaml.safe_dump({"memory": {"rooms": rooms_config}}))
        name = f"{NODE_NAME}_{self.runs}"
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        command = ros_command("robomem.ros.memory_node", name, {"db_path": str(db_copy), "config_file": str(config)})
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = None
        try:
            started = time.perf_counter()
            client = MemoryClient(self.node, memory_node=name, timeout_s=20.0)
            client.wait_until_ready(timeout_s=60.0)
            self.startup_s.append(time.perf_counter() - started)
            yield PublishingFeed(client), RosTools(client)
            client.sync()
            lost = client.stats().get("batches_lost", 0)
            if lost:
                raise RuntimeError(f"{lost} observation batches were lost on the way to the memory node")
        finally:
            if client is not None:
                for service in client.clients.values():
                    self.node.destroy_client(service)
                self.node.destroy_publisher(client.publisher)
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.close()
