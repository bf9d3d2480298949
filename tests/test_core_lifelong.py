"""Lifelong operation: dismissed tracks leave memory, views and sightings are kept by a retention policy
that still answers negative-evidence and past-time questions (issue 15)."""

import sqlite3

import numpy as np
from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.config import normalize_label
from robomem.core.types import make_detection, make_view
from robomem.core.views import ViewLog


def _memory(tmp_path, **config) -> Memory:
    return Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite"), **config))


def _indexed(memory: Memory, track_id: int, label: str) -> dict[str, bool]:
    store = memory.track_store
    key = normalize_label(label)
    return {
        "tracks": track_id in store.tracks,
        "points": track_id in store.points,
        "label_points": key in store.label_points and track_id in store.label_points[key],
        "by_label": track_id in store.by_label.get(key, ()),
        "all_by_label": track_id in store.all_by_label.get(key, ()),
        "vectors": store.object_vectors is not None and track_id in store.object_vectors,
    }


def test_a_dismissed_false_detection_leaves_every_index(tmp_path):
    memory = _memory(tmp_path, rejected_forget_s=5.0, retention_sweep_batches=1)
    view = looking(0, 0)
    memory.ingest(frame(0, view, det("Mug", 2, 0), make_detection("Ghost", (2.5, 0.5, 1.0), embedding=np.ones(4),
                                                                   confidence=0.3)))
    ghost = next(t.track_id for t in memory.tracks.values() if t.label == "Ghost")
    assert all(_indexed(memory, ghost, "Ghost").values())
    for t in range(1, 6):  # looked at, not there: dismissed, but kept a while (a later detection revives it)
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    assert memory.tracks[ghost].status == "rejected"
    assert _indexed(memory, ghost, "Ghost")["points"]
    for t in range(6, 14):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    assert not any(_indexed(memory, ghost, "Ghost").values()), _indexed(memory, ghost, "Ghost")
    assert memory.counters["forgotten_tracks"] == 1
    assert memory.count("Mug") == 1
    memory.close()
    reopened = _memory(tmp_path)
    assert reopened.count("Mug") == 1 and reopened.count("Ghost") == 0
    reopened.close()


def _rows_of(path, track_id: int) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table} WHERE track_id=?", (track_id,)).fetchone()[0]
                for table in ("tracks", "facts", "observations")}


def _dismissed_ghost(memory: Memory) -> int:
    """A false detection at t=0, looked at and not there until dismissed (by t=5)."""
    view = looking(0, 0)
    memory.ingest(frame(0, view, det("Mug", 2, 0), det("Ghost", 2.5, 0.5, confidence=0.3)))
    ghost = next(t.track_id for t in memory.tracks.values() if t.label == "Ghost")
    for t in range(1, 6):
        memory.ingest(frame(t, view, det("Mug", 2, 0)))
    assert memory.tracks[ghost].status == "rejected"
    return ghost


def test_a_forgotten_track_leaves_the_file(tmp_path):
    memory = _memory(tmp_path, rejected_forget_s=5.0, retention_sweep_batches=1)
    ghost = _dismissed_ghost(memory)
    memory.flush(sync=True)
    assert _rows_of(tmp_path / "m.sqlite", ghost)["tracks"] == 1
    for t in range(6, 14):
        memory.ingest(frame(t, looking(0, 0), det("Mug", 2, 0)))
    assert ghost not in memory.tracks
    memory.flush(sync=True)
    assert _rows_of(tmp_path / "m.sqlite", ghost) == {"tracks": 0, "facts": 0, "observations": 0}
    mug = memory.where_is("Mug")
    memory.close()
    reopened = _memory(tmp_path)
    assert reopened.where_is("Mug").to_dict() == mug.to_dict() and len(reopened.tracks) == 1
    reopened.close()


def test_a_dismissed_track_is_forgotten_after_a_restart_too(tmp_path):
    memory = _memory(tmp_path, rejected_forget_s=5.0, retention_sweep_batches=1)
    ghost = _dismissed_ghost(memory)
    memory.close()  # dismissed, not yet forgotten
    reopened = _memory(tmp_path, rejected_forget_s=5.0, retention_sweep_batches=1)
    assert reopened.tracks[ghost].status == "rejected"
    for t in range(6, 14):
        reopened.ingest(frame(t, looking(0, 0), det("Mug", 2, 0)))
    assert ghost not in reopened.tracks and reopened.count("Mug") == 1
    reopened.close()
    assert _rows_of(tmp_path / "m.sqlite", ghost)["tracks"] == 0


def test_rows_of_a_track_retention_would_have_forgotten_are_not_loaded(tmp_path):
    """A store that still holds them (a crash before the delete, a store that keeps every row)."""
    memory = _memory(tmp_path, rejected_forget_s=60.0, retention_sweep_batches=1)
    ghost = _dismissed_ghost(memory)
    for t in range(6, 10):
        memory.ingest(frame(t, looking(0, 0), det("Mug", 2, 0)))
    memory.close()
    reopened = _memory(tmp_path, rejected_forget_s=1.0)  # dismissed at t <= 5, memory's clock at 9
    assert ghost not in reopened.tracks and reopened.counters["loaded.forgotten_tracks"] == 1
    assert reopened.count("Mug") == 1 and reopened.count("Ghost") == 0
    assert reopened.what_changed(since=-1.0) == [c for c in reopened.what_changed(since=-1.0) if c.label == "Mug"]
    reopened.close()


def test_a_tentative_track_never_seen_again_expires(tmp_path):
    memory = _memory(tmp_path, tentative_expiry_s=30.0, rejected_forget_s=30.0, retention_sweep_batches=1)
    memory.ingest(frame(0, None, det("Phantom", -5, -5, confidence=0.4)))  # nowhere any camera looks again
    assert len(memory.tracks) == 1
    for t in range(1, 100):
        memory.ingest(frame(t, looking(0, 0), det("Mug", 2, 0)))
    assert [t.label for t in memory.tracks.values()] == ["Mug"]
    assert memory.counters["expired_tracks"] == 1
    memory.close()


def test_false_detections_do_not_grow_memory(tmp_path):
    """A stream of false detections (new positions each frame, never confirmed): tracks stay bounded."""
    memory = _memory(tmp_path, rejected_forget_s=10.0, tentative_expiry_s=10.0, retention_sweep_batches=10)
    rng = np.random.default_rng(0)
    view = looking(0, 0, fov=120)
    sizes = []
    for t in np.arange(0, 300, 0.5):
        noise = make_detection("Clutter", (rng.uniform(1, 4), rng.uniform(-1.5, 1.5), 1.0), confidence=0.3)
        memory.ingest(frame(float(t), view, det("Mug", 2, 0), noise))
        sizes.append(len(memory.tracks))
    assert memory.counters["tracks_created"] > 300
    assert max(sizes[-100:]) <= 2 * max(sizes[100:200]) and max(sizes[-100:]) < 100, "flat, not growing"
    assert len(memory.track_store.points) < 100
    memory.close()


def test_consolidated_views_answer_as_the_raw_ones():
    """The 'would earlier looks have seen it' evidence of 2,000 views is the same from cells of them."""
    raw, consolidated = ViewLog(), ViewLog(raw_window_s=10.0, cell_m=0.5, cell_deg=15.0)
    rng = np.random.default_rng(1)
    for k in range(2000):
        spot = k % 4  # the robot looks from four spots, a little noise each time
        view = make_view((spot * 2.0 + rng.normal(0, 0.01), rng.normal(0, 0.01), 1.5), 90.0 * spot, 90.0, 5.0)
        raw.add(k * 0.1, view)
        consolidated.add(k * 0.1, view)
    consolidated.consolidate(200.0)
    assert consolidated.raw_views < 200 and consolidated.cells <= 8
    assert len(consolidated) == len(raw) == 2000

    def chances(fractions):
        return np.full(len(fractions), 0.1)

    for point in ([3.0, 0.5, 1.0], [-2.0, 0.0, 1.0], [6.0, -2.0, 0.5], [50.0, 0.0, 1.0]):
        expected = raw.miss_evidence_before(np.array(point), 250.0, chances)
        assert consolidated.miss_evidence_before(np.array(point), 250.0, chances) == pytest_approx(expected)


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-6, abs=1e-9)


def test_views_in_ram_stay_bounded():
    log = ViewLog(raw_window_s=60.0, cell_m=0.5, cell_deg=15.0, max_cells=500)
    rng = np.random.default_rng(2)
    for k in range(20_000):
        log.add(k * 0.1, make_view((rng.uniform(-20, 20), rng.uniform(-20, 20), 1.5), rng.uniform(-180, 180),
                                   90.0, 5.0))
        if k % 100 == 0:
            log.consolidate(k * 0.1)
    assert log.cells <= 500 and log.raw_views <= 700
    assert len(log) == 20_000


def test_sightings_are_stored_sparsely_and_past_last_seen_stays_right(tmp_path):
    """A mug in view at 10 Hz for two minutes, then out of view, then back: the store keeps the first and
    last sighting of each run and one every observation_sparse_s; past 'last seen' answers stay right."""
    path = str(tmp_path / "m.sqlite")
    memory = Memory(MemoryConfig(db_path=path, observation_sparse_s=10.0, observation_raw_window_s=60.0,
                                 retention_sweep_batches=50))
    toward, away = looking(0, 0), looking(0, 0, yaw=180)
    times = [round(0.1 * k, 1) for k in range(1200)]  # 0 .. 119.9 s in view
    for t in times:
        memory.ingest(frame(t, toward, det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
    for t in [round(120 + 0.1 * k, 1) for k in range(300)]:  # 30 s looking away
        memory.ingest(frame(t, away))
    for t in [round(150 + 0.1 * k, 1) for k in range(50)]:  # back for 5 s
        memory.ingest(frame(t, toward, det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
    assert memory.last_seen("Mug", at=135.0) == 119.9, "the end of a run is kept"
    assert memory.last_seen("Mug", at=152.05) == 152.0, "inside the raw window: exact"
    memory.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT COUNT(*) FROM observations WHERE label = 'Mug'").fetchone()[0]
        views = db.execute("SELECT COUNT(*) FROM views").fetchone()[0]
    assert rows <= 2 * (170 / 10 + 4), "sparse: not one row per frame (1,250 sightings)"
    assert views < 60, "a robot standing still writes a view per interval, not per frame (1,550 views)"
    reopened = Memory(MemoryConfig(db_path=path))
    assert reopened.last_seen("Mug", at=135.0) == 119.9
    assert 152.0 - 10.0 <= reopened.last_seen("Mug", at=152.05) <= 152.0, "within observation_sparse_s"
    assert reopened.last_seen("Mug", at=60.0) >= 50.0
    reopened.close()
