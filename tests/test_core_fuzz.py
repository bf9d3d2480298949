"""Fuzzing (hypothesis, bounded examples for CI; benchmarks/fuzz_long.py runs many more): every bad input
gets a clear error (RejectedInput) and a counter, memory stays consistent, and a reopened memory answers
as the one that was closed."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robomem.core import Memory, MemoryConfig
from robomem.core.types import Detection, ObservationBatch, RejectedInput, ViewCone, make_detection, make_view
from robomem.qa import run_episode

#: examples per property: a few seconds each in CI; benchmarks/fuzz_long.py sets ROBOMEM_FUZZ_EXAMPLES higher
FUZZ = settings(max_examples=int(os.environ.get("ROBOMEM_FUZZ_EXAMPLES", "25")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
LABELS = ["Mug", "Apple", "CounterTop", "Fridge", "Bowl", "Book"]

anything_numeric = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20), st.text(max_size=5),
    st.booleans(), st.none(), st.lists(st.floats(), max_size=4),
)
sane = st.floats(-5, 5, allow_nan=False)
vector = st.one_of(st.tuples(sane, sane, st.floats(0, 2)), st.lists(anything_numeric, max_size=4), anything_numeric)
label = st.one_of(st.sampled_from(LABELS), st.text(max_size=200), st.integers(), st.none())


@st.composite
def raw_detection(draw) -> dict:
    return {
        "label": draw(label), "center": draw(vector),
        "size": draw(st.one_of(st.tuples(*[st.floats(0, 3)] * 3), vector)),
        "confidence": draw(st.one_of(st.floats(0, 1), anything_numeric)),
        "state": draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.one_of(
            st.booleans(), st.floats(), st.text(max_size=8), st.lists(st.integers())), max_size=2))),
        "embedding": draw(st.one_of(st.none(), st.lists(st.floats(-1, 1), min_size=1, max_size=8),
                                    st.lists(anything_numeric, max_size=3))),
    }


@st.composite
def raw_view(draw) -> tuple:
    return (draw(vector), draw(st.one_of(st.floats(-400, 400), anything_numeric)),
            draw(st.one_of(st.floats(1, 360), anything_numeric)), draw(st.one_of(st.floats(0.5, 8), anything_numeric)))


def forged(values: dict) -> Detection:
    """A Detection that skipped validation (an adapter's bug): memory's own checks must hold."""
    det = Detection.__new__(Detection)
    det.label, det.confidence, det.state, det.embedding = "Mug", 0.9, {}, None
    det.center = np.asarray(values.get("center", (1e6, 0, 0)), dtype=float)
    det.size = np.asarray(values.get("size", (0.1, 0.1, 0.1)), dtype=float)
    return det


@st.composite
def batch(draw) -> tuple[ObservationBatch | None, list[RejectedInput]]:
    """One batch as an adapter builds it: raw fields through the core's builders (refusals returned)."""
    refused, detections = [], []
    for raw in draw(st.lists(raw_detection(), max_size=6)):
        try:
            detections.append(make_detection(**raw))
        except RejectedInput as error:
            refused.append(error)
    if draw(st.booleans()):
        detections.append(forged({"center": draw(st.tuples(*[st.sampled_from([1e300, -1e5, 3.0])] * 3))}))
    view = None
    if draw(st.booleans()):
        try:
            view = make_view(*draw(raw_view()))
        except RejectedInput as error:
            refused.append(error)
    t = draw(st.one_of(st.floats(0, 50), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**12),
                       st.just("12")))
    robot = draw(st.one_of(st.sampled_from(["r1", "r2", ""]), st.text(max_size=300)))
    sequence = draw(st.one_of(st.none(), st.integers(0, 5), st.just("7")))
    return ObservationBatch(t, robot, detections, view, sequence=sequence), refused


def _answers(memory: Memory) -> list:
    out = []
    for name in LABELS:
        info = memory.where_is(name)
        out.append(None if info is None else info.to_dict())
        out.append(memory.count(name))
        out.append(memory.last_seen(name))
        out.append(sorted(o.label for o in memory.contents(name)))
    out.append(sorted((c.label, c.change, c.track_id) for c in memory.what_changed(-1.0)))
    nodes, edges = memory.scene_graph()
    out.append(sorted((n.node_id, n.label) for n in nodes))
    out.append(sorted((e.child, e.parent, e.relation) for e in edges))
    return out


def _consistent(memory: Memory) -> None:
    extent = memory.config.map_extent_m
    for track in memory.tracks.values():
        assert np.all(np.isfinite(track.center)) and np.all(np.abs(track.center) <= extent)
        assert np.all(np.isfinite(track.size)) and np.all(track.size >= 0)
        assert math.isfinite(track.last_seen) and math.isfinite(track.log_odds)
    for key in list(memory.track_store.points._positions):
        assert np.all(np.isfinite(memory.track_store.points.position(key)))
    assert memory.now == -math.inf or math.isfinite(memory.now)


@FUZZ
@given(batches=st.lists(batch(), min_size=1, max_size=12))
def test_ingest_takes_or_refuses_every_batch_and_reopens_identically(tmp_path_factory, batches):
    path = str(tmp_path_factory.mktemp("fuzz") / "m.sqlite")
    memory = Memory(MemoryConfig(db_path=path, map_extent_m=100.0))
    refusals = 0
    for k, (observed, refused) in enumerate(batches):
        for error in refused:
            memory.record_rejection(error, float(k))
        refusals += len(refused)
        try:
            events = memory.ingest(observed)
            assert isinstance(events, list)
        except RejectedInput as error:
            assert error.reason and error.detail
            refusals += 1
        _consistent(memory)
    rejected = sum(v for k, v in memory.counters.items() if k.startswith("rejected."))
    assert rejected >= refusals, "every refusal is counted"
    expected = _answers(memory)
    memory.close()
    reopened = Memory(MemoryConfig(db_path=path, map_extent_m=100.0))
    _consistent(reopened)
    assert _answers(reopened) == expected
    reopened.close()


@FUZZ
@given(raw=raw_detection())
def test_the_detection_builder_gives_a_sound_detection_or_a_clear_refusal(raw):
    try:
        det = make_detection(**raw)
    except RejectedInput as error:
        assert error.reason in {"malformed", "non_finite", "bad_label", "bad_size", "bad_confidence",
                                "bad_embedding", "out_of_bounds"}
        return
    assert np.all(np.isfinite(det.center)) and np.all(np.abs(det.center) <= 1e4)
    assert np.all(det.size >= 0) and 0.0 <= det.confidence <= 1.0 and isinstance(det.label, str)
    assert det.embedding is None or np.all(np.isfinite(det.embedding))


@FUZZ
@given(fields=raw_view())
def test_the_view_builder_gives_a_sound_view_or_a_clear_refusal(fields):
    try:
        view = make_view(*fields)
    except RejectedInput as error:
        assert error.reason in {"malformed", "non_finite", "bad_view", "out_of_bounds"}
        return
    assert isinstance(view, ViewCone) and -180.0 <= view.yaw_deg < 180.0
    assert 0 < view.fov_deg <= 360 and 0 < view.range_m <= 100 and all(math.isfinite(v) for v in view.position)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                             max_size=4)),
    max_leaves=12,
)


@st.composite
def episode_line(draw) -> str:
    kind = draw(st.sampled_from(["header", "observe", "ask", "other", "garbage"]))
    if kind == "garbage":
        return draw(st.one_of(st.text(max_size=40), json_value.map(json.dumps)))
    event: dict = {"kind": kind, "t": draw(st.one_of(st.floats(0, 100), json_value))}
    if kind == "header":
        event["up"] = draw(st.one_of(st.sampled_from(["y", "z"]), json_value))
    elif kind == "observe":
        event["objects"] = draw(st.one_of(st.lists(st.fixed_dictionaries({
            "label": st.one_of(st.sampled_from(LABELS), json_value),
            "center": st.one_of(st.lists(st.floats(-5, 5), min_size=3, max_size=3), json_value),
        }), max_size=4), json_value))
        event["view"] = draw(st.one_of(st.none(), st.fixed_dictionaries({
            "position": st.one_of(st.lists(st.floats(-5, 5), min_size=3, max_size=3), json_value),
            "yaw_deg": st.one_of(st.floats(-180, 180), json_value)}), json_value))
    elif kind == "ask":
        event["id"] = draw(st.text(max_size=5))
        event["question"] = draw(st.one_of(st.fixed_dictionaries({
            "type": st.sampled_from(["where_is", "where_was", "last_seen", "contents", "state", "count",
                                     "what_changed", "nonsense"]),
            "label": st.one_of(st.sampled_from(LABELS), json_value), "at": json_value, "since": json_value,
            "receptacle": st.one_of(st.sampled_from(LABELS), json_value), "key": json_value,
            "near": st.one_of(st.none(), json_value)}), json_value))
    return json.dumps(event)


@FUZZ
@given(lines=st.lists(episode_line(), max_size=25))
def test_the_qa_episode_reader_answers_every_question_and_never_crashes(tmp_path_factory, lines):
    folder = Path(tmp_path_factory.mktemp("episode"))
    episode, out = folder / "e.jsonl", folder / "answers.jsonl"
    episode.write_text("\n".join(lines) + "\n")
    run = run_episode(episode, out, log=lambda message: None)
    asks = 0
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        asks += isinstance(event, dict) and event.get("kind") == "ask"
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(answers) == asks == run.questions, "one answer line per question, bad ones answered null"
