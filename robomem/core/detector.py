"""What memory expects of the detector: the chance that a present, visible object is reported.

p_detect = p_max × (1 − falloff × range fraction) × (small-object factor if small). The shape comes
from the configuration; p_max is learned online from how often believed objects in view were in fact
detected (a Beta prior centred on the configured value), so a weaker or stronger detector than
assumed does not turn ordinary misses into "gone" (or real absences into "still there").
"""

from __future__ import annotations

import numpy as np

from robomem.core.config import MemoryConfig


class DetectorModel:
    """Detection probability with a self-calibrating ceiling."""

    def __init__(self, config: MemoryConfig, hits: float = 0.0, expected: float = 0.0) -> None:
        self.config = config
        self.hits = hits  # detections of believed, visible objects
        self.expected = expected  # the same looks, weighted by the model's shape factor

    @property
    def p_max(self) -> float:
        cfg = self.config
        if not cfg.calibrate_detector:
            return cfg.detector_p_max
        prior = cfg.detector_prior_strength
        estimate = (prior * cfg.detector_p_max + self.hits) / (prior + self.expected)
        return min(max(estimate, 0.2), 0.99)

    def shapes(self, range_fractions: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The part of the probability that depends on range and object size (1 near, for normal sizes),
        for many looks at once (sizes: one row per look)."""
        cfg = self.config
        factor = 1.0 - cfg.detection_range_falloff * np.clip(range_fractions, 0.0, 1.0)
        return np.where(np.max(sizes, axis=1) < cfg.small_object_m, factor * cfg.small_object_factor, factor)

    def shape(self, range_fraction: float, size: np.ndarray) -> float:
        """:meth:`shapes` for one look."""
        return float(self.shapes(np.array([range_fraction]), np.asarray(size, dtype=float)[None, :])[0])

    def probabilities(self, range_fractions: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Detection chances of one object seen at these fractions of the views' ranges."""
        sizes = np.broadcast_to(np.asarray(size, dtype=float), (len(range_fractions), 3))
        return self.p_max * self.shapes(range_fractions, sizes)

    def record(self, shapes: np.ndarray, detected: np.ndarray) -> None:
        """Looks at believed objects that should have been visible: their shape factors, and which
        of them the detector reported."""
        self.expected += float(np.sum(shapes))
        self.hits += float(np.count_nonzero(detected))
