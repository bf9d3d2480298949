"""Start robomem's node set from the same YAML as launch/robomem.launch.py, without ``ros2 launch``.

Each node runs in its own process (``python -m robomem.ros.<node> --ros-args --params-file ...``), as
launch would run it. Ctrl-C (SIGINT) stops them all cleanly; if one exits, the others are stopped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

NODES = {"memory": "robomem.ros.memory_node", "perception": "robomem.ros.perception_node"}
PATH_PARAMETERS = ("config_file", "db_path")


def default_params_file() -> Path:
    """config/robomem.yaml of a source checkout, else the installed copy under <prefix>/share/robomem."""
    source = Path(__file__).resolve().parents[2] / "config" / "robomem.yaml"
    return source if source.exists() else Path(sys.prefix) / "share" / "robomem" / "config" / "robomem.yaml"


def resolve_paths(params_file: Path, node: str) -> dict[str, str]:
    """Path parameters of ``node`` made absolute against the parameters file's folder."""
    document = yaml.safe_load(params_file.read_text()) or {}
    values = (document.get(node) or {}).get("ros__parameters") or {}
    resolved = {}
    for key in PATH_PARAMETERS:
        value = values.get(key)
        if isinstance(value, str) and value and value != ":memory:" and not Path(value).is_absolute():
            resolved[key] = str((params_file.parent / value).resolve())
    return resolved


def node_command(node: str, params_file: Path, overrides: dict[str, str] | None = None) -> list[str]:
    command = [sys.executable, "-m", NODES[node], "--ros-args", "-r", f"__node:={node}",
               "--params-file", str(params_file)]
    for key, value in {**resolve_paths(params_file, node), **(overrides or {})}.items():
        command += ["-p", f"{key}:={value}"]
    return command


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
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            code = code or (process.returncode if process.returncode and process.returncode > 0 else 0)
    return code
