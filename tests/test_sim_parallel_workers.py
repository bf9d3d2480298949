"""The demo's worker processes do not outlive a demo stopped by a signal that reached it alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pybullet")

REPO = Path(__file__).resolve().parents[1]

PARENT = """
import concurrent.futures, multiprocessing, os, sys, time
from robomem_sim.parallel import exit_with_parent

def report(path):
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx, initializer=exit_with_parent,
                                                initargs=(os.getpid(), 0.1)) as pool:
        pool.submit(report, sys.argv[1])
        time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead: it only waits to be reaped
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_a_worker_exits_when_its_demo_is_killed_alone(tmp_path) -> None:
    script, pid_file = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60.0
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)  # the parent alone: no chance to stop its pool
        parent.wait(10)
        deadline = time.monotonic() + 10.0
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its parent"
    finally:
        parent.kill()
