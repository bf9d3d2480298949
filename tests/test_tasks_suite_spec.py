"""The named suites: every RoomR room index of train and val, never the held-out 26-30; jobs that give a
house's tasks alone as in the whole suite; success rates with their Wilson intervals."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pybullet")

from robomem_sim.house import TRAIN_INDICES, VAL_INDICES, house_room_types, split_of  # noqa: E402
from robomem_sim.house_tasks import SUITE_HOUSES, SUITES, named_jobs, suite_jobs  # noqa: E402
from robomem_sim.runner import aggregate, wilson  # noqa: E402


def test_held_out_rooms_are_never_a_house() -> None:
    for index in range(26, 31):
        with pytest.raises(ValueError, match="held out"):
            split_of(index)
    assert split_of(1) == split_of(20) == "train" and split_of(21) == split_of(25) == "val"
    jobs = named_jobs("full")
    assert {j.index for j in jobs} == set(TRAIN_INDICES) | set(VAL_INDICES) == set(range(1, 26))
    assert {j.index for j in named_jobs("demo")} == set(SUITE_HOUSES) <= set(VAL_INDICES)
    with pytest.raises(ValueError, match="unknown suite"):
        named_jobs("test")


def test_the_benchmark_suite_is_big_and_the_demo_small() -> None:
    full = named_jobs("full")
    planned = sum(j.per_house for j in full)
    assert planned >= 150 and sum(j.per_house for j in named_jobs("demo")) <= 30
    val = [j for j in full if j.index in VAL_INDICES]
    assert all(sum(1 for j in val if j.index == i) == SUITES["val"].arrangements >= 2 for i in VAL_INDICES)
    # several histories of one house are different draws
    first = [j for j in val if j.index == 21]
    assert len({(j.setup_seed, j.tasks_seed) for j in first}) == len(first)


def test_jobs_draw_the_seeds_in_the_suites_order() -> None:
    """A job alone gets the seeds it gets in the whole suite (so a worker process builds the same tasks):
    the suite of its first houses is a prefix of the suite of all of them."""
    whole = suite_jobs(0, (21, 23, 25), arrangements=2)
    assert suite_jobs(0, (21,), arrangements=2) == whole[:2]
    assert whole[0].arrangement == 0 and whole[1].arrangement == 1 and whole[2].index == 23
    assert suite_jobs(1, (21,))[0] != whole[0]


def test_wilson_interval_matches_the_formula() -> None:
    z = 1.959963984540054
    for k, n in ((9, 10), (0, 7), (24, 24), (17, 40)):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        lo, hi = wilson(k, n)
        assert math.isclose(lo, max(0.0, centre - half), abs_tol=1e-4) and math.isclose(hi, min(1.0, centre + half),
                                                                                       abs_tol=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_aggregate_reports_categories_with_intervals_and_driving_against_the_oracle() -> None:
    runs = []
    for k in range(10):
        for mode, ok, nav in (("off", k < 3, 30.0), ("full", k < 9, 12.0)):
            runs.append({"task": f"t{k}", "mode": mode, "kind": "simple", "category": "seen" if k < 6 else "hidden",
                         "success": ok, "nav_m": nav, "oracle_nav_m": 10.0, "nav_steps": 0, "explore_steps": 1,
                         "skill_calls": 1, "memory_queries": 1, "frames": 1, "wall_s": 1.0})
    summary = aggregate(runs, ("off", "full"))
    full = summary["full"]["success_by_category"]
    assert (full["seen"]["successes"], full["seen"]["n"]) == (6, 6)
    assert (full["hidden"]["successes"], full["hidden"]["n"]) == (3, 4)
    assert full["hidden"]["ci95"] == wilson(3, 4) and summary["full"]["success_ci95"] == wilson(9, 10)
    assert math.isclose(summary["ratios"]["full/oracle nav_m"], 1.2)  # 12 m against the oracle's 10 m
    assert math.isclose(summary["ratios"]["off/oracle nav_m"], 3.0)


@pytest.mark.slow
@pytest.mark.data("thor")
def test_every_room_index_has_a_house() -> None:
    """Houses of every train and val index: four rooms, or three where one room has no wall free for a
    doorway (then that room is left out, the others kept)."""
    for index in (*TRAIN_INDICES, *VAL_INDICES):
        types = house_room_types(index)
        assert len(types) >= 3, index
        assert types[0] == ("kitchen", 0) or ("kitchen", 0) not in types
    assert len(house_room_types(21)) == 4 and len(house_room_types(22)) == 3
