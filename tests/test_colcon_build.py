"""A ROS user's path: the repository as one package in a colcon workspace, built with colcon (from
PyPI here), then the installed node started from the install space and asked over DDS."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ros_helpers import require_ros

require_ros()

from ros_helpers import ISOLATION, call  # noqa: E402

from robomem import srv  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
COLCON = VENV_BIN / "colcon"
SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"

pytestmark = [pytest.mark.ros, pytest.mark.slow,
              pytest.mark.skipif(not COLCON.exists(), reason="colcon is installed by scripts/setup.sh")]


def build_env() -> dict[str, str]:
    """What a user of the PyPI ROS 2 wheels sets: the venv first on PATH, its prefix as the underlay."""
    prefix = str(VENV_BIN.parent)
    return {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "VIRTUAL_ENV": prefix,
            "AMENT_PREFIX_PATH": prefix}


#: A workspace kept between runs (``$ROBOMEM_COLCON_WS``, e.g. for scripts/flake_check.py): its build/ stays,
#: so a rebuild compiles only what changed; src/ and install/ are made afresh every run. Unset (CI, the
#: README's test command): a clean workspace in a temporary folder.
KEPT_WORKSPACE = os.environ.get("ROBOMEM_COLCON_WS")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    if KEPT_WORKSPACE:
        ws = Path(KEPT_WORKSPACE)
        for fresh in ("src", "install"):
            shutil.rmtree(ws / fresh, ignore_errors=True)
    else:
        ws = tmp_path_factory.mktemp("colcon_ws")
    source = ws / "src" / "robomem"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    result = subprocess.run([str(COLCON), "build", "--cmake-args", "-DBUILD_TESTING=OFF"], cwd=ws,
                            env=build_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return ws


def in_install_space(ws: Path, command: str) -> list[str]:
    return ["sh", "-c", f". {ws}/install/setup.sh && exec {command}"]


def test_colcon_installs_interfaces_nodes_launch_and_config(workspace):
    share = workspace / "install/robomem/share/robomem"
    assert {p.name for p in (share / "msg").glob("*.msg")} == {p.name for p in (REPO / "msg").glob("*.msg")}
    assert {p.name for p in (share / "srv").glob("*.srv")} == {p.name for p in (REPO / "msg/srv").glob("*.srv")}
    assert {p.name for p in (share / "action").glob("*.action")} == {
        p.name for p in (REPO / "msg/action").glob("*.action")} == {"ExecuteInstruction.action", "ExecuteSkill.action"}
    assert (share / "launch/robomem.launch.py").is_file() and (share / "config/robomem.yaml").is_file()
    index = workspace / "install/robomem/share/ament_index/resource_index"
    assert (index / "packages/robomem").exists() and (index / "rosidl_interfaces/robomem").exists()
    executables = {p.name for p in (workspace / "install/robomem/lib/robomem").iterdir() if os.access(p, os.X_OK)}
    launch = ast.parse((share / "launch/robomem.launch.py").read_text())
    named = {
        kw.value.value for node in ast.walk(launch) if isinstance(node, ast.Call)
        for kw in node.keywords if kw.arg in ("executable", "name") and isinstance(kw.value, ast.Constant)
    }
    assert {"memory_node", "perception_node", "planner_node"} <= executables
    assert named == {"memory_node", "perception_node", "planner_node", "memory", "perception", "planner"}
    params = yaml.safe_load((share / "config/robomem.yaml").read_text())
    # the launch file's node names own these sections, in any namespace
    assert {"/**/memory", "/**/perception", "/**/planner"} <= set(params)

    script = "import robomem.srv, robomem.action, robomem_sim; print(robomem.__file__, robomem_sim.__file__)"
    probe = subprocess.run(
        in_install_space(workspace, f"{VENV_BIN}/python -c '{script}'"),
        env=build_env(), capture_output=True, text=True, cwd="/", timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    installed = str(workspace / "install/robomem" / SITE)
    assert all(path.startswith(installed) for path in probe.stdout.split()), probe.stdout


def test_installed_memory_node_serves_over_dds(workspace, ros, tmp_path):
    executable = workspace / "install/robomem/lib/robomem/memory_node"
    db = tmp_path / "installed.sqlite"
    env = {**build_env(), **ISOLATION}
    process = subprocess.Popen(
        in_install_space(workspace, f"{executable} --ros-args -r __node:=installed_memory -p db_path:={db}"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        stats = call(ros, srv.GetStats, "/installed_memory/get_stats", srv.GetStats.Request(), timeout=20)
        assert stats.objects_believed == 0
        answer = call(ros, srv.WhereIs, "/installed_memory/where_is", srv.WhereIs.Request(label="Mug"))
        assert not answer.found and answer.status == srv.WhereIs.Response.STATUS_NOT_FOUND
    finally:
        process.send_signal(2)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output
    assert db.exists()
