"""The memory-QA baselines of benchmarks/ (naive last-detection memory, eMEM 0.3.0, and qa_wide's
``--baselines`` runner) on a small hand-made episode, worked out by hand, and on the bundled
robomem/data episodes, against expectations read straight from the episode files.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import naive_baseline as nb  # noqa: E402
import qa_wide  # noqa: E402
import vector_baseline as vb  # noqa: E402

from robomem.eval.scoring import read_jsonl, score_files, score_question  # noqa: E402

BUNDLED = vb.find_episodes([ROOT / "robomem" / "data"])
needs_emem = pytest.mark.skipif(importlib.util.find_spec("emem") is None,
                                reason="emem not installed (pip install -r requirements.txt: emem==0.3.0)")


def obj(label: str, center: list[float], size: list[float], state: dict | None = None,
        confidence: float = 0.9) -> dict[str, Any]:
    return {"label": label, "center": center, "size": size, "confidence": confidence, "state": state or {}}


def observe(t: float, *objects: dict[str, Any]) -> dict[str, Any]:
    view = {"position": [0.0, 0.0, 1.5], "yaw_deg": 0.0, "fov_deg": 90.0, "range_m": 4.0}
    return {"kind": "observe", "t": t, "robot": "r1", "view": view, "objects": list(objects)}


def ask(t: float, qid: str, **question: Any) -> dict[str, Any]:
    return {"kind": "ask", "t": t, "id": qid, "question": question}


COUNTER = ([0.0, 0.0, 0.45], [2.0, 1.0, 0.9])  # top at z = 0.9
CABINET = ([3.0, 0.0, 0.4], [0.6, 0.6, 0.8])  # top at z = 0.8
SMALL = [0.1, 0.1, 0.1]

# z-up. The Mug sits on the CounterTop (t=1, 2), then on the Cabinet 2.8 m away (t=10), which was
# opened. One Apple is seen at (5, 5) twice, a second one 9.5 m away only at t=10; a low-confidence
# Apple at t=2 is below the detector threshold. The SaltShaker is seen once (t=1) and at t=20 the
# camera looks at its place and does not see it (only the CounterTop): nothing here notices.
EPISODE = [
    {"kind": "header", "version": 1, "scene": "hand-made", "up": "z", "source": "tests/test_bench_baselines.py"},
    observe(1.0, obj("CounterTop", *COUNTER), obj("Cabinet", *CABINET, {"open": False}),
            obj("Mug", [0.2, 0.1, 0.95], SMALL), obj("Apple", [5.0, 5.0, 0.05], SMALL),
            obj("SaltShaker", [-0.5, 0.0, 0.95], SMALL)),
    observe(2.0, obj("Mug", [0.22, 0.1, 0.95], SMALL), obj("Apple", [9.0, 9.0, 0.05], SMALL, confidence=0.2)),
    ask(2.5, "contents_counter_early", type="contents", receptacle="CounterTop"),
    ask(2.5, "state_cabinet_early", type="state", label="Cabinet", key="open"),
    observe(10.0, obj("Cabinet", *CABINET, {"open": True}), obj("Mug", [3.0, 0.0, 0.85], SMALL),
            obj("Apple", [5.01, 5.0, 0.05], SMALL), obj("Apple", [-4.0, 2.0, 0.05], SMALL)),
    observe(20.0, obj("CounterTop", *COUNTER)),
    ask(21.0, "where_mug", type="where_is", label="Mug"),
    ask(21.0, "where_was_mug", type="where_was", label="Mug", at=2.0),
    ask(21.0, "where_salt", type="where_is", label="SaltShaker"),
    ask(21.0, "where_unseen", type="where_is", label="Laptop"),
    ask(21.0, "last_seen_counter", type="last_seen", label="CounterTop"),
    ask(21.0, "count_apple", type="count", label="Apple"),
    ask(21.0, "count_mug", type="count", label="Mug"),
    ask(21.0, "contents_counter", type="contents", receptacle="CounterTop"),
    ask(21.0, "contents_cabinet", type="contents", receptacle="Cabinet"),
    ask(21.0, "contents_unseen", type="contents", receptacle="Fridge"),
    ask(21.0, "state_cabinet", type="state", label="Cabinet", key="open"),
    ask(21.0, "changed", type="what_changed", since=5.0),
]


def run(memory: Any, tmp_path: Path, events: list[dict[str, Any]] = EPISODE) -> dict[str, Any]:
    """Answers by id of ``events`` replayed through ``memory`` by the runner qa_wide uses."""
    episode, out = tmp_path / "episode.jsonl", tmp_path / "answers.jsonl"
    episode.write_text("".join(json.dumps(e) + "\n" for e in events))
    try:
        vb.run_flat_episode(episode, out, memory)
    finally:
        memory.close()
    return {row["id"]: row["answer"] for row in read_jsonl(out)}


def changes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((c["label"], c["change"]) for c in answer["changes"])


# ---------------------------------------------------------------------- naive, hand-made
@pytest.fixture(scope="module")
def naive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(nb.NaiveLastDetectionMemory(), tmp_path_factory.mktemp("naive"))


def test_naive_where_is_is_the_last_detection_in_the_last_receptacle_box(naive: dict[str, Any]) -> None:
    assert naive["where_mug"] == {"center": [3.0, 0.0, 0.85], "receptacle": "Cabinet"}
    assert naive["where_was_mug"] == {"center": [0.22, 0.1, 0.95], "receptacle": "CounterTop"}
    assert naive["where_unseen"] is None


def test_naive_has_no_negative_evidence(naive: dict[str, Any]) -> None:
    # looked at at t=20 and not seen: still "on the counter"
    assert naive["where_salt"] == {"center": [-0.5, 0.0, 0.95], "receptacle": "CounterTop"}


def test_naive_counts_instances_by_half_metre_clusters(naive: dict[str, Any]) -> None:
    assert naive["count_apple"] == {"n": 2}  # (5, 5) twice and (-4, 2); the 0.2-confidence one dropped
    assert naive["count_mug"] == {"n": 2}  # the moved Mug leaves its old cluster behind


def test_naive_contents_use_each_labels_last_detection(naive: dict[str, Any]) -> None:
    assert naive["contents_counter_early"] == {"labels": ["Mug", "SaltShaker"]}
    assert naive["contents_counter"] == {"labels": ["SaltShaker"]}  # the Mug's last detection is on the Cabinet
    assert naive["contents_cabinet"] == {"labels": ["Mug"]}
    assert naive["contents_unseen"] is None


def test_naive_state_and_last_seen(naive: dict[str, Any]) -> None:
    assert naive["state_cabinet_early"] == {"value": False}
    assert naive["state_cabinet"] == {"value": True}
    assert naive["last_seen_counter"] == {"t": 20.0}


def test_naive_what_changed_compares_last_detections_across_since(naive: dict[str, Any]) -> None:
    # the Apple's last detection jumps to the second Apple 9 m away: a move, by design
    assert changes(naive["changed"]) == [("Apple", "moved"), ("Cabinet", "opened"), ("Mug", "moved")]


# ---------------------------------------------------------------------- eMEM, hand-made
@pytest.fixture(scope="module")
def emem(text_model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import emem_baseline

    return run(emem_baseline.EmemMemory(text_model), tmp_path_factory.mktemp("emem"))


@needs_emem
def test_emem_merges_detections_into_its_entities(emem: dict[str, Any]) -> None:
    # eMEM's association: same name within 5 m is one entity that follows the latest detection
    assert emem["count_mug"] == {"n": 1}
    assert emem["count_apple"] == {"n": 2}  # 9.5 m apart: two entities
    assert emem["where_mug"] == {"center": [3.0, 0.0, 0.85], "receptacle": "Cabinet"}
    assert emem["where_was_mug"] == {"center": [0.22, 0.1, 0.95], "receptacle": "CounterTop"}
    assert emem["where_unseen"] is None


@needs_emem
def test_emem_does_not_notice_a_removed_object(emem: dict[str, Any]) -> None:
    assert emem["where_salt"] == {"center": [-0.5, 0.0, 0.95], "receptacle": "CounterTop"}


@needs_emem
def test_emem_contents_state_last_seen_and_changes(emem: dict[str, Any]) -> None:
    assert emem["contents_counter_early"] == {"labels": ["Mug", "SaltShaker"]}
    assert emem["contents_counter"] == {"labels": ["SaltShaker"]}
    assert emem["contents_cabinet"] == {"labels": ["Mug"]}
    assert emem["contents_unseen"] is None
    assert emem["state_cabinet_early"] == {"value": False}
    assert emem["state_cabinet"] == {"value": True}
    assert emem["last_seen_counter"] == {"t": 20.0}
    # per entity: the Mug moved, the first Apple did not, the second has no sighting before t=5
    assert changes(emem["changed"]) == [("Cabinet", "opened"), ("Mug", "moved")]


# ---------------------------------------------------------------------- the bundled episodes
def last_detections(episode: Path, min_confidence: float = 0.5) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(where_is question event, last confident detection of its label before it, or {}) from the file."""
    last: dict[str, dict[str, Any]] = {}
    out = []
    for event in read_jsonl(episode):
        if event["kind"] == "observe":
            for o in event["objects"]:
                if o.get("confidence", 1.0) >= min_confidence:
                    last[o["label"]] = {**o, "t": event["t"]}
        elif event["kind"] == "ask" and event["question"]["type"] == "where_is" \
                and "near" not in event["question"]:
            out.append((event, dict(last.get(event["question"]["label"], {}))))
    return out


def answers_of(memory_factory: Any, tmp_path: Path) -> list[tuple[Path, dict[str, Any], list[dict[str, Any]]]]:
    """(episode, answers by id, truth records) of each bundled episode."""
    out = []
    for episode, truth in BUNDLED:
        answers = tmp_path / f"{episode.stem}.answers.jsonl"
        memory = memory_factory()
        try:
            vb.run_flat_episode(episode, answers, memory)
        finally:
            memory.close()
        out.append((episode, {r["id"]: r for r in read_jsonl(answers)}, read_jsonl(truth)))
    return out


def removed_but_seen(episode: Path, truth: list[dict[str, Any]]) -> list[str]:
    """Ids of where_is questions whose truth is 'gone' while the label had been detected before."""
    seen = {event["id"]: bool(last) for event, last in last_detections(episode)}
    return [r["id"] for r in truth if r["type"] == "where_is" and r["truth"] is None and seen.get(r["id"])]


def test_bundled_episodes_are_there() -> None:
    assert len(BUNDLED) == 4


def test_naive_answers_where_is_with_the_last_detection_on_bundled_episodes(tmp_path: Path) -> None:
    checked = 0
    for episode, answers, _ in answers_of(nb.NaiveLastDetectionMemory, tmp_path):
        for event, last in last_detections(episode):
            got = answers[event["id"]]["answer"]
            if not last:
                assert got is None, event
                continue
            assert math.dist(got["center"], last["center"]) < 1e-3, (event, last)
            checked += 1
    assert checked > 50


def test_naive_and_emem_answer_the_removed_objects_on_bundled_episodes(text_model: Any, tmp_path: Path) -> None:
    if importlib.util.find_spec("emem") is None:
        pytest.skip("emem not installed (pip install -r requirements.txt: emem==0.3.0)")
    import emem_baseline

    for factory in (nb.NaiveLastDetectionMemory, lambda: emem_baseline.EmemMemory(text_model)):
        removed = 0
        for episode, answers, truth in answers_of(factory, tmp_path):
            for qid in removed_but_seen(episode, truth):
                assert answers[qid]["answer"] is not None, (episode.name, qid)  # believed still there
                removed += 1
            # every question answered, every answer of a shape the scorer reads
            assert {r["id"] for r in truth} == set(answers)
            for record in truth:
                assert 0.0 <= score_question(answers[record["id"]], record) <= 1.0
        assert removed >= 5


def expected_shape(qtype: str, answer: Any) -> bool:
    if answer is None:
        return True
    keys = {"where_is": {"center", "receptacle"}, "where_was": {"center", "receptacle"}, "last_seen": {"t"},
            "contents": {"labels"}, "state": {"value"}, "count": {"n"}, "what_changed": {"changes"}}[qtype]
    if set(answer) != keys:
        return False
    if "center" in answer:
        return len(answer["center"]) == 3 and all(isinstance(v, float | int) for v in answer["center"])
    if qtype == "count":
        return isinstance(answer["n"], int) and answer["n"] >= 0
    if qtype == "contents":
        return all(isinstance(label, str) for label in answer["labels"])
    return True


@pytest.mark.parametrize("name", ["naive", pytest.param("emem", marks=needs_emem),
                                  pytest.param("vector", marks=pytest.mark.slow)])
def test_qa_wide_runs_each_baseline_on_the_bundled_episodes(name: str, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    if qa_wide.missing_packages([name]):
        pytest.skip("; ".join(qa_wide.missing_packages([name])))
    if name != "naive":
        request.getfixturevalue("text_model")  # (skips without the offline text model)
    rows = []
    for episode, truth in BUNDLED:
        copy = tmp_path / episode.name
        copy.write_text(episode.read_text())
        rows.append((copy, truth, qa_wide.room_type(read_jsonl(episode)[0]["scene"])))
    result = qa_wide.run_baseline(name, rows, tmp_path, workers=1)
    n_truth = sum(len(read_jsonl(t)) for _, t, _ in rows)
    assert result["n_questions"] == n_truth and result["missing"] == 0
    assert set(result["per_room_type"]) == {"kitchen", "living_room", "bedroom", "bathroom"}
    for (episode, truth, _) in rows:
        answers = {r["id"]: r for r in read_jsonl(episode.with_suffix(f".{name}.answers"))}
        for record in read_jsonl(truth):
            assert expected_shape(record["type"], answers[record["id"]]["answer"]), (name, record["id"])
    # the stored answers score to the reported figure
    again = score_files([str(e.with_suffix(f".{name}.answers")) for e, _, _ in rows], [str(t) for _, t, _ in rows])
    assert result["overall"] == pytest.approx(again["overall"])
    # a memory that cannot tell gone from seen gets the null-truth questions it saw wrong
    assert result["null_truth"]["accuracy"] < 1.0
