"""The README's main job, ``robomem demo``, end to end on one task: the simulated household run with
memory off and full memory (served by the ROS 2 memory node over DDS), its table, report and map."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ros_helpers import ros_env

ROBOMEM = Path(sys.executable).parent / "robomem"


def test_demo_runs_a_household_task_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([str(ROBOMEM), "demo", "--out", str(out), "--tasks", "1", "--modes", "off,full",
                             "--transport", "ros"], env=ros_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "explore steps" in result.stdout and "report:" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["transport"] == "ros"
    runs = report["runs"]
    assert sorted(r["mode"] for r in runs) == ["full", "off"]
    assert len(report["memory_node_startup_s"]) == 1  # the full-memory run had its own memory node
    for mode in ("off", "full"):
        mine = [r for r in runs if r["mode"] == mode]
        assert report["summary"][mode]["success_rate"] == sum(r["success"] for r in mine) / len(mine)
        assert report["summary"][mode]["mean_explore_steps"] == sum(r["explore_steps"] for r in mine) / len(mine)
    full = next(r for r in runs if r["mode"] == "full")
    assert full["memory_queries"] > 0 and full["frames"] > 0
    picture = (out / "map.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 50_000
