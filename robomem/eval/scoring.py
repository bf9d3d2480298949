"""Score memory-QA answers against truth records (rules of spec memory-qa.md).

Per question a score in [0, 1]:

* where_is / where_was: 1 when the answer's center is within 0.5 m (3D) of the truth.
  The receptacle is scored on its own, only for questions whose truth is non-null with
  a non-empty ``receptacle_chain``: right when the answer names any label on the chain
  (a null/missing answer or receptacle is wrong there).  Questions whose truth has no
  receptacle (``receptacle`` null, empty chain) are left out of receptacle accuracy.
* contents: F1 of the answer's labels vs the truth labels as multisets (both empty = 1).
* what_changed: F1 over (label, change) pairs as multisets (both empty = 1).
* last_seen: 1 within 0.5 s.  state, count: exact (a bool state needs a bool answer).
* A null answer is right iff the truth is null; a non-null answer to a null truth is
  wrong.  A question without an answer line is wrong (0), whatever its truth.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

CENTER_TOL_M = 0.5
TIME_TOL_S = 0.5


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All JSON objects of a JSON Lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def multiset_f1(predicted: Iterable[Any], truth: Iterable[Any]) -> float:
    """F1 between two multisets; 1.0 when both are empty."""
    pred, true = Counter(predicted), Counter(truth)
    if not pred and not true:
        return 1.0
    overlap = sum((pred & true).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(pred.values())
    recall = overlap / sum(true.values())
    return 2 * precision * recall / (precision + recall)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _center_ok(answer: dict[str, Any], truth: dict[str, Any]) -> bool:
    center = answer.get("center")
    if not isinstance(center, list | tuple) or len(center) != 3:
        return False
    coords = [_number(v) for v in center]
    if any(c is None for c in coords):
        return False
    return math.dist(coords, truth["center"]) <= CENTER_TOL_M


def _hashable(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _pairs(changes: Any) -> list[tuple[str, str]] | None:
    if not isinstance(changes, list):
        return None
    out = []
    for item in changes:
        if not isinstance(item, dict):
            return None
        out.append((_hashable(item.get("label")), _hashable(item.get("change"))))
    return out


def _score_value(qtype: str, answer: dict[str, Any], truth: dict[str, Any]) -> float:
    """Score of a non-null answer dict against a non-null truth dict."""
    if qtype in ("where_is", "where_was"):
        return float(_center_ok(answer, truth))
    if qtype == "contents":
        labels = answer.get("labels")
        if not isinstance(labels, list):
            return 0.0
        return multiset_f1([_hashable(x) for x in labels], truth["labels"])
    if qtype == "what_changed":
        pred = _pairs(answer.get("changes"))
        true = _pairs(truth["changes"]) or []
        return multiset_f1(pred, true) if pred is not None else 0.0
    if qtype == "last_seen":
        t = _number(answer.get("t"))
        return float(t is not None and abs(t - truth["t"]) <= TIME_TOL_S)
    if qtype == "state":
        value, want = answer.get("value"), truth["value"]
        if isinstance(want, bool) or isinstance(value, bool):
            return float(isinstance(value, bool) and isinstance(want, bool) and value == want)
        return float(value == want)
    if qtype == "count":
        n = _number(answer.get("n"))
        return float(n is not None and n == truth["n"])
    raise ValueError(f"unknown question type: {qtype!r}")


def score_question(answer_row: dict[str, Any] | None, record: dict[str, Any]) -> float:
    """Score in [0, 1] of one answer line (None = missing) for one truth record."""
    if answer_row is None:
        return 0.0
    answer, truth = answer_row.get("answer"), record.get("truth")
    if truth is None or answer is None:
        return float(truth is None and answer is None)
    if not isinstance(answer, dict):
        return 0.0
    return _score_value(record["type"], answer, truth)


def receptacle_score(answer_row: dict[str, Any] | None, record: dict[str, Any]) -> float | None:
    """1/0 for the receptacle of a where_is/where_was answer; None when not scored."""
    chain = record.get("receptacle_chain") or []
    if record["type"] not in ("where_is", "where_was") or record.get("truth") is None or not chain:
        return None
    answer = (answer_row or {}).get("answer")
    named = answer.get("receptacle") if isinstance(answer, dict) else None
    return float(isinstance(named, str) and named in chain)


def _ms_stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p99": None}
    arr = np.asarray(values, dtype=float)
    return {"n": int(arr.size), "mean": float(arr.mean()),
            "p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def score(answers: list[dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate scores: overall and per-type accuracy, receptacle accuracy, ms stats.

    ``answers``: answer lines ({"id", "answer", "ms"}); a repeated id keeps the last.
    ``truth``: truth records ({"id", "type", "question", "truth", ...}).
    """
    by_id = {row.get("id"): row for row in answers}
    per_type: dict[str, list[float]] = {}
    rec_scores: list[float] = []
    null_scores: list[float] = []
    all_scores: list[float] = []
    ms: list[float] = []
    missing = 0
    for record in truth:
        row = by_id.get(record["id"])
        missing += row is None
        value = score_question(row, record)
        all_scores.append(value)
        per_type.setdefault(record["type"], []).append(value)
        if record.get("truth") is None:
            null_scores.append(value)
        rec = receptacle_score(row, record)
        if rec is not None:
            rec_scores.append(rec)
        if row is not None and _number(row.get("ms")) is not None:
            ms.append(float(row["ms"]))
    truth_ids = {r["id"] for r in truth}
    return {
        "n_questions": len(truth),
        "n_answered": len(truth) - missing,
        "missing": missing,
        "unknown_ids": sum(1 for i in by_id if i not in truth_ids),
        "overall": _mean(all_scores),
        "per_type": {
            k: {"n": len(v), "accuracy": _mean(v)} for k, v in sorted(per_type.items())
        },
        "receptacle": {"n": len(rec_scores), "accuracy": _mean(rec_scores)},
        "null_truth": {"n": len(null_scores), "accuracy": _mean(null_scores)},
        "ms": _ms_stats(ms),
    }


PathLike = str | os.PathLike[str]


def score_files(
    answers_path: PathLike | Sequence[PathLike], truth_path: PathLike | Sequence[PathLike]
) -> dict[str, Any]:
    """:func:`score` of answers JSONL against truth JSONL.

    Either one file each, or two equally long lists of files paired in order (one
    episode per pair); question ids are then kept apart per pair.
    """
    if isinstance(answers_path, str | os.PathLike) and isinstance(truth_path, str | os.PathLike):
        return score(read_jsonl(answers_path), read_jsonl(truth_path))
    if isinstance(answers_path, str | os.PathLike) or isinstance(truth_path, str | os.PathLike):
        raise TypeError("give one file each or two lists of files")
    if len(answers_path) != len(truth_path):
        raise ValueError("answers and truth lists differ in length")
    answers: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for i, (a_path, t_path) in enumerate(zip(answers_path, truth_path, strict=True)):
        answers += [{**row, "id": f"{i}:{row.get('id')}"} for row in read_jsonl(a_path)]
        truth += [{**row, "id": f"{i}:{row['id']}"} for row in read_jsonl(t_path)]
    return score(answers, truth)


def format_report(result: dict[str, Any]) -> str:
    """A plain-text per-type table of a :func:`score` result."""

    def pct(value: float | None) -> str:
        return "   -  " if value is None else f"{100 * value:6.1f}"

    lines = [f"{'type':<14}{'n':>6}{'acc %':>8}"]
    for qtype, row in result["per_type"].items():
        lines.append(f"{qtype:<14}{row['n']:>6}{pct(row['accuracy']):>8}")
    lines.append(f"{'receptacle':<14}{result['receptacle']['n']:>6}"
                 f"{pct(result['receptacle']['accuracy']):>8}")
    lines.append(f"{'null truth':<14}{result['null_truth']['n']:>6}"
                 f"{pct(result['null_truth']['accuracy']):>8}")
    lines.append(f"{'overall':<14}{result['n_questions']:>6}{pct(result['overall']):>8}")
    ms = result["ms"]
    if ms["n"]:
        lines.append(f"ms: mean {ms['mean']:.3f}  p50 {ms['p50']:.3f}  p99 {ms['p99']:.3f}"
                     f"  (n={ms['n']})")
    if result["missing"]:
        lines.append(f"missing answers: {result['missing']} (scored wrong)")
    return "\n".join(lines)


format_table = format_report
