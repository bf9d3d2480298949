# ruff: noqa: F811 (pytest fixtures imported from postgres_fixture and named as arguments)
"""PostgreSQL backend and fleet memory against a real server (started for this file, stopped at its end):
the same answers as SQLite, durability modes under kill -9, several nodes sharing one database,
concurrent writers, a server stopped and restarted mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frames import det, frame, looking  # noqa: E402
from postgres_fixture import fresh_db, postgres_server  # noqa: E402, F401 (fixtures, used by name)

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.storage import SQLiteStore, WriteBatch, open_store  # noqa: E402

psycopg = pytest.importorskip("psycopg")

ROOT = Path(__file__).resolve().parents[1]
EPISODE = ROOT / "robomem" / "data" / "roomr2022_FloorPlan21_02.jsonl"
ALL_AROUND = looking(0, 0, fov=360)


def _moving_mug(i: int):
    """Batch i: two counters, a mug that changes counter every 3 batches (a 'moved' event each time)."""
    x = 2 if (i // 3) % 2 == 0 else -2
    return frame(float(i), ALL_AROUND, det("CounterTop", 2, 0, 0.45), det("CounterTop", -2, 0, 0.45),
                 det("Mug", x, 0, 0.95))


def _rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    from robomem.core.storage_postgres import parse_url

    conninfo, node, _spool = parse_url(url)
    with psycopg.connect(conninfo, options=f"-c search_path=robomem_{node}") as conn:
        return [tuple(row) for row in conn.execute(query, params).fetchall()]


def _worker(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)


def _read_until(process: subprocess.Popen, prefix: str, count: int) -> list[str]:
    lines = []
    while len(lines) < count:
        line = process.stdout.readline()
        assert line, f"worker ended early (exit {process.poll()})"
        if line.startswith(prefix):
            lines.append(line.split(maxsplit=1)[1].strip())
    return lines


# ---------------------------------------------------------------------------------------------- the store
def test_open_store_picks_the_backend_by_url(fresh_db, tmp_path):
    from robomem.core.storage_postgres import PostgresStore

    store = open_store(fresh_db("r1"))
    assert isinstance(store, PostgresStore) and store.node == "r1" and store.schema == "robomem_r1"
    store.close()
    sqlite_store = open_store(tmp_path / "m.sqlite")
    assert isinstance(sqlite_store, SQLiteStore)
    sqlite_store.close()
    with pytest.raises(ValueError, match="durability must be one of interval, batch"):
        open_store(":memory:", durability="sometimes")
    with pytest.raises(ValueError, match="node name"):
        open_store(fresh_db("Robot One!"))


def test_one_process_per_node_and_migrations_once(fresh_db):
    first = open_store(fresh_db("r1"))
    with pytest.raises(RuntimeError, match="already open in another process"):
        open_store(fresh_db("r1"))
    second = open_store(fresh_db("r2"))  # another node: its own schema, the fleet tables shared
    migrations = _rows(fresh_db(), "SELECT version FROM robomem_fleet.schema_migrations")
    assert migrations == [(1,)]
    first.close()
    second.close()


def test_a_retried_write_is_applied_once(fresh_db):
    from robomem.core.storage_postgres import PostgresStore

    store = PostgresStore(fresh_db("r1"))
    batch = WriteBatch(observations=[(1.0, "r1", "Mug", 1, 2, 3, 0.1, 0.1, 0.1, 0.9, None, 7)])
    assert store._commit([(41, batch)]) and store._commit([(41, batch)]), "the retry (lost acknowledgement) is accepted"
    assert store._commit([(40, batch)]), "an older write sequence is known to be in"
    assert _rows(fresh_db("r1"), "SELECT COUNT(*) FROM observations") == [(1,)]
    assert store.counters["postgres.duplicate_writes_skipped"] == 2
    assert store._commit([(40, batch), (41, batch), (42, batch)]), "a drained queue: one transaction"
    assert _rows(fresh_db("r1"), "SELECT COUNT(*) FROM observations") == [(2,)], "only the new one applied"
    store.close()


def test_the_qa_contract_answers_the_same_on_both_backends(fresh_db, tmp_path):
    answers = {}
    for name, db in (("sqlite", str(tmp_path / "m.sqlite")), ("postgres", fresh_db("qa"))):
        out = tmp_path / f"{name}.jsonl"
        subprocess.run([sys.executable, "-m", "robomem.cli", "qa", str(EPISODE), "--out", str(out), "--db", db],
                       check=True, cwd=ROOT, capture_output=True, timeout=300)
        lines = [json.loads(line) for line in out.read_text().splitlines() if line]
        answers[name] = [{k: v for k, v in line.items() if k != "ms"} for line in lines]
    assert len(answers["sqlite"]) > 20
    assert answers["postgres"] == answers["sqlite"]


# ---------------------------------------------------------------------------------------------- durability
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_in_batch_mode_loses_nothing_acknowledged(backend, fresh_db, tmp_path):
    db = str(tmp_path / "m.sqlite") if backend == "sqlite" else fresh_db("r1")
    worker = _worker("ingest", db, "batch", "200")
    acked = _read_until(worker, "acked", 25)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    memory = Memory(MemoryConfig(db_path=db))
    last_acked = max(float(line.split()[0]) for line in acked)
    assert memory.now >= last_acked, "memory's clock is at least the last acknowledged batch's"
    assert memory.counters["batches"] >= len(acked), "every acknowledged batch counted (counters restored)"
    assert memory.where_is("Mug") is not None
    assert memory.counters["restart.unclean"] == 1 and memory.journal.restart_gap is not None
    memory.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_event_ids_are_not_reused_after_a_crash(backend, fresh_db, tmp_path):
    db = str(tmp_path / "m.sqlite") if backend == "sqlite" else fresh_db("r1")
    worker = _worker("ingest", db, "interval", "200")
    acked = _read_until(worker, "acked", 20)  # the worker commits after batch 5, then never again
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    seen = {int(e) for line in acked for e in line.split()[1:]}
    assert len(seen) >= 4, "events were handed out"
    memory = Memory(MemoryConfig(db_path=db))
    assert memory.counters["batches"] == 6, "the counters as of the last commit"
    gap = memory.journal.restart_gap
    assert gap is not None and gap["committed_until_t"] == 5.0, "the lost gap starts after the committed batch 5"
    new = [e.event_id for i in range(30, 40) for e in memory.ingest(_moving_mug(i))]
    assert new and min(new) > max(seen), "event ids handed out before the crash are never given again"
    memory.close()
    reopened = Memory(MemoryConfig(db_path=db))
    assert reopened.journal.restart_gap is None and reopened.counters["restart.unclean"] == 1, "a clean close"
    reopened.close()


# ---------------------------------------------------------------------------------------------- the fleet
def _node(url: str, **config):
    from robomem.core.fleet import FleetMember

    return FleetMember(Memory(MemoryConfig(db_path=url, **config)))


def test_robots_share_what_they_see_and_what_they_no_longer_see(fresh_db):
    vacuum, arm = _node(fresh_db("vacuum")), _node(fresh_db("arm"))
    for t in (1.0, 2.0):  # the vacuum sees the mug on the counter
        vacuum.ingest(frame(t, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95), robot="vacuum"))
    vacuum.memory.flush(sync=True)
    assert arm.memory.where_is("Mug") is None
    assert arm.catch_up() == 2
    mug = arm.memory.where_is("Mug")
    assert mug is not None and abs(mug.center[0] - 2) < 0.05, "the arm knows where the vacuum saw the mug"
    arm.memory.flush(sync=True)
    robots = arm.memory.store.execute("SELECT DISTINCT robot FROM observations")
    assert robots == [("vacuum",)], "observations keep the robot that made them"
    for t in range(10, 20):  # the arm looks at the counter: no mug
        arm.ingest(frame(float(t), looking(0, 0), det("CounterTop", 2, 0, 0.45), robot="arm"))
    arm.memory.flush(sync=True)
    assert arm.memory.where_is("Mug") is None
    assert vacuum.catch_up() == 10
    assert vacuum.memory.where_is("Mug") is None, "the arm's misses make the mug gone for the vacuum too"
    assert vacuum.catch_up() == 0 and arm.catch_up() == 0, "nothing is taken in twice"
    for member in (vacuum, arm):
        member.memory.close()


def test_a_late_or_restarted_node_catches_up_exactly_once(fresh_db):
    writer = _node(fresh_db("vacuum"))
    for i in range(12):
        writer.ingest(_moving_mug(i))
    writer.memory.flush(sync=True)
    late = _node(fresh_db("arm"))
    assert late.catch_up() == 12
    answer = late.memory.where_is("Mug").to_dict()
    late.memory.close()
    again = _node(fresh_db("arm"))
    assert again.catch_up() == 0, "the cursor was committed with the memory"
    assert again.memory.where_is("Mug").to_dict() == answer
    for i in range(12, 15):
        writer.ingest(_moving_mug(i))
    writer.memory.flush(sync=True)
    assert again.catch_up() == 3
    for member in (writer, again):
        member.memory.close()


def test_the_background_thread_shows_another_robots_object_within_a_bounded_delay(fresh_db):
    vacuum, arm = _node(fresh_db("vacuum")), _node(fresh_db("arm")).start()
    try:
        start = time.monotonic()
        vacuum.ingest(frame(1.0, None, det("Apple", 1, 1, 0.95), robot="vacuum"))  # one batch, then idle
        vacuum.start()  # its thread commits the staged batch after the flush interval
        while arm.memory.where_is("Apple") is None:
            assert time.monotonic() - start < 10, "the arm never learned of the apple"
            time.sleep(0.02)
    finally:
        for member in (vacuum, arm):
            member.stop()
            member.memory.close()


def test_concurrent_writers_never_lose_or_duplicate(fresh_db):
    per_node, nodes = 60, ("r1", "r2", "r3")
    workers = [_worker("fleet", fresh_db(node), str(per_node)) for node in nodes]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    rows = _rows(fresh_db(), "SELECT node, node_seq FROM robomem_fleet.batches ORDER BY seq")
    for node in nodes:
        assert sorted(s for n, s in rows if n == node) == list(range(1, per_node + 1)), f"{node}: each batch once"
    reader = _node(fresh_db("reader"))
    assert reader.catch_up(limit=7) == len(nodes) * per_node
    refused = sum(v for k, v in reader.counters.items() if k.startswith("remote_rejected."))
    assert reader.counters["remote_applied"] + refused == len(nodes) * per_node
    assert reader.memory.counters["batches"] == reader.counters["remote_applied"] > 0.9 * len(nodes) * per_node
    assert reader.memory.counters["duplicate_batches"] == 0 and reader.catch_up() == 0, "none delivered twice"
    reader.memory.close()


def test_a_server_restart_mid_run_loses_nothing_and_applies_nothing_twice(fresh_db, postgres_server):
    url = fresh_db("vacuum")
    vacuum = _node(url)
    for i in range(20):
        vacuum.ingest(_moving_mug(i))
    vacuum.memory.flush(sync=True)
    postgres_server.stop("immediate")  # as a crash: no checkpoint
    try:
        for i in range(20, 60):  # the robot keeps working on its local memory
            vacuum.ingest(_moving_mug(i))
        vacuum.memory.flush(sync=True)
        store = vacuum.memory.store
        assert not store.online and store.queued_writes() > 0, "writes wait in the on-disk queue"
        assert vacuum.memory.where_is("Mug") is not None, "answers from local state during the outage"
    finally:
        postgres_server.start()
    deadline = time.monotonic() + 20
    while vacuum.memory.store.queued_writes():
        assert time.monotonic() < deadline, "the queue was never flushed"
        time.sleep(0.1)
    vacuum.memory.flush(sync=True)
    assert _rows(url, "SELECT node_seq FROM robomem_fleet.batches ORDER BY seq") == [(i,) for i in range(1, 61)]
    counters = json.loads(_rows(url, "SELECT value FROM meta WHERE key = 'counters'")[0][0])
    assert counters["batches"] == 60 and _rows(url, "SELECT value FROM meta WHERE key = 'now'") == [("59.0",)]
    events = _rows(url, "SELECT event_id FROM events ORDER BY event_id")
    assert [e for (e,) in events] == list(range(1, len(events) + 1)), "every event once, in order"
    vacuum.memory.close()
    arm = _node(fresh_db("arm"))
    assert arm.catch_up() == 60
    arm.memory.close()


def test_a_node_killed_during_an_outage_flushes_its_queue_on_the_next_start(fresh_db, postgres_server, tmp_path):
    url = fresh_db("vacuum")
    worker = _worker("outage", url, "batch", "30")
    _read_until(worker, "ready", 1)
    postgres_server.stop("fast")
    try:
        acked = _read_until(worker, "acked", 30)  # batch durability: acknowledged means in the disk queue
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        postgres_server.start()
    assert len(acked) == 30
    memory = Memory(MemoryConfig(db_path=url))
    assert memory.now == 29.0 and memory.counters["batches"] == 30, "every acknowledged batch, once"
    rows = memory.store.execute("SELECT node_seq FROM robomem_fleet.batches ORDER BY seq")
    assert rows == [(i,) for i in range(1, 31)], "the fleet log has each batch once, in order"
    memory.close()


# ---------------------------------------------------------------------------------------------- workers
def _work(mode: str, db: str, durability: str, count: int) -> None:
    """Worker processes: ``ingest`` (acked lines, then wait to be killed), ``fleet`` (publish and close),
    ``outage`` (announce, then ingest slowly while the test stops the server)."""
    if mode == "fleet":
        member = _node(db)
        robot = member.node
        for i in range(count):  # wall-clock stamps: the three writers' batches interleave in time
            member.ingest(frame(time.time(), None, det("Mug", i * 0.5, 0, 0.95), robot=robot))
            if i % 7 == 0:
                member.memory.flush()
        member.memory.close()
        return
    config = MemoryConfig(db_path=db, durability=durability)
    if durability == "interval":
        config.flush_every_batches, config.flush_interval_s = 10**9, 10**9
    memory = Memory(config)
    ingest = memory.ingest
    if mode == "outage":
        from robomem.core.fleet import FleetMember

        ingest = FleetMember(memory).ingest
    print("ready x", flush=True)
    for i in range(count):
        if mode == "outage":
            time.sleep(0.05)
        events = ingest(_moving_mug(i))
        if durability == "interval" and i == 5:
            memory.flush(sync=True)
        print("acked", float(i), *[e.event_id for e in events], flush=True)
    time.sleep(600)


if __name__ == "__main__":
    _work(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 4 else "batch", int(sys.argv[-1]))
