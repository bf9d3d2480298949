"""Plain data types exchanged with the memory core (world frame is z-up, metres, seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

StateValue = bool | int | float | str
MAX_OBJECT_SIZE_M = 50.0  # no household object's box side is larger


class RejectedInput(ValueError):
    """Raised for input the memory refuses; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ViewCone:
    """The camera view cone of one frame (only the horizontal angle counts)."""

    position: tuple[float, float, float]
    yaw_deg: float
    fov_deg: float
    range_m: float


@dataclass
class Detection:
    """One object seen in one frame, as a detector names it (a type, never a unique id)."""

    label: str
    center: np.ndarray
    size: np.ndarray
    confidence: float = 1.0
    state: dict[str, StateValue] = field(default_factory=dict)
    embedding: np.ndarray | None = None


@dataclass
class ObservationBatch:
    """What one view of one robot's camera showed at time ``t``."""

    t: float
    robot: str
    detections: list[Detection]
    view: ViewCone | None = None


@dataclass
class ChangeEvent:
    """A change memory noticed: moved, appeared, disappeared, opened, closed, turned_on/off, state.
    ``detail["at"]`` is the object's position [x, y, z] as memory had it then."""

    t: float
    track_id: int
    label: str
    change: str
    detail: dict[str, Any] = field(default_factory=dict)
    event_id: int = -1


def _finite_vector(values: Any, name: str, length: int = 3) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("malformed", f"{name} is not numeric: {values!r}") from exc
    if arr.shape != (length,):
        raise RejectedInput("malformed", f"{name} needs {length} numbers, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise RejectedInput("non_finite", f"{name} has NaN/inf: {arr.tolist()}")
    return arr


def make_detection(
    label: Any,
    center: Any,
    size: Any = (0.1, 0.1, 0.1),
    confidence: Any = 1.0,
    state: Any = None,
    embedding: Any = None,
    max_size_m: float = MAX_OBJECT_SIZE_M,
) -> Detection:
    """Validate raw fields into a Detection, raising RejectedInput with a counter key."""
    if not isinstance(label, str) or not label.strip() or len(label) > 128:
        raise RejectedInput("bad_label", f"label must be a non-empty string, got {label!r}")
    center_arr = _finite_vector(center, "center")
    size_arr = _finite_vector(size, "size")
    if np.any(size_arr < 0) or np.any(size_arr > max_size_m):
        raise RejectedInput("bad_size", f"size out of range: {size_arr.tolist()}")
    try:
        conf = float(confidence)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("malformed", f"confidence is not a number: {confidence!r}") from exc
    if not math.isfinite(conf) or not 0.0 <= conf <= 1.0:
        raise RejectedInput("bad_confidence", f"confidence must be in [0, 1], got {confidence!r}")
    clean_state: dict[str, StateValue] = {}
    if state is not None:
        if not isinstance(state, dict):
            raise RejectedInput("malformed", f"state must be a mapping, got {type(state).__name__}")
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, (bool, int, float, str)):
                raise RejectedInput("malformed", f"bad state entry {key!r}: {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise RejectedInput("non_finite", f"state {key!r} is not finite")
            clean_state[key] = value
    emb = None
    if embedding is not None:
        emb = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if emb.size == 0 or not np.all(np.isfinite(emb)):
            raise RejectedInput("bad_embedding", "embedding is empty or not finite")
        norm = float(np.linalg.norm(emb))
        emb = emb / norm if norm > 0 else emb
    return Detection(label.strip(), center_arr, np.abs(size_arr), conf, clean_state, emb)


def check_detection(det: Detection, max_size_m: float = MAX_OBJECT_SIZE_M) -> None:
    """Raise RejectedInput unless ``det`` (built by hand, not by :func:`make_detection`) is sound."""
    if not isinstance(det.label, str) or not det.label.strip():
        raise RejectedInput("bad_label", f"label must be a non-empty string, got {det.label!r}")
    for name, vector in (("center", det.center), ("size", det.size)):
        arr = np.asarray(vector)
        if arr.shape != (3,) or not np.issubdtype(arr.dtype, np.number):
            raise RejectedInput("malformed", f"{name} must be 3 numbers, got {vector!r}")
        if not np.all(np.isfinite(arr)):
            raise RejectedInput("non_finite", f"{name} has NaN/inf: {arr.tolist()}")
    if np.any(np.asarray(det.size) < 0) or np.any(np.asarray(det.size) > max_size_m):
        raise RejectedInput("bad_size", f"size out of range: {np.asarray(det.size).tolist()}")
    if not isinstance(det.confidence, (int, float)) or not 0.0 <= det.confidence <= 1.0:
        raise RejectedInput("bad_confidence", f"confidence must be in [0, 1], got {det.confidence!r}")
    if det.embedding is not None and not np.all(np.isfinite(det.embedding)):
        raise RejectedInput("bad_embedding", "embedding is not finite")


def make_view(position: Any, yaw_deg: Any, fov_deg: Any, range_m: Any) -> ViewCone:
    """Validate a camera view cone."""
    pos = _finite_vector(position, "view.position")
    try:
        yaw, fov, rng = float(yaw_deg), float(fov_deg), float(range_m)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("malformed", "view yaw/fov/range must be numbers") from exc
    if not all(math.isfinite(v) for v in (yaw, fov, rng)):
        raise RejectedInput("non_finite", "view yaw/fov/range must be finite")
    if not 0.0 < fov <= 360.0 or not 0.0 < rng <= 100.0:
        raise RejectedInput("bad_view", f"fov {fov} or range {rng} out of bounds")
    return ViewCone((float(pos[0]), float(pos[1]), float(pos[2])), yaw, fov, rng)
