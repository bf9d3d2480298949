"""One entry point: a camera frame in, an ObservationBatch for the memory out (no ROS)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robomem.core.types import ObservationBatch, RejectedInput, StateValue
from robomem.perception.camera import CameraIntrinsics, CameraPose, depth_to_metres, view_cone_for
from robomem.perception.objects import (
    DEFAULT_PARAMS,
    BoxDetection,
    PerceptionParams,
    observations_from_boxes,
    observations_from_segmentation,
)


@dataclass
class Frame:
    """One RGB-D camera frame with its 2D perception: either an instance mask with a label per
    instance (and optional scores), or 2D boxes. ``pose`` is the optical frame's pose in the map."""

    t: float
    robot: str
    depth: np.ndarray  # float metres, or integer millimetres (see PerceptionParams.depth_scale)
    intrinsics: CameraIntrinsics
    pose: CameraPose
    mask: np.ndarray | None = None
    labels: Mapping[int, str] = field(default_factory=dict)
    scores: Mapping[int, float] | None = None
    boxes: Sequence[BoxDetection] | None = None
    states: Mapping[int, Mapping[str, StateValue]] | None = None  # per instance id: isOpen, isToggled, ...


class Perception:
    """Turns frames into observation batches with fixed parameters, counting what it skips.

    ``counters``: ``frames``, ``detections``, ``rejected.<reason>`` (whole frames refused, the
    exception is re-raised), ``skipped.<reason>`` (single instances or boxes left out)."""

    def __init__(self, params: PerceptionParams = DEFAULT_PARAMS, with_view: bool = True) -> None:
        self.params = params
        self.with_view = with_view
        self.counters: dict[str, int] = {}

    def observe(self, frame: Frame) -> ObservationBatch:
        try:
            batch = self._observe(frame)
        except RejectedInput as exc:
            key = f"rejected.{exc.reason}"
            self.counters[key] = self.counters.get(key, 0) + 1
            raise
        self.counters["frames"] = self.counters.get("frames", 0) + 1
        return batch

    def _observe(self, frame: Frame) -> ObservationBatch:
        try:
            t = float(frame.t)
        except (TypeError, ValueError) as exc:
            raise RejectedInput("non_finite", f"frame time is not a number: {frame.t!r}") from exc
        if not math.isfinite(t):
            raise RejectedInput("non_finite", f"frame time is not finite: {t}")
        if not isinstance(frame.robot, str) or not frame.robot:
            raise RejectedInput("malformed", f"robot id must be a non-empty string, got {frame.robot!r}")
        if not isinstance(frame.intrinsics, CameraIntrinsics):
            raise RejectedInput("bad_intrinsics", "frame.intrinsics must be a CameraIntrinsics")
        if not isinstance(frame.pose, CameraPose):
            raise RejectedInput("bad_pose", "frame.pose must be a CameraPose (see make_camera_pose)")
        if (frame.mask is None) == (frame.boxes is None):
            raise RejectedInput("malformed", "a frame needs exactly one of an instance mask or 2D boxes")
        segmentation, boxes = observations_from_segmentation, observations_from_boxes
        if self.params.backend == "open3d":
            from robomem.perception import open3d_objects

            segmentation, boxes = open3d_objects.observations_from_segmentation, open3d_objects.observations_from_boxes
        elif self.params.backend != "numpy":
            raise ValueError(f"unknown perception backend {self.params.backend!r} (numpy or open3d)")
        if frame.mask is not None:
            detections = segmentation(
                frame.depth,
                frame.intrinsics,
                frame.pose,
                frame.mask,
                frame.labels,
                frame.scores,
                self.params,
                self.counters,
                frame.states,
            )
        else:
            detections = boxes(
                frame.depth, frame.intrinsics, frame.pose, list(frame.boxes or []), self.params, self.counters
            )
        view = view_cone_for(frame.intrinsics, frame.pose, self._view_range(frame)) if self.with_view else None
        return ObservationBatch(t, frame.robot, detections, view)

    def _view_range(self, frame: Frame) -> float:
        """How far this frame sees (see PerceptionParams.view_range_quantile)."""
        p = self.params
        if p.view_range_quantile is None:
            return p.max_range_m
        depth = depth_to_metres(frame.depth, p.depth_scale)
        k = frame.intrinsics
        u = (np.arange(depth.shape[1]) - k.cx) / k.fx
        v = (np.arange(depth.shape[0]) - k.cy) / k.fy
        distance = depth * np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)  # along each pixel's ray
        with np.errstate(invalid="ignore"):
            valid = distance[np.isfinite(distance) & (depth >= p.min_range_m)]
        if valid.size == 0:
            return p.max_range_m
        far = float(np.quantile(valid, p.view_range_quantile)) + p.view_range_margin_m
        return min(p.max_range_m, max(far, 0.5))
