"""The README's main job, ``robomem demo``, end to end on one task: the simulated household run with
memory off and full memory (served by the ROS 2 memory node over DDS), its table, report and map.

What the report says succeeded is checked against the simulator's truth: the steps each run says it
carried out are done again by a robot in a fresh copy of the house, from the task's start, and the
task's goal must then hold on the simulator's true state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import require_ros

require_ros()
pytest.importorskip("pybullet")

from ros_helpers import ros_env  # noqa: E402

from robomem_sim.house_tasks import build_house_suite, start_robot  # noqa: E402
from robomem_sim.truth import snapshot  # noqa: E402

ROBOMEM = Path(sys.executable).parent / "robomem"
#: the demo's suite is built house by house from one seed: its first task is the first of its first house
FIRST_HOUSE = 21
STEP = re.compile(r"(\w+)\((\w+)@(-?\d+\.\d+),(-?\d+\.\d+)\)")
FAILED = re.compile(r"\[failed (\w+) (\w+): ")

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.data("roomr", "thor", "text_model")]


def carried_out(plans: list[str]) -> list[tuple[str, str, tuple[float, float]]]:
    """(skill, label, believed x, y) of the plan steps a run reports done: a plan runs in order and
    stops at the step it names as failed."""
    out = []
    for plan in plans:
        failed = FAILED.search(plan)
        for skill, label, x, y in STEP.findall(plan.split("  [failed ")[0]):
            if failed and (skill, label) == failed.groups():
                break
            out.append((skill, label, (float(x), float(y))))
    return out


def goal_after_replay(task, steps: list[tuple[str, str, tuple[float, float]]]) -> bool:
    """Carry the steps out again in a fresh house from the task's start (each object named as memory
    believed it: the present one of that type nearest the believed place); the goal on the truth."""
    with task.setup.build() as house:
        task.setup.after(house)
        robot = start_robot(house)
        for skill, label, xy in steps:
            candidates = [o.object_id for o in house.of_type(label) if o.present]
            assert candidates, f"{skill}({label}): no {label} in the house"
            oid = min(candidates, key=lambda o: float(((house.center(o)[:2] - xy) ** 2).sum()))
            if skill in ("toggle_on", "toggle_off"):
                result = robot.toggle(oid, skill == "toggle_on")
            else:
                result = getattr(robot, skill)(oid)
            assert result.success or result.reason.startswith("already"), (skill, label, result.reason)
        return task.check(snapshot(house))


def test_demo_runs_a_household_task_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([str(ROBOMEM), "demo", "--out", str(out), "--tasks", "1", "--modes", "off,full",
                             "--transport", "ros"], env=ros_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "explore steps" in result.stdout and "report:" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["transport"] == "ros"
    runs = {r["mode"]: r for r in report["runs"]}
    assert sorted(runs) == ["full", "off"] and len(report["runs"]) == 2
    assert len(report["memory_node_startup_s"]) == 1  # the full-memory run had its own memory node

    task = build_house_suite(0, houses=(FIRST_HOUSE,))[0]
    assert {r["task"] for r in runs.values()} == {task.task_id}
    assert {r["instruction"] for r in runs.values()} == {task.instruction}
    for mode, run in runs.items():
        assert report["summary"][mode]["success_rate"] == float(run["success"])
        assert (run["failure"] == "") == run["success"], run["failure"]
        if run["success"]:
            assert goal_after_replay(task, carried_out(run["plans"])), f"{mode}: reported success, goal not met"
    # full memory knew where the cup was this morning: it succeeds, asking memory, without exploring
    full, off = runs["full"], runs["off"]
    assert full["success"], full["failure"]
    assert full["memory_queries"] > 0 and full["frames"] > 0
    assert full["explore_steps"] < off["explore_steps"]
    picture = (out / "map.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 50_000
