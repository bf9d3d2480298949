"""Box panels that make up the simulated bodies (all axis-aligned, map frame).

A panel is ``(offset, half_extents)``: its center relative to the body origin (the
object's box center) and its half sizes.
"""

from __future__ import annotations

import numpy as np

Panel = tuple[np.ndarray, np.ndarray]

WALL_M = 0.015  # thickness of trays, carcasses and drawer walls
SLAB_M = 0.02  # thickness of top, bottom and support slabs


def _thick(size: np.ndarray, wall: float) -> float:
    """A wall thickness that leaves room inside a small box."""
    return float(min(wall, 0.2 * float(np.min(size))))


def solid(size: np.ndarray) -> list[Panel]:
    """One box filling ``size``."""
    return [(np.zeros(3), np.asarray(size, dtype=float) / 2)]


def slab(size: np.ndarray, z_rel: float, thickness: float = SLAB_M) -> Panel:
    """A horizontal panel over the whole footprint whose top is at ``z_rel`` (from the center)."""
    half = np.array([size[0] / 2, size[1] / 2, thickness / 2])
    return np.array([0.0, 0.0, z_rel - thickness / 2]), half


def wall_panel(half: np.ndarray, t: float, axis: int, sign: float) -> Panel:
    """A vertical panel ``t`` thick across the box of half sizes ``half``, flush with its
    face on the ``sign`` side (-1 or 1) of ``axis`` (0: x, 1: y)."""
    offset = np.zeros(3)
    offset[axis] = sign * (half[axis] - t / 2)
    ext = half.copy()
    ext[axis] = t / 2
    return offset, ext


def tray(size: np.ndarray, wall: float = WALL_M) -> list[Panel]:
    """Bottom and four walls, open at the top (sinks, bowls, drawers, bins)."""
    size = np.asarray(size, dtype=float)
    t = _thick(size, wall)
    half = size / 2
    walls = [wall_panel(half, t, axis, sign) for axis in (0, 1) for sign in (-1.0, 1.0)]
    return [slab(size, -half[2] + t, t), *walls]


def carcass(size: np.ndarray, front: np.ndarray, wall: float = WALL_M) -> list[Panel]:
    """A cabinet body: bottom, top, back and two sides, open at the ``front`` face."""
    size = np.asarray(size, dtype=float)
    t = _thick(size, wall)
    half = size / 2
    axis = int(np.argmax(np.abs(front[:2])))
    side = 1 - axis
    back = wall_panel(half, t, axis, -np.sign(front[axis]))
    sides = [wall_panel(half, t, side, sign) for sign in (-1.0, 1.0)]
    return [slab(size, -half[2] + t, t), slab(size, half[2], t), back, *sides]
