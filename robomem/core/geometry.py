"""Geometry helpers in the z-up world frame (REP-103): view cones, boxes, support relations."""

from __future__ import annotations

import math

import numpy as np

from robomem.core.types import ViewCone


def in_view(points: np.ndarray, view: ViewCone) -> np.ndarray:
    """Boolean mask of points (N, 3) inside the cone: horizontal angle ≤ fov/2, 3D distance ≤ range."""
    if points.size == 0:
        return np.zeros(0, dtype=bool)
    delta = points - np.asarray(view.position)
    dist = np.linalg.norm(delta, axis=1)
    inside = dist <= view.range_m
    if view.fov_deg >= 360.0:
        return inside
    yaw = np.radians(view.yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw)])
    horizontal = delta[:, :2]
    h_norm = np.linalg.norm(horizontal, axis=1)
    cos_angle = np.where(h_norm > 1e-9, horizontal @ forward / np.maximum(h_norm, 1e-9), 1.0)
    return inside & (cos_angle >= np.cos(np.radians(view.fov_deg) / 2.0) - 1e-9)


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


def yup_to_zup(vec: list[float] | np.ndarray) -> np.ndarray:
    """AI2-THOR (x, y-up, z) to REP-103 z-up: a cyclic permutation, so handedness and yaw agree."""
    x, y, z = vec
    return np.array([z, x, y], dtype=float)


def zup_to_yup(vec: np.ndarray) -> list[float]:
    """Inverse of :func:`yup_to_zup`."""
    return [float(vec[1]), float(vec[2]), float(vec[0])]
