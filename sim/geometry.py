"""Frames, boxes and colours of the simulated rooms.

The map frame is REP-103 z-up, obtained from AI2-THOR's y-up frame with
:func:`robomem.thor.frames.yup_to_zup` (map x, y, z = THOR z, x, y). A THOR yaw
(``rotation.y``, 0 facing THOR +z) is the same angle in the map frame, counter-clockwise
from map +x. Every box here is axis-aligned: ``lo``/``hi`` corners in the map frame.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from collections.abc import Mapping

import numpy as np

from robomem.thor.frames import yup_to_zup, zup_to_yup

__all__ = [
    "class_color",
    "front_axis",
    "map_point",
    "map_size",
    "thor_point",
    "thor_size",
    "toggled_color",
]


def map_point(vec: Mapping[str, float] | np.ndarray | list[float]) -> np.ndarray:
    """A THOR point ({x, y, z} dict or 3-vector) in the map frame."""
    if isinstance(vec, Mapping):
        vec = [vec["x"], vec["y"], vec["z"]]
    return yup_to_zup(vec)


def map_size(vec: Mapping[str, float] | np.ndarray | list[float]) -> np.ndarray:
    """A THOR box size in the map frame (absolute values)."""
    return np.abs(map_point(vec))


def thor_point(vec: np.ndarray) -> np.ndarray:
    """A map-frame point back in THOR's y-up frame."""
    return np.asarray(zup_to_yup(np.asarray(vec, dtype=float)), dtype=float)


def thor_size(vec: np.ndarray) -> np.ndarray:
    """A map-frame box size back in THOR's frame."""
    return np.abs(thor_point(vec))


def front_axis(yaw_deg: float) -> np.ndarray:
    """The map axis (±x or ±y unit vector) nearest to the facing direction of a THOR yaw."""
    yaw = math.radians(yaw_deg)
    direction = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    axis = int(np.argmax(np.abs(direction[:2])))
    out = np.zeros(3)
    out[axis] = 1.0 if direction[axis] >= 0 else -1.0
    return out


def class_color(object_type: str, furniture: bool = False) -> tuple[float, float, float, float]:
    """A stable RGBA colour per objectType (darker, less saturated for furniture)."""
    hue = (zlib.crc32(object_type.encode()) % 360) / 360.0
    sat, val = (0.35, 0.6) if furniture else (0.7, 0.9)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (r, g, b, 1.0)


def toggled_color(rgba: tuple[float, float, float, float], on: bool) -> tuple[float, float, float, float]:
    """The colour of a toggleable object: tinted warm yellow while on."""
    if not on:
        return rgba
    glow = (1.0, 0.92, 0.35)
    return (*(0.4 * c + 0.6 * g for c, g in zip(rgba[:3], glow, strict=True)), 1.0)
