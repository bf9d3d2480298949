"""One entry point: a camera frame in, an ObservationBatch for the memory out (no ROS)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robomem.core.types import Detection, ObservationBatch, RejectedInput, StateValue
from robomem.perception.camera import (
    CameraIntrinsics,
    CameraPose,
    backproject,
    depth_to_metres,
    transform_points,
    view_cone_for,
)
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
    rgb: np.ndarray | None = None  # H x W x 3 uint8, for appearance embeddings (Perception's ``appearance``)


class Perception:
    """Turns frames into observation batches with fixed parameters, counting what it skips.

    ``counters``: ``frames``, ``detections``, ``rejected.<reason>`` (whole frames refused, the
    exception is re-raised), ``skipped.<reason>`` (single instances or boxes left out)."""

    def __init__(self, params: PerceptionParams = DEFAULT_PARAMS, with_view: bool = True,
                 appearance: Any = None) -> None:
        self.params = params
        self.with_view = with_view
        self.appearance = appearance  # a robomem.perception.clip.AppearanceWorker (needs Frame.rgb), or None
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
        if self.appearance is not None and frame.rgb is not None:
            detections = self._with_appearance(frame, detections)
        view = view_cone_for(frame.intrinsics, frame.pose, self._view_range(frame)) if self.with_view else None
        return ObservationBatch(t, frame.robot, detections, view)

    def _with_appearance(self, frame: Frame, detections: list[Detection]) -> list[Detection]:
        """Each detection with the embedding its object already has (never waiting for CLIP); objects
        without one get their crop queued on the appearance worker."""
        from robomem.perception.clip import appearance_key, crop

        out = []
        for det in detections:
            key = appearance_key(det.label, det.center)
            vector = self.appearance.latest(key)
            if vector is not None:
                out.append(dataclasses.replace(det, embedding=vector))
                continue
            try:
                image = crop(frame.rgb, mask=self._instance_mask(frame, det)) if frame.mask is not None else crop(
                    frame.rgb, box=self._box_of(frame, det))
            except RejectedInput as error:
                self._bump(f"appearance.{error.reason}")
            else:
                self.appearance.submit(key, image)
            out.append(det)
        return out

    def _instance_mask(self, frame: Frame, det: Detection) -> np.ndarray:
        """The mask of the instance a detection came from: of those with its label, the one whose pixels'
        3D mean is nearest to the detection's center."""
        mask = np.asarray(frame.mask)
        ids = [i for i, label in frame.labels.items() if label == det.label]
        if len(ids) == 1:
            return mask == ids[0]
        depth = depth_to_metres(frame.depth, self.params.depth_scale)
        best, best_d = None, np.inf
        for inst in ids:
            rows, cols = np.nonzero(mask == inst)
            if rows.size == 0:
                continue
            points = transform_points(backproject(depth, frame.intrinsics, rows, cols), frame.pose.matrix())
            distance = float(np.linalg.norm(np.nanmean(points, axis=0) - det.center))
            if distance < best_d:
                best, best_d = inst, distance
        if best is None:
            raise RejectedInput("empty_crop", f"no instance of {det.label} in the mask")
        return mask == best

    @staticmethod
    def _box_of(frame: Frame, det: Detection) -> tuple[float, float, float, float]:
        found = [b for b in frame.boxes or [] if b[0] == det.label]
        if len(found) != 1:
            raise RejectedInput("ambiguous_crop", f"{len(found)} boxes labelled {det.label}")
        return tuple(float(v) for v in found[0][2:6])

    def _bump(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

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
