"""Held by a robot: what pick and place skills report, until the camera confirms or contradicts it."""

import math

import pytest
from frames import det, frame, looking

from robomem.core.config import MemoryConfig
from robomem.core.memory import Memory
from robomem.core.tracks import CONFIRMED, GONE, POSE
from robomem.core.types import RejectedInput

KITCHEN, TABLE = looking(0, 0, yaw=0), looking(0, 0, yaw=180)  # counter A ahead at +x, counter B behind at -x
GRIPPER = (0.3, 0.0, 1.0)
ON_B = (-2.0, 0.0, 0.95)  # on counter B's top (counter tops are 0.9 m high)


def _see(memory, t0, view, *dets, times=3):
    for i in range(times):
        memory.ingest(frame(t0 + i, view, *dets))


def _kitchen(memory):
    """Counter A with a mug on it (t 0-2), counter B behind the camera (t 3-5)."""
    _see(memory, 0, KITCHEN, det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 2.0, 0.1, 0.95))
    _see(memory, 3, TABLE, det("CounterTop", -2.0, 0.0, 0.45))
    mug = next(tr for tr in memory.tracks.values() if tr.label == "Mug")
    counters = {round(float(tr.center[0])): tr for tr in memory.tracks.values() if tr.label == "CounterTop"}
    assert mug.status == CONFIRMED and set(counters) == {2, -2}
    return mug, counters[2], counters[-2]


def test_picked_is_held_by_the_robot_at_its_gripper(memory):
    mug, counter_a, _ = _kitchen(memory)
    info = memory.picked("Mug", "r1", 10.0, GRIPPER)
    assert info.track_id == mug.track_id
    where = memory.where_is("Mug")
    assert (where.receptacle, where.relation, where.receptacle_id) == ("robot:r1", "held", None)
    assert where.center.tolist() == pytest.approx(list(GRIPPER))
    before = memory.where_was("Mug", at=5.0)
    assert (before.receptacle_id, before.relation) == (counter_a.track_id, "on")
    assert ("Mug", "picked_up") in {(c.label, c.change) for c in memory.what_changed(since=5.0)}
    assert [e.change for e in memory.stm.events() if e.track_id == mug.track_id][-1] == "picked_up"


def test_held_object_is_not_missed_where_it_was(memory, tmp_path):
    mug, _, _ = _kitchen(memory)
    memory.picked(mug.track_id, "r1", 10.0)  # no gripper position: it stays where it was
    _see(memory, 11, KITCHEN, det("CounterTop", 2.0, 0.0, 0.45), times=10)  # the old place, empty
    assert mug.status == CONFIRMED and mug.misses_since_hit == 0
    assert memory.where_is("Mug").receptacle == "robot:r1"

    # the same frames without the pick report: the mug is gone (the exemption is what kept it)
    control = Memory(MemoryConfig(db_path=str(tmp_path / "control.sqlite")))
    try:
        control_mug, _, _ = _kitchen(control)
        _see(control, 11, KITCHEN, det("CounterTop", 2.0, 0.0, 0.45), times=10)
        assert control_mug.status == GONE and control.where_is("Mug") is None
    finally:
        control.close()


def test_placed_is_at_the_reported_spot_on_the_reported_receptacle(memory):
    mug, _, counter_b = _kitchen(memory)
    memory.picked("Mug", "r1", 10.0, GRIPPER)
    placements = len(mug.history(POSE))
    memory.placed("Mug", ON_B, "CounterTop", 12.0)  # the counter nearest the spot: B
    where = memory.where_is("Mug")
    assert where.center.tolist() == pytest.approx(list(ON_B))
    assert (where.receptacle, where.receptacle_id, where.relation) == ("CounterTop", counter_b.track_id, "on")
    assert len(mug.history(POSE)) == placements + 1
    assert memory.where_was("Mug", at=11.0).receptacle == "robot:r1"
    moved = [c for c in memory.what_changed(since=5.0) if c.change == "moved"]
    assert len(moved) == 1 and moved[0].after.tolist() == pytest.approx(list(ON_B))


def test_a_frame_showing_it_there_confirms_the_placement(memory):
    mug, _, counter_b = _kitchen(memory)
    memory.picked("Mug", "r1", 10.0, GRIPPER)
    memory.placed(mug.track_id, ON_B, counter_b.track_id, 12.0)
    hits = mug.hits
    _see(memory, 13, TABLE, det("CounterTop", -2.0, 0.0, 0.45), det("Mug", -2.02, 0.01, 0.95), times=3)
    assert mug.hits == hits + 3 and mug.status == CONFIRMED
    assert sum(tr.label == "Mug" for tr in memory.tracks.values()) == 1  # the same track, not a new mug
    where = memory.where_is("Mug")
    assert (where.receptacle_id, where.relation) == (counter_b.track_id, "on")
    assert abs(where.center[0] + 2.0) < 0.05


def test_frames_not_showing_it_there_make_it_missing_as_usual(memory):
    mug, _, _ = _kitchen(memory)
    memory.picked("Mug", "r1", 10.0, GRIPPER)
    memory.placed("Mug", ON_B, "CounterTop", 12.0)
    memory.ingest(frame(13, TABLE, det("CounterTop", -2.0, 0.0, 0.45)))
    assert mug.misses_since_hit == 1  # no longer exempt: the place in view, no mug
    _see(memory, 14, TABLE, det("CounterTop", -2.0, 0.0, 0.45), times=10)
    assert mug.status == GONE and memory.where_is("Mug") is None


def test_held_survives_a_restart(tmp_path):
    path = str(tmp_path / "memory.sqlite")
    memory = Memory(MemoryConfig(db_path=path))
    mug, _, _ = _kitchen(memory)
    memory.picked("Mug", "r1", 10.0, GRIPPER)
    memory.close()
    reopened = Memory(MemoryConfig(db_path=path))
    try:
        assert reopened.where_is("Mug").receptacle == "robot:r1"
        _see(reopened, 11, KITCHEN, det("CounterTop", 2.0, 0.0, 0.45), times=10)
        assert reopened.tracks[mug.track_id].status == CONFIRMED
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda m, mug: m.picked(999, "r1", 10.0), "unknown_track"),
        (lambda m, mug: m.picked("Toaster", "r1", 10.0), "unknown_track"),
        (lambda m, mug: m.picked(mug, "r1", 10.0, (math.nan, 0.0, 1.0)), "non_finite"),
        (lambda m, mug: m.picked(mug, "r1", math.nan), "non_finite"),
        (lambda m, mug: m.picked(mug, "", 10.0), "bad_label"),
        (lambda m, mug: m.placed(mug, (math.nan, 0.0, 0.95), "CounterTop", 12.0), "non_finite"),
        (lambda m, mug: m.placed(mug, (1e6, 0.0, 0.95), "CounterTop", 12.0), "out_of_bounds"),
        (lambda m, mug: m.placed(mug, ON_B, "Sofa", 12.0), "unknown_receptacle"),
        (lambda m, mug: m.placed(mug, ON_B, mug, 12.0), "unknown_receptacle"),
        (lambda m, mug: m.placed(mug, ON_B, "CounterTop", 1.0e9), "clock_jump"),
    ],
)
def test_bad_reports_are_refused_counted_and_change_nothing(memory, call, reason):
    mug, _, _ = _kitchen(memory)
    before = (mug.status, mug.center.tolist(), {p: len(h) for p, h in mug.histories.items()}, memory.now)
    with pytest.raises(RejectedInput) as refused:
        call(memory, mug.track_id)
    assert refused.value.reason == reason
    assert memory.stats()["counters"][f"rejected.{reason}"] == 1
    assert (mug.status, mug.center.tolist(), {p: len(h) for p, h in mug.histories.items()}, memory.now) == before
