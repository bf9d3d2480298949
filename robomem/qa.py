"""`robomem qa`: replay a memory-QA episode (shared spec) through the memory core and answer it.

Observations are fed, in file order, through the same :class:`robomem.core.Memory` the ROS nodes
use; each question is answered when reached, so only what was observed up to its time is used.
Episodes with ``up: "y"`` (AI2-THOR) are turned into the core's z-up frame and answers back.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robomem.core import Memory, MemoryConfig
from robomem.core.config import normalize_label
from robomem.core.relations import FLOOR_LABEL
from robomem.core.types import (
    ObjectInfo,
    ObservationBatch,
    RejectedInput,
    checked_label,
    checked_time,
    make_detection,
    make_view,
)
from robomem.thor.frames import yup_to_zup, zup_to_yup


@dataclass
class Frame:
    """Conversion between an episode's axes and the core's z-up frame."""

    up: str = "z"

    def to_core(self, vec: Any) -> np.ndarray:
        return yup_to_zup(vec) if self.up == "y" else np.asarray(vec, dtype=float)

    def from_core(self, vec: np.ndarray) -> list[float]:
        return zup_to_yup(vec) if self.up == "y" else [float(v) for v in vec]


@dataclass
class EpisodeRun:
    """Counters of one episode run."""

    observations: int = 0
    questions: int = 0
    rejected: Counter = field(default_factory=Counter)


def read_events(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, parsed event or None if the line is not a JSON object)."""
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                yield number, None
                continue
            yield number, event if isinstance(event, dict) else None


def observation_batch(event: dict[str, Any], frame: Frame, memory: Memory) -> ObservationBatch:
    """Validate one observe event; bad objects are counted and dropped, and then the frame gives no
    negative evidence (a dropped detection must not count as 'not seen')."""
    t = checked_time(event.get("t"), "t")
    view_raw = event.get("view")
    view = None
    if view_raw is not None:
        if not isinstance(view_raw, dict):
            raise RejectedInput("malformed", f"view is not a mapping: {view_raw!r}"[:200])
        # (x, y, z) y-up -> (z, x, y) maps forward (sin a, 0, cos a) to (cos a, sin a, 0): yaw is unchanged.
        view = make_view(frame.to_core(_vector(view_raw.get("position"))), view_raw.get("yaw_deg", 0.0),
                         view_raw.get("fov_deg", 90.0), view_raw.get("range_m", 4.0))
    detections = []
    dropped = False
    objects = event.get("objects", [])
    if not isinstance(objects, list):
        raise RejectedInput("malformed", f"objects is not a list: {objects!r}"[:200])
    for raw in objects:
        try:
            if not isinstance(raw, dict):
                raise RejectedInput("malformed", f"object is not a mapping: {raw!r}"[:200])
            center = frame.to_core(_vector(raw.get("center")))
            size = np.abs(frame.to_core(_vector(raw.get("size", [0.1, 0.1, 0.1]))))
            detections.append(make_detection(raw.get("label"), center, size, raw.get("confidence", 1.0),
                                              raw.get("state"), raw.get("embedding")))
        except RejectedInput as error:
            memory.record_rejection(error, t)
            dropped = True
    return ObservationBatch(t, str(event.get("robot", "")), detections, None if dropped else view)


def _vector(value: Any) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise RejectedInput("malformed", f"expected [x, y, z], got {value!r}"[:200])
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise RejectedInput("malformed", f"non-numeric vector {value!r}"[:200]) from exc


def _location(info: ObjectInfo | None, frame: Frame) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"center": [round(v, 4) for v in frame.from_core(info.center)], "receptacle": info.receptacle}


def answer(memory: Memory, question: dict[str, Any], t: float, frame: Frame) -> Any:
    """The spec's answer object for one question (None when memory cannot answer)."""
    if not isinstance(question, dict):
        raise RejectedInput("malformed_question", f"question is not a mapping: {question!r}"[:200])
    kind = question.get("type")
    near = question.get("near")
    near_core = frame.to_core(_vector(near)) if near is not None else None

    def text(key: str) -> str:
        return checked_label(question.get(key), key)

    handlers: dict[str, Callable[[], Any]] = {
        "where_is": lambda: _location(memory.where_is(text("label"), near=near_core), frame),
        "where_was": lambda: _location(memory.where_was(text("label"), checked_time(question.get("at"), "at"),
                                                        near_core), frame),
        "last_seen": lambda: _wrap("t", memory.last_seen(text("label"), near=near_core)),
        "contents": lambda: _contents(memory, text("receptacle")),
        "state": lambda: _wrap("value", memory.state(text("label"), text("key"), near=near_core)),
        "count": lambda: {"n": memory.count(text("label"))},
        "what_changed": lambda: {
            "changes": [
                {"label": c.label, "change": c.change}
                for c in memory.what_changed(checked_time(question.get("since"), "since"),
                                             checked_time(question.get("until", t), "until"))
            ]
        },
    }
    if kind not in handlers:
        raise RejectedInput("unknown_question", f"unknown question type {kind!r}")
    return handlers[kind]()


def _wrap(key: str, value: Any) -> dict[str, Any] | None:
    return None if value is None else {key: value}


def _contents(memory: Memory, receptacle: str) -> dict[str, Any] | None:
    floor = normalize_label(receptacle) == normalize_label(FLOOR_LABEL) and memory.floor_height() is not None
    if memory.count(receptacle) == 0 and not floor:
        return None
    return {"labels": sorted(info.label for info in memory.contents(receptacle))}


def run_episode(
    episode: str | Path,
    out: str | Path,
    config: MemoryConfig | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> EpisodeRun:
    """Answer every question of ``episode`` into ``out`` (JSON Lines, one answer per question)."""
    config = config or MemoryConfig(db_path=":memory:")
    memory = Memory(config)
    frame = Frame()
    run = EpisodeRun()
    try:
        with Path(out).open("w") as sink:
            for number, event in read_events(Path(episode)):
                if event is None:
                    memory.record_rejection(RejectedInput("malformed_line", f"line {number}"))
                    log(f"{episode}:{number}: not a JSON object, skipped")
                    continue
                kind = event.get("kind")
                try:
                    if kind == "header":
                        frame = Frame(str(event.get("up", "z")))
                        if frame.up not in ("y", "z"):
                            raise RejectedInput("bad_header", f"up must be 'y' or 'z', got {frame.up!r}")
                    elif kind == "observe":
                        memory.ingest(observation_batch(event, frame, memory))
                        run.observations += 1
                    elif kind == "ask":
                        run.questions += 1
                        start = time.perf_counter()
                        asked_at = event.get("t")
                        try:
                            result = answer(memory, event.get("question") or {}, checked_time(asked_at, "t"), frame)
                        except (KeyError, TypeError, ValueError) as error:
                            if not isinstance(error, RejectedInput):
                                error = RejectedInput("malformed_question", repr(error))
                            memory.record_rejection(error, asked_at if isinstance(asked_at, (int, float)) else 0.0)
                            result = None
                        elapsed = (time.perf_counter() - start) * 1000.0
                        line = {"id": event.get("id"), "answer": result, "ms": round(elapsed, 3)}
                        sink.write(json.dumps(line) + "\n")
                    else:
                        raise RejectedInput("unknown_event", f"unknown event kind {kind!r}")
                except (RejectedInput, KeyError, TypeError, ValueError) as error:
                    reason = error.reason if isinstance(error, RejectedInput) else "malformed_event"
                    memory.record_rejection(RejectedInput(reason, str(error)))
                    log(f"{episode}:{number}: {reason}: {error}")
    finally:
        run.rejected.update({k[9:]: v for k, v in memory.counters.items() if k.startswith("rejected.")})
        memory.close()
    return run
