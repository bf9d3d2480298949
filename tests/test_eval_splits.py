"""RoomR splits for tuning (train) and reporting (val); held-out rooms never reach a generator."""

import json

import pytest

from robomem.eval.detectors import DETECTORS, episode_config
from robomem.eval.roomr_episodes import build_suite, sample_suite
from robomem.thor.scene import held_out, load_roomr, roomr_split

pytestmark = pytest.mark.data("roomr", "thor")


def test_train_and_val_are_disjoint_rooms_and_hold_nothing_held_out():
    train, val = load_roomr(2022, split="train"), load_roomr(2022, split="val")
    assert len(train) == 80 and len(val) == 20
    assert not set(train) & set(val)
    assert not any(held_out(scene) for scene in [*train, *val])
    assert {int(s.removeprefix("FloorPlan")) % 100 for s in train} == set(range(1, 21))
    with pytest.raises(ValueError, match="split"):
        load_roomr(2022, split="test")


def test_held_out_rooms_are_26_to_30_of_each_type():
    assert [held_out(f"FloorPlan{n}") for n in (25, 26, 30, 31, 226, 330, 421, 430)] == \
        [False, True, True, False, True, True, False, True]


def test_each_room_has_the_split_of_its_index_and_held_out_rooms_none():
    assert [roomr_split(f"FloorPlan{n}") for n in (1, 20, 21, 25, 206, 321, 420)] == \
        ["train", "train", "val", "val", "train", "val", "train"]
    for scene in ("FloorPlan31", "FloorPlan400"):  # no RoomR room of either split
        with pytest.raises(ValueError, match="no RoomR split"):
            roomr_split(scene)


def test_a_train_suite_covers_every_room_type_and_names_its_split(tmp_path):
    picks = sample_suite(2023, 80, 0, split="train")
    assert {int(scene.removeprefix("FloorPlan")) // 100 for scene, _ in picks} == {0, 2, 3, 4}
    rows = build_suite(2023, 2, 0, tmp_path, episode_config("worse"), split="train")
    assert all(row["split"] == "train" and row["name"].startswith("roomr2023train_") for row in rows)
    header = json.loads((tmp_path / rows[0]["episode"]).read_text().splitlines()[0])
    assert "train" in header["source"]


def test_detector_settings_change_the_generator_and_unknown_ones_are_refused():
    worse = episode_config("worse")
    assert worse.false_per_view > episode_config("default").false_per_view
    assert set(DETECTORS) >= {"default", "worse", "clean"}
    with pytest.raises(ValueError, match="unknown detector"):
        episode_config("perfect")
