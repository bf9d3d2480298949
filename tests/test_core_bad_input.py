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


def test_late_batches_do_not_rewrite_history(memory):
    view = looking(0, 0)
    for t in (10, 11, 12):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    memory.ingest(frame(5, view, det("Mug", 2, 0)))  # arrives late (another robot's clock)
    assert memory.counters["late_batches"] == 1
    assert memory.where_was("Mug", at=9.0) is None
    assert memory.last_seen("Mug") == 12


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
