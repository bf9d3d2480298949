"""robomem_sim robot skills and the goal predicates on the simulator's true state."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pybullet")

from robomem.thor.scene import load_scene_metadata  # noqa: E402
from robomem_sim import Inside, On, Robot, State, build_scene, snapshot  # noqa: E402

pytestmark = pytest.mark.data("thor")


def zup(d: dict[str, float]) -> np.ndarray:
    return np.array([d["z"], d["x"], d["y"]], dtype=float)


def meta_box(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    box = meta["axisAlignedBoundingBox"]
    c, s = zup(box["center"]), np.abs(zup(box["size"]))
    return c - s / 2, c + s / 2


@pytest.fixture(scope="module")
def meta() -> dict[str, dict]:
    return {m["objectId"]: m for m in load_scene_metadata("FloorPlan1")}


@pytest.fixture
def world():
    scene = build_scene("FloorPlan1")
    yield scene, Robot(scene)
    scene.close()


def first(meta: dict[str, dict], object_type: str) -> str:
    return next(oid for oid, m in meta.items() if m["objectType"] == object_type)


def test_apple_goes_from_the_counter_into_the_fridge(world, meta) -> None:
    scene, robot = world
    apple, fridge = first(meta, "Apple"), first(meta, "Fridge")
    counter = meta[apple]["parentReceptacles"][0]  # AI2-THOR: the apple lies on this CounterTop
    truth = snapshot(scene)
    assert On(apple, counter).holds(truth) and not Inside(apple, "Fridge").holds(truth)
    far = robot.pick(apple)
    assert not far and far.reason == "not reachable"
    nav = robot.navigate_to(apple)
    assert nav and nav.cells > 0 and nav.distance_m >= nav.cells * 0.1 - 1e-9
    assert robot.in_reach(apple)
    assert robot.pick(apple)
    truth = snapshot(scene)
    assert State(apple, "isPickedUp", True).holds(truth) and not On(apple, counter).holds(truth)
    assert robot.pick(first(meta, "Tomato")).reason == "hand full"
    assert robot.navigate_to(fridge)
    closed = robot.place(fridge)
    assert not closed and closed.reason == "receptacle closed"
    assert robot.open(fridge) and State(fridge, "isOpen", True).holds(snapshot(scene))
    assert robot.place(fridge)
    assert robot.close(fridge)
    truth = snapshot(scene)
    assert Inside(apple, fridge).holds(truth) and Inside("Apple", "Fridge").holds(truth)
    assert not On(apple, counter).holds(truth) and State("Fridge", "isOpen", False).holds(truth)
    lo, hi = meta_box(meta[fridge])
    assert np.all(truth.objects[apple].lo >= lo - 1e-6) and np.all(truth.objects[apple].hi <= hi + 1e-6)
    again = robot.pick(apple)
    assert not again and again.reason == "inside closed Fridge"
    assert robot.counters["pick"] == 4 and robot.counters["place"] == 2 and robot.counters["navigate"] == 2
    assert robot.nav_cells > nav.cells and robot.nav_distance_m >= robot.nav_cells * 0.1 - 1e-9


def test_place_on_a_counter_rests_on_its_top(world, meta) -> None:
    scene, robot = world
    mug = first(meta, "Mug")
    counter = next(oid for oid, m in meta.items() if m["objectType"] == "CounterTop" and oid not in
                   meta[mug]["parentReceptacles"])
    assert robot.navigate_to(mug) and robot.pick(mug)
    assert robot.navigate_to(counter) and robot.place(counter)
    assert robot.held is None
    truth = snapshot(scene)
    assert On(mug, counter).holds(truth) and not Inside(mug, counter).holds(truth)
    lo, hi = meta_box(meta[counter])
    # the real surface: where AI2-THOR's objects on this counter stand (its recorded box top is ~2 cm higher)
    surface = np.median([meta_box(m)[0][2] for m in meta.values() if counter in (m["parentReceptacles"] or [])])
    assert truth.objects[mug].lo[2] == pytest.approx(surface, abs=0.01)
    assert surface <= hi[2] + 1e-6
    m_lo, m_hi = truth.objects[mug].lo, truth.objects[mug].hi
    assert np.all(m_lo[:2] >= lo[:2]) and np.all(m_hi[:2] <= hi[:2])


def _pixels_of(frame, oid: str) -> int:
    return sum(int(np.count_nonzero(frame.instance_mask == b)) for b, o in frame.object_ids.items() if o == oid)


def test_the_camera_does_not_see_the_held_object_and_looks_where_it_was_put(world, meta) -> None:
    """Self-filtering: what the gripper holds is the robot, not a detection (a carried mug would otherwise
    be perceived all along the way). After a place the head follows the hand to the object."""
    scene, robot = world
    mug = first(meta, "Mug")
    counters = [oid for oid, m in meta.items() if m["objectType"] == "CounterTop"]
    counter = max(counters, key=lambda c: float(np.linalg.norm(scene.center(c)[:2] - scene.center(mug)[:2])))
    assert robot.navigate_to(mug) and robot.pick(mug)
    robot.tilt(60.0)  # looking down at the hand: the mug fills part of the image, unlabelled
    held = robot.observe()
    assert mug not in held.object_ids.values()
    hand = robot.camera_position()
    robot.config = replace(robot.config, perceive_en_route=True)
    en_route: list = []
    robot.on_frame = en_route.append
    assert robot.navigate_to(counter)
    assert en_route and all(mug not in f.object_ids.values() for f in en_route)
    assert np.linalg.norm(robot.camera_position() - hand) > 0.5  # it did carry the mug somewhere
    assert robot.place(counter)
    assert _pixels_of(robot.observe(), mug) >= 30


def test_drawer_takes_an_object_in_and_carries_it(world, meta) -> None:
    scene, robot = world
    card = first(meta, "CreditCard")
    drawer = next(oid for oid, m in meta.items() if m["objectType"] == "Drawer" and m["position"]["y"] > 0.7)
    assert robot.navigate_to(card) and robot.pick(card)
    assert robot.navigate_to(drawer)
    assert robot.place(drawer).reason == "receptacle closed"
    assert robot.open(drawer) and robot.open(drawer).reason == "already open"
    assert robot.place(drawer)
    assert robot.close(drawer)
    truth = snapshot(scene)
    assert Inside(card, drawer).holds(truth)
    lo, hi = meta_box(meta[drawer])  # closed again: the card is inside the drawer's recorded box
    assert np.all(truth.objects[card].center >= lo) and np.all(truth.objects[card].center <= hi)
    assert robot.pick(card).reason == "inside closed Drawer"


def test_toggle_and_normal_failures_never_raise(world, meta) -> None:
    scene, robot = world
    micro = first(meta, "Microwave")
    assert robot.toggle(micro, True).reason == "not reachable"
    assert robot.navigate_to(micro)
    assert robot.toggle(micro, True) and State(micro, "isToggled", True).holds(snapshot(scene))
    assert robot.toggle(micro, True).reason == "already on"
    assert robot.toggle(micro, False) and State("Microwave", "isToggled", False).holds(snapshot(scene))
    assert robot.pick("NoSuchThing|1|2|3").reason == "unknown object"
    assert robot.place(micro).reason == "hand empty"
    assert robot.open(first(meta, "CounterTop")).reason == "not openable"
    assert robot.toggle(first(meta, "Apple"), True).reason == "not toggleable"
    assert robot.pick(first(meta, "Stool")).reason == "not pickupable"
    assert not robot.navigate_to((100.0, 100.0))


def test_look_around_turns_a_full_circle(world) -> None:
    scene, robot = world
    yaw0, t0 = robot.pose.yaw_deg, scene.t
    frames = robot.look_around()
    assert len(frames) == 12 and robot.counters["rotate"] == 12
    assert robot.pose.yaw_deg % 360 == pytest.approx(yaw0 % 360)
    assert scene.t == pytest.approx(t0 + 12 * robot.config.turn_s)
    seen = set().union(*(f.labels.values() for f in frames))
    assert {"CounterTop", "Fridge"} <= seen
