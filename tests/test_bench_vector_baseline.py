"""The flat vector-store baseline (benchmarks/vector_baseline.py) on tiny hand-made episodes.

Answers are worked out by hand from the rules of the baseline, including the places where a flat
store is wrong by design (no data association, no negative evidence).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chromadb", reason="chromadb is a benchmark-only dependency (requirements-bench.txt)")

from robomem.qa import Frame  # noqa: E402

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "vector_baseline.py"


def _load_module() -> Any:
    spec = importlib.util.spec_from_file_location("vector_baseline", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


vb = _load_module()


def obj(label: str, center: list[float], size: list[float], state: dict | None = None,
        confidence: float = 0.9) -> dict[str, Any]:
    return {"label": label, "center": center, "size": size, "confidence": confidence, "state": state or {}}


VIEW = {"position": [0.0, 0.0, 1.5], "yaw_deg": 0.0, "fov_deg": 90.0, "range_m": 4.0}
COUNTER = ([0.0, 0.0, 0.45], [2.0, 1.0, 0.9])  # top at z = 0.9
CABINET = ([3.0, 0.0, 0.4], [0.6, 0.6, 0.8])  # top at z = 0.8
SMALL = [0.1, 0.1, 0.1]

# z-up: a Mug on the CounterTop (t=1, 2) is later seen on the Cabinet (t=10), which was opened;
# one Apple is seen twice at one place, a second Apple only at t=10 far away; a low-confidence
# Apple at t=2 is dropped by the detector threshold.
OBSERVATIONS = [
    {"kind": "observe", "t": 1.0, "robot": "r1", "view": VIEW, "objects": [
        obj("CounterTop", *COUNTER), obj("Cabinet", *CABINET, {"open": False}),
        obj("Mug", [0.2, 0.1, 0.95], SMALL), obj("Apple", [5.0, 5.0, 0.05], SMALL)]},
    {"kind": "observe", "t": 2.0, "robot": "r1", "view": VIEW, "objects": [
        obj("Mug", [0.21, 0.1, 0.95], SMALL), obj("Apple", [9.0, 9.0, 0.05], SMALL, confidence=0.2)]},
    {"kind": "observe", "t": 10.0, "robot": "r1", "view": VIEW, "objects": [
        obj("Cabinet", *CABINET, {"open": True}), obj("Mug", [3.0, 0.0, 0.85], SMALL),
        obj("Apple", [5.01, 5.0, 0.05], SMALL), obj("Apple", [-4.0, 2.0, 0.05], SMALL)]},
]


@pytest.fixture(scope="module")
def memory() -> Any:
    mem = vb.FlatVectorMemory()
    frame = Frame("z")
    for event in OBSERVATIONS:
        mem.observe(event, frame)
    yield mem
    mem.close()


def ask(mem: Any, t: float, **question: Any) -> Any:
    return mem.answer(question, t, Frame("z"))


def test_every_confident_detection_is_one_record(memory: Any) -> None:
    assert memory.collection.count() == 9  # 10 detections, one below min_confidence
    doc = memory.collection.get(where={"t": 2.0}, include=["documents"])["documents"]
    assert doc == ["Mug at (0.21, 0.10, 0.95), seen at t=2.0"]


def test_where_is_gives_latest_position_and_receptacle_below(memory: Any) -> None:
    assert ask(memory, 12.0, type="where_is", label="Mug") == {"center": [3.0, 0.0, 0.85], "receptacle": "Cabinet"}
    # only records with t <= question time are used
    assert ask(memory, 5.0, type="where_is", label="Mug") == {"center": [0.21, 0.1, 0.95],
                                                              "receptacle": "CounterTop"}
    assert ask(memory, 12.0, type="where_is", label="Toaster") is None
    near = ask(memory, 12.0, type="where_is", label="Apple", near=[-3.5, 2.0, 0.0])
    assert near["center"] == [-4.0, 2.0, 0.05]


def test_where_was_last_seen_and_state(memory: Any) -> None:
    assert ask(memory, 12.0, type="where_was", label="Mug", at=5.0)["center"] == [0.21, 0.1, 0.95]
    assert ask(memory, 12.0, type="last_seen", label="Mug") == {"t": 10.0}
    assert ask(memory, 5.0, type="last_seen", label="Mug") == {"t": 2.0}
    assert ask(memory, 12.0, type="state", label="Cabinet", key="open") == {"value": True}
    assert ask(memory, 5.0, type="state", label="Cabinet", key="open") == {"value": False}
    assert ask(memory, 12.0, type="state", label="Mug", key="open") is None


def test_count_clusters_positions(memory: Any) -> None:
    assert ask(memory, 12.0, type="count", label="Apple") == {"n": 2}  # two places > 0.5 m apart
    assert ask(memory, 5.0, type="count", label="Apple") == {"n": 1}
    # no data association: the moved Mug's old place still counts (the limitation being measured)
    assert ask(memory, 12.0, type="count", label="Mug") == {"n": 2}
    assert ask(memory, 12.0, type="count", label="Toaster") == {"n": 0}


def test_contents_from_box_footprint(memory: Any) -> None:
    assert ask(memory, 12.0, type="contents", receptacle="Cabinet") == {"labels": ["Mug"]}
    # no negative evidence: the Mug's old records still lie on the CounterTop
    assert ask(memory, 12.0, type="contents", receptacle="CounterTop") == {"labels": ["Mug"]}
    assert ask(memory, 5.0, type="contents", receptacle="Cabinet") == {"labels": []}
    assert ask(memory, 12.0, type="contents", receptacle="Fridge") is None


def test_what_changed(memory: Any) -> None:
    changes = ask(memory, 12.0, type="what_changed", since=5.0)["changes"]
    assert sorted((c["label"], c["change"]) for c in changes) == [("Cabinet", "opened"), ("Mug", "moved")]
    assert ask(memory, 12.0, type="what_changed", since=0.5, until=2.0) == {"changes": []}


def test_y_up_episode_file_round_trip(tmp_path: Path) -> None:
    episode = tmp_path / "tiny.jsonl"
    events = [
        {"kind": "header", "version": 1, "scene": "test", "up": "y"},
        {"kind": "observe", "t": 1.0, "robot": "r1",
         "view": {"position": [0.0, 1.5, 0.0], "yaw_deg": 0.0, "fov_deg": 90.0, "range_m": 4.0},
         "objects": [obj("DiningTable", [1.2, 0.4, -0.6], [1.0, 0.8, 1.0]), obj("Mug", [1.2, 0.9, -0.6], SMALL)]},
        {"kind": "ask", "t": 2.0, "id": "q1", "question": {"type": "where_is", "label": "Mug"}},
        {"kind": "ask", "t": 2.0, "id": "q2", "question": {"type": "where_is"}},
    ]
    episode.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tmp_path / "answers.jsonl"
    mem = vb.FlatVectorMemory()
    try:
        stats = vb.run_flat_episode(episode, out, mem)
    finally:
        mem.close()
    rows = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert rows["q1"]["answer"] == {"center": [1.2, 0.9, -0.6], "receptacle": "DiningTable"}
    assert rows["q2"]["answer"] is None  # malformed question: no answer, no crash
    assert rows["q1"]["ms"] >= 0.0
    assert (stats.observations, stats.questions) == (1, 2)
