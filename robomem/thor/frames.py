"""AI2-THOR's y-up frame and the core's REP-103 z-up map frame.

AI2-THOR ``(x, y-up, z)`` maps to core ``(z, x, y)``: a cyclic permutation, so handedness is kept
and an AI2-THOR yaw (``rotation.y``, 0 facing +z, clockwise seen from above) is the same angle in
the map frame, counter-clockwise from map +x.
"""

from __future__ import annotations

import numpy as np

__all__ = ["yup_to_zup", "zup_to_yup"]


def yup_to_zup(vec: list[float] | np.ndarray) -> np.ndarray:
    """AI2-THOR (x, y-up, z) to REP-103 z-up: a cyclic permutation, so handedness and yaw agree."""
    x, y, z = vec
    return np.array([z, x, y], dtype=float)


def zup_to_yup(vec: np.ndarray) -> list[float]:
    """Inverse of :func:`yup_to_zup`."""
    return [float(vec[1]), float(vec[2]), float(vec[0])]
