"""Start robomem's node set from the same YAML as launch/robomem.launch.py, without ``ros2 launch``.

Each node runs in its own process (``python -m robomem.ros.<node> --ros-args --params-file ...``), as
launch would run it. Ctrl-C (SIGINT) stops them all cleanly; if one exits, the others are stopped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NODES = {"memory": "robomem.ros.memory_node", "perception": "robomem.ros.perception_node",
         "planner": "robomem.ros.planner_node"}
PATH_PARAMETERS = ("config_file", "db_path")



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

def default_params_file() -> Path:
    """config/robomem.yaml of a source checkout, else the installed copy under <prefix>/share/robomem."""
    source = Path(__file__).resolve().parents[2] / "config" / "robomem.yaml"
    return source if source.exists() else Path(sys.prefix) / "share" / "robomem" / "config" / "robomem.yaml"


def resolve_paths(params_file: Path, node: str) -> dict[str, str]:
    """Path parameters of ``node`` made absolute against the parameters file's folder."""
    import yaml  # here: `robomem --help` imports this module for the node names

    document = yaml.safe_load(params_file.read_text()) or {}
    values = (document.get(node) or {}).get("ros__parameters") or {}
    resolved = {}
    for key in PATH_PARAMETERS:
        value = values.get(key)
        if isinstance(value, str) and value and value != ":memory:" and not Path(value).is_absolute():
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
                params_file: Path | None = None) -> list[str]:
    """``python -m <module> --ros-args`` with a node name, a parameters file and single parameters."""
    command = [sys.executable, "-m", module, "--ros-args"]
    if name:
        command += ["-r", f"__node:={name}"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        command += ["-p", f"{key}:={param_text(value)}"]
    return command


def node_command(node: str, params_file: Path, overrides: dict[str, str] | None = None) -> list[str]:
    params = {**resolve_paths(params_file, node), **(overrides or {})}
    return ros_command(NODES[node], node, params, params_file)


def run(params_file: Path, nodes: list[str], overrides: dict[str, str] | None = None) -> int:
    """Run ``nodes`` until Ctrl-C or until one of them exits; returns the first non-zero exit code."""
    processes = {name: subprocess.Popen(node_command(name, params_file, overrides)) for name in nodes}
    print(f"robomem: started {', '.join(nodes)} (Ctrl-C stops)", flush=True)
    code = 0
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.2)
        code = next(p.returncode for p in processes.values() if p.poll() is not None)
    except KeyboardInterrupt:
        pass
    finally:
        stop_processes(processes.values())
        for process in processes.values():
            code = code or (process.returncode if process.returncode and process.returncode > 0 else 0)
    return code
