"""robomem_sim scene: real metadata boxes, articulated drawers and doors, toggles, RoomR arrangements."""

from __future__ import annotations

import gzip
import math
import pickle

import numpy as np
import pytest

pytest.importorskip("pybullet")

from robomem.thor.scene import load_roomr, load_scene_metadata, roomr_dir, roomr_split  # noqa: E402
from robomem_sim import build_scene  # noqa: E402
from robomem_sim.navigation import NavGrid  # noqa: E402


def zup(d: dict[str, float]) -> np.ndarray:
    """THOR (x, y-up, z) -> map (z, x, y), written out here on purpose."""
    return np.array([d["z"], d["x"], d["y"]], dtype=float)


pytestmark = pytest.mark.data("thor")


@pytest.fixture(scope="module")
def roomr_2022(needs_data) -> dict:
    with gzip.open(roomr_dir() / "2022_val.pkl.gz", "rb") as fh:
        return pickle.load(fh)


@pytest.fixture
def kitchen():
    scene = build_scene("FloorPlan1")
    yield scene
    scene.close()


@pytest.mark.parametrize("name", ["FloorPlan1", "FloorPlan201", "FloorPlan301", "FloorPlan401"])
def test_every_metadata_object_is_a_body_at_its_real_box(name: str) -> None:
    meta = [m for m in load_scene_metadata(name) if m["objectType"] != "Floor"]
    with build_scene(name) as scene:
        assert len(scene.objects) == len(meta)
        for m in meta:
            obj = scene.get(m["objectId"])
            assert obj.object_type == m["objectType"]
            box = m["axisAlignedBoundingBox"]
            pos, _ = scene.client.getBasePositionAndOrientation(obj.body)  # where pybullet has the body
            np.testing.assert_allclose(pos, zup(box["center"]), atol=1e-5)
            np.testing.assert_allclose(obj.size, np.maximum(np.abs(zup(box["size"])), 0.005), atol=1e-6)
            assert obj.kind == ("movable" if m["pickupable"] else obj.kind)
            if m["objectType"] == "Drawer":
                assert scene.client.getJointInfo(obj.body, 0)[2] == scene.client.JOINT_PRISMATIC
            if m["objectType"] in ("Fridge", "Cabinet", "Microwave"):
                assert scene.client.getJointInfo(obj.body, 0)[2] == scene.client.JOINT_REVOLUTE


def test_drawer_opens_and_closes_carrying_its_contents(kitchen) -> None:
    meta = load_scene_metadata("FloorPlan1")
    by_id = {m["objectId"]: m for m in meta}
    # a drawer that AI2-THOR says holds pickupable objects
    inside = {}
    for m in meta:
        for parent in m.get("parentReceptacles") or []:
            if parent.startswith("Drawer|") and m["pickupable"]:
                inside.setdefault(parent, []).append(m["objectId"])
    drawer_id, contents = max(inside.items(), key=lambda kv: len(kv[1]))
    drawer = kitchen.get(drawer_id)
    assert drawer.is_open is False and kitchen.joint_position(drawer_id) == pytest.approx(0.0)
    kitchen.set_openness(drawer_id, 1.0)
    travel = kitchen.client.getJointState(drawer.body, 0)[0]
    depth = float(np.abs(drawer.joint.front) @ drawer.size)
    assert travel == pytest.approx(0.8 * depth, rel=1e-3) and drawer.is_open
    link_lo, link_hi = kitchen.client.getAABB(drawer.body, 0)
    home = zup(by_id[drawer_id]["axisAlignedBoundingBox"]["center"])
    shift = (np.array(link_lo) + np.array(link_hi)) / 2 - home
    assert np.linalg.norm(shift) == pytest.approx(travel, abs=0.02)  # the drawer's tray really slid out
    for oid in contents:
        moved = np.array(kitchen.client.getBasePositionAndOrientation(kitchen.get(oid).body)[0])
        np.testing.assert_allclose(moved - zup(by_id[oid]["axisAlignedBoundingBox"]["center"]),
                                   drawer.joint.front * travel, atol=1e-5)
    kitchen.set_openness(drawer_id, 0.0, animate=True)
    assert kitchen.client.getJointState(drawer.body, 0)[0] == pytest.approx(0.0, abs=1e-6)
    assert drawer.is_open is False
    for oid in contents:
        np.testing.assert_allclose(kitchen.center(oid), zup(by_id[oid]["axisAlignedBoundingBox"]["center"]),
                                   atol=1e-5)


def _door_center(scene, body: int) -> np.ndarray:
    """World center of the door panel: link frame (from pybullet) + the panel's visual offset."""
    pos, orn = scene.client.getLinkState(body, 0)[4:6]
    visual = [v for v in scene.client.getVisualShapeData(body) if v[1] == 0][0]
    rot = np.array(scene.client.getMatrixFromQuaternion(orn)).reshape(3, 3)
    return np.array(pos) + rot @ np.array(visual[5])


def test_fridge_door_swings_out_of_its_box(kitchen) -> None:
    fridge = kitchen.of_type("Fridge")[0]
    front = fridge.joint.front
    axis = int(np.argmax(np.abs(front)))
    face = fridge.home[axis] + front[axis] * fridge.size[axis] / 2
    width = float(fridge.size[1 - axis])
    closed = _door_center(kitchen, fridge.body)
    assert abs(closed[axis] - face) < 0.03  # closed: the door lies on the front face
    assert abs(closed[1 - axis] - fridge.home[1 - axis]) < 0.03
    kitchen.set_openness(fridge.object_id, 1.0, animate=True)
    assert kitchen.client.getJointState(fridge.body, 0)[0] == pytest.approx(math.pi / 2, abs=0.02)
    opened = _door_center(kitchen, fridge.body)
    assert (opened[axis] - face) * front[axis] == pytest.approx(width / 2, abs=0.03)  # swung out
    assert fridge.is_open
    kitchen.set_openness(fridge.object_id, 0.0)
    assert fridge.is_open is False and kitchen.joint_position(fridge.object_id) == pytest.approx(0.0)
    np.testing.assert_allclose(_door_center(kitchen, fridge.body), closed, atol=1e-6)


def test_toggle_changes_state_and_colour(kitchen) -> None:
    micro = kitchen.of_type("Microwave")[0]
    assert micro.toggled is False  # as recorded
    before = kitchen.client.getVisualShapeData(micro.body)[0][7]
    kitchen.set_toggled(micro.object_id, True)
    after = kitchen.client.getVisualShapeData(micro.body)[0][7]
    assert micro.toggled is True and not np.allclose(before, after)
    with pytest.raises(ValueError):
        kitchen.set_toggled(kitchen.of_type("Apple")[0].object_id, True)


def test_roomr_start_and_target_move_the_right_objects(roomr_2022) -> None:
    scene_name = "FloorPlan21"
    n_moved = 0
    with build_scene(scene_name) as scene:
        for episode in roomr_2022[scene_name][:4]:
            target = {p["name"]: zup(p["position"]) for p in episode["target_poses"]}
            start = {p["name"]: zup(p["position"]) for p in episode["starting_poses"]}
            expect_moved = {n for n in target if np.linalg.norm(target[n] - start[n]) > 0.02}
            n_moved += len(expect_moved)
            scene.apply_episode(episode, "target")
            at_target = {n: scene.center(n) for n in target}
            open_target = {o["objectId"]: scene.get(o["objectId"]).openness for o in episode["openable_data"]}
            scene.apply_episode(episode, "start")
            at_start = {n: scene.center(n) for n in target}
            moved = {n for n in target if np.linalg.norm(at_start[n] - at_target[n]) > 0.02}
            assert moved == expect_moved
            for n in moved:  # box centers move by RoomR's position difference
                np.testing.assert_allclose(at_start[n] - at_target[n], start[n] - target[n], atol=1e-5)
            for o in episode["openable_data"]:
                assert open_target[o["objectId"]] == pytest.approx(o["target_openness"])
                assert scene.get(o["objectId"]).openness == pytest.approx(o["start_openness"])
                joint = scene.joint_position(o["objectId"])
                assert joint == pytest.approx(o["start_openness"] * scene.get(o["objectId"]).joint.upper, abs=1e-6)
    assert n_moved >= 1


def test_agent_start_positions_of_roomr_are_free_space(roomr_2022) -> None:
    """AI2-THOR's recorded agent positions are reachable: nearly all fall on free grid cells."""
    episodes = roomr_2022["FloorPlan21"][:40]
    with build_scene("FloorPlan21", episodes[0], "start") as scene:
        free = 0
        for ep in episodes:
            xy = zup(ep["agent_position"])[:2]
            grid = NavGrid(scene, xy)
            free += bool(grid.free[grid.cell_of(xy)])
    assert free >= 0.9 * len(episodes)


def _sunk_m(scene, oid: str, statics: list) -> float:
    """How deep (m) the object reaches into a fixed body's panel under a quarter or more of its footprint."""
    lo, hi = scene.box(oid)
    area = float(np.prod(np.maximum(hi[:2] - lo[:2], 1e-3)))
    depth = 0.0
    for blo, bhi in statics:
        inter = np.clip(np.minimum(hi, bhi) - np.maximum(lo, blo), 0.0, None)
        if float(np.prod(inter[:2])) > 0.25 * area:
            depth = max(depth, float(inter[2]))
    return depth


@pytest.mark.parametrize("name", ["FloorPlan223", "FloorPlan6"])
def test_roomr_arrangements_rest_on_furniture_not_inside_it(needs_data, name: str) -> None:
    """Furniture is shaped for every place the room's RoomR episodes (of its split, val or train) put
    things, not only the metadata arrangement: a statue an episode stands on the TV stand's shelf is not
    sunk in a solid block, nor a mug under a coffee machine's spout in a train kitchen."""
    episodes = load_roomr(2022, split=roomr_split(name))[name]
    worst = (0.0, "")
    with build_scene(name) as scene:
        statics = [box for o in scene.objects.values() if o.kind == "static"
                   for box in o.panel_boxes(scene.center(o.object_id))]
        for k, episode in enumerate(episodes[40:]):
            for which in ("target", "start"):
                scene.apply_episode(episode, which)
                for o in scene.objects.values():
                    if o.kind == "movable" and o.present:
                        worst = max(worst, (_sunk_m(scene, o.object_id, statics), f"{k} {which} {o.object_id}"))
    assert worst[0] <= 0.05, worst
