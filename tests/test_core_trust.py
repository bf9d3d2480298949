"""Trust and quarantine (issue 15's attacks): reports from untrusted sources and physically implausible
ones are held, visible through Memory.quarantined(), never believed unless a trusted source confirms them."""

import numpy as np
import pytest
from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.types import RejectedInput, make_detection


def _memory(tmp_path, **config) -> Memory:
    return Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite"), **config))


def _kitchen(memory: Memory, t0: float = 1.0, robot: str = "r1") -> None:
    """A fridge, a counter and a mug on it, seen by ``robot`` five times."""
    for k in range(5):
        memory.ingest(frame(t0 + k, looking(0, 0), det("Fridge", 2.5, 1.5, 0.9), det("CounterTop", 2, 0, 0.45),
                            det("Mug", 2, 0, 0.95), robot=robot))


def _answers(memory: Memory) -> list:
    return [
        [o.to_dict() for o in (memory.where_is(label) for label in ("Fridge", "Mug", "Knife")) if o is not None],
        [memory.count(label) for label in ("Fridge", "Mug", "Knife", "Bowl")],
        sorted(o.label for o in memory.contents("CounterTop")),
    ]


def test_a_phantom_fridge_from_an_untrusted_robot_is_held_not_believed(tmp_path):
    """Issue 15: one batch from another robot id with a fridge 10 m away made two fridges."""
    memory = _memory(tmp_path, source_trust={"r1": 1.0}, default_source_trust=0.0)
    _kitchen(memory)
    before = _answers(memory)
    phantom = make_detection("Fridge", (12.5, 1.5, 0.9), (0.8, 0.8, 1.8), 0.95)
    for t in range(6, 9):
        assert memory.ingest(frame(t, looking(10, 0), phantom, robot="intruder")) == []
    assert _answers(memory) == before
    held = memory.quarantined()
    assert len(held) == 1, "the same report again is refreshed, not held twice"
    assert (held[0].source, held[0].label, held[0].reason) == ("intruder", "Fridge", "untrusted_source")
    assert np.allclose(held[0].center, (12.5, 1.5, 0.9))
    stats = memory.stats()
    assert stats["sources"]["intruder"]["trusted"] is False and stats["quarantined"] == 1
    assert memory.counters["quarantine.untrusted_source"] == 3
    memory.close()
    reopened = _memory(tmp_path)
    assert reopened.count("Fridge") == 1, "nothing of it reached the file"
    reopened.close()


def test_an_allowlist_refuses_other_sources_and_keeps_them_out_of_the_stats(tmp_path):
    memory = _memory(tmp_path, source_allowlist=["r1"])
    _kitchen(memory)
    with pytest.raises(RejectedInput, match="unknown_source"):
        memory.ingest(frame(7, looking(0, 0), det("Mug", 3, 1), robot="r2"))
    assert sorted(memory.stats()["sources"]) == ["r1"]
    assert memory.counters["rejected.unknown_source"] == 1
    memory.close()


def test_an_untrusted_report_confirmed_by_a_trusted_robot_is_believed(tmp_path):
    memory = _memory(tmp_path, source_trust={"r1": 1.0, "visitor": 0.2})
    _kitchen(memory)
    apple = det("Apple", 2.2, 0.3, 0.95)
    memory.ingest(frame(7, looking(0, 0), apple, robot="visitor"))
    assert memory.count("Apple") == 0 and len(memory.quarantined()) == 1
    for t in (8, 9):
        memory.ingest(frame(t, looking(0, 0), det("Fridge", 2.5, 1.5, 0.9), det("CounterTop", 2, 0, 0.45),
                            det("Mug", 2, 0, 0.95), det("Apple", 2.21, 0.3, 0.95), robot="r1"))
    assert memory.count("Apple") == 1
    assert memory.quarantined() == [] and memory.counters["quarantine.confirmed"] == 1
    memory.close()


def test_fifty_phantom_knives_in_one_frame_are_held_and_expire(tmp_path):
    """Issue 15: 50 phantom knives: count 50, and the 25 out of view never went."""
    memory = _memory(tmp_path, quarantine_ttl_s=60.0)
    _kitchen(memory)
    before = _answers(memory)
    knives = [make_detection("Knife", (1.5 + 0.3 * (i % 5), -1.0 + 0.4 * (i // 5), 1.0), (0.2, 0.03, 0.02), 0.95)
              for i in range(25)]
    knives += [make_detection("Knife", (-3.0 - 0.3 * (i % 5), -4 + 0.4 * (i // 5), 1.0), (0.2, 0.03, 0.02), 0.95)
               for i in range(25)]  # behind the camera: no later view refutes them
    memory.ingest(frame(6, None, *knives))
    assert _answers(memory) == before
    assert memory.count("Knife") == 0
    assert {r.reason for r in memory.quarantined()} == {"burst_same_label"} and len(memory.quarantined()) == 50
    for t in range(7, 200):  # the robot keeps working; the knives never show up again
        memory.ingest(frame(t, looking(0, 0), det("Fridge", 2.5, 1.5, 0.9), det("CounterTop", 2, 0, 0.45),
                            det("Mug", 2, 0, 0.95)))
    assert memory.quarantined() == [], "held reports expire"
    assert memory.counters["quarantine.expired"] == 50
    assert memory.count("Knife") == 0
    memory.close()


def test_a_real_shelf_of_books_is_believed_once_seen_again(tmp_path):
    """A burst is held, not refused: the same books seen again by the camera are believed."""
    memory = _memory(tmp_path)
    books = [det("Book", 3 + 0.25 * i, -1.0, 0.5) for i in range(12)]
    for t in range(3):
        memory.ingest(frame(t, looking(0, 0, fov=120), *books))
    assert memory.count("Book") == 12
    assert memory.quarantined() == []
    memory.close()


def test_a_box_larger_than_its_room_is_held(tmp_path):
    """Issue 15: one 49 m box made all objects 'in' a bowl; with rooms known, a box larger than its room."""
    rooms = [{"name": "kitchen", "min": [-1, -3], "max": [5, 3]}]
    memory = _memory(tmp_path, rooms=rooms)
    _kitchen(memory)
    before = _answers(memory)
    for t in (6, 7):
        memory.ingest(frame(t, looking(0, 0), make_detection("DiningTable", (2, 0, 0.4), (11, 2, 0.8), 0.95),
                            det("Fridge", 2.5, 1.5, 0.9), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95)))
    assert _answers(memory)[1:] == before[1:]
    assert memory.count("DiningTable") == 0
    assert memory.quarantined()[0].reason == "larger_than_room"
    memory.close()


def test_furniture_does_not_teleport(tmp_path):
    """The fridge memory knows is in view and undetected while 'a fridge' shows up 3 m away: held."""
    memory = _memory(tmp_path)
    _kitchen(memory)
    before = _answers(memory)
    for t in (6, 7):
        memory.ingest(frame(t, looking(0, 0), det("CounterTop", 2, 0, 0.45), det("Mug", 2, 0, 0.95),
                            make_detection("Fridge", (3.5, -1.5, 0.9), (0.8, 0.8, 1.8), 0.95)))
    assert _answers(memory)[1] == before[1]
    assert np.allclose(memory.where_is("Fridge").center, (2.5, 1.5, 0.9), atol=0.05)
    assert {r.reason for r in memory.quarantined()} == {"furniture_teleport"}
    memory.close()


def test_one_source_moving_an_object_that_two_others_see_in_place_is_outvoted(tmp_path):
    memory = _memory(tmp_path)
    view = looking(0, 0)
    for k in range(4):  # two robots see the mug on the counter
        for robot in ("r1", "r2"):
            memory.ingest(frame(1 + k + (0.5 if robot == "r2" else 0), view, det("CounterTop", 2, 0, 0.45),
                                det("Mug", 2, 0, 0.95), robot=robot))
    for t in (6, 7, 8):  # a third says: no mug on the counter, it is on the table over there
        memory.ingest(frame(t, view, det("CounterTop", 2, 0, 0.45), det("DiningTable", 2, -1.5, 0.4),
                            det("Mug", 2, -1.5, 0.85), robot="liar"))
    assert np.allclose(memory.where_is("Mug").center[:2], (2, 0), atol=0.05)
    assert memory.count("Mug") <= 1 and memory.counters["quarantine.outvoted"] >= 1
    memory.close()
