"""The open3d perception backend (robomem.perception.open3d_objects) on PyBullet renders: the same
interface and truth checks as the numpy pipeline (tests/test_perception_pybullet.py), the support plane
removed by RANSAC, outliers of a spilling mask removed, oriented boxes of a rotated object, bad input
refused the same way."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d", reason="open3d is not installed (pip install open3d-cpu; it needs libusb-1.0-0)")
pb = pytest.importorskip("pybullet")

from pybullet_scene import add_box, build_scene, render  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from test_perception_pybullet import VISIBLE, check_against_truth, labels_of  # noqa: E402

from robomem.core.types import RejectedInput  # noqa: E402
from robomem.perception import BoxDetection, Frame, Perception, PerceptionParams, make_camera_pose  # noqa: E402
from robomem.perception import open3d_objects as o3d_objects  # noqa: E402

OPEN3D = PerceptionParams(backend="open3d")


@pytest.fixture(scope="module")
def scene():
    sc = build_scene()
    yield sc
    pb.disconnect(sc.client)


@pytest.fixture(scope="module")
def frames(scene):
    return {"320": render(scene, 320, 240), "640": render(scene, 640, 480)}


@pytest.mark.parametrize("res", ["320", "640"])
def test_segmentation_recovers_the_scene(scene, frames, res):
    r = frames[res]
    pose = make_camera_pose(r.position, r.quaternion)
    counters: dict[str, int] = {}
    dets = o3d_objects.observations_from_segmentation(r.depth_m, r.intrinsics, pose, r.seg, labels_of(scene),
                                                      params=OPEN3D, counters=counters)
    assert counters["detections"] == len(VISIBLE)
    # the camera sees the mug's near half only: its depth extent is short by up to its radius (4.5 cm)
    check_against_truth(scene, dets, VISIBLE, lateral_tol=0.02, top_tol=0.02, behind_tol=0.03, size_slack=0.02)


def test_perception_uses_the_backend_it_is_given(scene, frames):
    r = frames["320"]
    frame = Frame(5.0, "r1", r.depth_m, r.intrinsics, make_camera_pose(r.position, r.quaternion), mask=r.seg,
                  labels=labels_of(scene))
    numpy_batch = Perception(PerceptionParams()).observe(frame)
    open3d_batch = Perception(OPEN3D).observe(frame)
    assert sorted(d.label for d in open3d_batch.detections) == sorted(d.label for d in numpy_batch.detections)
    by_label = {d.label: d for d in numpy_batch.detections}
    for det in open3d_batch.detections:  # the two pipelines agree within a few cm on every object
        assert np.all(np.abs(det.center - by_label[det.label].center) < 0.04), det.label
    with pytest.raises(ValueError, match="unknown perception backend"):
        Perception(PerceptionParams(backend="torch")).observe(frame)


def test_a_mask_spilling_onto_table_and_wall_keeps_the_objects(scene, frames):
    r = frames["320"]
    pose = make_camera_pose(r.position, r.quaternion)
    seg = r.seg.copy()
    for name in ("Mug", "Box", "Book"):
        body = scene.bodies[name].body_id
        inside = r.seg == body
        seg[ndimage.binary_dilation(inside, iterations=3) & ~inside] = body
    dets = o3d_objects.observations_from_segmentation(r.depth_m, r.intrinsics, pose, seg, labels_of(scene),
                                                      params=OPEN3D)
    check_against_truth(scene, dets, VISIBLE, lateral_tol=0.02, top_tol=0.02, behind_tol=0.045, size_slack=0.08)


def test_boxes_lose_the_support_plane_and_the_background(scene, frames):
    """A loose 2D box around the mug covers the table top (RANSAC finds it and takes it away) and the
    wall behind (another DBSCAN cluster, farther)."""
    r = frames["640"]
    pose = make_camera_pose(r.position, r.quaternion)
    rows, cols = np.nonzero(r.seg == scene.bodies["Mug"].body_id)
    pad = 8
    box = BoxDetection("Mug", 0.7, cols.min() - pad, rows.min() - pad, cols.max() + 1 + pad, rows.max() + 1 + pad)
    assert np.mean(r.seg[box.y0: box.y1, box.x0: box.x1] != scene.bodies["Mug"].body_id) > 0.3
    (det,) = o3d_objects.observations_from_boxes(r.depth_m, r.intrinsics, pose, [box], params=OPEN3D)
    check_against_truth(scene, [det], ["Mug"], lateral_tol=0.03, top_tol=0.03, behind_tol=0.03, size_slack=0.03)
    assert det.center[2] - det.size[2] / 2 == pytest.approx(0.75, abs=0.02)  # it stands on the table top
    assert det.confidence == pytest.approx(0.7)


def test_oriented_box_of_a_rotated_object():
    """A 0.6 x 0.2 x 0.3 m box turned 30 degrees: its axis-aligned box is wider than it; the oriented
    box recovers its footprint and heading."""
    client = pb.connect(pb.DIRECT)
    try:
        add_box(client, "Floor", (2.0, 0.0, -0.01), (8.0, 8.0, 0.02))
        body = add_box(client, "Crate", (2.0, 0.0, 0.15), (0.6, 0.2, 0.3), (0.7, 0.5, 0.2, 1))
        turn = Rotation.from_euler("z", 30, degrees=True)
        pb.resetBasePositionAndOrientation(body.body_id, (2.0, 0.0, 0.15), turn.as_quat(), physicsClientId=client)
        from pybullet_scene import Scene

        r = render(Scene(client, {"Crate": body}), 640, 480, eye=np.array([0.6, -0.4, 1.6]),
                   target=np.array([2.0, 0.0, 0.1]))
    finally:
        pb.disconnect(client)
    frame = o3d_objects.Open3dFrame(r.depth_m, r.intrinsics, make_camera_pose(r.position, r.quaternion), OPEN3D)
    rows, cols = np.nonzero((r.seg == body.body_id) & frame.prep.usable)
    found = frame.box(rows, cols, "largest", None, oriented=True)
    assert found is not None
    # axis-aligned: the turned box spans 0.6 cos30 + 0.2 sin30 = 0.62 by 0.6 sin30 + 0.2 cos30 = 0.47 m
    assert found.size[0] > 0.55 and found.size[1] > 0.4
    footprint = sorted(found.obb_extent)
    assert footprint[-1] == pytest.approx(0.6, abs=0.05) and footprint[0] == pytest.approx(0.2, abs=0.06)
    long_axis = found.obb_rotation[:, int(np.argmax(found.obb_extent))]
    heading = np.degrees(np.arctan2(long_axis[1], long_axis[0])) % 180
    assert heading == pytest.approx(30, abs=6)


def test_bad_frames_are_refused_as_by_the_numpy_pipeline(scene, frames):
    r = frames["320"]
    pose = make_camera_pose(r.position, r.quaternion)
    with pytest.raises(RejectedInput) as error:
        o3d_objects.observations_from_segmentation(r.depth_m, r.intrinsics, pose, r.seg[:-1], labels_of(scene),
                                                   params=OPEN3D)
    assert error.value.reason == "size_mismatch"
    with pytest.raises(RejectedInput) as error:
        o3d_objects.observations_from_segmentation(r.depth_m, r.intrinsics, pose, r.seg.astype(float),
                                                   labels_of(scene), params=OPEN3D)
    assert error.value.reason == "bad_mask"
    counters: dict[str, int] = {}
    bad = [BoxDetection("Mug", 0.5, 10, 10, 10, 20), ("Mug", 0.5, "x", 0, 1, 1), BoxDetection("Speck", 0.5, 0, 0, 2, 2)]
    assert o3d_objects.observations_from_boxes(r.depth_m, r.intrinsics, pose, bad, params=OPEN3D,
                                               counters=counters) == []
    assert counters == {"skipped.bad_box": 2, "skipped.too_few_pixels": 1}
