"""Helpers for tests over real DDS: an isolated ROS environment, nodes in their own processes, calls.

Every test session gets a random ROS_DOMAIN_ID and discovery limited to this machine, so tests never
talk to other machines or to other sessions. Use the ``ros`` fixture (tests/conftest.py) for the test
process's own rclpy node.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from robomem.ros.bringup import ros_command

DOMAIN_ID = random.Random(os.getpid() ^ time.time_ns()).randint(110, 200)
LOG_DIR = tempfile.mkdtemp(prefix="robomem-ros-log-")
ISOLATION = {
    "ROS_DOMAIN_ID": str(DOMAIN_ID),
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    "ROS_LOG_DIR": LOG_DIR,
    "PYTHONUNBUFFERED": "1",
}


def require_ros() -> None:
    """Skip the calling test module (call it before importing anything of ROS) unless rclpy and
    robomem's generated interfaces import; the skip says which is missing."""
    import pytest

    pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: pip install -r requirements-ros.txt")
    pytest.importorskip("robomem.msg", reason="robomem's ROS interfaces are not built: bash scripts/setup.sh")


def isolate_this_process() -> None:
    """Apply the isolation variables to this (the test) process before rclpy.init."""
    os.environ.update(ISOLATION)


def ros_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **ISOLATION}
    env.update(extra or {})
    return env


class NodeProcess:
    """A robomem node started as a separate Python process (``python -m <module> --ros-args ...``)."""

    def __init__(self, module: str, params: dict[str, Any] | None = None, name: str | None = None,
                 log_path: Path | None = None) -> None:
        args = ros_command(module, name, params)
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="robomem-node-", suffix=".log")[1])
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(args, env=ros_env(), stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (a clean shutdown, like Ctrl-C), then kill if it hangs; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def call(node: Any, service_type: Any, name: str, request: Any, timeout: float = 10.0) -> Any:
    """Call a service from ``node`` (waiting up to ``timeout`` for discovery and the answer)."""
    import rclpy

    client = node.create_client(service_type, name)
    try:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} did not appear within {timeout} s")
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if not future.done():
            raise TimeoutError(f"service {name} did not answer within {timeout} s")
        return future.result()
    finally:
        node.destroy_client(client)


def wait_for(predicate: Any, node: Any, timeout: float = 10.0) -> bool:
    """Spin ``node`` until ``predicate()`` holds or ``timeout`` passes."""
    import rclpy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return bool(predicate())
