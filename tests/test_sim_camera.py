"""robomem_sim camera: depth, intrinsics and optical-frame pose agree with the real boxes; labels match."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pybullet")

from robomem.thor.scene import load_scene_metadata  # noqa: E402
from robomem_sim import Robot, build_scene  # noqa: E402

pytestmark = pytest.mark.data("thor")


def zup(d: dict[str, float]) -> np.ndarray:
    return np.array([d["z"], d["x"], d["y"]], dtype=float)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) unit quaternion -> rotation matrix, written out independently of the code under test."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@pytest.fixture(scope="module")
def looking_at_apple():
    meta = {m["objectId"]: m for m in load_scene_metadata("FloorPlan1")}
    scene = build_scene("FloorPlan1")
    robot = Robot(scene)
    apple = next(oid for oid, m in meta.items() if m["objectType"] == "Apple")
    assert robot.navigate_to(apple)
    frame = robot.observe()
    yield scene, meta, apple, frame
    scene.close()


def test_depth_backprojects_onto_the_real_box(looking_at_apple) -> None:
    scene, meta, apple, f = looking_at_apple
    assert f.depth.dtype == np.float32 and f.depth.shape == (240, 320) and f.rgb.shape == (240, 320, 3)
    assert f.instance_mask.dtype == np.int32
    body = scene.get(apple).body
    rows, cols = np.nonzero(f.instance_mask == body)
    assert rows.size > 20
    z = f.depth[rows, cols].astype(float)
    pts = np.stack([(cols - f.cx) * z / f.fx, (rows - f.cy) * z / f.fy, z], axis=1)
    world = pts @ quat_to_matrix(f.quaternion_xyzw).T + f.position
    box = meta[apple]["axisAlignedBoundingBox"]
    lo = zup(box["center"]) - np.abs(zup(box["size"])) / 2 - 0.015
    hi = zup(box["center"]) + np.abs(zup(box["size"])) / 2 + 0.015
    inside = np.all((world >= lo) & (world <= hi), axis=1)
    assert inside.mean() > 0.97


def test_optical_frame_points_at_the_target(looking_at_apple) -> None:
    scene, meta, apple, f = looking_at_apple
    rot = quat_to_matrix(f.quaternion_xyzw)
    to_apple = zup(meta[apple]["axisAlignedBoundingBox"]["center"]) - f.position
    assert np.degrees(np.arccos(rot[:, 2] @ to_apple / np.linalg.norm(to_apple))) < 2.0  # z forward
    assert abs(rot[2, 0]) < 1e-6  # x (right) is level
    assert rot[2, 1] < 0  # y points down
    assert f.position[2] == pytest.approx(scene.floor_z + 1.5)
    assert (f.cx, f.cy, f.width, f.height) == (159.5, 119.5, 320, 240)
    assert f.fx == pytest.approx(120 / np.tan(np.radians(30)))


def test_segmentation_labels_are_the_metadata_types(looking_at_apple) -> None:
    scene, meta, apple, f = looking_at_apple
    ids = set(np.unique(f.instance_mask).tolist()) - {-1}
    assert ids == set(f.labels) and len(ids) >= 5
    for inst, label in f.labels.items():
        oid = f.object_ids[inst]
        assert label == meta[oid]["objectType"]
        assert scene.get(oid).body == inst
    assert f.labels[scene.get(apple).body] == "Apple"
    assert np.isnan(f.depth[f.instance_mask == -1]).mean() < 1.0  # floor and walls give depth too


def test_door_pixels_carry_their_link_and_states() -> None:
    with build_scene("FloorPlan1") as scene:
        robot = Robot(scene)
        fridge = scene.of_type("Fridge")[0]
        assert robot.navigate_to(fridge.object_id)
        f = robot.observe()
        door = (f.instance_mask == fridge.body) & (f.link_mask == 0)
        assert door.sum() > 100  # the closed door covers the front
        assert f.states[fridge.body] == {"isOpen": False}
        t0 = time.perf_counter()
        for _ in range(5):
            robot.observe()
        assert (time.perf_counter() - t0) / 5 < 0.5  # generous bound; ~25-50 ms here
