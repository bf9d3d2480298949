"""The sim's eyes give honest views for negative evidence: no farther than the head's vertical field of view
shows tables and counters, none when it looks up, and per bearing sector no farther than that sector sees
(a wall hides what is behind it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pybullet")

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.types import Detection, ObservationBatch  # noqa: E402
from robomem_sim.house import House, build_house  # noqa: E402
from robomem_sim.house_runner import WALK_CAMERA  # noqa: E402
from robomem_sim.house_tasks import start_robot  # noqa: E402
from robomem_sim.perceive import VIEW_SECTORS, Eyes, MemoryFeed, vertical_reach  # noqa: E402

pytestmark = [pytest.mark.data("thor"), pytest.mark.slow]  # a house is built (8 s)


@pytest.fixture(scope="module")
def house() -> House:
    h = build_house(21)
    yield h
    h.close()


def test_view_reaches_only_as_far_as_the_tilted_head_sees(house: House) -> None:
    robot = start_robot(house, WALK_CAMERA)
    eyes = Eyes()
    try:
        robot.tilt(30)  # the default tilt: the image's top edge is level, no limit
        frame = robot.observe()
        assert vertical_reach(frame) == np.inf and eyes.perceive(frame).view is not None
        robot.tilt(60)  # looking at a low drawer: a counter a metre away is above the image
        frame = robot.observe()
        view = eyes.perceive(frame).view
        assert view is not None and view.range_m == pytest.approx(vertical_reach(frame)) and view.range_m < 0.6
        robot.tilt(-10)  # looking up at a wall cabinet: the counter under it is below the image
        assert eyes.perceive(robot.observe()).view is None
    finally:
        house.client.removeBody(robot.body)


def test_sector_views_split_the_detections_and_stop_at_walls(house: House) -> None:
    robot = start_robot(house, WALK_CAMERA)
    eyes = Eyes()
    try:
        robot.rotate(-90)  # in the hallway, facing its wall 0.7 m away (a doorway at one side)
        frame = robot.observe()
        whole = eyes.perceive(frame)
        sectors = eyes.perceive_sectors(frame)
        assert len(sectors) == VIEW_SECTORS
        assert sum(len(b.detections) for b in sectors) == len(whole.detections)
        assert all(b.view is not None and b.view.range_m <= whole.view.range_m + 1e-9 for b in sectors)
        ranges = [b.view.range_m for b in sectors]
        assert float(np.median(ranges)) < 1.5 < whole.view.range_m
        assert sum(b.view.fov_deg for b in sectors) == pytest.approx(whole.view.fov_deg)
    finally:
        house.client.removeBody(robot.body)


def test_a_thing_behind_a_wall_is_not_marked_gone(house: House) -> None:
    robot = start_robot(house, WALK_CAMERA)
    memory = Memory(MemoryConfig(rooms=house.rooms_config()))
    eyes = Eyes()
    eyes.feeds.append(MemoryFeed(memory))
    try:
        robot.rotate(-90)
        behind = np.array([robot.pose.x, robot.pose.y - 2.5, 0.8])  # beyond the hallway's wall, straight ahead
        for t in (0.0, 1.0):
            memory.ingest(ObservationBatch(t, "robot", [Detection("Apple", behind, np.full(3, 0.08), 0.9)]))
        assert memory.where_is("Apple") is not None
        house.t = 10.0
        for _ in range(8):
            eyes.see(robot.observe())
            house.t += 5.0
        assert memory.where_is("Apple") is not None
    finally:
        house.client.removeBody(robot.body)
        memory.close()
