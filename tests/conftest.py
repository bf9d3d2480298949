"""Shared helpers: build frames in the core's z-up world frame."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from robomem.core import Memory, MemoryConfig  # noqa: E402


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    mem = Memory(MemoryConfig(db_path=str(tmp_path / "memory.sqlite")))
    yield mem
    mem.close()


@pytest.fixture(scope="session")
def ros():
    """rclpy initialised once per test session in an isolated DDS domain (see tests/ros_helpers.py);
    yields a helper node of the test process."""
    import rclpy
    from ros_helpers import isolate_this_process

    isolate_this_process()
    rclpy.init()
    node = rclpy.create_node("robomem_test_client")
    yield node
    node.destroy_node()
    rclpy.try_shutdown()
