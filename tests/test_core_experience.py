"""Experience memory: task runs recorded, retrieved by meaning (real offline MiniLM), persisted in SQLite,
validated, and rendered as few-shot examples within a token budget."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.embedding import MiniLMEmbedder
from robomem.core.experience import OBJECT_BOOST, TaskEpisode
from robomem.core.render import estimate_tokens
from robomem.core.types import RejectedInput

FRIDGE_PLAN = ["navigate_to(Fridge)", "open(Fridge)", "pick(Apple)", "place(Apple, Fridge)", "close(Fridge)"]


@pytest.fixture(scope="module")
def embedder(text_model: MiniLMEmbedder) -> MiniLMEmbedder:
    return text_model


def open_memory(path: Path, embedder: MiniLMEmbedder) -> Memory:
    return Memory(MemoryConfig(db_path=str(path)), embedder=embedder)


@pytest.fixture
def mem(tmp_path: Path, embedder: MiniLMEmbedder) -> Memory:
    memory = open_memory(tmp_path / "home.sqlite", embedder)
    yield memory
    memory.close()


def episode(instruction: str, *, plan=("noop()",), success=True, reason="", objects=(), started=0.0,
            finished=10.0, robot="r1") -> TaskEpisode:
    return TaskEpisode(robot_id=robot, instruction=instruction, plan=list(plan), success=success,
                       failure_reason=reason, objects=list(objects), started=started, finished=finished)


def instructions(results) -> list[str]:
    return [e.instruction for e, _ in results]


def test_similar_ranks_the_semantically_close_run_first(mem):
    ids = [mem.experience.record(episode(text, finished=10.0 + i))
           for i, text in enumerate(["turn on the TV", "put the apple in the fridge", "chill an apple"])]
    assert ids == [1, 2, 3]
    results = mem.experience.similar("place an apple into the refrigerator", k=3)
    assert instructions(results) == ["put the apple in the fridge", "chill an apple", "turn on the TV"]
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.8 and scores[-1] < 0.4
    assert instructions(mem.experience.similar("switch on the television", k=1)) == ["turn on the TV"]
    assert len(mem.experience.similar("put the apple in the fridge", k=2)) == 2
    assert mem.experience.similar("   ") == [] and mem.experience.similar("chill", k=0) == []


def test_record_assigns_ids_and_hands_back_copies(mem):
    run = episode("put the apple in the fridge", plan=FRIDGE_PLAN, objects=["Apple", "Fridge"])
    assert run.episode_id == -1
    assert mem.experience.record(run) == 1 and run.episode_id == 1
    with pytest.raises(RejectedInput) as error:  # the same run twice is a caller bug, not a second run
        mem.experience.record(run)
    assert error.value.reason == "already_recorded"
    (found, _), = mem.experience.similar("put the apple in the fridge")
    found.plan.append("dance()")
    assert mem.experience.all()[0].plan == FRIDGE_PLAN and len(mem.experience) == 1


def test_named_objects_boost_and_recency_breaks_ties(mem):
    # the same instruction twice: equal similarity, so the most recent run (not the last recorded) wins
    mem.experience.record(episode("tidy up the kitchen", objects=["Mug", "Sponge"], finished=50.0))
    mem.experience.record(episode("tidy up the kitchen", objects=["Mug", "Sponge"], finished=20.0))
    assert [e.finished for e, _ in mem.experience.similar("tidy up the kitchen", k=2)] == [50.0, 20.0]
    # an older run whose objects the instruction names ("apples", "butter knife") comes first
    boosted = mem.experience.record(
        episode("tidy up the kitchen", objects=["Apple", "ButterKnife", "Mug"], finished=5.0))
    results = mem.experience.similar("tidy up the kitchen and put away the apples and the butter knife", k=3)
    assert results[0][0].episode_id == boosted
    # Apple, ButterKnife and Mug are named (3 boosts) vs Mug only (1 boost), same instruction text
    assert results[0][1] - results[1][1] == pytest.approx(2 * OBJECT_BOOST, abs=1e-4)


def test_successful_only_filters_failures(mem):
    mem.experience.record(episode("put the apple in the fridge", plan=FRIDGE_PLAN, finished=10.0))
    mem.experience.record(episode("put the apple in the fridge", plan=["navigate_to(Fridge)", "open(Fridge)"],
                                  success=False, reason="fridge door blocked", finished=20.0))
    only_good = mem.experience.similar("put the apple in the fridge", k=5)
    assert [(e.success, e.finished) for e, _ in only_good] == [(True, 10.0)]
    everything = mem.experience.similar("put the apple in the fridge", k=5, successful_only=False)
    assert [(e.success, e.failure_reason) for e, _ in everything] == [(False, "fridge door blocked"), (True, "")]


def test_successful_run_found_below_many_closer_failures(mem):
    for i in range(40):  # more failures than the first candidate fetch
        mem.experience.record(episode("put the apple in the fridge", success=False, reason="dropped", finished=i))
    mem.experience.record(episode("turn on the TV", finished=100.0))
    results = mem.experience.similar("put the apple in the fridge", k=3)
    assert instructions(results) == ["turn on the TV"]


def test_experience_survives_reopen_of_the_sqlite_file(tmp_path, embedder):
    path = tmp_path / "home.sqlite"
    memory = open_memory(path, embedder)
    memory.ingest(frame(1.0, looking(0, 0), det("Apple", 2, 0)))
    runs = [
        episode("put the apple in the fridge", plan=FRIDGE_PLAN, objects=["Apple", "Fridge"], started=3.0,
                finished=42.5, robot="kitchen-bot"),
        episode("turn on the TV", plan=["navigate_to(TV)", "toggle_on(TV)"], success=False,
                reason="remote not found", objects=["Television"], started=50.0, finished=61.0),
    ]
    for run in runs:
        memory.experience.record(run)
    memory.flush(sync=True)
    with sqlite3.connect(path) as other:  # durable: a second connection sees it while memory is still open
        assert other.execute("SELECT COUNT(*) FROM task_episodes").fetchone()[0] == 2
    memory.close()

    reopened = open_memory(path, embedder)
    try:
        assert reopened.experience.all() == runs  # ids, plans, objects, outcome, times: all restored
        assert reopened.where_is("Apple") is not None
        assert instructions(reopened.experience.similar("chill an apple", k=1)) == ["put the apple in the fridge"]
        assert reopened.experience.record(episode("chill an apple", finished=70.0)) == 3  # ids never reused
    finally:
        reopened.close()
    again = open_memory(path, embedder)
    assert [e.episode_id for e in again.experience.all()] == [1, 2, 3]
    again.close()


def test_a_file_from_before_the_episode_table_opens_and_gains_it(tmp_path, embedder):
    path = tmp_path / "old.sqlite"
    memory = open_memory(path, embedder)
    memory.ingest(frame(1.0, looking(0, 0), det("Mug", 2, 0)))
    memory.close()
    with sqlite3.connect(path) as db:  # as a robomem without experience memory left it
        db.execute("DROP TABLE task_episodes")
    memory = open_memory(path, embedder)
    assert len(memory.experience) == 0 and memory.where_is("Mug") is not None
    memory.experience.record(episode("bring me the mug", objects=["Mug"]))
    memory.close()
    memory = open_memory(path, embedder)
    assert [e.instruction for e in memory.experience.all()] == ["bring me the mug"]
    memory.close()


BAD_EPISODES = {
    "empty instruction": (dict(instruction="   "), "bad_instruction"),
    "instruction not text": (dict(instruction=None), "bad_instruction"),
    "instruction too long": (dict(instruction="a" * 2001), "oversized"),
    "too many steps": (dict(plan=["wait()"] * 201), "oversized"),
    "step too long": (dict(plan=["say(" + "x" * 197 + ")"]), "oversized"),
    "empty step": (dict(plan=["open(Fridge)", " "]), "malformed"),
    "plan as one string": (dict(plan="open(Fridge); pick(Apple)"), "malformed"),
    "too many objects": (dict(objects=[f"Thing{i}" for i in range(101)]), "oversized"),
    "success not a bool": (dict(success="yes"), "malformed"),
    "started is NaN": (dict(started=float("nan")), "non_finite"),
    "finished is inf": (dict(finished=float("inf")), "non_finite"),
    "time not a number": (dict(started="noon"), "malformed"),
    "finished before started": (dict(started=10.0, finished=9.0), "bad_times"),
}


@pytest.mark.parametrize("case", list(BAD_EPISODES), ids=list(BAD_EPISODES))
def test_bad_episodes_are_rejected_and_change_nothing(tmp_path, embedder, case):
    fields, reason = BAD_EPISODES[case]
    path = tmp_path / "home.sqlite"
    memory = open_memory(path, embedder)
    memory.experience.record(episode("put the apple in the fridge", plan=FRIDGE_PLAN))
    before = memory.experience.all()
    bad = episode("wash the mug")
    for key, value in fields.items():
        setattr(bad, key, value)
    with pytest.raises(RejectedInput) as error:
        memory.experience.record(bad)
    assert error.value.reason == reason
    assert bad.episode_id == -1 and memory.experience.all() == before
    assert memory.counters[f"rejected.{reason}"] == 1
    assert instructions(memory.experience.similar("wash the mug", k=5)) == ["put the apple in the fridge"]
    memory.close()
    memory = open_memory(path, embedder)
    assert memory.experience.all() == before
    memory.close()


def test_limits_themselves_are_accepted(mem):
    at_limits = episode("a" * 2000, plan=["say(" + "x" * 195 + ")"] * 200, objects=[f"Thing{i}" for i in range(100)],
                        started=5.0, finished=5.0)
    assert mem.experience.record(at_limits) == 1 and len(mem.experience) == 1


def test_render_examples_is_compact_and_within_budget(mem):
    mem.experience.record(episode("turn on the TV", plan=["navigate_to(TV)", "toggle_on(TV)"], finished=1.0))
    mem.experience.record(episode("put the apple in the fridge", plan=FRIDGE_PLAN, finished=2.0))
    mem.experience.record(episode("chill an apple", plan=["pick(Apple)"], success=False, reason="apple not found",
                                  finished=3.0))
    query = "place an apple into the refrigerator"
    full = mem.experience.render_examples(query, k=3, token_budget=1000, successful_only=False)
    fridge = ("Task: put the apple in the fridge\nPlan: navigate_to(Fridge); open(Fridge); pick(Apple); "
              "place(Apple, Fridge); close(Fridge).\nOutcome: success")
    assert fridge in full
    assert "Task: chill an apple\nPlan: pick(Apple).\nOutcome: failure (apple not found)" in full
    assert full.index("put the apple") < full.index("chill an apple") < full.index("turn on the TV")
    assert "chill an apple" not in mem.experience.render_examples(query, k=3, token_budget=1000)  # failures off

    shown = []
    for budget in range(0, estimate_tokens(full) + 10, 5):
        text = mem.experience.render_examples(query, k=3, token_budget=budget, successful_only=False)
        assert estimate_tokens(text) <= budget
        shown.append(text.count("Task: "))
    assert shown[0] == 0 and shown[-1] == 3 and shown == sorted(shown)
    one = next(mem.experience.render_examples(query, 3, b, False) for b in range(200) if
               mem.experience.render_examples(query, 3, b, False))
    assert "put the apple in the fridge" in one and one.count("Task: ") == 1  # the best example fits first


def test_concurrent_records_get_distinct_ids(tmp_path, embedder):
    path = tmp_path / "home.sqlite"
    memory = open_memory(path, embedder)

    def robot(name: str) -> None:
        for i in range(25):
            memory.experience.record(episode(f"fetch item {i}", robot=name, finished=float(i)))

    threads = [threading.Thread(target=robot, args=(f"r{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.episode_id for e in memory.experience.all()) == list(range(1, 101))
    memory.close()
    memory = open_memory(path, embedder)
    assert len(memory.experience) == 100
    memory.close()
