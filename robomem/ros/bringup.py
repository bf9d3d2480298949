"""Start robomem's node set from the same YAML as launch/robomem.launch.py, without ``ros2 launch``.

Each node runs in its own process (``python -m robomem.ros.<node> --ros-args --params-file ...``), as
launch would run it, in the namespace given (``robomem ros --namespace r2``: /r2/memory, /r2/observations).

Shutdown: SIGINT (Ctrl-C) and SIGTERM (systemd, docker) to ``robomem ros`` stop every node cleanly (each
gets SIGINT, closes its memory — the last batches are written — and exits; one that hangs is killed after
10 s). A node also gets SIGTERM from the kernel if ``robomem ros`` itself dies (SIGKILL): no orphans.
If one node exits, the others are stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NODES = {"memory": "robomem.ros.memory_node", "perception": "robomem.ros.perception_node",
         "planner": "robomem.ros.planner_node"}
CONFIG_PARAMETERS = ("config_file",)  # relative: against the parameters file's folder
PR_SET_PDEATHSIG = 1


def stop_processes(processes: Iterable[subprocess.Popen], sig: int = signal.SIGINT, timeout: float = 10.0) -> None:
    """Send ``sig`` (SIGINT: a clean shutdown, like Ctrl-C) to every process still running, wait up to
    ``timeout`` seconds for each, then kill the ones that hang."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def die_with_parent() -> None:
    """In a child (Popen's preexec_fn): the kernel sends it SIGTERM when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's own handlers still stop it
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def default_params_file() -> Path:
    """config/robomem.yaml of a source checkout, else the installed copy under <prefix>/share/robomem."""
    source = Path(__file__).resolve().parents[2] / "config" / "robomem.yaml"
    return source if source.exists() else Path(sys.prefix) / "share" / "robomem" / "config" / "robomem.yaml"


def normalized_namespace(namespace: str) -> str:
    """``r2``, ``/r2`` or ``/r2/`` as ``/r2``; ``""`` or ``/`` as ``""`` (the root namespace)."""
    parts = [p for p in namespace.strip().split("/") if p]
    for part in parts:
        if not part.replace("_", "a").isalnum() or part[0].isdigit():
            raise ValueError(f"bad namespace {namespace!r}: letters, digits and '_', not starting with a digit")
    return "/" + "/".join(parts) if parts else ""


def node_parameters(document: dict, node: str, namespace: str = "") -> dict[str, Any]:
    """The ``ros__parameters`` a node named ``node`` in ``namespace`` gets from a parameters file, in
    rcl's order of precedence for the keys robomem's files use: ``/**``, ``/**/<node>``, ``<node>``,
    ``<namespace>/<node>`` (later ones win)."""
    keys = ["/**", "/**/" + node, node, f"{namespace}/{node}" if namespace else "/" + node]
    values: dict[str, Any] = {}
    for key in keys:
        values.update(((document.get(key) or {}).get("ros__parameters")) or {})
    return values


def resolve_paths(params_file: Path, node: str, namespace: str = "") -> dict[str, str]:
    """Config-file parameters of ``node`` made absolute against the parameters file's folder (db_path is
    resolved by the node itself, against its state directory: robomem.ros.state_dir)."""
    import yaml  # here: `robomem --help` imports this module for the node names

    values = node_parameters(yaml.safe_load(params_file.read_text()) or {}, node, namespace)
    resolved = {}
    for key in CONFIG_PARAMETERS:
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            resolved[key] = str((params_file.parent / value).resolve())
    return resolved


def param_text(value: Any) -> str:
    """A parameter value as ``-p name:=value`` wants it (YAML: booleans lower-case, '' for empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def ros_command(module: str, name: str | None = None, params: dict[str, Any] | None = None,
                params_file: Path | None = None, namespace: str = "") -> list[str]:
    """``python -m <module> --ros-args`` with a node name, a namespace, a parameters file and single
    parameters."""
    command = [sys.executable, "-m", module, "--ros-args"]
    if name:
        command += ["-r", f"__node:={name}"]
    namespace = normalized_namespace(namespace)
    if namespace:
        command += ["-r", f"__ns:={namespace}"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        command += ["-p", f"{key}:={param_text(value)}"]
    return command


def node_command(node: str, params_file: Path, overrides: dict[str, Any] | None = None,
                 namespace: str = "", overrides_folder: Path | None = None) -> list[str]:
    """The command line of one node. The overrides (absolute config paths, --db, ...) go into a second
    parameters file keyed by the node's full name in ``overrides_folder`` (default: a new temporary
    folder): rcl would let a ``/**/<node>`` key of the first file win over ``-p`` overrides."""
    import tempfile

    import yaml

    namespace = normalized_namespace(namespace)
    params = {**resolve_paths(params_file, node, namespace), **(overrides or {})}
    command = ros_command(NODES[node], node, None, params_file, namespace)
    if params:
        folder = overrides_folder or Path(tempfile.mkdtemp(prefix="robomem-ros-"))
        extra = folder / f"{node}.overrides.yaml"
        extra.write_text(yaml.safe_dump({f"{namespace}/{node}": {"ros__parameters": params}}))
        command += ["--params-file", str(extra)]
    return command


class _Stop(Exception):
    """SIGTERM/SIGINT arrived: stop the nodes."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(params_file: Path, nodes: list[str], overrides: dict[str, Any] | None = None, namespace: str = "",
        memory_overrides: dict[str, Any] | None = None, keystore: Path | None = None) -> int:
    """Run ``nodes`` until SIGINT/SIGTERM or until one of them exits; returns the first non-zero exit
    code (0 after a signal, when every node stopped cleanly). ``memory_overrides``: parameters only the
    memory node gets (db_path). ``keystore``: DDS security enforced, each node in its enclave
    (robomem.ros.security; raises SecurityUnavailable when Fast DDS lacks the plugins)."""
    if keystore is not None:
        from robomem.ros.security import node_environment, require_security_support

        require_security_support()
    import tempfile

    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen] = {}
    folder = tempfile.TemporaryDirectory(prefix="robomem-ros-")
    code = 0
    try:
        for name in nodes:
            params = {**(overrides or {}), **((memory_overrides or {}) if name == "memory" else {})}
            command = node_command(name, params_file, params, namespace, Path(folder.name))
            env = {**os.environ, **node_environment(keystore, name)} if keystore is not None else None
            processes[name] = subprocess.Popen(command, preexec_fn=die_with_parent, env=env)
        where = f" in {normalized_namespace(namespace)}" if normalized_namespace(namespace) else ""
        print(f"robomem: started {', '.join(nodes)}{where} (pid {os.getpid()}; Ctrl-C or SIGTERM stops)",
              flush=True)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.2)
        code = next(p.returncode for p in processes.values() if p.poll() is not None)
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        # further signals must not interrupt the stopping itself (systemd may send SIGTERM twice)
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        stop_processes(processes.values())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes.values():
            code = code or (process.returncode if process.returncode and process.returncode > 0 else 0)
        folder.cleanup()
    return code
