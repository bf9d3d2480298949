"""Offline planner: instruction templates, validation of plans against memory, counted tool calls."""

from __future__ import annotations

import pytest

from robomem.core.types import ObservationBatch, make_detection, make_view
from robomem.planner import (
    CountingTools,
    InProcessTools,
    InvalidPlan,
    ObjectRecord,
    ParseError,
    Plan,
    check,
    parse,
    validate,
)


def test_templates_parse_into_intents() -> None:
    p = parse("Put the mug and the bread on the dining table.")
    assert (p.kind, p.objects, p.receptacle, p.relation) == ("place", ("Mug", "Bread"), "DiningTable", "on")
    p = parse("put the apple in the fridge and close it")
    assert (p.kind, p.objects, p.receptacle, p.relation, p.then) == (
        "place", ("Apple",), "Fridge", "in", (("close", "Fridge"),))
    p = parse("bring me the keys I left in the bedroom this morning")
    assert (p.kind, p.objects, p.when) == ("fetch", ("KeyChain",), "this morning")
    assert parse("put the laptop back where it was this morning").kind == "put_back"
    p = parse("put back the thing that was moved from the counter")
    assert (p.kind, p.receptacle) == ("moved_from", "CounterTop")
    p = parse("turn off the desk lamp")
    assert (p.kind, p.objects, p.on) == ("toggle", ("DeskLamp",), False)
    with pytest.raises(ParseError):
        parse("put the unicorn on the table of the gods")
    with pytest.raises(ParseError):
        parse("sing a song")


def _kitchen(memory) -> None:
    view = make_view(position=(0, 0, 1.5), yaw_deg=0, fov_deg=90, range_m=4)
    for t in (1.0, 2.0):
        memory.ingest(ObservationBatch(t=t, robot="r", view=view, detections=[
            make_detection("Mug", center=(2.0, 0.1, 0.95), size=(0.1, 0.1, 0.1)),
            make_detection("CounterTop", center=(2.0, 0.0, 0.45), size=(2.0, 0.6, 0.9)),
        ]))


def test_hallucinated_object_is_rejected_before_execution(memory) -> None:
    _kitchen(memory)
    tools = CountingTools(InProcessTools(memory))
    mug = tools.where_is("Mug")
    counter = tools.where_is("CounterTop")
    assert mug is not None and counter is not None and tools.calls["where_is"] == 2
    good = Plan()
    for skill, rec in (("navigate_to", mug), ("pick", mug), ("navigate_to", counter), ("place", counter)):
        good.add(skill, rec)
    assert validate(good, tools) == [] and check(good, tools) is good
    bad = Plan()
    unicorn = ObjectRecord("Unicorn", (1.0, 1.0, 1.0))
    bad.add("navigate_to", unicorn)
    bad.add("pick", unicorn)
    errors = validate(bad, tools)
    assert errors and all("Unicorn is unknown" in e for e in errors)
    ghost = Plan()
    ghost.add("pick", ObjectRecord("Mug", (-3.0, 2.0, 0.9)))  # memory has a mug, not there
    assert "memory has no Mug" in validate(ghost, tools)[0]
    hand = Plan()
    hand.add("place", counter)
    assert "empty hand" in validate(hand, tools)[0]
    with pytest.raises(InvalidPlan):
        check(bad, tools)
    assert tools.total == tools.calls["where_is"] > 2
