"""3D object observations with open3d (``PerceptionParams(backend="open3d")``), behind the same interface
as robomem.perception.objects: a depth image + intrinsics + pose + instance mask or 2D boxes in, one
Detection per object out.

Per frame: RGB-D -> point cloud (``PointCloud.create_from_depth_image``, one point per pixel, in the map
frame). Per instance or box, on its usable pixels (the numpy step of ``objects._FramePrep`` keeps its
range limits and flying-pixel filter):

1. voxel downsampling (``voxel_down_sample``, ``voxel_m``);
2. statistical outlier removal (``remove_statistical_outlier``);
3. clustering (``cluster_dbscan``, radius at least ``cluster_eps_px`` pixels at the object's depth): a
   mask keeps its largest cluster (weighted by each pixel's distance to the mask's border), a box the
   nearest cluster with a fair share of the points (a 2D box also covers what lies behind the object);
4. the support plane (RANSAC, ``segment_plane``, up to ``max_planes`` planes): a horizontal plane at the
   bottom of the cluster (a table top seen around a mug) is removed, the object picked again among what
   is left, and its bottom reaches down to the support;
5. boxes: the cluster's axis-aligned box in the map frame (the Detection's center and size) and, on
   request, its minimal oriented box (:func:`object_box`).

benchmarks/bench_perception.py compares it with the numpy pipeline on the same PyBullet renders
(centre, top and size error, ms per frame): numpy is faster at equal or better accuracy, so it stays
the default (``PerceptionParams.backend``).

open3d needs the Debian package ``libusb-1.0-0`` to import (scripts/setup.sh installs it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from robomem.core.types import Detection, RejectedInput
from robomem.perception.camera import CameraIntrinsics, CameraPose
from robomem.perception.objects import (
    DEFAULT_PARAMS,
    PerceptionParams,
    _bump,
    _detection,
    _FramePrep,
    _mask_pixels,
    pixel_box,
)

o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
o3d.utility.random.seed(0)  # RANSAC and friends: the same frame gives the same boxes


@dataclass(frozen=True)
class ObjectBox:
    """One object's boxes in the map frame: axis-aligned (center, size) and oriented (center, extent, R)."""

    center: np.ndarray
    size: np.ndarray
    obb_center: np.ndarray
    obb_extent: np.ndarray
    obb_rotation: np.ndarray
    points: int


class Open3dFrame:
    """A frame's point cloud (open3d, map frame, one point per pixel) and usable pixels."""

    def __init__(self, depth: Any, intrinsics: CameraIntrinsics, pose: CameraPose | np.ndarray,
                 params: PerceptionParams) -> None:
        self.prep = _FramePrep(depth, intrinsics, pose, params)
        self.params = params
        k = intrinsics
        depth_m = np.nan_to_num(self.prep.depth, nan=0.0).astype(np.float32)
        camera = o3d.camera.PinholeCameraIntrinsic(k.width, k.height, k.fx, k.fy, k.cx, k.cy)
        cloud = o3d.geometry.PointCloud.create_from_depth_image(
            o3d.geometry.Image(depth_m), camera, np.linalg.inv(self.prep.matrix), depth_scale=1.0,
            depth_trunc=float(params.max_range_m) + 1.0, stride=1, project_valid_depth_only=False)
        self.points = np.asarray(cloud.points)  # (H*W, 3), row-major pixel order
        self.width = k.width

    def box(self, rows: np.ndarray, cols: np.ndarray, select: str, counters: dict[str, int] | None,
            weights: np.ndarray | None = None, oriented: bool = False) -> ObjectBox | None:
        p = self.params
        if rows.size < p.min_pixels:
            _bump(counters, "skipped.too_few_pixels")
            return None
        points = self.points[rows * self.width + cols]
        finite = np.all(np.isfinite(points), axis=1)
        pixel_m = float(np.median(self.prep.depth[rows, cols])) / self.prep.intrinsics.fy
        return object_box(points[finite], p, select, counters, self.prep.matrix[:3, 3], pixel_m,
                          None if weights is None else weights[finite], oriented)


def object_box(points: np.ndarray, p: PerceptionParams, select: str, counters: dict[str, int] | None = None,
               origin: np.ndarray | None = None, pixel_m: float = 0.0, weights: np.ndarray | None = None,
               oriented: bool = False) -> ObjectBox | None:
    """Steps 1-5 of the module docstring on one instance's map-frame points; None (counted) if nothing
    object-like remains. ``select``: "largest" (mask) or "nearest" (2D box: nearest to ``origin``, the
    camera). ``pixel_m``: the size of a pixel at the object's depth; DBSCAN's radius is at least
    ``cluster_eps_px`` of them (a table top seen at a grazing angle has rows far apart). ``weights``
    (per point; a mask gives each pixel's distance to its border): the largest cluster is the one
    nearest to the most weight (a mask spilling onto the table or the wall puts background in a thin
    outer band only). ``oriented``: also the minimal oriented box (open3d's, costly: off for Detections,
    whose boxes are axis-aligned in the map frame); otherwise the oriented box is the axis-aligned one."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if p.voxel_m > 0:
        cloud = cloud.voxel_down_sample(p.voxel_m)
    if len(cloud.points) >= p.outlier_neighbors + 1:
        cloud, _ = cloud.remove_statistical_outlier(nb_neighbors=p.outlier_neighbors, std_ratio=p.outlier_std_ratio)
    eps = max(p.cluster_eps_m, 2.5 * p.voxel_m, p.cluster_eps_px * pixel_m)
    member = _pick_cluster(cloud, p, eps, select, points, weights, origin)
    support_top = None
    if member is not None and len(member.points) >= 3 * p.cluster_min_points:
        rest, support_top = _without_support(member, p)
        if support_top is not None:  # the support is gone: pick the object again among what is left
            member = _pick_cluster(rest, p, eps, select, points, weights, origin)
    if member is None or len(member.points) < 4:
        _bump(counters, "skipped.no_cluster")
        return None
    aabb = member.get_axis_aligned_bounding_box()
    lo, hi = np.array(aabb.min_bound, dtype=float), np.array(aabb.max_bound, dtype=float)
    if support_top is not None and support_top < lo[2] <= support_top + p.support_tol_m + p.voxel_m:
        lo[2] = support_top  # it stands on the support
    obb_center, extent, rotation = (lo + hi) / 2, hi - lo, np.eye(3)
    if oriented:
        try:
            obb = member.get_minimal_oriented_bounding_box(robust=True)
            obb_center, extent, rotation = np.asarray(obb.center), np.asarray(obb.extent), np.asarray(obb.R)
        except (RuntimeError, ValueError):  # degenerate (flat or colinear): the axis-aligned box is all there is
            pass
    return ObjectBox((lo + hi) / 2.0, hi - lo, obb_center, extent, rotation, len(member.points))


def _pick_cluster(cloud: o3d.geometry.PointCloud, p: PerceptionParams, eps: float, select: str, points: np.ndarray,
                  weights: np.ndarray | None, origin: np.ndarray | None) -> o3d.geometry.PointCloud | None:
    """DBSCAN, then the object's cluster: the largest (by the weight of the input points nearest to it,
    when weighted) or the nearest to ``origin`` among those with a fair share of the points."""
    if len(cloud.points) < p.cluster_min_points:
        return None
    labels = np.asarray(cloud.cluster_dbscan(eps=eps, min_points=p.cluster_min_points))
    if labels.size == 0 or labels.max() < 0:
        return None
    pts = np.asarray(cloud.points)
    counts = np.bincount(labels[labels >= 0])
    ids = np.flatnonzero(counts >= p.cluster_min_points)
    if ids.size == 0:
        return None
    if select == "largest":
        score = counts.astype(float)
        if weights is not None:  # each input point votes for the cluster of its nearest kept point
            voted = labels[cKDTree(pts).query(points)[1]]
            score = np.bincount(voted[voted >= 0], weights=weights[voted >= 0], minlength=counts.size)
        main = int(ids[np.argmax(score[ids])])
    else:
        big = ids[counts[ids] >= p.min_cluster_fraction * counts.sum()]
        big = big if big.size else ids
        if origin is None:
            main = int(big[np.argmax(counts[big])])
        else:
            main = int(big[np.argmin([np.median(np.linalg.norm(pts[labels == i] - origin, axis=1)) for i in big])])
    return cloud.select_by_index(np.flatnonzero(labels == main).tolist())


def _without_support(cloud: o3d.geometry.PointCloud, p: PerceptionParams
                     ) -> tuple[o3d.geometry.PointCloud, float | None]:
    """Remove the support plane: RANSAC planes are taken out one by one (``max_planes``); the first
    horizontal one that lies at the bottom of everything else and below the top of the object's sides
    is the support (a flat object seen from above is its own top, not a support). Other planes (a side,
    the top, the wall behind) are set aside and the search goes on."""
    points = np.asarray(cloud.points)
    left = np.arange(len(points))
    tilt = math.cos(math.radians(p.support_max_tilt_deg))
    for _ in range(p.max_planes):
        if left.size < 3 * p.cluster_min_points:
            break
        work = cloud.select_by_index(left.tolist())
        plane, inliers = work.segment_plane(distance_threshold=p.plane_distance_m, ransac_n=3,
                                            num_iterations=p.plane_iterations)
        if len(inliers) < p.cluster_min_points:
            break
        normal = np.asarray(plane[:3], dtype=float)
        if abs(normal[2]) / np.linalg.norm(normal) < tilt:  # not horizontal: look for another plane
            left = np.delete(left, inliers)
            continue
        on_plane = np.zeros(len(points), dtype=bool)
        on_plane[left[inliers]] = True
        z_plane = float(np.median(points[on_plane, 2]))
        z_rest = points[~on_plane, 2]
        if z_rest.size < p.cluster_min_points:
            break  # all plane: the object is the flat thing itself
        lowest, top = np.percentile(z_rest, 2.0), np.percentile(z_rest, 98.0)
        if z_plane <= lowest + p.support_tol_m and z_plane < top - p.support_tol_m / 2:
            return cloud.select_by_index(np.flatnonzero(~on_plane).tolist()), z_plane
        left = np.delete(left, inliers)  # a horizontal plane of the object (its top, a shelf): go on
    return cloud, None


def observations_from_segmentation(
    depth: Any, intrinsics: CameraIntrinsics, pose: CameraPose | np.ndarray, instance_mask: Any,
    labels: Mapping[int, str], scores: Mapping[int, float] | None = None, params: PerceptionParams = DEFAULT_PARAMS,
    counters: dict[str, int] | None = None, states: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[Detection]:
    """robomem.perception.objects.observations_from_segmentation, with open3d's steps."""
    frame = Open3dFrame(depth, intrinsics, pose, params)
    mask = np.asarray(instance_mask)
    if mask.shape != frame.prep.depth.shape:
        raise RejectedInput("size_mismatch",
                            f"mask shape {mask.shape} differs from depth shape {frame.prep.depth.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise RejectedInput("bad_mask", f"instance mask must hold integers, got {mask.dtype}")
    out: list[Detection] = []
    for inst, label in labels.items():
        rows, cols = np.nonzero(mask == int(inst))
        if rows.size == 0:
            continue
        try:
            rows, cols, inner = _mask_pixels(rows, cols, params)
            usable = frame.prep.usable[rows, cols]
            box = frame.box(rows[usable], cols[usable], "largest", counters, inner[usable])
        except (ValueError, FloatingPointError, RuntimeError) as exc:
            _bump(counters, f"skipped.{getattr(exc, 'reason', 'error')}")
            continue
        score = 1.0 if scores is None else scores.get(inst, 1.0)
        det = _detection(label, score, None if box is None else (box.center, box.size), counters,
                         None if states is None else states.get(inst))
        if det is not None:
            out.append(det)
    return out


def observations_from_boxes(
    depth: Any, intrinsics: CameraIntrinsics, pose: CameraPose | np.ndarray, boxes: Sequence[Any],
    params: PerceptionParams = DEFAULT_PARAMS, counters: dict[str, int] | None = None,
) -> list[Detection]:
    """robomem.perception.objects.observations_from_boxes, with open3d's steps."""
    frame = Open3dFrame(depth, intrinsics, pose, params)
    height, width = frame.prep.depth.shape
    out: list[Detection] = []
    for raw in boxes:
        parsed = pixel_box(raw, width, height, counters)
        if parsed is None:
            continue
        label, score, state, (u0, v0, u1, v1) = parsed
        rows, cols = np.nonzero(frame.prep.usable[v0:v1, u0:u1])
        box = frame.box(rows + v0, cols + u0, "nearest", counters)
        det = _detection(label, score, None if box is None else (box.center, box.size), counters, state)
        if det is not None:
            out.append(det)
    return out
