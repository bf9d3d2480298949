"""Detector settings of the episode generator, from clean to worse than the one memory was tuned on.

Each is a set of :class:`robomem.eval.simulate.EpisodeConfig` overrides. ``worse`` follows what
open-vocabulary detectors do in real homes: more misses the farther things are, ~5 cm of centre noise
and ~10 % size jitter, a false detection in more than half of the views, with confidences that
overlap the real ones. ``partial`` shows 30 % of the objects only in part (40-90 % of one axis of their box).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robomem.eval.simulate import EpisodeConfig

DETECTORS: dict[str, dict[str, Any]] = {
    "clean": {"p_detect": 0.95, "false_per_view": 0.02, "center_sigma_m": 0.01},
    "default": {},
    "noisy": {"center_sigma_m": 0.05, "size_sigma_frac": 0.10},
    "weak_detector": {"p_detect": 0.65},
    "many_false": {"false_per_view": 0.5},
    "harsh": {"p_detect": 0.7, "false_per_view": 0.4, "center_sigma_m": 0.05, "size_sigma_frac": 0.10},
    "worse": {"far_drop": 0.6, "center_sigma_m": 0.05, "size_sigma_frac": 0.10, "false_per_view": 0.8,
              "false_conf_beta": (6.0, 2.5)},
    "partial": {"partial_view_p": 0.3},  # boxes of objects seen in part (border, occlusion)
}


def episode_config(detector: str) -> EpisodeConfig:
    """The generator's configuration with one detector setting."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r} (choose from {', '.join(DETECTORS)})")
    return dataclasses.replace(EpisodeConfig(), **DETECTORS[detector])
