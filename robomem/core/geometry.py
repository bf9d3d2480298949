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
    return float(np.prod(np.maximum(size, 0.01)))


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
    gap = (center[2] - size[2] / 2.0) - (rec_center[2] + rec_size[2] / 2.0)
    if -gap_tolerance <= gap <= gap_tolerance:
        return "on"
    return None
