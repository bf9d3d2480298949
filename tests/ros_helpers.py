"""Helpers for tests over real DDS: an isolated ROS domain per test file, nodes in their own processes,
calls that survive lost answers, and the check that a test file leaves no process behind.

Every test file gets a ROS_DOMAIN_ID of its own (:func:`reserve_domain`, a lock file per id, so test runs
side by side on this machine never share one) and discovery limited to this machine, so tests never talk
to other machines, other files or other runs. Use the ``ros`` fixture (tests/conftest.py) for the test
process's own rclpy node, and :func:`call` / :func:`caller` (robomem.ros.calls.ServiceCaller) for its
service calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import select
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from robomem.ros.bringup import normalized_namespace, ros_command, stop_processes

#: ROS 2 on Linux: domain ids 1-101 never collide with ephemeral ports (0 is everyone's default); the
#: demo picks from 120-220 when run alone.
DOMAINS = range(1, 102)
DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "robomem-ros-domains"
LOG_DIR = tempfile.mkdtemp(prefix="robomem-ros-log-")
#: The environment of this process's ROS domain (ROS_DOMAIN_ID filled in by reserve_domain).
ISOLATION = {
    "ROS_DOMAIN_ID": "",
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    "ROS_LOG_DIR": LOG_DIR,
    "PYTHONUNBUFFERED": "1",
}
_held: dict[str, Any] = {}  # the reserved domain: {"id": int, "lock": open file}


def require_ros() -> None:
    """Skip the calling test module (call it before importing anything of ROS) unless rclpy and
    robomem's generated interfaces import; the skip says which is missing."""
    import pytest

    pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: pip install -r requirements-ros.txt")
    pytest.importorskip("robomem.msg", reason="robomem's ROS interfaces are not built: bash scripts/setup.sh")


def reserve_domain() -> int:
    """Hold a ROS domain id no other process on this machine holds (an exclusive lock on
    DOMAIN_LOCKS/<id>.lock until :func:`release_domain` or exit) and make it this process's: ISOLATION
    and os.environ (so nodes started from here, and rclpy.init, use it)."""
    release_domain()
    DOMAIN_LOCKS.mkdir(parents=True, exist_ok=True)
    candidates = list(DOMAINS)
    random.Random(os.getpid() ^ time.time_ns()).shuffle(candidates)
    for domain in candidates:
        lock = open(DOMAIN_LOCKS / f"{domain}.lock", "a")  # noqa: SIM115 (held until released)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held.update(id=domain, lock=lock)
        ISOLATION["ROS_DOMAIN_ID"] = str(domain)
        os.environ.update(ISOLATION)
        return domain
    raise RuntimeError(f"every ROS domain in {DOMAINS} is held by another process")


def release_domain() -> None:
    lock = _held.pop("lock", None)
    _held.pop("id", None)
    if lock is not None:
        lock.close()


def domain_id() -> int:
    """This process's ROS domain (reserved on first use)."""
    return _held["id"] if "id" in _held else reserve_domain()


def isolate_this_process() -> int:
    """Apply the isolation variables (with a reserved domain) to this process before rclpy.init."""
    domain = domain_id()
    os.environ.update(ISOLATION)
    return domain


def ros_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process in this process's ROS domain."""
    domain_id()
    env = {**os.environ, **ISOLATION}
    env.update(extra or {})
    return env


def descendants(pid: int | None = None) -> list[tuple[int, str, str]]:
    """(pid, state, command line) of every process below ``pid`` (default: this one), from /proc."""
    parents: dict[int, list[int]] = {}
    info: dict[int, tuple[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
        info[int(entry.name)] = (fields[0], command or stat.split(" ", 1)[1].split(")")[0] + ")")
    out, todo = [], [os.getpid() if pid is None else pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append((child, *info[child]))
            todo.append(child)
    return out


def leftover_processes(grace_s: float = 10.0) -> list[tuple[int, str, str]]:
    """The processes this one started that are still there (running, or exited but never waited for)
    after ``grace_s`` (a process being stopped gets that long to go); the running ones are killed."""
    deadline = time.monotonic() + grace_s
    while (running := [pid for pid, state, _ in descendants() if state != "Z"]) and time.monotonic() < deadline:
        handles = []
        for pid in running:
            with contextlib.suppress(OSError):  # gone already
                handles.append(os.pidfd_open(pid))  # readable once the process has exited
        try:
            if handles:
                select.select(handles, [], [], max(0.0, deadline - time.monotonic()))
        finally:
            for handle in handles:
                os.close(handle)
    left = descendants()
    for pid, state, _ in left:
        if state != "Z":
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return left


class NodeProcess:
    """A robomem node started as a separate Python process (``python -m <module> --ros-args ...``)."""

    def __init__(self, module: str, params: dict[str, Any] | None = None, name: str | None = None,
                 log_path: Path | None = None, namespace: str = "", env: dict[str, str] | None = None) -> None:
        args = ros_command(module, name, params, namespace=namespace)
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="robomem-node-", suffix=".log")[1])
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(args, env=ros_env(env), stdout=self._log, stderr=subprocess.STDOUT)
        self.namespace = normalized_namespace(namespace)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (a clean shutdown, like Ctrl-C), then kill if it hangs; returns the exit code."""
        stop_processes([self.process], timeout=timeout)
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_callers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def caller(node: Any) -> Any:
    """The :class:`robomem.ros.calls.ServiceCaller` of ``node`` (one per node, with its kept clients
    and its ``resends`` counter)."""
    from robomem.ros.calls import ServiceCaller

    if node not in _callers:
        _callers[node] = ServiceCaller(node)
    return _callers[node]


def call(node: Any, service_type: Any, name: str, request: Any, timeout: float = 10.0) -> Any:
    """Call a service from ``node`` through its kept client (waiting up to ``timeout`` in all for the
    server to be matched and to answer). A query is sent again while unanswered, a request with a
    ``request_id`` with that id (robomem.ros.calls); the response is returned, ``error`` set or not.
    Raises robomem.ros.calls.ServiceTimeout (a TimeoutError)."""
    helper = caller(node)
    return helper.call(helper.client(service_type, name), request, timeout_s=timeout, raise_on_error=False)


def handshake(node: Any, service_type: Any, name: str, timeout: float = 30.0) -> None:
    """Wait until the server of ``name`` has matched every endpoint ``node``'s process created so far,
    e.g. a subscription to a topic it publishes (ServiceCaller.handshake)."""
    caller(node).handshake(service_type, name, timeout)


def wait_for(predicate: Any, node: Any, timeout: float = 10.0) -> bool:
    """Spin ``node`` until ``predicate()`` holds (True) or ``timeout`` passes (False)."""
    return caller(node).spin_until(lambda: bool(predicate()), timeout)
