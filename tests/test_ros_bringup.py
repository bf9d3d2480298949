"""`robomem ros` as systemd or docker runs it: SIGTERM stops every node and memory is flushed first (the
last batch is in the file), no process is left behind, even when `robomem ros` itself is killed; a
namespaced node gets its parameters from a file keyed ``/**/memory``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_helpers import require_ros

require_ros()

from frames import det, frame  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from ros_helpers import call, descendants, ros_env, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.qos import observation_qos  # noqa: E402

pytestmark = pytest.mark.ros

PARAMS = """
/**:
  ros__parameters:
    map_frame: map
/**/memory:
  ros__parameters:
    config_file: core.yaml
    diag_period_s: 60.0      # no periodic flush during the test: only the shutdown's
"""
CORE = """
memory:
  flush_every_batches: 100000   # nothing reaches the file before shutdown
  flush_interval_s: 3600.0
"""


def start(folder: Path, namespace: str) -> subprocess.Popen:
    (folder / "robomem.yaml").write_text(PARAMS)
    (folder / "core.yaml").write_text(CORE)
    command = [sys.executable, "-m", "robomem.cli", "ros", "--params", str(folder / "robomem.yaml"),
               "--namespace", namespace, "--db", str(folder / "memory.sqlite")]
    return subprocess.Popen(command, env=ros_env(), stdout=open(folder / "ros.log", "w"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)


def feed(ros, namespace: str, robot: str, log: Path) -> None:
    """Two sightings of a kettle (believed) on /<namespace>/observations; waits until memory took them."""
    publisher = ros.create_publisher(rmsg.ObservationBatch, f"/{namespace}/observations", observation_qos(10))
    stats = f"/{namespace}/memory/get_stats"
    ready = call(ros, srv.GetStats, stats, srv.GetStats.Request(), timeout=30)
    assert ready.status == srv.GetStats.Response.STATUS_OK, log.read_text()  # configured and active
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
    for sequence, t in ((1, 10.0), (2, 11.0)):
        publisher.publish(convert.batch_to_msg(frame(t, None, det("Kettle", 1.0, 2.0, 0.9), robot=robot),
                                               sequence=sequence))

    def taken() -> bool:
        answer = call(ros, srv.GetStats, stats, srv.GetStats.Request())
        return dict(zip(answer.robot_ids, answer.last_sequences, strict=True)).get(robot) == 2

    assert wait_for(taken, ros, timeout=20)
    ros.destroy_publisher(publisher)


def gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The pids still alive (not zombies) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)  # polling /proc for processes that are not our children (no pidfd wait for them)


def kettle_in_file(path: Path) -> bool:
    memory = Memory(MemoryConfig(db_path=str(path)))
    try:
        found = memory.where_is("Kettle")
        return found is not None and abs(found.center[0] - 1.0) < 0.05
    finally:
        memory.close()


def test_sigterm_stops_every_node_and_flushes_memory(ros, tmp_path):
    parent = start(tmp_path, "r2")
    try:
        feed(ros, "r2", "r2", tmp_path / "ros.log")
        period = call(ros, GetParameters, "/r2/memory/get_parameters", GetParameters.Request(names=["diag_period_s"]))
        assert period.values[0].double_value == 60.0  # the /**/memory key reached the node in /r2
        assert not kettle_in_file(tmp_path / "memory.sqlite")  # not flushed yet: the file has no kettle
        children = [pid for pid, _, _ in descendants(parent.pid)]
        assert children
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 0, (tmp_path / "ros.log").read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert gone(children, timeout=1.0) == []
    assert kettle_in_file(tmp_path / "memory.sqlite"), (tmp_path / "ros.log").read_text()
    assert "memory closed" in (tmp_path / "ros.log").read_text()


def test_nodes_stop_when_robomem_ros_is_killed(ros, tmp_path):
    parent = start(tmp_path, "r3")
    try:
        feed(ros, "r3", "r3", tmp_path / "ros.log")
        children = [pid for pid, _, _ in descendants(parent.pid)]
        assert children
        parent.kill()  # SIGKILL: no handler runs; the kernel tells the children (PR_SET_PDEATHSIG)
        parent.wait(10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    left = gone(children)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert kettle_in_file(tmp_path / "memory.sqlite")  # each node still flushed on its SIGTERM
