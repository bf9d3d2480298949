"""Geometry helpers in the z-up world frame (REP-103): view cones, boxes, support relations."""

from __future__ import annotations

import math

import numpy as np

from robomem.core.types import ViewCone


def in_cones(
    offsets: np.ndarray, yaw_rad: np.ndarray | float, half_fov_rad: np.ndarray | float, range_m: np.ndarray | float
) -> np.ndarray:
    """Whether each offset from a camera (rows of (N, 3)) lies in that camera's view cone: 3D distance
    within range, horizontal angle from the camera's yaw within half the field of view (a point
    straight above or below the camera counts as inside). The cone's parameters are scalars or one per row."""
    dist = np.linalg.norm(offsets, axis=1)
    horizontal = offsets[:, :2]
    h_norm = np.linalg.norm(horizontal, axis=1)
    along = horizontal[:, 0] * np.cos(yaw_rad) + horizontal[:, 1] * np.sin(yaw_rad)
    cos_angle = np.where(h_norm > 1e-9, along / np.maximum(h_norm, 1e-9), 1.0)
    within_angle = (cos_angle >= np.cos(half_fov_rad) - 1e-9) | (np.asarray(half_fov_rad) >= np.pi)
    return (dist <= range_m) & within_angle


def in_view(points: np.ndarray, view: ViewCone) -> np.ndarray:
    """Boolean mask of points (N, 3) inside the cone (see :func:`in_cones`)."""
    if points.size == 0:
        return np.zeros(0, dtype=bool)
    return in_cones(points - np.asarray(view.position), np.radians(view.yaw_deg), np.radians(view.fov_deg) / 2.0,
                    view.range_m)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two 3-vectors (much cheaper than np.linalg.norm for tiny arrays)."""
    dx, dy, dz = float(a[0] - b[0]), float(a[1] - b[1]), float(a[2] - b[2])
    return math.sqrt(dx * dx + dy * dy + dz * dz)


def box_volume(size: np.ndarray) -> float:
    """Volume of an axis-aligned box, floored so flat things still compare."""
    return float(box_volumes(size))


def box_volumes(sizes: np.ndarray) -> np.ndarray:
    """:func:`box_volume` of each box (sizes along the last axis)."""
    return np.prod(np.maximum(sizes, 0.01), axis=-1)


def bottom_gap(center: np.ndarray, size: np.ndarray, rec_center: np.ndarray, rec_size: np.ndarray) -> np.ndarray:
    """How far a box's bottom lies above a receptacle's top (negative: below it); boxes along the last axis."""
    return (center[..., 2] - size[..., 2] / 2.0) - (rec_center[..., 2] + rec_size[..., 2] / 2.0)


def support_relation(
    center: np.ndarray,
    size: np.ndarray,
    rec_center: np.ndarray,
    rec_size: np.ndarray,
    margin: float = 0.05,
    gap_tolerance: float = 0.08,
) -> str | None:
    """'in' if the object's center lies inside the receptacle box, 'on' if it rests on its top."""
    half = rec_size / 2.0 + margin
    offset = center - rec_center
    if abs(offset[0]) > half[0] or abs(offset[1]) > half[1]:
        return None
    if abs(offset[2]) <= rec_size[2] / 2.0:
        return "in"
    if abs(float(bottom_gap(center, size, rec_center, rec_size))) <= gap_tolerance:
        return "on"
    return None


def rests_on_floor(center: np.ndarray, size: np.ndarray, floor_z: float | None, tolerance: float) -> bool:
    """Whether a box's bottom is at the floor's height (False while the floor is unknown)."""
    return floor_z is not None and abs(float(center[2] - size[2] / 2.0) - floor_z) <= tolerance


def hangs_from(center: np.ndarray, size: np.ndarray, holder_center: np.ndarray, holder_size: np.ndarray,
               margin: float) -> bool:
    """Whether a box hangs from a holder beside or above it (a towel from its rail): its center over
    the holder's footprint grown by ``margin``, its top at the holder's height (between the holder's
    bottom and top, each with ``margin`` of slack) and its center below the holder's."""
    offset = np.abs(center[:2] - holder_center[:2])
    if np.any(offset > holder_size[:2] / 2.0 + margin):
        return False
    top = float(center[2] + size[2] / 2.0)
    holder_bottom = float(holder_center[2] - holder_size[2] / 2.0)
    holder_top = float(holder_center[2] + holder_size[2] / 2.0)
    return holder_bottom - margin <= top <= holder_top + margin and center[2] < holder_center[2]


def fits_in(size: np.ndarray, holder_size: np.ndarray, slack: float = 0.1) -> np.ndarray:
    """Whether a box's longest horizontal side is no longer than the holder's (with ``slack``): a long
    counter top whose middle lies in a sink's box is not in the sink. Boxes along the last axis."""
    return np.max(size[..., :2], axis=-1) <= float(np.max(holder_size[:2])) + slack


def can_carry(size: np.ndarray, support_size: np.ndarray) -> np.ndarray:
    """Whether a surface is big enough to carry a box resting on it: a footprint at least a quarter of
    the box's, and no side of the box more than twice the surface's longest (a long counter top resting
    on a sink's rim is not carried by the sink). Boxes along the last axis."""
    area_ok = support_size[0] * support_size[1] >= 0.25 * size[..., 0] * size[..., 1]
    return area_ok & (np.max(size[..., :2], axis=-1) <= 2.0 * float(np.max(support_size[:2])) + 0.1)


def boxes_held(centers: np.ndarray, sizes: np.ndarray, rec_center: np.ndarray, rec_size: np.ndarray,
               margin: float, gap_tolerance: float) -> np.ndarray:
    """For boxes (rows), whether a receptacle's box holds each by geometry alone: its center inside the
    bigger receptacle box (and it fits), or its bottom resting on the receptacle's top (and the surface
    can carry it). Boxes overlap in homes (a sink's box takes in the counter around its basin), so one
    object may be held by several."""
    offset = centers - rec_center
    over = np.all(np.abs(offset[:, :2]) <= rec_size[:2] / 2.0 + margin, axis=1)
    inside = np.abs(offset[:, 2]) <= rec_size[2] / 2.0
    held_in = inside & (box_volume(rec_size) > box_volumes(sizes)) & fits_in(sizes, rec_size)
    resting = np.abs(bottom_gap(centers, sizes, rec_center, rec_size)) <= gap_tolerance
    return over & (held_in | (~inside & resting & can_carry(sizes, rec_size)))
