"""Bad input gets a clear error and a counter, and never corrupts memory."""

import math

import numpy as np
import pytest
from frames import det, frame, looking

from robomem.core.types import Detection, ObservationBatch, RejectedInput, ViewCone, make_detection, make_view


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"label": "Mug", "center": (math.nan, 0, 0)}, "non_finite"),
        ({"label": "Mug", "center": (1, 2)}, "malformed"),
        ({"label": "Mug", "center": ("a", 0, 0)}, "malformed"),
        ({"label": "", "center": (0, 0, 0)}, "bad_label"),
        ({"label": 7, "center": (0, 0, 0)}, "bad_label"),
        ({"label": "Mug", "center": (0, 0, 0), "confidence": 1.5}, "bad_confidence"),
        ({"label": "Mug", "center": (0, 0, 0), "size": (1e6, 1, 1)}, "bad_size"),
        ({"label": "Mug", "center": (0, 0, 0), "state": {"open": [1]}}, "malformed"),
        ({"label": "Mug", "center": (0, 0, 0), "embedding": [math.inf]}, "bad_embedding"),
    ],
)
def test_detection_validation(kwargs, reason):
    with pytest.raises(RejectedInput) as info:
        make_detection(**kwargs)
    assert info.value.reason == reason


def test_view_validation():
    with pytest.raises(RejectedInput, match="non_finite"):
        make_view((0, 0, 0), math.nan, 90, 4)
    with pytest.raises(RejectedInput, match="bad_view"):
        make_view((0, 0, 0), 0, 0, 4)


def test_oversized_and_non_finite_batches_are_refused_and_counted(memory):
    view = looking(0, 0)
    for t in range(3):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    before = memory.where_is("Mug").to_dict()
    too_many = [det("Apple", 2, 0.01 * i) for i in range(memory.config.max_detections_per_batch + 1)]
    with pytest.raises(RejectedInput, match="oversized"):
        memory.ingest(frame(5, view, *too_many))
    with pytest.raises(RejectedInput, match="non_finite"):
        memory.ingest(ObservationBatch(math.nan, "r1", [], view))
    assert memory.counters["rejected.oversized"] == 1
    assert memory.counters["rejected.non_finite"] == 1
    assert memory.where_is("Mug").to_dict() == before
    assert memory.count("Apple") == 0
    memory.flush()
    reasons = dict(memory.store.execute("SELECT reason, COUNT(*) FROM rejects GROUP BY reason"))
    assert reasons == {"oversized": 1, "non_finite": 1}


def test_late_batches_are_refused_and_do_not_rewrite_history(memory):
    view = looking(0, 0)
    for t in (10, 11, 12):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    with pytest.raises(RejectedInput) as error:
        memory.ingest(frame(5, view, det("Mug", 2, 0)))  # arrives late (another robot's clock)
    assert error.value.reason == "late" and "behind memory's clock" in error.value.detail
    assert memory.counters["rejected.late"] == 1
    assert memory.where_was("Mug", at=9.0) is None
    assert memory.last_seen("Mug") == 12
    assert memory.now == 12, "memory's clock is not moved"


# ------------------------------------------------------------------ issue 15: inputs that broke memory for good
def _mug_memory(memory, t0=0.0):
    for k in range(3):
        memory.ingest(frame(t0 + k, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
    return memory


def test_an_object_unseen_for_days_then_missed_is_gone_and_later_frames_work(memory):
    """Issue 15, input 1: math.log(0) in the gone threshold after ~37 h unseen."""
    _mug_memory(memory)
    weekend = 60 * 3600.0
    for k in range(6):  # back after the weekend: the counter is there, the mug is not
        memory.ingest(frame(weekend + k, looking(0, 0), det("CounterTop", 2, 0, 0.45)))
    assert memory.where_is("Mug") is None, "missed after a long absence: gone"
    memory.ingest(frame(weekend + 10, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Apple", 2.2, 0.3, 0.95)))
    memory.ingest(frame(weekend + 11, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Apple", 2.2, 0.3, 0.95)))
    assert memory.count("Apple") == 1


@pytest.mark.parametrize("value", [1e300, -1e7, 500.0])
def test_absurd_coordinates_never_reach_an_index_or_the_file(tmp_path, value):
    """Issue 15, input 2: a finite but absurd coordinate was stored and broke the KD-tree later."""
    from robomem.core import Memory, MemoryConfig

    path = str(tmp_path / "m.sqlite")
    memory = _mug_memory(Memory(MemoryConfig(db_path=path, map_extent_m=100.0)))
    before = memory.where_is("Mug").to_dict()
    if abs(value) > 1e4:  # beyond any map: the type refuses it where it is built ...
        with pytest.raises(RejectedInput, match="out_of_bounds"):
            make_detection("Mug", (value, 0.0, 1.0))
        far = Detection.__new__(Detection)  # ... so forge one, as a foreign builder might, bypassing validation
        far.label, far.center, far.size, far.confidence, far.state, far.embedding = (
            "Mug", np.array([value, 0.0, 1.0]), np.array([0.1, 0.1, 0.1]), 0.9, {}, None)
    else:  # a sound number, outside this memory's configured map extent
        far = make_detection("Mug", (value, 0.0, 1.0))
    for t in range(5, 300):  # enough new tracks to rebuild every KD-tree several times
        memory.ingest(frame(t, looking(0, 0), far, det(f"Thing{t % 97}", 1.0 + (t % 7) * 0.4, -1 + (t % 5) * 0.4)))
    assert memory.counters["rejected.out_of_bounds"] == 295
    assert memory.where_is("Mug").to_dict() == {**before, "last_seen": before["last_seen"]}
    memory.close()
    import sqlite3

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM observations WHERE abs(x) > 100").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM tracks WHERE abs(cx) > 100").fetchone()[0] == 0


def test_a_view_with_nan_yaw_or_position_cannot_be_built_and_a_stored_one_is_skipped(tmp_path):
    """Issue 15, input 3: a NaN view was logged and stored (NULL), then broke every new track after a restart."""
    import sqlite3

    from robomem.core import Memory, MemoryConfig

    for fields in (((0, 0, 1.5), math.nan, 90, 4), ((math.nan, 0, 1.5), 0, 90, 4)):
        with pytest.raises(RejectedInput, match="non_finite"):
            ViewCone(*fields)
    path = str(tmp_path / "m.sqlite")
    _mug_memory(Memory(MemoryConfig(db_path=path))).close()
    with sqlite3.connect(path) as db:  # what an older robomem wrote: NaN became NULL
        db.execute("INSERT INTO views (t, robot, x, y, z, yaw_deg, fov_deg, range_m) "
                   "VALUES (2.5, 'r1', NULL, 0, 1.5, NULL, 90, 4)")
        db.execute("INSERT INTO tracks (track_id, label, status, first_seen, last_seen, cx, cy, cz, sx, sy, sz) "
                   "VALUES (99, 'Ghost', 'confirmed', 1, 1, NULL, 0, 1, 0.1, 0.1, 0.1)")
        db.execute("INSERT INTO facts VALUES (9999, 99, 'status', '\"confirmed\"', 1, NULL)")
    reopened = Memory(MemoryConfig(db_path=path))
    assert reopened.counters["rejected.stored_view"] == 1
    assert reopened.counters["loaded.skipped_track.non_finite"] == 1
    assert reopened.counters["loaded.skipped_fact"] == 1
    assert reopened.count("Ghost") == 0
    for t in range(10, 13):  # tracks are created again after reopening
        reopened.ingest(frame(t, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Apple", 2.2, 0.3, 0.95)))
    assert reopened.count("Apple") == 1
    reopened.close()


def test_a_batch_stamped_in_2038_is_refused_and_the_clock_stays(tmp_path):
    """Issue 15, input 4: one batch stamped in 2038 moved memory's clock there for good."""
    import time

    from robomem.core import Memory, MemoryConfig

    path = str(tmp_path / "m.sqlite")
    memory = Memory(MemoryConfig(db_path=path))
    now = time.time()
    _mug_memory(memory, now - 10)
    with pytest.raises(RejectedInput) as error:
        memory.ingest(frame(2.15e9, looking(0, 0), det("Mug", 2, 0, 0.95)))
    assert error.value.reason == "future_stamp"
    assert memory.now == pytest.approx(now - 8)
    memory.ingest(frame(now - 5, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
    assert memory.where_is("Mug").last_seen == pytest.approx(now - 5)
    memory.close()
    reopened = Memory(MemoryConfig(db_path=path))
    assert reopened.now == pytest.approx(now - 5), "also after a restart"
    assert reopened.counters["rejected.future_stamp"] == 1
    reopened.close()


def test_a_simulated_clock_cannot_jump_days_in_one_batch(memory):
    _mug_memory(memory)
    with pytest.raises(RejectedInput, match="clock_jump"):
        memory.ingest(frame(1e9, looking(0, 0), det("Mug", 2, 0, 0.95)))
    assert memory.now == 2


def test_stale_negative_and_replayed_frames_change_nothing(memory):
    """Issue 15, input 4: stale frames were clamped to 'now': a second Mug, a refreshed last_seen."""
    view = looking(0, 0)
    for t in range(1, 4):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    for t in range(20, 24):
        memory.ingest(frame(t, view, det("Mug", 1.0, -1.5)))
    for stale_t in (2.5, 3.5, -5.0):
        with pytest.raises(RejectedInput, match="late"):
            memory.ingest(frame(stale_t, view, det("Mug", 2, 0)))
    assert memory.count("Mug") == 1
    assert np.allclose(memory.where_is("Mug").center[:2], [1.0, -1.5], atol=0.05)
    assert memory.last_seen("Mug") == 23
    replay = frame(23, view, det("Mug", 1.0, -1.5))  # the same robot, stamp and frame again
    hits = memory.where_is("Mug").track_id, memory.tracks[memory.where_is("Mug").track_id].hits
    assert memory.ingest(replay) == []
    assert memory.counters["duplicate_batches"] == 1
    assert memory.tracks[hits[0]].hits == hits[1], "a repeated batch is not taken"
    other_camera = frame(23, looking(0, 0, yaw=90), det("Apple", 0.0, 2.0))  # another frame at that stamp
    memory.ingest(other_camera)
    assert memory.counters["duplicate_batches"] == 1
    assert len([t for t in memory.tracks.values() if t.label == "Apple"]) == 1, "a different frame is taken"
    numbered = frame(24, view, det("Mug", 1.0, -1.5))
    numbered.sequence = 7
    memory.ingest(numbered)
    again = frame(24.5, view, det("Mug", 1.0, -1.5))
    again.sequence = 7  # the same sequence number: the same batch, sent twice
    assert memory.ingest(again) == []
    assert memory.counters["duplicate_batches"] == 2
    assert memory.last_seen("Mug") == 24


def test_a_frame_slightly_behind_the_clock_is_taken_as_of_the_clock_and_counted(tmp_path):
    import sqlite3

    from robomem.core import Memory, MemoryConfig

    path = str(tmp_path / "m.sqlite")
    memory = Memory(MemoryConfig(db_path=path))
    view = looking(0, 0)
    memory.ingest(frame(10.0, view, det("Mug", 2, 0), robot="r1"))
    memory.ingest(frame(9.7, view, det("Mug", 2, 0), robot="r2"))  # another robot, 0.3 s clock skew
    assert memory.counters["late_within_tolerance"] == 1
    assert memory.count("Mug") == 1 and memory.now == 10.0
    memory.close()
    with sqlite3.connect(path) as db:  # the sighting keeps its own stamp
        assert sorted(r[0] for r in db.execute("SELECT t FROM observations")) == [9.7, 10.0]


def test_an_embedding_of_another_length_is_dropped_before_anything_is_applied(memory):
    """Issue 15, input 5: 8 values then 4 raised inside ingest with the batch half applied."""
    view = looking(0, 0)
    for t in range(2):
        memory.ingest(frame(t, view, make_detection("Mug", (2, 0, 1), embedding=np.ones(8))))
    short = make_detection("Mug", (2, 0, 1), embedding=np.ones(4))
    memory.ingest(frame(2, None, short, make_detection("Apple", (2, 0.5, 1), embedding=-np.ones(8))))
    assert memory.counters["rejected.bad_embedding"] == 1
    assert memory.tracks[1].hits == 2, "the mug did not take the short embedding"
    assert len([t for t in memory.tracks.values() if t.label == "Apple"]) == 1, "the rest of the batch is taken"
    found = memory.search_by_embedding(np.ones(8), k=1)
    assert found and found[0][0].label == "Mug"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"confidence": "0.9"}, "malformed"),
        ({"confidence": True}, "malformed"),
        ({"label": "M" * 10_000}, "bad_label"),
        ({"center": (1e5, 0, 0)}, "out_of_bounds"),
        ({"embedding": np.ones(10_000)}, "bad_embedding"),
    ],
)
def test_string_confidences_long_labels_and_huge_vectors_are_refused_where_built(kwargs, reason):
    fields = {"label": "Mug", "center": (2, 0, 1), **kwargs}
    with pytest.raises(RejectedInput) as error:
        make_detection(**fields)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    ("label", "size", "reason"),
    [("Bowl", (49, 49, 49), "bad_size"), ("Mug", (4, 0.1, 0.1), "bad_size"), ("CounterTop", (20, 1, 1), "bad_size")],
)
def test_boxes_larger_than_any_object_or_furniture_are_refused(memory, label, size, reason):
    """Issue 15: one 49 m box made all 2,000 objects 'in' a bowl."""
    view = looking(0, 0)
    things = [det(f"Thing{i}", 1.0 + 0.1 * (i % 30), -2 + 0.1 * (i // 30)) for i in range(300)]
    for t in range(2):
        memory.ingest(frame(t, view, *things))
    memory.ingest(frame(3, view, make_detection(label, (2, 0, 1), size, 0.95), *things))
    assert memory.counters[f"rejected.{reason}"] == 1
    assert memory.contents(label) == []
    assert memory.count_believed() == 300


def test_rejected_batches_add_no_source_to_the_stats(memory):
    """Issue 15: refused batches (empty or 10,000-character robot ids) still showed in get_stats."""
    _mug_memory(memory)
    for robot in ("x" * 10_000, "bad\x00id"):
        with pytest.raises(RejectedInput, match="bad_source"):
            memory.ingest(frame(5, looking(0, 0), det("Mug", 2, 0), robot=robot))
    with pytest.raises(RejectedInput, match="late"):
        memory.ingest(frame(-100, looking(0, 0), det("Mug", 2, 0), robot="stale"))
    assert sorted(memory.stats()["sources"]) == ["r1"]
    assert memory.stats()["sources"]["r1"]["batches"] == 3


@pytest.mark.parametrize(
    ("center", "size", "confidence", "reason"),
    [
        ([np.nan, 0.0, 1.0], [0.1, 0.1, 0.1], 0.9, "non_finite"),
        ([2.5, 0.5, 1.0], [0.1, 0.1, 0.1], 2.0, "bad_confidence"),
        ([2.5, 0.5, 1.0], [-1.0, 0.1, 0.1], 0.9, "bad_size"),
        ([2.5, 0.5, 1.0], [0.1, 0.1, 0.1], "0.9", "malformed"),
        ([2.5, 0.5], [0.1, 0.1, 0.1], 0.9, "malformed"),
    ],
)
def test_an_unsound_detection_cannot_be_built(center, size, confidence, reason):
    with pytest.raises(RejectedInput) as error:
        Detection("Apple", np.array(center), np.array(size), confidence)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (((0, 0, math.nan), 0, 90, 4), "non_finite"),
        (((0, 0, 1), math.nan, 90, 4), "non_finite"),
        (((0, 0, 1), 0, 400, 4), "bad_view"),
        (((0, 0, 1), 0, 90, 1e6), "bad_view"),
        (((0, 0, 1), "north", 90, 4), "malformed"),
    ],
)
def test_an_unsound_view_cannot_be_built(fields, reason):
    with pytest.raises(RejectedInput) as error:
        ViewCone(*fields)
    assert error.value.reason == reason


def test_a_batch_entry_that_is_not_a_detection_is_dropped_counted_and_no_evidence(memory):
    view = looking(0, 0)
    for t in range(3):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    as_lists = Detection("Book", [2.4, -0.4, 1.0], [0.2, 0.15, 0.04], 0.9)
    raw = {"label": "Apple", "center": [2.5, 0.5, 1.0]}
    for t in range(5, 12):
        memory.ingest(frame(t, view, raw, as_lists))  # the mug is not reported
    assert memory.count("Apple") == 0
    assert memory.count("Book") == 1, "plain lists are fine"
    assert memory.where_is("Mug") is not None, "a frame that lost detections is no evidence against the mug"
    assert memory.counters["rejected.malformed"] == 7


@pytest.mark.parametrize("floor", ["configured", "learned"])
def test_one_confident_detection_floating_in_the_air_is_not_believed_at_once(tmp_path, floor):
    """A thing held by nothing and not on the floor, seen once, waits for a second sighting; the same
    detection resting on a table is believed at once; a missing mug is not 'moved' into the air."""
    from robomem.core import Memory, MemoryConfig

    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite"), floor_z=0.0 if floor == "configured" else None))
    view = looking(0, 0)
    if floor == "learned":  # three pieces of furniture standing at one level are the floor
        for t in range(2):
            memory.ingest(frame(-5 + t, view, *(make_detection(label, (3.0, y, 0.45), (0.6, 0.6, 0.9), 0.95)
                                               for label, y in (("Cabinet", -1.5), ("Dresser", 1.5), ("Sofa", 0.0)))))
    table = make_detection("DiningTable", (2.5, 0.0, 0.4), (1.2, 0.8, 0.8), 0.95)
    for t in range(3):
        memory.ingest(frame(t, view, table, det("Mug", 2.3, 0.2, 0.85)))
    memory.ingest(frame(3, view, table, det("Apple", 2.6, -0.5, 1.6, confidence=0.95)))  # mid-air
    assert memory.count("Apple") == 0
    memory.ingest(frame(4, view, table, det("Apple", 2.6, -0.5, 1.6, confidence=0.95)))  # seen again
    assert memory.count("Apple") == 1, "a second sighting is believed wherever it is"
    memory.ingest(frame(5, view, table, det("Book", 2.7, 0.1, 0.82, confidence=0.95)))  # on the table
    assert memory.count("Book") == 1
    for t in range(6, 9):  # the mug is gone from the table; a lone mug-like blip floats far above it
        memory.ingest(frame(t, view, table, *([det("Mug", 2.0, -1.5, 1.9)] if t == 8 else [])))
    mug = memory.where_is("Mug")
    assert mug is None or mug.center[2] < 1.0, "the missing mug was not relocated into the air"


def test_a_single_sighting_is_believed_once_its_holder_is_detected(tmp_path):
    """The holder may come in the next batches: a confident single sighting waits a few seconds for it."""
    from robomem.core import Memory, MemoryConfig

    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite"), floor_z=0.0))
    view = looking(0, 0)
    memory.ingest(frame(1, view, det("Apple", 2.5, 0.0, 0.84, confidence=0.95)))
    assert memory.count("Apple") == 0, "nothing known under it yet"
    table = make_detection("DiningTable", (2.5, 0.0, 0.4), (1.2, 0.8, 0.8), 0.95)
    memory.ingest(frame(2, looking(0, 0, yaw=90), table))
    assert memory.count("Apple") == 1
    assert memory.where_is("Apple").receptacle == "DiningTable"
