# ruff: noqa: F811 (pytest fixtures imported from postgres_fixture and named as arguments)
"""Late remote batches are taken as history, never refused (README "Fleet memory"): after a server
outage every node holds every other node's batches exactly once and the nodes answer alike; per object
the newest evidence wins, whatever order the batches arrive in."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frames import det, frame, looking  # noqa: E402
from postgres_fixture import fresh_db, postgres_server  # noqa: E402, F401 (fixtures, used by name)

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.types import RejectedInput  # noqa: E402

pytest.importorskip("psycopg")

ALL_AROUND = looking(0, 0, fov=360)
COUNTER_A, COUNTER_B = det("CounterTop", 2, 0, 0.45), det("CounterTop", -2, 0, 0.45)


def _member(url: str):
    from robomem.core.fleet import FleetMember

    return FleetMember(Memory(MemoryConfig(db_path=url)))


def _wait_flushed(*members) -> None:
    deadline = time.monotonic() + 30
    for member in members:
        member.memory.flush(sync=True)
        while member.memory.store.queued_writes():
            assert time.monotonic() < deadline, "an outage queue was never flushed"
            time.sleep(0.05)
        member.memory.flush(sync=True)


def _catch_up(member) -> int:
    """Catch up, once the member's read connections are back after the restart."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return member.catch_up()
        except Exception:  # the pool still replacing connections the restart broke
            assert time.monotonic() < deadline, "the server never answered reads again"
            time.sleep(0.1)


def _answer(memory: Memory, label: str) -> tuple:
    info = memory.where_is(label)
    assert info is not None, f"{label} unknown"
    return label, tuple(np.round(info.center[:2], 1)), info.last_seen, info.status


def test_a_late_batch_is_history_on_one_memory(tmp_path):
    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite")))
    for t in range(10, 20):  # everything within 5 m seen again and again: a mug on counter A, nothing else
        memory.ingest(frame(float(t), ALL_AROUND, COUNTER_A, det("Mug", 2, 0, 0.95)))
    with pytest.raises(RejectedInput, match="behind memory's clock"):
        memory.ingest(frame(5.0, ALL_AROUND, COUNTER_A, det("Mug", -2, 0, 0.95)))  # own robot: refused
    late = frame(5.0, ALL_AROUND, COUNTER_A, det("Mug", -2, 0, 0.95), det("Book", 8, 0, 0.5), robot="other")
    memory.ingest(late, as_history=True)  # another node's batch: taken
    mug = memory.where_is("Mug")
    assert abs(mug.center[0] - 2) < 0.05 and mug.last_seen == 19.0, "seen since: a sighting at 5 changes nothing"
    assert memory.count("Mug") == 1, "where later looks saw no mug, the older sighting is no second mug"
    book = memory.where_is("Book")
    assert book is not None and book.last_seen == 5.0, "where memory has not looked since: taken, at its stamp"
    assert memory.where_is("CounterTop").last_seen == 19.0
    counters = memory.stats()["counters"]
    assert counters["late_as_history"] == 1 and counters["late_superseded"] == 2 and counters["rejected.late"] == 1
    assert memory.stats()["now"] == 19.0, "memory's clock does not go back"
    memory.close()


def test_after_an_outage_every_node_holds_every_batch_once_and_answers_agree(fresh_db, postgres_server):
    vacuum, arm = _member(fresh_db("vacuum")), _member(fresh_db("arm"))
    for t in (1.0, 2.0):  # both online: the vacuum sees the mug on counter A
        vacuum.ingest(frame(t, ALL_AROUND, COUNTER_A, COUNTER_B, det("Mug", 2, 0, 0.95), robot="vacuum"))
    _wait_flushed(vacuum)
    assert arm.catch_up() == 2 and arm.memory.where_is("Mug") is not None
    postgres_server.stop("fast")
    try:  # each robot keeps working on its own memory; the arm's clock runs ahead of the vacuum's
        for t in (10.0, 11.0, 12.0):  # the vacuum sees the mug moved to counter B, an apple beside it
            vacuum.ingest(frame(t, ALL_AROUND, COUNTER_A, COUNTER_B, det("Mug", -2, 0, 0.95),
                                det("Apple", -2.5, 0.1, 0.95), robot="vacuum"))
        for t in (20.0, 21.0):  # the arm, in the living room, sees a book
            arm.ingest(frame(t, looking(4, 4, yaw=45), det("Book", 6, 6, 0.5), robot="arm"))
        for t in range(30, 40):  # then looks at counter A: no mug there (it knows nothing of the move)
            arm.ingest(frame(float(t), looking(0, 0), COUNTER_A, robot="arm"))
        assert arm.memory.where_is("Mug") is None, "gone for the arm, which has not heard of the move"
        for member in (vacuum, arm):
            member.memory.flush(sync=True)
            assert member.memory.store.queued_writes() > 0, "writes wait in the on-disk queue"
    finally:
        postgres_server.start()
    _wait_flushed(vacuum, arm)
    assert _catch_up(vacuum) == 12 and _catch_up(arm) == 3, "each node takes in each of the other's batches"
    assert vacuum.catch_up() == 0 and arm.catch_up() == 0, "and never twice"
    assert arm.counters["remote_late_as_history"] == 3, "the vacuum's queued batches came late to the arm"
    assert not any(k.startswith("remote_rejected") for m in (vacuum, arm) for k in m.counters), "none refused"
    for member in (vacuum, arm):
        assert member.memory.counters["duplicate_batches"] == 0
    for member in (vacuum, arm):  # both memories took every robot's batches, once each
        sources = member.memory.stats()["sources"]
        assert {name: s["batches"] for name, s in sources.items()} == {"arm": 12, "vacuum": 5}, member.node
    answers = {m.node: [_answer(m.memory, label) for label in ("Mug", "Apple", "Book")] for m in (vacuum, arm)}
    assert answers["vacuum"] == answers["arm"], answers
    assert answers["arm"][0] == ("Mug", (-2.0, 0.0), 12.0, "confirmed"), "the move explains the arm's misses"
    for member in (vacuum, arm):
        assert member.memory.count("Mug") == 1
        assert member.memory.where_is("CounterTop", near=(2, 0, 0.45)).last_seen == 39.0
        member.memory.close()


def test_a_memory_is_named_in_the_fleet_by_parameter_then_url_then_namespace():
    from robomem.core.fleet import fleet_url
    from robomem.core.storage_postgres import parse_url

    base = "postgresql://robomem@127.0.0.1:54329/postgres"
    assert parse_url(fleet_url(f"{base}?node=vacuum", "arm", "r2"))[1] == "arm"
    kept = parse_url(fleet_url(f"{base}?node=vacuum&spool=/tmp/s.sqlite", "", "r2"))
    assert kept[1:] == ("vacuum", Path("/tmp/s.sqlite")), "the URL's own name and spool stay"
    assert parse_url(fleet_url(base, "", "/house/R2"))[1] == "house_r2"
    with pytest.raises(ValueError, match="postgresql://"):
        fleet_url("/var/lib/robomem/memory.sqlite", "arm")
