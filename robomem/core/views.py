"""The log of camera views: which places memory has already looked at, and when."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robomem.core.geometry import in_cones
from robomem.core.types import ViewCone


class ViewLog:
    """Growing arrays of view cones, for asking 'had this place been looked at before t?'."""

    def __init__(self) -> None:
        self._t: list[float] = []
        self._cones: list[ViewCone] = []
        self._arrays: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self._t)

    def add(self, t: float, view: ViewCone) -> None:
        self._t.append(t)
        self._cones.append(view)
        self._arrays = None

    def _as_arrays(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            self._arrays = (
                np.array(self._t),
                np.array([c.position for c in self._cones]).reshape(-1, 3),
                np.radians([c.yaw_deg for c in self._cones]),
                np.radians([c.fov_deg for c in self._cones]) / 2.0,
                np.array([c.range_m for c in self._cones]),
            )
        return self._arrays

    def miss_evidence_before(
        self, point: np.ndarray, before: float, p_detect: Callable[[np.ndarray], np.ndarray]
    ) -> float:
        """-log P(an object at ``point`` went undetected in every earlier view containing it), given the
        detector's chances ``p_detect(range_fractions)``: large means it would almost surely have been seen."""
        if not self._t:
            return 0.0
        times, positions, yaws, half_fovs, ranges = self._as_arrays()
        delta = point - positions
        inside = (times < before) & in_cones(delta, yaws, half_fovs, ranges)
        chances = p_detect(np.linalg.norm(delta[inside], axis=1) / ranges[inside])
        return float(-np.sum(np.log(np.clip(1.0 - chances, 1e-6, 1.0))))
