"""3D object observations from a depth image plus an instance mask or 2D boxes (no ROS).

Per instance (:func:`observations_from_segmentation`) or per 2D box (:func:`observations_from_boxes`):

1. pixels: the instance's mask (optionally eroded by ``erosion_px``, for masks that do not line up
   with the depth image), or the box's pixels; minus pixels without valid depth, beyond
   ``max_range_m``, and "flying pixels" (depths interpolated between a foreground edge and the
   background, :func:`flying_pixels`);
2. back-projection to the map frame (at most ``max_points`` points, evenly subsampled);
3. surfaces: connected components of those pixels in the image, where 4-neighbours join when their
   depths differ by at most ``connect_rel`` x depth (:func:`surface_components`). This splits the
   object from background seen through or around it, wherever the depth jumps, and unlike a 3D radius
   (DBSCAN) it keeps surfaces seen at grazing angles (a table top) in one piece. Pieces under
   ``cluster_min_points`` pixels are noise. A mask keeps its largest surface (pixels weighted by their distance to
   the mask's border) plus those whose depth
   range lies within ``merge_gap_m`` of it (an object cut in two by a thin occluder); a box keeps the
   *nearest* surface holding at least ``min_cluster_fraction`` of its pixels (a 2D box also covers the
   wall or table behind the object). Both drop the support surface the object stands on
   (``_FramePrep._support``) and pick again among what is left. Things standing *on* the object (a
   mug on a table) are not removed: a 2D box of a table includes what stands on it;
4. the box: per map axis, the min and max of the kept points ignoring the ``trim_points`` most extreme
   ones on each side (outliers were removed by steps 1 and 3; percentiles would be biased, because a
   surface seen at a grazing angle, such as a table top, has far fewer points per metre than one seen
   face-on); center = middle of that box, size = its extent.

A camera sees only the surface facing it, so the depth extent (and the center along the view
direction) of a single view is biased towards the camera; the top and the sides are not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from robomem.core.types import Detection, RejectedInput, make_detection
from robomem.perception.camera import CameraIntrinsics, CameraPose, backproject, depth_to_metres, transform_points


@dataclass(frozen=True)
class PerceptionParams:
    """Tuning of the depth -> 3D box extraction (defaults suit 320x240 to 640x480 RGB-D cameras)."""

    min_pixels: int = 30  # fewer valid pixels than this: instance skipped
    max_range_m: float = 6.0  # farther depth is ignored (and is the view cone's range)
    min_range_m: float = 0.05
    erosion_px: int = 0  # mask erosion (for masks misaligned with depth); skipped where under min_pixels would remain
    edge_jump_rel: float = 0.04  # flying pixel: 3x3 depth jumps on both sides above this x depth (0 disables)
    connect_rel: float = 0.04  # neighbouring pixels are one surface if their depths differ less (relative)
    cluster_min_points: int = 5  # smaller surface pieces are noise
    max_points: int = 20000  # points per instance for the box statistics (evenly subsampled)
    min_cluster_fraction: float = 0.15  # boxes: a cluster needs this share of the points to be the object
    merge_gap_m: float = 0.10  # clusters this close in depth to the kept one are kept too
    support_tol_m: float = 0.02  # a support is at most this far above the object's lowest side
    support_max_tilt_deg: float = 25.0  # surfaces whose normal is this close to vertical are horizontal
    trim_points: int = 2  # robust box: ignore this many most extreme points per side and axis
    depth_scale: float | None = None  # metres per unit of integer depth images (None: millimetres)
    # The view cone's range (how far memory expects to see objects): this quantile of the frame's 3D
    # pixel distances plus view_range_margin_m, at most max_range_m -- a wall two metres ahead hides the
    # next room. None: always max_range_m.
    view_range_quantile: float | None = None
    view_range_margin_m: float = 0.3
    # Which implementation extracts the boxes: "numpy" (this module) or "open3d" (open3d_objects: voxel
    # grid, statistical outliers, RANSAC support plane, DBSCAN, axis-aligned + oriented boxes).
    backend: str = "numpy"
    voxel_m: float = 0.02  # open3d: voxel size of the downsampling (0: none)
    outlier_neighbors: int = 8  # open3d: statistical outlier removal over this many neighbours ...
    outlier_std_ratio: float = 4.0  # ... dropping points farther than this many standard deviations
    cluster_eps_m: float = 0.03  # open3d: DBSCAN neighbourhood (at least 2.5 voxels) ...
    cluster_eps_px: float = 3.0  # ... and this many pixels at the object's depth
    plane_distance_m: float = 0.01  # open3d: RANSAC inlier distance of the support plane
    plane_iterations: int = 200
    max_planes: int = 4  # open3d: planes tried for the support (sides, top, a wall behind are set aside)


DEFAULT_PARAMS = PerceptionParams()


class BoxDetection(NamedTuple):
    """A 2D detection: pixel box with columns x0 <= u < x1 and rows y0 <= v < y1 (floats are rounded outwards)."""

    label: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float
    state: Mapping[str, Any] | None = None  # states the detector sees (isOpen, isToggled, ...)


def _bump(counters: dict[str, int] | None, key: str) -> None:
    if counters is not None:
        counters[key] = counters.get(key, 0) + 1


def flying_pixels(depth_m: np.ndarray, jump_rel: float) -> np.ndarray:
    """Pixels lying *between* surfaces: their depth differs from both the nearest and the farthest
    depth of their 3x3 neighbourhood by more than ``jump_rel`` x their own depth (the mixed depths
    sensors report along depth edges). Pixels at the border of a surface have a neighbour at their own
    depth on one side and are kept; pixels without depth and their neighbours are never flagged."""
    nearest = ndimage.minimum_filter(np.nan_to_num(depth_m, nan=np.inf), size=3)
    farthest = ndimage.maximum_filter(np.nan_to_num(depth_m, nan=0.0), size=3)
    with np.errstate(invalid="ignore"):
        margin = jump_rel * depth_m
        return (farthest - depth_m > margin) & (depth_m - nearest > margin)


class _FramePrep:
    """What all instances of one frame share: metric depth, its validity, the pose transform."""

    def __init__(
        self, depth: Any, intrinsics: CameraIntrinsics, pose: CameraPose | np.ndarray, params: PerceptionParams
    ) -> None:
        self.depth = depth_to_metres(depth, params.depth_scale)
        if self.depth.shape != (intrinsics.height, intrinsics.width):
            raise RejectedInput(
                "size_mismatch",
                f"depth is {self.depth.shape[1]}x{self.depth.shape[0]}, camera info says "
                f"{intrinsics.width}x{intrinsics.height}",
            )
        self.intrinsics = intrinsics
        self.matrix = pose.matrix() if isinstance(pose, CameraPose) else np.asarray(pose, dtype=float)
        if self.matrix.shape != (4, 4) or not np.all(np.isfinite(self.matrix)):
            raise RejectedInput("bad_pose", "camera pose must be a CameraPose or a finite 4x4 transform")
        self.params = params
        with np.errstate(invalid="ignore"):
            usable = (self.depth >= params.min_range_m) & (self.depth <= params.max_range_m)
        if params.edge_jump_rel > 0:
            usable &= ~flying_pixels(self.depth, params.edge_jump_rel)
        self.usable = usable

    def box(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        select: str,
        counters: dict[str, int] | None,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Robust map-frame (center, size) of the given (usable) pixels, or None (counted).

        ``select``: "largest" (mask: the surface with the largest total ``weights``, default one per
        pixel) or "nearest" (box: the nearest surface with a fair share); either minus its support."""
        p = self.params
        if rows.size < p.min_pixels:
            _bump(counters, "skipped.too_few_pixels")
            return None
        keep = _object_pixels(rows, cols, self.depth[rows, cols], p, select, weights)
        support_top = None
        if keep is not None:
            support, support_top = self._support(rows[keep], cols[keep])
            if support.any():
                rest = np.flatnonzero(keep)[~support]
                if rest.size < p.min_pixels:
                    keep = None
                else:
                    again = _object_pixels(rows[rest], cols[rest], self.depth[rows[rest], cols[rest]], p, select, None)
                    keep = None if again is None else rest[again]
        if keep is None:
            _bump(counters, "skipped.no_cluster")
            return None
        rows, cols = rows[keep], cols[keep]
        if rows.size > p.max_points:
            pick = np.linspace(0, rows.size - 1, p.max_points).astype(np.int64)
            rows, cols = rows[pick], cols[pick]
        points = transform_points(backproject(self.depth, self.intrinsics, rows, cols), self.matrix)
        k = min(p.trim_points, (points.shape[0] - 1) // 2)
        ordered = np.partition(points, (k, points.shape[0] - 1 - k), axis=0)
        lo, hi = ordered[k], ordered[points.shape[0] - 1 - k]
        if support_top is not None and support_top < lo[2] <= support_top + p.support_tol_m:
            lo[2] = support_top  # it stands on the support
        return (lo + hi) / 2.0, hi - lo

    def _support(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Which of these pixels belong to a surface the object stands on: a horizontal surface (normal
        within ``support_max_tilt_deg`` of vertical) no higher than ``support_tol_m`` above the lowest
        non-horizontal part. A table top seen around and behind a mug (in its 2D box, or where its mask
        spills over) is continuous in depth with the mug and would otherwise join it; the mug's own top
        lies higher and stays. Returns the pixels and the height of the highest support (None if none):
        the object's bottom, which was cut with the support, reaches down to it."""
        p = self.params
        r0, c0 = rows.min(), cols.min()
        grid = np.full((int(rows.max() - r0 + 1), int(cols.max() - c0 + 1), 3), np.nan)
        grid[rows - r0, cols - c0] = transform_points(backproject(self.depth, self.intrinsics, rows, cols), self.matrix)
        if min(grid.shape[:2]) < 2:
            return np.zeros(rows.size, dtype=bool), None
        d_rows, d_cols = np.gradient(grid, axis=(0, 1))
        normal = np.cross(d_rows, d_cols)[rows - r0, cols - c0]
        with np.errstate(invalid="ignore", divide="ignore"):
            up = np.abs(normal[:, 2]) / np.linalg.norm(normal, axis=1)
        horizontal = up >= math.cos(math.radians(p.support_max_tilt_deg))
        upright = up < math.cos(math.radians(p.support_max_tilt_deg))  # NaN (unknown) is neither
        z = grid[rows - r0, cols - c0, 2]
        support = np.zeros(rows.size, dtype=bool)
        top: float | None = None
        if horizontal.sum() < p.cluster_min_points or upright.sum() < p.cluster_min_points:
            return support, top
        lowest_upright = np.percentile(z[upright], 2.0)
        # a flat object seen from above (a remote, a book, a plate): its top is level with the top of its
        # sides, however low they are; a support lies below them
        top_of_sides = np.percentile(z[upright], 98.0)
        flat = np.flatnonzero(horizontal)
        labels = surface_components(rows[flat], cols[flat], self.depth[rows[flat], cols[flat]], p.connect_rel)
        for label in np.flatnonzero(np.bincount(labels) >= p.cluster_min_points):
            member = flat[labels == label]
            level = float(np.median(z[member]))
            if level <= lowest_upright + p.support_tol_m and level < top_of_sides - p.support_tol_m / 2:
                # with it, every pixel at its height: where the surface meets the object or a depth jump,
                # normals are mixed, and those pixels would join the object to the far parts of the support
                support |= np.abs(z - level) < p.support_tol_m / 2
                top = level if top is None else max(top, level)
        return support, top


def _object_pixels(
    rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, p: PerceptionParams, select: str, weights: np.ndarray | None
) -> np.ndarray | None:
    """Boolean selection of the object's surface(s) among the pixels (module docstring, step 3)."""
    labels = surface_components(rows, cols, depth, p.connect_rel)
    counts = np.bincount(labels)
    counts[counts < p.cluster_min_points] = 0
    if not counts.any():
        return None
    score = counts.astype(float) if weights is None else np.bincount(labels, weights=weights) * (counts > 0)
    return _select_components(labels, counts, score, depth, p, select)


def surface_components(rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, connect_rel: float) -> np.ndarray:
    """Connected components (a label per given pixel) of the given pixels, where 4-neighbours join when
    their depths differ by at most ``connect_rel`` x the nearer one: one label per continuous surface."""
    r0, c0 = rows.min(), cols.min()
    shape = (int(rows.max() - r0 + 1), int(cols.max() - c0 + 1))
    index = np.full(shape, -1, dtype=np.int64)
    index[rows - r0, cols - c0] = np.arange(rows.size)
    zgrid = np.full(shape, np.nan)
    zgrid[rows - r0, cols - c0] = depth
    sources, targets = [], []
    for a, b in ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :])):
        ia, ib, za, zb = index[a], index[b], zgrid[a], zgrid[b]
        with np.errstate(invalid="ignore"):
            joined = (ia >= 0) & (ib >= 0) & (np.abs(za - zb) <= connect_rel * np.fmin(za, zb))
        sources.append(ia[joined])
        targets.append(ib[joined])
    src, dst = np.concatenate(sources), np.concatenate(targets)
    graph = sparse.coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(rows.size, rows.size))
    return csgraph.connected_components(graph, directed=False)[1]


def _select_components(
    labels: np.ndarray, counts: np.ndarray, score: np.ndarray, depth: np.ndarray, p: PerceptionParams, select: str
) -> np.ndarray:
    ids = np.flatnonzero(counts)
    if select == "largest":
        main = int(ids[np.argmax(score[ids])])
    else:  # "nearest": the nearest surface with a fair share of the pixels
        big = ids[counts[ids] >= p.min_cluster_fraction * counts.sum()]
        if big.size == 0:
            big = ids
        main = int(big[np.argmin([np.median(depth[labels == i]) for i in big])])
    keep = labels == main
    if select != "largest":
        return keep
    near, far = np.percentile(depth[keep], [5.0, 95.0])
    for i in ids:
        member = labels == i
        if i != main:
            lo, hi = np.percentile(depth[member], [5.0, 95.0])
            if lo <= far + p.merge_gap_m and hi >= near - p.merge_gap_m:
                keep |= member
    return keep


def _detection(
    label: Any, score: Any, box: tuple[np.ndarray, np.ndarray] | None, counters: dict[str, int] | None,
    state: Mapping[str, Any] | None = None,
) -> Detection | None:
    if box is None:
        return None
    try:
        det = make_detection(label, box[0], box[1], score, dict(state) if state else None)
    except RejectedInput as exc:
        _bump(counters, f"skipped.{exc.reason}")
        return None
    _bump(counters, "detections")
    return det


def observations_from_segmentation(
    depth: Any,
    intrinsics: CameraIntrinsics,
    pose: CameraPose | np.ndarray,
    instance_mask: Any,
    labels: Mapping[int, str],
    scores: Mapping[int, float] | None = None,
    params: PerceptionParams = DEFAULT_PARAMS,
    counters: dict[str, int] | None = None,
    states: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[Detection]:
    """One Detection per labelled instance of ``instance_mask`` that is visible enough.

    ``instance_mask`` holds an integer instance id per pixel (same size as ``depth``); ``labels`` names
    the ids to report (other ids, e.g. background, are ignored); ``scores`` gives their confidences
    (1.0 if missing); ``states`` the states a model recognised per instance (isOpen, isToggled, ...).
    Bad frames raise RejectedInput; a bad instance is skipped and counted in
    ``counters`` (``skipped.<reason>``)."""
    frame = _FramePrep(depth, intrinsics, pose, params)
    mask = np.asarray(instance_mask)
    if mask.shape != frame.depth.shape:
        raise RejectedInput("size_mismatch", f"mask shape {mask.shape} differs from depth shape {frame.depth.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise RejectedInput("bad_mask", f"instance mask must hold integers, got {mask.dtype}")
    if not labels:
        return []
    wanted = np.fromiter((int(k) for k in labels), dtype=np.int64)
    present = np.isin(mask, wanted)
    ids = mask[present]
    rows_all, cols_all = np.nonzero(present)
    order = np.argsort(ids, kind="stable")
    ids, rows_all, cols_all = ids[order], rows_all[order], cols_all[order]
    starts = np.searchsorted(ids, wanted, side="left")
    ends = np.searchsorted(ids, wanted, side="right")
    out: list[Detection] = []
    for inst, start, end in zip(wanted.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if end == start:
            continue  # not in view
        rows, cols = rows_all[start:end], cols_all[start:end]
        try:
            rows, cols, inner = _mask_pixels(rows, cols, params)
            usable = frame.usable[rows, cols]
            box = frame.box(rows[usable], cols[usable], "largest", counters, inner[usable])
        except (ValueError, FloatingPointError, RuntimeError) as exc:  # never let one instance end the frame
            _bump(counters, f"skipped.{getattr(exc, 'reason', 'error')}")
            continue
        score = 1.0 if scores is None else scores.get(inst, 1.0)
        det = _detection(labels[inst], score, box, counters, None if states is None else states.get(inst))
        if det is not None:
            out.append(det)
    return out


def _mask_pixels(
    rows: np.ndarray, cols: np.ndarray, params: PerceptionParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The instance's pixels (minus an ``erosion_px`` border, unless too little would remain) and each
    one's distance to the mask's border in pixels. Surfaces are weighted by that distance when picking
    the object: a mask spilling over its object's outline puts background in a thin outer band only."""
    r0, c0 = rows.min(), cols.min()
    patch = np.zeros((rows.max() - r0 + 3, cols.max() - c0 + 3), dtype=bool)
    patch[rows - r0 + 1, cols - c0 + 1] = True
    inner = ndimage.distance_transform_cdt(patch, metric="taxicab")[rows - r0 + 1, cols - c0 + 1].astype(float)
    if params.erosion_px > 0:
        deep = inner > params.erosion_px
        if deep.sum() >= params.min_pixels:
            return rows[deep], cols[deep], inner[deep]
    return rows, cols, inner


def pixel_box(raw: BoxDetection | Sequence[Any], width: int, height: int,
              counters: dict[str, int] | None) -> tuple[Any, Any, Any, tuple[int, int, int, int]] | None:
    """``(label, score, state, (u0, v0, u1, v1))`` of a detector box ``(label, score, x0, y0, x1, y1[,
    state])`` clipped to the image, or None (counted as ``skipped.bad_box``) if it is malformed or empty."""
    try:
        label, score, x0, y0, x1, y1 = raw[:6]
        state = raw[6] if len(raw) > 6 else None
        u0, v0 = max(0, math.floor(float(x0))), max(0, math.floor(float(y0)))
        u1, v1 = min(width, math.ceil(float(x1))), min(height, math.ceil(float(y1)))
    except (TypeError, ValueError, OverflowError):
        _bump(counters, "skipped.bad_box")
        return None
    if u1 <= u0 or v1 <= v0:
        _bump(counters, "skipped.bad_box")
        return None
    return label, score, state, (u0, v0, u1, v1)


def observations_from_boxes(
    depth: Any,
    intrinsics: CameraIntrinsics,
    pose: CameraPose | np.ndarray,
    boxes: Sequence[BoxDetection | Sequence[Any]],
    params: PerceptionParams = DEFAULT_PARAMS,
    counters: dict[str, int] | None = None,
) -> list[Detection]:
    """One Detection per 2D box ``(label, score, x0, y0, x1, y1)`` (pixels) whose object has depth.

    The object is the nearest depth cluster holding a fair share of the box's points, so background
    behind the object falls away."""
    frame = _FramePrep(depth, intrinsics, pose, params)
    height, width = frame.depth.shape
    out: list[Detection] = []
    for raw in boxes:
        parsed = pixel_box(raw, width, height, counters)
        if parsed is None:
            continue
        label, score, state, (u0, v0, u1, v1) = parsed
        try:
            sub = frame.usable[v0:v1, u0:u1]
            rows, cols = np.nonzero(sub)
            box = frame.box(rows + v0, cols + u0, "nearest", counters)
        except (ValueError, FloatingPointError, RuntimeError) as exc:
            _bump(counters, f"skipped.{getattr(exc, 'reason', 'error')}")
            continue
        det = _detection(label, score, box, counters, state)
        if det is not None:
            out.append(det)
    return out
