"""Task suite v2 in houses: size, mix, and every goal false in the after-state but met by its oracle."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("pybullet")

from robomem.planner import Budget  # noqa: E402
from robomem_sim.house_tasks import build_house_suite, start_robot  # noqa: E402
from robomem_sim.runner import DEFAULT_BUDGET  # noqa: E402
from robomem_sim.tasks import run_oracle  # noqa: E402
from robomem_sim.truth import snapshot  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.data("roomr", "thor")]


@pytest.fixture(scope="module")
def suite():
    return build_house_suite()


def test_suite_size_and_mix(suite) -> None:
    assert len(suite) >= 24 and len({t.scene for t in suite}) >= 3
    kinds, cats = Counter(t.kind for t in suite), Counter(t.category for t in suite)
    assert set(kinds) == {"simple", "composite", "complex"}
    assert {"seen", "hidden", "moved", "cross_room", "history"} <= set(cats)
    assert cats["seen"] + cats["hidden"] > len(suite) / 2  # most targets are where the robot saw them


def test_goals_false_after_and_true_after_the_oracle(suite) -> None:
    house_tasks = [t for t in suite if t.scene == suite[0].scene]
    with house_tasks[0].setup.build() as house:
        setup = house_tasks[0].setup
        setup.morning(house)
        morning = snapshot(house)
        for task in house_tasks:
            setup.after(house)
            after = snapshot(house)
            assert not task.check(after), task.task_id
            for oid in task.moved:  # moved while the robot was away: elsewhere than this morning
                assert np.linalg.norm(after.objects[oid].center - morning.objects[oid].center) > 0.05
            if task.category == "hidden":  # stored inside a closed drawer / cabinet / fridge
                oid = task.targets[0]
                assert any(after.objects[r].is_open is False and after.relation(oid, r) == "inside"
                           for r in after.objects[oid].receptacles)
            robot = start_robot(house)
            assert run_oracle(house, robot, task.oracle) and task.check(snapshot(house)), task.task_id
            assert robot.nav_distance_m <= DEFAULT_BUDGET.max_nav_m, task.task_id  # a fair task
            house.client.removeBody(robot.body)
        cross = [(o, r) for o, r in setup.moves]
        setup.after(house)
        truth = snapshot(house)
        for oid, rec in cross:  # carried to another room
            assert house.room_at(truth.objects[oid].center) == house.room_at(truth.objects[rec].center)
            assert house.room_at(morning.objects[oid].center) != house.room_at(truth.objects[oid].center)


def test_tasks_whose_oracle_exceeds_the_budget_are_left_out() -> None:
    budget = Budget(max_skill_calls=40, max_nav_m=20.0)  # tighter than some of House23's oracles need
    tasks = build_house_suite(0, houses=(23,), budget=budget)
    assert len(tasks) >= 6
    with tasks[0].setup.build() as house:
        for task in tasks:
            task.setup.after(house)
            robot = start_robot(house)
            assert run_oracle(house, robot, task.oracle), task.task_id
            assert robot.nav_distance_m <= budget.max_nav_m, (task.task_id, robot.nav_distance_m)
            house.client.removeBody(robot.body)
