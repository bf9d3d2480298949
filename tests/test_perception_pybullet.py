"""Perception on real PyBullet renderings (DIRECT mode, CPU renderer): depth + segmentation of a scene
whose object boxes we know, seen from a camera whose pose we know. Expected values come from the scene."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pb = pytest.importorskip("pybullet", reason="pybullet is not installed (requirements.txt)")

from pybullet_scene import (  # noqa: E402
    EYE,
    OBJECTS,
    TARGET,
    VFOV_DEG,
    Scene,
    add_box,
    build_scene,
    optical_quaternion,
    render,
)

from robomem.core.types import RejectedInput  # noqa: E402
from robomem.perception import (  # noqa: E402
    BoxDetection,
    CameraIntrinsics,
    Frame,
    Perception,
    PerceptionParams,
    make_camera_pose,
    observations_from_boxes,
    observations_from_segmentation,
    optical_pose_from_view_matrix,
    view_cone_for,
)


@pytest.fixture(scope="module")
def scene():
    sc = build_scene()
    yield sc
    pb.disconnect(sc.client)


@pytest.fixture(scope="module")
def frame320(scene):
    return render(scene, 320, 240)


@pytest.fixture(scope="module")
def frame640(scene):
    return render(scene, 640, 480)


def labels_of(scene: Scene) -> dict[int, str]:
    return {scene.bodies[name].body_id: name for name in OBJECTS}


def view_direction(eye=EYE, target=TARGET) -> np.ndarray:
    d = (np.asarray(target, float) - np.asarray(eye, float))[:2]
    return d / np.linalg.norm(d)


def check_against_truth(
    scene: Scene, detections, names, lateral_tol=0.02, top_tol=0.02, behind_tol=0.015, size_slack=0.02
) -> None:
    """Each named object found once, at its true place: across the view direction and at its top within
    a couple of cm; along the view direction between its near face and its center (a camera sees only
    the near side of an object, so the visible box is biased towards the camera, never away)."""
    by_label = {d.label: d for d in detections}
    assert sorted(d.label for d in detections) == sorted(names)
    along = view_direction()
    across = np.array([-along[1], along[0]])
    for name in names:
        det, body = by_label[name], scene.bodies[name]
        err = det.center[:2] - body.center[:2]
        assert abs(err @ across) < lateral_tol, (name, det.center, body.center)
        half_depth = float(np.abs(body.size[:2] / 2) @ np.abs(along))
        assert -half_depth - 0.01 < err @ along < behind_tol, (name, det.center, body.center)
        top_true = body.center[2] + body.size[2] / 2
        top_seen = det.center[2] + det.size[2] / 2
        assert abs(top_seen - top_true) < top_tol, (name, top_seen, top_true)
        # sizes: never larger than the object (plus a pixel or two), at least most of it
        assert np.all(det.size <= body.size + size_slack), (name, det.size, body.size)
        assert np.all(det.size >= body.size * 0.6), (name, det.size, body.size)


VISIBLE = ["DiningTable", "Mug", "Book", "Box"]  # the apple is hidden behind the table, the plant outside the image


@pytest.mark.parametrize("res", ["frame320", "frame640"])
def test_segmentation_recovers_the_scene(scene, res, request):
    r = request.getfixturevalue(res)
    pose = make_camera_pose(r.position, r.quaternion)
    counters: dict[str, int] = {}
    dets = observations_from_segmentation(r.depth_m, r.intrinsics, pose, r.seg, labels_of(scene), counters=counters)
    check_against_truth(scene, dets, VISIBLE)
    assert counters == {"detections": 4}
    assert all(d.confidence == 1.0 for d in dets)


def test_scores_labels_and_unlabelled_ids(scene, frame320):
    r = frame320
    pose = make_camera_pose(r.position, r.quaternion)
    mug, book = scene.bodies["Mug"].body_id, scene.bodies["Book"].body_id
    # only labelled ids are reported (the table, box, floor and wall are in the mask but not named)
    dets = observations_from_segmentation(
        r.depth_m, r.intrinsics, pose, r.seg, {mug: "Mug", book: "Book"}, scores={mug: 0.7}
    )
    assert sorted((d.label, d.confidence) for d in dets) == [("Book", 1.0), ("Mug", pytest.approx(0.7))]


def test_uint16_millimetres_give_the_same_answer(scene, frame320):
    r = frame320
    pose = make_camera_pose(r.position, r.quaternion)
    mm = np.round(r.depth_m * 1000.0).astype(np.uint16)
    mm[r.depth_m > 10.0] = 0  # no return: invalid
    dets = observations_from_segmentation(mm, r.intrinsics, pose, r.seg, labels_of(scene))
    check_against_truth(scene, dets, VISIBLE)


def test_mask_bleeding_into_background_and_flying_pixels(scene, frame320):
    """A mask that spills 3 px over the object's border (onto the table and the wall behind) and depth
    smeared across the silhouette (mixed pixels, as real depth sensors give) leave the boxes in place."""
    from scipy import ndimage

    r = frame320
    pose = make_camera_pose(r.position, r.quaternion)
    seg = r.seg.copy()
    depth = r.depth_m.copy()
    for name in ("Mug", "Box", "Book"):
        body = scene.bodies[name].body_id
        inside = r.seg == body
        grown = ndimage.binary_dilation(inside, iterations=3) & ~inside
        ring = ndimage.binary_dilation(inside, iterations=1) & ~inside
        smeared = ndimage.uniform_filter(r.depth_m, size=3)
        depth[ring] = smeared[ring]  # mixed depths between the object and what lies behind it
        seg[grown] = body
    dets = observations_from_segmentation(depth, r.intrinsics, pose, seg, labels_of(scene))
    # mixed pixels where the depth jump is small (the box's side against the floor just behind it) are not
    # flying pixels by the 4 % rule and can stretch a box away from the camera by a few cm
    check_against_truth(scene, dets, VISIBLE, lateral_tol=0.02, top_tol=0.02, behind_tol=0.045, size_slack=0.08)


def test_boxes_keep_the_object_not_what_lies_behind(scene, frame640):
    """2D boxes (taken from the rendered silhouettes) cover table, floor and wall around each object."""
    r = frame640
    pose = make_camera_pose(r.position, r.quaternion)
    boxes = []
    for name in VISIBLE:
        rows, cols = np.nonzero(r.seg == scene.bodies[name].body_id)
        pad = 6  # a detector's box is loose: it takes in table, floor and wall around the object
        box = BoxDetection(name, 0.8, cols.min() - pad, rows.min() - pad, cols.max() + 1 + pad, rows.max() + 1 + pad)
        boxes.append(box)
        inside = r.seg[box.y0 : box.y1, box.x0 : box.x1]
        assert np.mean(inside != scene.bodies[name].body_id) > 0.15 or name == "DiningTable"
    counters: dict[str, int] = {}
    dets = observations_from_boxes(r.depth_m, r.intrinsics, pose, boxes, counters=counters)
    assert counters == {"detections": 4}
    small = [d for d in dets if d.label != "DiningTable"]
    check_against_truth(scene, small, ["Mug", "Book", "Box"], lateral_tol=0.03, top_tol=0.03)
    # a 2D box of a table holds what stands on it too (it is continuous in depth with the table): its top
    # reaches the mug's, and the rest of its box is the table's
    table = next(d for d in dets if d.label == "DiningTable")
    truth = scene.bodies["DiningTable"]
    assert np.all(np.abs(table.center[:2] - truth.center[:2]) < 0.03), table.center
    assert 0.75 - 0.01 < table.center[2] + table.size[2] / 2 < 0.85 + 0.01
    assert abs((table.center[2] - table.size[2] / 2) - 0.0) < 0.02
    assert all(d.confidence == pytest.approx(0.8) for d in dets)


def test_box_in_front_of_a_wall_in_millimetres(scene):
    """A box floating in front of the wall, its 2D box padded with wall: the wall (far) falls away."""
    client = scene.client
    extra = add_box(client, "Frame", (3.3, 0.6, 1.2), (0.06, 0.4, 0.3))
    try:
        r = render(scene, 320, 240, target=np.array([3.3, 0.6, 1.2]))
        rows, cols = np.nonzero(r.seg == extra.body_id)
        box = (extra.label, 0.9, cols.min() - 6, rows.min() - 6, cols.max() + 7, rows.max() + 7)
        mm = np.round(r.depth_m * 1000.0).astype(np.uint16)
        dets = observations_from_boxes(mm, r.intrinsics, make_camera_pose(r.position, r.quaternion), [box])
    finally:
        pb.removeBody(extra.body_id, physicsClientId=client)
    assert len(dets) == 1
    det = dets[0]
    assert np.all(np.abs(det.center[1:] - extra.center[1:]) < 0.02), det.center
    assert extra.center[0] - 0.05 < det.center[0] < extra.center[0] + 0.01
    assert abs(det.size[1] - 0.4) < 0.03 and abs(det.size[2] - 0.3) < 0.03, det.size


def test_view_cone_matches_the_camera(frame320):
    r = frame320
    cone = view_cone_for(r.intrinsics, make_camera_pose(r.position, r.quaternion), 5.0)
    d = TARGET - EYE
    assert cone.yaw_deg == pytest.approx(math.degrees(math.atan2(d[1], d[0])), abs=1e-6)
    hfov = 2 * math.degrees(math.atan(math.tan(math.radians(VFOV_DEG / 2)) * 320 / 240))
    assert cone.fov_deg == pytest.approx(hfov, abs=1e-6)
    assert cone.position == pytest.approx(tuple(EYE))
    assert cone.range_m == 5.0


def test_view_cone_when_looking_down_is_none():
    intr = CameraIntrinsics(300, 300, 159.5, 119.5, 320, 240)
    down = optical_quaternion(np.array([0.0, 0.0, 2.0]), np.array([0.01, 0.0, 0.0]))
    assert view_cone_for(intr, make_camera_pose((0, 0, 2), down), 4.0) is None


def test_pybullet_matrix_helpers_match_the_camera(frame320):
    r = frame320
    pose = optical_pose_from_view_matrix(r.view_matrix)
    assert np.allclose(pose.position, EYE, atol=1e-5)
    assert np.allclose(pose.rotation, Rotation.from_quat(r.quaternion).as_matrix(), atol=1e-5)
    intr = CameraIntrinsics.from_projection(r.projection, 320, 240)
    for a, b in zip(
        (intr.fx, intr.fy, intr.cx, intr.cy),
        (r.intrinsics.fx, r.intrinsics.fy, r.intrinsics.cx, r.intrinsics.cy),
        strict=True,
    ):
        assert a == pytest.approx(b, rel=1e-5)


def test_perception_frame_and_counters(scene, frame320):
    r = frame320
    perception = Perception(PerceptionParams(max_range_m=5.0))
    frame = Frame(
        t=12.5,
        robot="r1",
        depth=r.depth_m,
        intrinsics=r.intrinsics,
        pose=make_camera_pose(r.position, r.quaternion),
        mask=r.seg,
        labels=labels_of(scene),
    )
    batch = perception.observe(frame)
    assert batch.t == 12.5 and batch.robot == "r1"
    assert sorted(d.label for d in batch.detections) == sorted(VISIBLE)
    assert batch.view is not None and batch.view.range_m == 5.0
    # a tiny instance is skipped and counted, the frame still goes through
    seg = r.seg.copy()
    seg[0:2, 0:2] = 999
    small = Frame(13.0, "r1", r.depth_m, r.intrinsics, frame.pose, mask=seg, labels={999: "Speck"})
    assert perception.observe(small).detections == []
    assert perception.counters["skipped.too_few_pixels"] == 1
    assert perception.counters["frames"] == 2


def test_recognised_states_go_with_their_instance(scene, frame320):
    r = frame320
    labels = labels_of(scene)
    mug, book = (next(i for i, name in labels.items() if name == wanted) for wanted in ("Mug", "Book"))
    frame = Frame(1.0, "r1", r.depth_m, r.intrinsics, make_camera_pose(r.position, r.quaternion), mask=r.seg,
                  labels=labels, states={mug: {"isFilledWithLiquid": True}, book: {"isOpen": False}})
    found = {d.label: d.state for d in Perception().observe(frame).detections}
    assert found["Mug"] == {"isFilledWithLiquid": True}
    assert found["Book"] == {"isOpen": False}
    assert all(state == {} for label, state in found.items() if label not in ("Mug", "Book"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: setattr(f, "mask", f.mask[:, :-1]), "size_mismatch"),
        (lambda f: setattr(f, "depth", f.depth[:-1]), "size_mismatch"),
        (lambda f: setattr(f, "mask", f.mask.astype(np.float32)), "bad_mask"),
        (lambda f: setattr(f, "depth", np.zeros((240, 320), dtype=bool)), "bad_depth"),
        (lambda f: setattr(f, "t", float("nan")), "non_finite"),
        (lambda f: setattr(f, "boxes", []), "malformed"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(scene, frame320, change, reason):
    r = frame320
    frame = Frame(
        1.0,
        "r1",
        r.depth_m,
        r.intrinsics,
        make_camera_pose(r.position, r.quaternion),
        mask=r.seg,
        labels=labels_of(scene),
    )
    change(frame)
    perception = Perception()
    with pytest.raises(RejectedInput) as info:
        perception.observe(frame)
    assert info.value.reason == reason
    assert perception.counters == {f"rejected.{reason}": 1}


@pytest.mark.parametrize(
    ("position", "quaternion"),
    [
        ((0, 0, float("nan")), (0, 0, 0, 1)),
        ((0, 0, 1), (0, 0, 0, 0)),
        ((0, 0, 1), (0, 0, 0, 2)),
        ((0, 0, 1), (0, 0, 1)),
        ((0, 0, 1), (float("inf"), 0, 0, 1)),
    ],
)
def test_bad_poses_are_rejected(position, quaternion):
    with pytest.raises(RejectedInput) as info:
        make_camera_pose(position, quaternion)
    assert info.value.reason == "bad_pose"


@pytest.mark.parametrize("k", [[0] * 9, [], [float("nan")] * 9, [[-500, 0, 160], [0, 500, 120], [0, 0, 1]]])
def test_bad_intrinsics_are_rejected(k):
    with pytest.raises(RejectedInput) as info:
        CameraIntrinsics.from_k(k, 320, 240)
    assert info.value.reason == "bad_intrinsics"


def test_bad_boxes_are_skipped_not_fatal(scene, frame320):
    r = frame320
    pose = make_camera_pose(r.position, r.quaternion)
    rows, cols = np.nonzero(r.seg == scene.bodies["Box"].body_id)
    good = ("Box", 0.9, cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    counters: dict[str, int] = {}
    boxes = [
        ("Mug", 0.5, 10, 10, 5, 5),
        ("Mug",),
        ("Mug", 1.5, 0, 0, 50, 50),
        ("Mug", 0.5, "a", 0, 1, 1),
        good,
        ("Ghost", 0.5, 400, 300, 500, 400),
    ]
    dets = observations_from_boxes(r.depth_m, r.intrinsics, pose, boxes, counters=counters)
    assert [d.label for d in dets] == ["Box"]
    assert counters["skipped.bad_box"] == 4  # inverted, too short, not numeric, outside the image
    assert counters["skipped.bad_confidence"] == 1


def test_a_flat_object_seen_from_above_is_not_taken_for_its_support():
    """A remote (2 cm high) on a low table, seen steeply from above: its top is level with the top of its
    sides, so it is the object's top, not a surface it stands on (it used to be cut away, losing the object)."""
    client = pb.connect(pb.DIRECT)
    try:
        table = add_box(client, "CoffeeTable", (1.0, 0.0, 0.17), (0.6, 1.0, 0.34), (0.5, 0.3, 0.1, 1))
        remote = add_box(client, "RemoteControl", (0.95, 0.05, 0.35), (0.2, 0.07, 0.02), (0.1, 0.1, 0.1, 1))
        scene = Scene(client, {b.label: b for b in (table, remote)})
        eye, target = np.array([0.45, -0.05, 1.1]), remote.center
        shot = render(scene, 160, 120, eye=eye, target=target)
        assert int(np.count_nonzero(shot.seg == remote.body_id)) >= 30  # enough pixels to be perceived
        pose = make_camera_pose(shot.position, shot.quaternion)
        labels = {table.body_id: "CoffeeTable", remote.body_id: "RemoteControl"}
        found = {d.label: d for d in observations_from_segmentation(shot.depth_m, shot.intrinsics, pose, shot.seg,
                                                                    labels)}
    finally:
        pb.disconnect(client)
    assert "RemoteControl" in found
    seen = found["RemoteControl"]
    assert np.linalg.norm(seen.center[:2] - remote.center[:2]) < 0.03
    assert abs((seen.center[2] + seen.size[2] / 2) - 0.36) < 0.015  # its top, at 36 cm
