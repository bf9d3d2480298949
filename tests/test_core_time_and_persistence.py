"""Queries at past times, and persistence: reopen gives identical answers, history is append-only.
Every test that uses ``memory`` or ``backend_url`` runs on SQLite and on a real PostgreSQL server."""

import sqlite3

import numpy as np
import pytest
from frames import det, frame, looking
from postgres_fixture import backend_url, fresh_db, postgres_server  # noqa: F401 (fixtures)

from robomem.core import Memory, MemoryConfig
from robomem.core.storage import SQLiteStore, is_postgres_url


@pytest.fixture
def memory(backend_url):  # noqa: F811 (the fixture)
    mem = Memory(MemoryConfig(db_path=backend_url))
    yield mem
    mem.close()


def _query(db: str, query: str) -> list[tuple]:
    """Rows of a query, read through a connection of its own (the memory may be closed)."""
    if not is_postgres_url(db):
        with sqlite3.connect(db) as conn:
            return conn.execute(query).fetchall()
    import psycopg

    from robomem.core.storage_postgres import parse_url

    conninfo, node, _spool = parse_url(db)
    with psycopg.connect(conninfo, options=f"-c search_path=robomem_{node}") as conn:
        return [tuple(row) for row in conn.execute(query).fetchall()]


def _story(memory: Memory) -> None:
    """t 0-2: mug on the counter, fridge closed. t 10-12: mug moved to the table, fridge opened."""
    counter_view, table_view = looking(0, 0, yaw=0), looking(0, 0, yaw=180)
    for t in range(3):
        memory.ingest(frame(t, counter_view, det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95),
                            det("Fridge", 2, 2, 0.9, open=False)))
        memory.ingest(frame(t + 0.5, table_view, det("CounterTop", -2, 0, 0.45)))
    for t in range(10, 13):
        memory.ingest(frame(t, counter_view, det("CounterTop", 2, 0, 0.45), det("Fridge", 2, 2, 0.9, open=True)))
        memory.ingest(frame(t + 0.5, table_view, det("CounterTop", -2, 0, 0.45), det("Mug", -2, 0, 0.95)))


@pytest.fixture
def story(memory):
    _story(memory)
    return memory


def test_where_is_and_where_was_at_past_times(story):
    now = story.where_is("Mug")
    assert np.allclose(now.center[:2], [-2, 0], atol=0.05)
    before = story.where_was("Mug", at=2.5)
    assert np.allclose(before.center[:2], [2, 0], atol=0.05)
    assert before.receptacle == "CounterTop"
    assert story.where_was("Mug", at=-1.0) is None, "nothing was known before the first view"


def test_last_seen_now_and_at_a_past_time(story):
    assert story.last_seen("Mug") == 12.5
    assert story.last_seen("Mug", at=5.0) == 2.0
    assert story.last_seen("Teapot") is None


def test_state_count_contents_at_past_times(story):
    assert story.state("Fridge", "open") is True
    assert story.state("Fridge", "open", at=5.0) is False
    assert story.count("CounterTop") == 2
    assert story.count("CounterTop", at=0.2) == 1
    near_table = story.where_is("CounterTop", near=[-1.5, 0.2, 0.5])
    assert near_table.center[0] < 0
    assert [o.label for o in story.contents("CounterTop")] == ["Mug"]
    assert [o.label for o in story.contents("CounterTop", at=5.0)] == ["Mug"]
    holder = story.contents("CounterTop", at=5.0)[0]
    assert holder.center[0] > 0, "at t=5 the mug was on the kitchen counter"


def test_what_changed_windows(story):
    assert sorted((c.label, c.change) for c in story.what_changed(since=5.0)) == [
        ("Fridge", "opened"),
        ("Mug", "moved"),
    ]
    assert story.what_changed(since=5.0, until=9.0) == []
    assert story.what_changed(since=20.0) == []


def test_spatial_and_region_queries(story):
    near = story.within_radius([2, 0, 0.9], 0.5)
    assert {o.label for o in near} == {"CounterTop"}
    box = story.within_box([-3, -1, 0], [-1, 1, 2])
    assert sorted(o.label for o in box) == ["CounterTop", "Mug"]


def test_reopen_gives_identical_answers(backend_url):  # noqa: F811 (the fixture)
    path = backend_url
    questions = [
        ("where_is", "Mug"), ("where_was", "Mug", 2.5), ("last_seen", "Mug"), ("last_seen_at", "Mug", 5.0),
        ("state", "Fridge", "open"), ("state_at", "Fridge", "open", 5.0), ("count", "CounterTop"),
        ("contents", "CounterTop"), ("what_changed", 5.0),
    ]

    def ask(memory):
        answers = []
        for q in questions:
            kind = q[0]
            if kind == "where_is":
                answers.append(memory.where_is(q[1]).to_dict())
            elif kind == "where_was":
                answers.append(memory.where_was(q[1], q[2]).to_dict())
            elif kind == "last_seen":
                answers.append(memory.last_seen(q[1]))
            elif kind == "last_seen_at":
                answers.append(memory.last_seen(q[1], at=q[2]))
            elif kind == "state":
                answers.append(memory.state(q[1], q[2]))
            elif kind == "state_at":
                answers.append(memory.state(q[1], q[2], at=q[3]))
            elif kind == "count":
                answers.append(memory.count(q[1]))
            elif kind == "contents":
                answers.append([o.to_dict() for o in memory.contents(q[1])])
            else:
                answers.append(sorted((c.label, c.change) for c in memory.what_changed(q[1])))
        return answers

    first = Memory(MemoryConfig(db_path=path))
    _story(first)
    expected = ask(first)
    first.close()
    second = Memory(MemoryConfig(db_path=path))
    assert ask(second) == expected
    # and it keeps working after reopening: the mug goes back to the counter
    for t in range(20, 23):
        second.ingest(frame(t, looking(0, 0, yaw=0), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
        second.ingest(frame(t + 0.5, looking(0, 0, yaw=180), det("CounterTop", -2, 0, 0.45)))
    assert second.where_is("Mug").center[0] > 1.5
    assert second.count("Mug") == 1
    second.close()


def test_history_is_append_only(backend_url):  # noqa: F811 (the fixture)
    memory = Memory(MemoryConfig(db_path=backend_url))
    _story(memory)
    memory.flush(sync=True)
    closed_sql = "SELECT * FROM facts WHERE valid_to IS NOT NULL ORDER BY fact_id"
    closed_before = _query(backend_url, closed_sql)
    count_before = _query(backend_url, "SELECT COUNT(*) FROM facts")[0][0]
    for t in range(30, 35):
        memory.ingest(frame(t, looking(0, 0, yaw=180), det("CounterTop", -2, 0, 0.45), det("Mug", -1.0, 0.5, 0.95)))
    memory.close()
    closed_after = _query(backend_url, closed_sql)
    assert closed_after[: len(closed_before)] == closed_before, "closed facts never change"
    assert _query(backend_url, "SELECT COUNT(*) FROM facts")[0][0] > count_before
    poses = _query(backend_url, "SELECT COUNT(*) FROM facts f JOIN tracks t ON t.track_id = f.track_id "
                   "WHERE t.label = 'Mug' AND t.merged_into IS NULL AND predicate = 'pose'")[0][0]
    assert poses == 3, "counter -> table -> table again, each a placement kept in history"
    if not is_postgres_url(backend_url):
        assert _query(backend_url, "PRAGMA journal_mode")[0][0] == "wal"


def test_schema_version_is_checked(tmp_path):
    path = tmp_path / "m.sqlite"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.commit()
    with pytest.raises(RuntimeError, match="schema version 999"):
        SQLiteStore(path)


@pytest.mark.parametrize("order", ["holder_first", "item_first"])
def test_contents_do_not_depend_on_detection_order(memory, order):
    view = looking(0, 0)
    holder, item = det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)
    dets = [holder, item] if order == "holder_first" else [item, holder]
    memory.ingest(frame(0, view, *dets))
    assert [o.label for o in memory.contents("CounterTop")] == ["Mug"]
    assert memory.where_is("Mug").receptacle == "CounterTop"


def test_near_and_relations(memory):
    view = looking(0, 0, fov=360)
    for t in range(2):
        memory.ingest(frame(t, view, det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95),
                            det("Apple", 2.4, 0.3, 0.94), det("Book", -2, 0, 0.95)))
    assert [o.label for o in memory.near("Mug")] == ["Apple"]
    relations = memory.relations("Mug")
    assert relations[0][0] == "on" and relations[0][1].startswith("CounterTop#")
    assert [r for r, _ in relations[1:]] == ["near"]
    assert memory.near("Teapot") == []


def test_rooms_top_the_scene_graph_and_scope_what_changed(backend_url):  # noqa: F811 (the fixture)
    rooms = [{"name": "kitchen", "min": [0, -5], "max": [5, 5]}, {"name": "living", "min": [-5, -5], "max": [0, 5]}]
    memory = Memory(MemoryConfig(db_path=backend_url, rooms=rooms))
    _story(memory)  # the mug goes from the kitchen counter (x=2) to the living-room counter (x=-2)
    assert memory.where_was("Mug", at=2.5).room == "kitchen"
    assert memory.where_is("Mug").room == "living"
    assert memory.graph.room_for(np.array([9.0, 9.0, 0.0])) == "home"
    counter_ids = {t.track_id for t in memory.tracks.values() if t.label == "CounterTop"}
    assert counter_ids <= memory.graph.descendants("room:kitchen") | memory.graph.descendants("room:living")
    kitchen = sorted((c.label, c.change) for c in memory.what_changed(since=5.0, room="kitchen"))
    assert kitchen == [("Fridge", "opened"), ("Mug", "moved")], "the mug left the kitchen"
    assert [(c.label, c.change) for c in memory.what_changed(since=5.0, room="living")] == [("Mug", "moved")]
    memory.close()
    with pytest.raises(ValueError, match="bad room"):
        MemoryConfig(rooms=[{"name": "attic"}]).room_regions()


def test_where_was_uses_hindsight_for_objects_confirmed_later(memory):
    view = looking(0, 0)
    memory.ingest(frame(1.0, view, det("Mug", 2, 0, confidence=0.5)))  # one doubtful sighting
    assert memory.where_is("Mug") is None
    memory.ingest(frame(5.0, view, det("Mug", 2, 0, confidence=0.5)))  # seen again: it was real
    assert memory.where_is("Mug") is not None
    was = memory.where_was("Mug", at=2.0)
    assert was is not None and abs(was.center[0] - 2.0) < 0.05
    assert memory.count("Mug", at=2.0) == 1
    assert memory.where_was("Mug", at=0.5) is None, "not yet seen at t=0.5"


def test_past_answers_report_the_sighting_before_that_time(story):
    was = story.where_was("Mug", at=5.0)
    assert was.last_seen == 2.0, "seen at t=12.5 later, but at t=5 the last sighting was t=2"
    assert [o.last_seen for o in story.contents("CounterTop", at=5.0)] == [2.0]
    assert story.where_is("Mug").last_seen == 12.5


def test_past_last_seen_reads_uncommitted_sightings_without_waiting(backend_url):  # noqa: F811 (the fixture)
    memory = Memory(MemoryConfig(db_path=backend_url, flush_every_batches=10**9,
                                 flush_interval_s=10**9))
    view = looking(0, 0)
    for t in range(5):
        memory.ingest(frame(float(t), view, det("Mug", 2, 0)))
    assert memory.store.load().tracks == [], "nothing committed yet"
    assert memory.last_seen("Mug", at=2.5) == 2.0
    memory.flush(sync=True)
    assert memory.last_seen("Mug", at=2.5) == 2.0
    memory.close()


def test_a_sliver_of_an_object_seen_apart_is_not_the_answer_for_a_past_time(memory):
    """A mug stands in the microwave; later a thin sliver of it (seen through the door) becomes a
    track of its own. A mug never holds a mug, so the sliver is recorded in the microwave, not in its
    double. Asked where the mug was, memory answers with the whole mug, even though the sliver's
    placement is the more recent one."""
    from robomem.core.types import make_detection

    view = looking(0, 0)
    for t in (1.0, 2.0):
        memory.ingest(frame(t, view, make_detection("Microwave", (2.0, 0.0, 0.95), (0.5, 0.4, 0.3)),
                            make_detection("Mug", (2.0, 0.0, 0.9), (0.08, 0.1, 0.1))))
    for t in (3.0, 4.0):
        memory.ingest(frame(t, view, make_detection("Microwave", (2.0, 0.0, 0.95), (0.5, 0.4, 0.3)),
                            make_detection("Mug", (2.0, 0.0, 0.9), (0.08, 0.1, 0.1)),
                            make_detection("Mug", (2.03, 0.0, 0.9), (0.01, 0.1, 0.09))))
    memory.ingest(frame(10.0, looking(0, 0, yaw=180)))
    sliver = [i for i in memory.within_box((-9, -9, -9), (9, 9, 9), "Mug") if i.size[0] < 0.02]
    assert sliver and sliver[0].receptacle == "Microwave", "the sliver is its own track, not held by a mug"
    was = memory.where_was("Mug", at=5.0)
    assert was.size[0] > 0.05 and was.receptacle == "Microwave"
