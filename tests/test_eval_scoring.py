"""Scoring rules of the memory-QA spec, checked on hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robomem.eval.cli import add_eval_commands
from robomem.eval.scoring import (
    multiset_f1,
    receptacle_score,
    score,
    score_files,
    score_question,
)


def rec(qid: str, qtype: str, truth, **extra) -> dict:
    return {"id": qid, "type": qtype, "question": {"type": qtype}, "truth": truth, **extra}


def ans(qid: str, answer, ms: float = 1.0) -> dict:
    return {"id": qid, "answer": answer, "ms": ms}


WHERE = {"center": [1.0, 0.9, -0.5], "receptacle": "Drawer"}


def test_multiset_f1_by_hand() -> None:
    # overlap {Mug, Apple} = 2; precision 2/3, recall 2/3
    assert multiset_f1(["Mug", "Mug", "Apple"], ["Mug", "Apple", "Bowl"]) == pytest.approx(2 / 3)
    # duplicates count: one Mug predicted vs two true -> P=1, R=1/2, F1=2/3
    assert multiset_f1(["Mug"], ["Mug", "Mug"]) == pytest.approx(2 / 3)
    assert multiset_f1([], []) == 1.0
    assert multiset_f1(["Mug"], []) == 0.0
    assert multiset_f1([], ["Mug"]) == 0.0


def test_where_is_center_threshold() -> None:
    truth = rec("q1", "where_is", WHERE, receptacle_chain=["Drawer", "Dresser"])
    near = ans("q1", {"center": [1.0, 0.9 + 0.49, -0.5], "receptacle": None})
    far = ans("q1", {"center": [1.0 + 0.3, 0.9 + 0.41, -0.5], "receptacle": "Drawer"})  # 0.51 m
    assert score_question(near, truth) == 1.0
    assert score_question(far, truth) == 0.0
    bad = ans("q1", {"center": [1.0, "x", -0.5], "receptacle": "Drawer"})
    assert score_question(bad, truth) == 0.0


def test_receptacle_any_on_chain_and_null_handling() -> None:
    truth = rec("q1", "where_was", WHERE, receptacle_chain=["Drawer", "Dresser"])
    for named, want in (("Drawer", 1.0), ("Dresser", 1.0), ("Bed", 0.0), (None, 0.0)):
        row = ans("q1", {"center": [9.0, 9.0, 9.0], "receptacle": named})
        assert receptacle_score(row, truth) == want
        assert score_question(row, truth) == 0.0  # center still judged on its own
    assert receptacle_score(ans("q1", None), truth) == 0.0
    assert receptacle_score(None, truth) == 0.0
    no_chain = rec("q2", "where_is", {"center": [0, 0, 0], "receptacle": None}, receptacle_chain=[])
    assert receptacle_score(ans("q2", {"center": [0, 0, 0], "receptacle": "Sofa"}), no_chain) is None
    assert receptacle_score(ans("q3", None), rec("q3", "where_is", None)) is None


def test_null_answers_and_missing() -> None:
    null_truth = rec("q1", "last_seen", None)
    assert score_question(ans("q1", None), null_truth) == 1.0
    assert score_question(ans("q1", {"t": 3.0}), null_truth) == 0.0
    assert score_question(None, null_truth) == 0.0  # missing answer: wrong
    real = rec("q2", "last_seen", {"t": 10.0})
    assert score_question(ans("q2", None), real) == 0.0


def test_last_seen_state_count() -> None:
    seen = rec("q1", "last_seen", {"t": 10.0})
    assert score_question(ans("q1", {"t": 10.5}), seen) == 1.0
    assert score_question(ans("q1", {"t": 9.45}), seen) == 0.0
    state = rec("q2", "state", {"value": True})
    assert score_question(ans("q2", {"value": True}), state) == 1.0
    assert score_question(ans("q2", {"value": False}), state) == 0.0
    assert score_question(ans("q2", {"value": 1}), state) == 0.0  # not a bool
    count = rec("q3", "count", {"n": 3})
    assert score_question(ans("q3", {"n": 3}), count) == 1.0
    assert score_question(ans("q3", {"n": 2}), count) == 0.0
    assert score_question(ans("q3", {"n": True}), count) == 0.0


def test_contents_and_what_changed_f1() -> None:
    contents = rec("q1", "contents", {"labels": ["Apple", "Egg", "Egg"]})
    # predicted {Apple, Egg, Lettuce}: overlap 2 -> P=2/3, R=2/3
    assert score_question(ans("q1", {"labels": ["Apple", "Egg", "Lettuce"]}), contents) == pytest.approx(2 / 3)
    assert score_question(ans("q1", {"labels": [["odd"]]}), contents) == 0.0
    changed = rec("q2", "what_changed", {"changes": [
        {"label": "Apple", "change": "moved"}, {"label": "Fridge", "change": "opened"}]})
    answer = {"changes": [{"label": "Apple", "change": "moved"},
                          {"label": "Fridge", "change": "state"},
                          {"label": "Mug", "change": "disappeared"}]}
    # overlap 1 -> P=1/3, R=1/2 -> F1 = 2*(1/6)/(5/6) = 0.4
    assert score_question(ans("q2", answer), changed) == pytest.approx(0.4)
    empty = rec("q3", "what_changed", {"changes": []})
    assert score_question(ans("q3", {"changes": []}), empty) == 1.0
    assert score_question(ans("q3", None), empty) == 0.0


def test_aggregate_score() -> None:
    truth = [
        rec("q1", "where_is", WHERE, receptacle_chain=["Drawer", "Dresser"]),
        rec("q2", "where_is", None),
        rec("q3", "count", {"n": 2}),
        rec("q4", "contents", {"labels": ["Apple", "Egg"]}),
    ]
    answers = [
        ans("q1", {"center": [1.1, 0.9, -0.5], "receptacle": "Dresser"}, ms=1.0),
        ans("q2", None, ms=3.0),
        ans("q4", {"labels": ["Apple"]}, ms=2.0),  # F1 = 2/3
        ans("zzz", None, ms=100.0),
    ]
    result = score(answers, truth)
    assert result["n_questions"] == 4 and result["missing"] == 1 and result["unknown_ids"] == 1
    assert result["per_type"]["where_is"] == {"n": 2, "accuracy": 1.0}
    assert result["per_type"]["count"]["accuracy"] == 0.0
    assert result["overall"] == pytest.approx((1 + 1 + 0 + 2 / 3) / 4)
    assert result["receptacle"] == {"n": 1, "accuracy": 1.0}
    assert result["null_truth"] == {"n": 1, "accuracy": 1.0}
    assert result["ms"]["n"] == 3
    assert result["ms"]["mean"] == pytest.approx(2.0)
    assert result["ms"]["p50"] == pytest.approx(2.0)
    assert result["ms"]["p99"] == pytest.approx(2.98)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_files_pairs_keep_ids_apart(tmp_path: Path) -> None:
    t1 = _write(tmp_path / "a.truth.jsonl", [rec("q1", "count", {"n": 1})])
    t2 = _write(tmp_path / "b.truth.jsonl", [rec("q1", "count", {"n": 5})])
    a1 = _write(tmp_path / "a.ans.jsonl", [ans("q1", {"n": 1})])
    a2 = _write(tmp_path / "b.ans.jsonl", [ans("q1", {"n": 4})])
    assert score_files(a1, t1)["overall"] == 1.0
    both = score_files([a1, a2], [t1, t2])
    assert both["n_questions"] == 2 and both["overall"] == 0.5


def test_cli_score_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    truth = _write(tmp_path / "t.jsonl", [rec("q1", "last_seen", {"t": 4.0})])
    answers = _write(tmp_path / "a.jsonl", [ans("q1", {"t": 4.2}, ms=0.5)])
    parser = argparse.ArgumentParser()
    add_eval_commands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["score", str(answers), str(truth), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"] == 1.0 and out["per_type"]["last_seen"]["n"] == 1
    args = parser.parse_args(["score", str(answers), str(truth)])
    assert args.func(args) == 0
    assert "last_seen" in capsys.readouterr().out
