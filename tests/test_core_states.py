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
