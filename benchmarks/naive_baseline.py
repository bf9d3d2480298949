"""Naive last-detection memory: the simplest memory a robot could keep, as a memory-QA baseline.

It keeps every confident detection (confidence >= ``min_confidence``, the same threshold as the flat
vector store) per label, in time order, and answers from the *last* detection of a label:

* where_is / where_was: the label's last detection (up to the question's time, or ``at``); with
  ``near``, the last detection of the label's instance closest to that point. Instances are the
  label's detections clustered greedily in time order (a detection joins the instance whose latest
  position is nearest, within 0.5 m, else starts a new one).
* receptacle: a simple box test against the *last* detection of every receptacle label (robomem's
  label table, :class:`robomem.core.MemoryConfig`): the smallest such box (widened by 5 cm, its top
  raised by 0.4 m for things resting on it) that holds the object's centre; None when none does.
* contents: the non-furniture labels whose last detection passes that box test for the receptacle's
  last detection (each label at most once); null when the receptacle was never detected.
* last_seen: the time of that last detection. state: the latest value of the key among the label's
  (or the near instance's) detections.
* count: the number of instances (the 0.5 m clustering above), 0 for a label never detected.
* what_changed: per label, its last detection up to ``since`` against its last detection in
  (since, until]: "moved" when they are more than 0.5 m apart; opened/closed and turned_on/turned_off
  when the ``open`` / ``on`` state of those two detections differs.

No data association beyond the clustering, no negative evidence (a label not seen again stays where
it was last seen), no memory of moved-vs-new: that is what the comparison measures.

    python benchmarks/qa_wide.py --split val --baselines naive     # side by side with robomem
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from vector_baseline import (
    FOOTPRINT_MARGIN_M,
    ON_TOP_M,
    PLACE_M,
    STATE_FLIPS,
    Record,
    answer_question,
    cluster_places,
    location_answer,
)

import robomem.qa as qa
from robomem.core.config import MemoryConfig, normalize_label

MOVE_M = 0.5  # a label's last positions before and after `since` farther apart than this: "moved"


def parse_detections(event: dict[str, Any], frame: qa.Frame, min_confidence: float) -> list[tuple[Record, float]]:
    """(record in the core's z-up frame, confidence) for each well-formed detection of an observe event
    at or above ``min_confidence``; malformed objects are dropped, as any ingest pipeline would."""
    t = float(event["t"])
    out = []
    for raw in event.get("objects") or []:
        try:
            confidence = float(raw.get("confidence", 1.0))
            if not confidence >= min_confidence:
                continue
            label = str(raw["label"])
            center = frame.to_core([float(v) for v in raw["center"]])
            size = np.abs(frame.to_core([float(v) for v in raw.get("size", [0.1, 0.1, 0.1])]))
            state = raw.get("state") or {}
            if len(center) != 3 or not np.all(np.isfinite(center)) or not np.all(np.isfinite(size)) \
                    or not isinstance(state, dict):
                continue
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        out.append((Record(label, center, size, t, dict(state)), confidence))
    return out


def in_box(point: np.ndarray, center: np.ndarray, size: np.ndarray, margin: float = FOOTPRINT_MARGIN_M,
           on_top: float = ON_TOP_M) -> bool:
    """Whether ``point`` lies in the axis-aligned box widened by ``margin`` with its top raised by ``on_top``."""
    lo = center - size / 2.0 - margin
    hi = center + size / 2.0 + margin
    hi[2] += on_top
    return bool(np.all(point >= lo) and np.all(point <= hi))


def state_changes(label: str, before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, str]]:
    """opened/closed/turned_on/turned_off where a boolean ``open``/``on`` differs between two states."""
    changes = []
    for key, (became_true, became_false) in STATE_FLIPS.items():
        old, new = before.get(key), after.get(key)
        if isinstance(old, bool) and isinstance(new, bool) and old != new:
            changes.append({"label": label, "change": became_true if new else became_false})
    return changes


def nearest(points: Sequence[np.ndarray], near: np.ndarray) -> int:
    """Index of the point closest to ``near``."""
    return int(np.argmin([float(np.linalg.norm(p - near)) for p in points]))


class NaiveLastDetectionMemory:
    """Per label, its detections in time order; answers from the last one (see the module docstring)."""

    def __init__(self, min_confidence: float = 0.5, labels: MemoryConfig | None = None) -> None:
        self.min_confidence = min_confidence
        labels = labels or MemoryConfig()
        self._is_receptacle = labels.is_receptacle
        self._is_static = labels.is_static
        self._by_label: dict[str, list[Record]] = defaultdict(list)  # normalized label -> records, time order
        self.embed_s: float | None = None  # (RunStats fields of the flat store; nothing is embedded here)
        self.add_s: float | None = None

    # ------------------------------------------------------------------ ingest
    def observe(self, event: dict[str, Any], frame: qa.Frame) -> int:
        """Keep the confident detections of one observe event; returns how many were kept."""
        records = parse_detections(event, frame, self.min_confidence)
        for record, _ in records:
            self._by_label[normalize_label(record.label)].append(record)
        return len(records)

    # ------------------------------------------------------------------ lookups
    def records(self, label: str, until: float) -> list[Record]:
        """The label's detections with t <= until, oldest first."""
        return [r for r in self._by_label.get(normalize_label(label), ()) if r.t <= until]

    def last(self, label: str, until: float, near: np.ndarray | None = None) -> Record | None:
        """The label's last detection up to ``until``; with ``near``, that of the instance closest to it."""
        records = self.records(label, until)
        if not records:
            return None
        if near is None:
            return records[-1]
        places = cluster_places(records, PLACE_M)
        return places[nearest([p.latest.center for p in places], near)].latest

    def receptacle_of(self, rec: Record, until: float) -> str | None:
        """The smallest last-detected receptacle box (other label) holding ``rec``'s centre, or None."""
        own = normalize_label(rec.label)
        best, best_volume = None, math.inf
        for key in self._by_label:
            if key == own or not self._is_receptacle(key):
                continue
            box = self.last(key, until)
            if box is None or not in_box(rec.center, box.center, box.size):
                continue
            volume = float(np.prod(box.size))
            if volume < best_volume:
                best, best_volume = box, volume
        return best.label if best is not None else None

    # ------------------------------------------------------------------ answers
    def _location(self, rec: Record | None, until: float, frame: qa.Frame) -> dict[str, Any] | None:
        return location_answer(rec, frame, lambda found: self.receptacle_of(found, until))

    def where_is(self, label: str, t: float, near: np.ndarray | None, frame: qa.Frame) -> dict[str, Any] | None:
        return self._location(self.last(label, t, near), t, frame)

    def where_was(self, label: str, at: float, t: float, near: np.ndarray | None,
                  frame: qa.Frame) -> dict[str, Any] | None:
        until = min(at, t)
        return self._location(self.last(label, until, near), until, frame)

    def last_seen(self, label: str, t: float, near: np.ndarray | None) -> dict[str, float] | None:
        rec = self.last(label, t, near)
        return None if rec is None else {"t": rec.t}

    def state(self, label: str, key: str, t: float, near: np.ndarray | None) -> dict[str, Any] | None:
        records = self.records(label, t)
        if near is not None and records:
            places = cluster_places(records, PLACE_M)
            records = places[nearest([p.latest.center for p in places], near)].records
        carrying = [r for r in records if key in r.state]
        return None if not carrying else {"value": carrying[-1].state[key]}

    def count(self, label: str, t: float) -> dict[str, int]:
        return {"n": len(cluster_places(self.records(label, t), PLACE_M))}

    def contents(self, receptacle: str, t: float) -> dict[str, list[str]] | None:
        box = self.last(receptacle, t)
        if box is None:
            return None
        own = normalize_label(receptacle)
        labels = []
        for key in self._by_label:
            rec = self.last(key, t)
            if key == own or rec is None or self._is_static(key):
                continue
            if in_box(rec.center, box.center, box.size):
                labels.append(rec.label)
        return {"labels": sorted(labels)}

    def what_changed(self, since: float, until: float) -> dict[str, list[dict[str, str]]]:
        changes: list[dict[str, str]] = []
        for key in sorted(self._by_label):
            before = self.last(key, since)
            after = self.last(key, until)
            if before is None or after is None or after.t <= since:
                continue
            if float(np.linalg.norm(after.center - before.center)) > MOVE_M:
                changes.append({"label": after.label, "change": "moved"})
            changes += state_changes(after.label, before.state, after.state)
        return {"changes": changes}

    def answer(self, question: dict[str, Any], t: float, frame: qa.Frame) -> Any:
        """The spec's answer object for one question, from detections with t <= the question's time."""
        return answer_question(self, question, t, frame)

    def close(self) -> None:
        """Nothing to release (kept for the runner's interface)."""
