"""Short-term memory: each replacement policy evicts what it should; eviction loses nothing."""

import pytest
from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.short_term import LFUPolicy, LRUPolicy, ScorePolicy, ShortTermMemory, make_policy
from robomem.core.types import ChangeEvent


def _stm(policy, capacity=3):
    durable: list[ChangeEvent] = []
    return ShortTermMemory(capacity, policy, durable.extend), durable


def _event(i: int, change: str = "moved") -> ChangeEvent:
    return ChangeEvent(float(i), i, f"Obj{i}", change, {}, i)


def test_lru_evicts_least_recently_used():
    stm, _ = _stm(LRUPolicy())
    for i in (1, 2, 3):
        stm.add(_event(i))
    stm.touch([1])
    stm.add(_event(4))
    assert sorted(e.event_id for e in stm.events()) == [1, 3, 4]


def test_lfu_evicts_least_frequently_used():
    stm, _ = _stm(LFUPolicy())
    for i in (1, 2, 3):
        stm.add(_event(i))
    stm.touch([1, 2])
    stm.touch([1, 2])
    stm.touch([3])
    stm.add(_event(4))
    assert 3 not in stm and {1, 2, 4} <= {e.event_id for e in stm.events()}


def test_score_policy_weighs_relevance_against_recency_and_frequency():
    stm, _ = _stm(ScorePolicy(half_life=100.0))
    stm.add(_event(1, "state"))  # low relevance
    stm.add(_event(2, "moved"))
    stm.add(_event(3, "moved"))
    stm.add(_event(4, "moved"))
    assert 1 not in stm, "a minor state change leaves before moves of similar age"
    stm2, _ = _stm(ScorePolicy(half_life=100.0))
    stm2.add(_event(1, "state"))
    stm2.add(_event(2, "moved"))
    stm2.add(_event(3, "moved"))
    for _ in range(6):
        stm2.touch([1])
    stm2.add(_event(4, "moved"))
    assert 1 in stm2, "frequent retrieval keeps it"


def test_eviction_consolidates_first_so_nothing_is_lost():
    stm, durable = _stm(LRUPolicy(), capacity=2)
    for i in range(1, 6):
        stm.add(_event(i))
    stm.consolidate()
    assert len(stm) == 2
    assert sorted(e.event_id for e in durable) == [1, 2, 3, 4, 5]
    assert stm.evictions == 3


def test_unknown_policy_and_bad_capacity_are_refused():
    with pytest.raises(ValueError, match="unknown replacement policy"):
        make_policy("fifo-ish")
    with pytest.raises(ValueError):
        ShortTermMemory(0, LRUPolicy(), lambda events: None)


@pytest.mark.parametrize("policy", ["lru", "lfu", "score"])
def test_memory_changes_reach_long_term_storage_whatever_the_policy(tmp_path, policy):
    config = MemoryConfig(db_path=str(tmp_path / "m.sqlite"), stm_capacity=2, stm_policy=policy)
    view = looking(0, 0, fov=360)
    with Memory(config) as memory:
        for t in range(3):
            memory.ingest(frame(t, view, *(det(label, 2, y, open=False) for y, label in enumerate(["Fridge", "Box"]))))
            memory.ingest(frame(t + 0.5, view, det("Drawer", 2, 3, open=False)))
        for t in range(5, 8):  # three openings: more events than the buffer holds
            memory.ingest(frame(t, view, det("Fridge", 2, 0, open=True), det("Box", 2, 1, open=True),
                                det("Drawer", 2, 3, open=True)))
        assert len(memory.stm) == 2
    reopened = Memory(MemoryConfig(db_path=config.db_path))
    stored = reopened.store.load().events
    assert sorted(e.label for e in stored if e.change == "opened") == ["Box", "Drawer", "Fridge"]
    reopened.close()
