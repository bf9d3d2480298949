"""Object states: booleans, noisy numeric states (AI2-THOR openness), and the changes they make."""

import pytest
from frames import det, frame, looking

from robomem.core.states import change_kind, differs, is_open


@pytest.mark.parametrize(
    ("key", "old", "new", "expected"),
    [
        ("open", False, True, "opened"),
        ("open", True, False, "closed"),
        ("on", False, True, "turned_on"),
        ("dirty", False, True, "state"),
        ("openness", 0.10, 0.90, "opened"),
        ("openness", 0.82, 0.20, "closed"),
        ("openness", 0.54, 0.82, None),  # a partial change below 0.3 is no open/close
        ("openness", 0.54, 0.56, None),  # noise
        ("temperature", 20.0, 20.01, None),
        ("temperature", 20.0, 25.0, "state"),
        ("open", None, True, None),  # first observation: no change
    ],
)
def test_change_kind(key, old, new, expected):
    assert change_kind(key, old, new, tolerance=0.05, fraction_change=0.3) == expected


def test_differs_and_is_open():
    assert not differs(0.5, 0.52, 0.05) and differs(0.5, 0.6, 0.05)
    assert differs(True, 1, 0.05), "a bool and a number are different observations"
    assert is_open({"openness": 0.4}) is True and is_open({"openness": 0.0}) is False
    assert is_open({"open": False, "openness": 0.9}) is False, "the boolean wins"
    assert is_open({}) is None


def test_noisy_openness_makes_no_history_and_no_change(memory):
    view = looking(0, 0)
    for t, openness in enumerate([0.54, 0.55, 0.53, 0.56, 0.54]):
        memory.ingest(frame(t, view, det("Drawer", 2, 0, 0.5, openness=openness)))
    drawer = next(iter(memory.tracks.values()))
    assert len(drawer.history("state:openness")) == 1
    for t, openness in enumerate([0.95, 0.94, 0.96], start=10):
        memory.ingest(frame(t, view, det("Drawer", 2, 0, 0.5, openness=openness)))
    assert [(c.label, c.change) for c in memory.what_changed(since=5)] == [("Drawer", "opened")]
    assert memory.state("Drawer", "openness") == pytest.approx(0.95)


def test_state_keys_are_one_key_whatever_the_detector_calls_them(memory):
    view = looking(0.0, 0.0)
    for t in (1.0, 2.0):
        memory.ingest(frame(t, view, det("Fridge", 2.0, 0.0, 0.9, isOpen=True, isToggled=False)))
    assert memory.state("Fridge", "open") is True  # observed as AI2-THOR's isOpen
    assert memory.state("Fridge", "is_open") is True
    assert memory.state("Fridge", "on") is False
    assert memory.knows_state_key("isOpen") and memory.knows_state_key("dirty")
    assert not memory.knows_state_key("flavour")  # neither known nor ever observed
    memory.ingest(frame(3.0, view, det("Fridge", 2.0, 0.0, 0.9, open=False)))
    closed = [c for c in memory.what_changed(2.5) if c.change == "closed"]
    assert len(closed) == 1 and closed[0].t == 3.0  # one key: isOpen True then open False is a closing


def test_changes_carry_when_and_where_from_and_to(memory):
    view = looking(0.0, 0.0)
    for t in (1.0, 2.0, 3.0):
        memory.ingest(frame(t, view, det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 2.0, 0.3, 0.95)))
    for t in (10.0, 11.0, 12.0):
        memory.ingest(frame(t, view, det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 2.0, -0.6, 0.95)))
    moved = [c for c in memory.what_changed(5.0) if c.change == "moved"]
    assert len(moved) == 1 and moved[0].label == "Mug"
    assert moved[0].t == 10.0
    assert abs(moved[0].before[1] - 0.3) < 0.05 and abs(moved[0].after[1] + 0.6) < 0.05
    assert moved[0].track_id == memory.where_is("Mug").track_id
