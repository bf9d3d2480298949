"""`robomem qa` end to end, as a separate process, on a hand-written y-up (AI2-THOR) episode."""

import json
import subprocess
import sys

import pytest

MUG = {"label": "Mug", "size": [0.1, 0.1, 0.1], "confidence": 0.9}
COUNTER = {"label": "CounterTop", "center": [0.0, 0.45, 2.0], "size": [1.0, 0.9, 0.6], "confidence": 0.95}


def _view(yaw: float) -> dict:
    # y-up: yaw 0 faces +z, 180 faces -z (the spec's AI2-THOR convention)
    return {"position": [0.0, 1.5, 0.0], "yaw_deg": yaw, "fov_deg": 90.0, "range_m": 5.0}


def _observe(t: float, yaw: float, *objects: dict) -> dict:
    return {"kind": "observe", "t": t, "robot": "r1", "view": _view(yaw), "objects": list(objects)}


@pytest.fixture
def episode(tmp_path):
    events = [
        {"kind": "header", "version": 1, "scene": "hand-made", "up": "y", "source": "test"},
        _observe(1.0, 0.0, COUNTER, {**MUG, "center": [0.0, 0.95, 2.0]}),
        _observe(2.0, 0.0, COUNTER, {**MUG, "center": [0.02, 0.95, 2.01]}),
        _observe(10.0, 0.0, COUNTER),  # the mug's place is in view (straight ahead): it is not there
        _observe(11.0, 180.0, {**MUG, "center": [0.0, 0.95, -2.0]}),  # behind the start: the mug, moved
        {"kind": "observe", "t": 11.5, "robot": "r1", "objects": [{"label": "Mug", "center": [float("nan"), 0, 0]}]},
        {"kind": "ask", "t": 12.0, "id": "where", "question": {"type": "where_is", "label": "Mug"}},
        {"kind": "ask", "t": 12.0, "id": "was", "question": {"type": "where_was", "label": "Mug", "at": 2.5}},
        {"kind": "ask", "t": 12.0, "id": "seen", "question": {"type": "last_seen", "label": "Mug"}},
        {"kind": "ask", "t": 12.0, "id": "count", "question": {"type": "count", "label": "Mug"}},
        {"kind": "ask", "t": 12.0, "id": "changed", "question": {"type": "what_changed", "since": 5.0}},
        {"kind": "ask", "t": 12.0, "id": "contents", "question": {"type": "contents", "receptacle": "CounterTop"}},
        {"kind": "ask", "t": 12.0, "id": "teapot", "question": {"type": "where_is", "label": "Teapot"}},
        {"kind": "ask", "t": 12.0, "id": "bogus", "question": {"type": "what_is_love"}},
    ]
    path = tmp_path / "episode.jsonl"
    lines = [json.dumps(e) for e in events]
    lines.insert(3, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_robomem_qa_answers_a_hand_made_episode(episode, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = subprocess.run([sys.executable, "-m", "robomem.cli", "qa", str(episode), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "malformed_line" in result.stderr and "non_finite" in result.stderr
    answers = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert set(answers) == {"where", "was", "seen", "count", "changed", "contents", "teapot", "bogus"}
    assert all(row["ms"] >= 0 for row in answers.values())
    where = answers["where"]["answer"]
    assert where["center"] == pytest.approx([0.0, 0.95, -2.0], abs=0.05) and where["receptacle"] is None
    was = answers["was"]["answer"]
    assert was["center"] == pytest.approx([0.01, 0.95, 2.0], abs=0.05) and was["receptacle"] == "CounterTop"
    assert answers["seen"]["answer"] == {"t": 11.0}
    assert answers["count"]["answer"] == {"n": 1}, "moved, not a second mug: the y-up view cone saw its old place"
    assert answers["changed"]["answer"] == {"changes": [{"label": "Mug", "change": "moved"}]}
    assert answers["contents"]["answer"] == {"labels": []}
    assert answers["teapot"]["answer"] is None
    assert answers["bogus"]["answer"] is None


def test_qa_refuses_to_mix_an_episode_into_an_existing_memory(episode, tmp_path):
    db = tmp_path / "memory.sqlite"
    command = [sys.executable, "-m", "robomem.cli", "qa", str(episode), "--out", str(tmp_path / "a.jsonl"), "--db",
               str(db)]
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--append" in again.stderr
    assert subprocess.run([*command, "--append"], capture_output=True, timeout=120).returncode == 0
