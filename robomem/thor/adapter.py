"""AI2-THOR frames -> robomem observation batches, live (a Controller) or replayed (recorded metadata).

One function, :func:`batch_from_metadata`, turns an AI2-THOR ``event.metadata`` dict into an
:class:`~robomem.core.types.ObservationBatch` in the core's z-up frame:

* every object with ``visible: true`` becomes a detection: label = ``objectType``, center and size
  from ``axisAlignedBoundingBox`` through :func:`robomem.thor.frames.yup_to_zup` (AI2-THOR
  ``(x, y, z)`` -> core ``(z, x, y)``), the AI2-THOR states the object has (``isOpen``,
  ``openness``, ``isToggled``, ``isDirty``, ...), confidence 1.0 unless a :class:`DetectorSettings`
  degrades the frame;
* the view cone comes from ``metadata["agent"]`` / ``metadata["cameraPosition"]``: AI2-THOR's
  forward for ``rotation.y = a`` is ``(sin a, 0, cos a)`` (``a = 0`` faces +z, clockwise seen from
  above), which ``yup_to_zup`` maps to ``(cos a, sin a, 0)``: the core's yaw (CCW from +x) is ``a``.
  Range = AI2-THOR's ``visibilityDistance`` (an init parameter, not in the metadata: default 1.5 m).

:class:`ThorLiveSource` drives an ``ai2thor.controller.Controller`` (optional: imported lazily),
:class:`ThorReplaySource` replays recorded metadata (a list, or a JSON Lines file written by
:func:`save_metadata_log`); both give the same batches for the same frames. The recorded iTHOR
metadata (procthor wheel) is one snapshot without per-pose visibility: :func:`mark_visible` and
:func:`metadata_frame` build realistic frames for any agent pose from it.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomem.core.geometry import in_view
from robomem.core.types import Detection, ObservationBatch, RejectedInput, ViewCone, make_detection, make_view
from robomem.thor.frames import yup_to_zup
from robomem.thor.scene import UNDETECTED_TYPES

DEFAULT_FOV_DEG = 90.0  # AI2-THOR's default camera field of view (vertical, Unity)
DEFAULT_VISIBILITY_M = 1.5  # AI2-THOR's default visibilityDistance
DEFAULT_SCREEN = (300, 300)  # AI2-THOR's default width, height
AGENT_Y = 0.9009992  # iTHOR standing agent's body y (m) on a floor at y = 0, as RoomR records it
CAMERA_OFFSET_Y = 0.675  # standing camera above the agent's body position (m)
HIDE_MARGIN_M = 0.02  # slack of "center inside a closed receptacle's box"

#: AI2-THOR capability flag -> the state field reported when the object has it.
STATE_FIELDS: dict[str, tuple[str, ...]] = {
    "openable": ("isOpen", "openness"),
    "toggleable": ("isToggled",),
    "dirtyable": ("isDirty",),
    "sliceable": ("isSliced",),
    "cookable": ("isCooked",),
    "canFillWithLiquid": ("isFilledWithLiquid",),
    "breakable": ("isBroken",),
    "canBeUsedUp": ("isUsedUp",),
}


# --------------------------------------------------------------------------- detector model


@dataclass(frozen=True)
class DetectorSettings:
    """A simple imperfect detector: misses, Gaussian center/size noise, confidences; seeded."""

    miss_rate: float = 0.0
    position_sigma_m: float = 0.0  # per-axis center noise
    size_sigma_frac: float = 0.0  # per-axis relative size noise
    confidence_range: tuple[float, float] = (1.0, 1.0)  # uniform draw
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.confidence_range
        if not 0.0 <= self.miss_rate <= 1.0:
            raise ValueError(f"miss_rate must be in [0, 1], got {self.miss_rate}")
        if self.position_sigma_m < 0 or self.size_sigma_frac < 0:
            raise ValueError("noise sigmas must be >= 0")
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"confidence_range must satisfy 0 <= lo <= hi <= 1, got {self.confidence_range}")

    def rng(self) -> np.random.Generator:
        """A fresh generator from ``seed`` (one per source, so live and replay draw alike)."""
        return np.random.default_rng(self.seed)


def _degrade(det: Detection, settings: DetectorSettings, rng: np.random.Generator) -> Detection | None:
    """Apply the detector model to one true detection (None = missed). Draws a fixed number of values."""
    miss, center_noise, size_noise, conf_u = rng.random(), rng.normal(size=3), rng.normal(size=3), rng.random()
    if miss < settings.miss_rate:
        return None
    lo, hi = settings.confidence_range
    det.center = det.center + settings.position_sigma_m * center_noise
    det.size = det.size * np.clip(1.0 + settings.size_sigma_frac * size_noise, 0.5, 1.5)
    det.confidence = float(lo + (hi - lo) * conf_u)
    return det


# --------------------------------------------------------------------------- parsing


def _field(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise RejectedInput("malformed", f"{where} is not a mapping: {type(mapping).__name__}")
    if key not in mapping or mapping[key] is None:
        raise RejectedInput("malformed", f"{where} lacks {key!r}")
    return mapping[key]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectedInput("malformed", f"{where} is not a number: {value!r}")
    if not math.isfinite(value):
        raise RejectedInput("non_finite", f"{where} is {value}")
    return float(value)


def _xyz(mapping: Any, key: str, where: str) -> np.ndarray:
    """A finite AI2-THOR ``{x, y, z}`` vector (y up) as an array."""
    vec = _field(mapping, key, where)
    return np.array([_number(_field(vec, axis, f"{where}.{key}"), f"{where}.{key}.{axis}") for axis in "xyz"])


def _object_states(obj: Mapping[str, Any], where: str) -> dict[str, bool | float]:
    """The AI2-THOR states ``obj`` has (by its capability flags), with AI2-THOR's names."""
    states: dict[str, bool | float] = {}
    for flag, names in STATE_FIELDS.items():
        if not obj.get(flag):
            continue
        for name in names:
            value = obj.get(name)
            if name == "openness":
                if value is not None:
                    states[name] = min(max(_number(value, f"{where}.openness"), 0.0), 1.0)
            elif isinstance(value, bool):
                states[name] = value
    return states


def horizontal_fov(fov_deg: float, width: float | None = None, height: float | None = None) -> float:
    """Horizontal field of view of AI2-THOR's (vertical, Unity) ``fov`` for a width x height screen."""
    if not width or not height or width == height:
        return fov_deg
    half = math.atan(math.tan(math.radians(fov_deg) / 2.0) * width / height)
    return math.degrees(2.0 * half)


def camera_position(metadata: Mapping[str, Any]) -> np.ndarray:
    """The camera position (AI2-THOR axes): ``cameraPosition``, else the agent's (always checked) position."""
    agent = _xyz(_field(metadata, "agent", "metadata"), "position", "agent")
    if metadata.get("cameraPosition") is not None:
        return _xyz(metadata, "cameraPosition", "metadata")
    return agent


def view_from_metadata(metadata: Mapping[str, Any], visibility_distance_m: float = DEFAULT_VISIBILITY_M) -> ViewCone:
    """The core's view cone (z-up) of one AI2-THOR frame; yaw = ``agent.rotation.y`` (see module doc)."""
    agent = _field(metadata, "agent", "metadata")
    rot_y = _number(_field(_field(agent, "rotation", "agent"), "y", "agent.rotation"), "agent.rotation.y")
    fov = _number(metadata.get("fov", DEFAULT_FOV_DEG), "metadata.fov")
    hfov = horizontal_fov(fov, metadata.get("screenWidth"), metadata.get("screenHeight"))
    return make_view(yup_to_zup(camera_position(metadata)), rot_y % 360.0, hfov, visibility_distance_m)


def detection_from_object(obj: Mapping[str, Any], where: str = "object") -> Detection:
    """One visible AI2-THOR object -> a true detection (confidence 1.0) in the core's z-up frame."""
    label = _field(obj, "objectType", where)
    box = _field(obj, "axisAlignedBoundingBox", where)
    center = yup_to_zup(_xyz(box, "center", f"{where}.axisAlignedBoundingBox"))
    size = np.abs(yup_to_zup(_xyz(box, "size", f"{where}.axisAlignedBoundingBox")))
    return make_detection(label, center, size, 1.0, _object_states(obj, where))


def _visible_objects(metadata: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    objects = _field(metadata, "objects", "metadata")
    if not isinstance(objects, list):
        raise RejectedInput("malformed", f"metadata.objects is not a list: {type(objects).__name__}")
    out = []
    for i, obj in enumerate(objects):
        visible = _field(obj, "visible", f"objects[{i}]")
        if not isinstance(visible, bool):
            raise RejectedInput("malformed", f"objects[{i}].visible is not a bool: {visible!r}")
        if visible:
            out.append((i, obj))
    return out


# --------------------------------------------------------------------------- frames -> batches


def batch_from_metadata(
    metadata: Mapping[str, Any],
    robot_id: str,
    t: float,
    detector: DetectorSettings | None = None,
    *,
    rng: np.random.Generator | None = None,
    visibility_distance_m: float = DEFAULT_VISIBILITY_M,
    ignore_types: frozenset[str] = UNDETECTED_TYPES,
) -> ObservationBatch:
    """An AI2-THOR ``event.metadata`` dict -> one ObservationBatch (z-up); RejectedInput if malformed.

    The whole frame is validated before any detector noise is drawn, so a rejected frame consumes
    no random numbers. ``rng`` defaults to ``detector.rng()``; sources pass one generator per run.
    """
    if not isinstance(metadata, Mapping):
        raise RejectedInput("malformed", f"metadata is not a mapping: {type(metadata).__name__}")
    time = _number(t, "t")
    view = view_from_metadata(metadata, visibility_distance_m)
    detections = [
        detection_from_object(obj, f"objects[{i}]")
        for i, obj in _visible_objects(metadata)
        if obj.get("objectType") not in ignore_types
    ]
    if detector is not None:
        rng = rng if rng is not None else detector.rng()
        detections = [d for d in (_degrade(det, detector, rng) for det in detections) if d is not None]
    return ObservationBatch(t=time, robot=robot_id, detections=detections, view=view)


def batch_from_event(
    event: Any,
    robot_id: str,
    t: float,
    detector: DetectorSettings | None = None,
    **kwargs: Any,
) -> ObservationBatch:
    """:func:`batch_from_metadata` of an ``ai2thor.server.Event`` (its ``metadata``)."""
    metadata = getattr(event, "metadata", None)
    if metadata is None:
        raise RejectedInput("malformed", f"{type(event).__name__} has no metadata")
    return batch_from_metadata(metadata, robot_id, t, detector, **kwargs)


# --------------------------------------------------------------------------- visibility for snapshots


@dataclass(frozen=True)
class AgentPose:
    """An AI2-THOR agent pose: body position (x, y, z; y up), ``rotation.y`` and camera horizon."""

    position: tuple[float, float, float]
    rotation_y: float
    horizon: float = 0.0

    def camera(self) -> np.ndarray:
        """The standing camera's position (AI2-THOR axes)."""
        x, y, z = self.position
        return np.array([x, y + CAMERA_OFFSET_Y, z], dtype=float)


def _is_closed(obj: Mapping[str, Any]) -> bool:
    if not obj.get("openable"):
        return False
    if isinstance(obj.get("isOpen"), bool):
        return not obj["isOpen"]
    return not float(obj.get("openness") or 0.0) > 0.0


def _inside_box(point: np.ndarray, holder: Mapping[str, Any]) -> bool:
    box = holder.get("axisAlignedBoundingBox") or {}
    try:
        center, size = _xyz(box, "center", "box"), np.abs(_xyz(box, "size", "box"))
    except RejectedInput:
        return False
    return bool(np.all(np.abs(point - center) <= size / 2.0 + HIDE_MARGIN_M))


def hidden_in_closed(obj: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``obj`` is inside (its box center within the box of) a closed openable ancestor.

    Ancestors follow ``parentReceptacles`` transitively; an object lying *on* a closed fridge lists
    it as a parent too, hence the box test.
    """
    point = _xyz(_field(obj, "axisAlignedBoundingBox", "object"), "center", "object.axisAlignedBoundingBox")
    seen: set[str] = set()
    todo = list(obj.get("parentReceptacles") or [])
    while todo:
        parent_id = todo.pop()
        parent = by_id.get(parent_id)
        if parent_id in seen or parent is None:
            continue
        seen.add(parent_id)
        if _is_closed(parent) and _inside_box(point, parent):
            return True
        todo.extend(parent.get("parentReceptacles") or [])
    return False


def visible_mask(
    objects: Sequence[Mapping[str, Any]],
    camera: Sequence[float],
    rotation_y: float,
    fov_deg: float = DEFAULT_FOV_DEG,
    visibility_distance_m: float = DEFAULT_VISIBILITY_M,
) -> np.ndarray:
    """Which objects a camera (AI2-THOR axes) sees: AABB center inside the horizontal FOV, within
    ``visibility_distance_m`` (3D), and not inside a closed openable receptacle. No occlusion."""
    if not objects:
        return np.zeros(0, dtype=bool)
    centers = np.array([
        yup_to_zup(_xyz(_field(o, "axisAlignedBoundingBox", "object"), "center", "object.axisAlignedBoundingBox"))
        for o in objects
    ])
    view = make_view(yup_to_zup(np.asarray(camera, dtype=float)), rotation_y % 360.0, fov_deg, visibility_distance_m)
    by_id = {o["objectId"]: o for o in objects if "objectId" in o}
    mask = in_view(centers, view)
    for i in np.flatnonzero(mask):
        mask[i] = not hidden_in_closed(objects[i], by_id)
    return mask


def mark_visible(
    objects: Sequence[Mapping[str, Any]],
    agent_pose: AgentPose,
    fov_deg: float = DEFAULT_FOV_DEG,
    visibility_distance_m: float = DEFAULT_VISIBILITY_M,
) -> list[dict[str, Any]]:
    """Copies of ``objects`` with ``visible``/``isInteractable``/``distance`` set for ``agent_pose``.

    ``fov_deg`` is the horizontal field of view (see :func:`horizontal_fov`).
    """
    camera = agent_pose.camera()
    mask = visible_mask(objects, camera, agent_pose.rotation_y, fov_deg, visibility_distance_m)
    out = []
    for obj, seen in zip(objects, mask, strict=True):
        copy_ = copy.deepcopy(dict(obj))
        copy_["visible"] = bool(seen)
        copy_["isInteractable"] = bool(seen)
        if isinstance(obj.get("position"), Mapping):
            copy_["distance"] = float(np.linalg.norm(_xyz(obj, "position", "object") - camera))
        out.append(copy_)
    return out


def _vec_dict(vec: Sequence[float]) -> dict[str, float]:
    return {"x": float(vec[0]), "y": float(vec[1]), "z": float(vec[2])}


def metadata_frame(
    scene_objects: Sequence[Mapping[str, Any]],
    agent_position: Sequence[float] | Mapping[str, float],
    agent_rotation_y: float,
    horizon: float = 0.0,
    *,
    fov: float = DEFAULT_FOV_DEG,
    visibility_distance_m: float = DEFAULT_VISIBILITY_M,
    screen: tuple[int, int] = DEFAULT_SCREEN,
    scene_name: str = "",
    last_action: str = "Teleport",
) -> dict[str, Any]:
    """An AI2-THOR-like ``event.metadata`` dict for an agent at a pose in a scene snapshot.

    ``agent_position`` is the agent's body position (AI2-THOR axes; ``AGENT_Y`` on an iTHOR floor),
    the camera stands ``CAMERA_OFFSET_Y`` above it. ``fov`` is AI2-THOR's (vertical) fov.
    """
    if isinstance(agent_position, Mapping):
        agent_position = (agent_position["x"], agent_position["y"], agent_position["z"])
    pose = AgentPose(tuple(float(v) for v in agent_position), float(agent_rotation_y), float(horizon))
    hfov = horizontal_fov(fov, *screen)
    return {
        "objects": mark_visible(scene_objects, pose, hfov, visibility_distance_m),
        "agent": {
            "name": "agent",
            "position": _vec_dict(pose.position),
            "rotation": {"x": 0.0, "y": pose.rotation_y, "z": 0.0},
            "cameraHorizon": pose.horizon,
            "isStanding": True,
            "inHighFrictionArea": False,
        },
        "cameraPosition": _vec_dict(pose.camera()),
        "fov": float(fov),
        "screenWidth": int(screen[0]),
        "screenHeight": int(screen[1]),
        "sceneName": scene_name,
        "lastAction": last_action,
        "lastActionSuccess": True,
        "errorMessage": "",
        "actionReturn": None,
        "colors": [],
        "inventoryObjects": [],
        "thirdPartyCameras": [],
    }


def set_object_fields(objects: Sequence[Mapping[str, Any]], object_id: str, **fields: Any) -> list[dict[str, Any]]:
    """Copies of ``objects`` with ``fields`` changed on the one whose objectId is ``object_id``."""
    if not any(o.get("objectId") == object_id for o in objects):
        raise KeyError(object_id)
    return [copy.deepcopy({**o, **fields}) if o.get("objectId") == object_id else copy.deepcopy(dict(o))
            for o in objects]


# --------------------------------------------------------------------------- logs


def save_metadata_log(path: str | os.PathLike[str], events: Iterable[Any]) -> int:
    """Write ``event.metadata`` dicts (or events) as JSON Lines; returns the number of lines."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for event in events:
            metadata = getattr(event, "metadata", event)
            fh.write(json.dumps(dict(metadata), separators=(",", ":")) + "\n")
            count += 1
    return count


def _parse_log_line(line: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RejectedInput("malformed", f"line {number}: not JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise RejectedInput("malformed", f"line {number}: not a JSON object")
    return value


def iter_metadata_log(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | RejectedInput]:
    """The frames of a JSON Lines log, a RejectedInput in place of each unreadable line."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield _parse_log_line(line, number)
            except RejectedInput as exc:
                yield exc


def load_metadata_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All frames of a JSON Lines log; RejectedInput on the first unreadable line."""
    frames = []
    for frame in iter_metadata_log(path):
        if isinstance(frame, RejectedInput):
            raise frame
        frames.append(frame)
    return frames


# --------------------------------------------------------------------------- sources


class _FrameConverter:
    """Shared by both sources: frame index -> time, detector RNG, rejected-frame counters."""

    def __init__(
        self,
        robot_id: str,
        visibility_distance_m: float,
        detector: DetectorSettings | None,
        t0: float,
        dt: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.robot_id = robot_id
        self.visibility_distance_m = visibility_distance_m
        self.detector = detector
        self.t0, self.dt, self.clock = t0, dt, clock
        self._rng = detector.rng() if detector is not None else None
        self.frames = 0
        self.skipped: Counter[str] = Counter()
        self.rejects: list[tuple[int, str, str]] = []  # (frame index, reason, detail)

    def convert(self, metadata: Any) -> ObservationBatch | None:
        """The batch of the next frame, or None (counted) when the frame is rejected."""
        index = self.frames
        self.frames += 1
        t = self.clock() if self.clock is not None else self.t0 + index * self.dt
        try:
            if isinstance(metadata, RejectedInput):
                raise metadata
            return batch_from_metadata(metadata, self.robot_id, t, self.detector, rng=self._rng,
                                       visibility_distance_m=self.visibility_distance_m)
        except RejectedInput as exc:
            self.skipped[exc.reason] += 1
            self.rejects.append((index, exc.reason, exc.detail))
            return None


class ThorReplaySource(_FrameConverter):
    """Replays recorded ``event.metadata`` dicts (a list or a JSON Lines path) as batches.

    Frame ``k`` is at ``t0 + k * dt`` (rejected frames keep their slot). Bad frames are skipped and
    counted in ``skipped`` (by reason) and ``rejects``; iteration never raises for them.
    """

    def __init__(
        self,
        frames: Iterable[Mapping[str, Any]] | str | os.PathLike[str],
        *,
        robot_id: str = "thor",
        visibility_distance_m: float = DEFAULT_VISIBILITY_M,
        detector: DetectorSettings | None = None,
        t0: float = 0.0,
        dt: float = 1.0,
    ) -> None:
        super().__init__(robot_id, visibility_distance_m, detector, t0, dt)
        self._frames = frames

    def _raw(self) -> Iterator[Any]:
        if isinstance(self._frames, (str, os.PathLike)):
            yield from iter_metadata_log(Path(self._frames))
        else:
            yield from self._frames

    def __iter__(self) -> Iterator[ObservationBatch]:
        for metadata in self._raw():
            batch = self.convert(metadata)
            if batch is not None:
                yield batch

    def batches(self) -> list[ObservationBatch]:
        """All good batches, in order."""
        return list(self)


class ThorLiveSource(_FrameConverter):
    """Drives an AI2-THOR Controller; every action returns the batch of the resulting frame.

    ``controller`` may be given (anything with ``step(action=..., **kw)`` returning an event); else an
    ``ai2thor.controller.Controller(visibilityDistance=..., **controller_kwargs)`` is started (needs
    the optional ``ai2thor`` package and its Unity build). Each frame's metadata is kept in ``log``
    (when ``record``) for :func:`save_metadata_log` / :class:`ThorReplaySource`.
    """

    def __init__(
        self,
        controller: Any = None,
        *,
        robot_id: str = "thor",
        visibility_distance_m: float = DEFAULT_VISIBILITY_M,
        detector: DetectorSettings | None = None,
        t0: float = 0.0,
        dt: float = 1.0,
        clock: Callable[[], float] | None = None,
        record: bool = True,
        **controller_kwargs: Any,
    ) -> None:
        super().__init__(robot_id, visibility_distance_m, detector, t0, dt, clock)
        if controller is None:
            controller = _start_controller(visibility_distance_m, controller_kwargs)
        self.controller = controller
        self.record = record
        self.log: list[dict[str, Any]] = []
        self.last_event: Any = None

    def _frame(self, event: Any) -> ObservationBatch | None:
        self.last_event = event
        metadata = getattr(event, "metadata", None)
        if self.record and isinstance(metadata, Mapping):
            self.log.append(copy.deepcopy(dict(metadata)))
        if metadata is None:
            metadata = RejectedInput("malformed", f"{type(event).__name__} has no metadata")
        return self.convert(metadata)

    def step(self, action: str, **kwargs: Any) -> ObservationBatch | None:
        """Run one AI2-THOR action; the batch of the frame after it (None if the frame is rejected)."""
        return self._frame(self.controller.step(action=action, **kwargs))

    def reset(self, scene: str, **kwargs: Any) -> ObservationBatch | None:
        """Load ``scene`` (Controller.reset) and return its first frame's batch."""
        return self._frame(self.controller.reset(scene=scene, **kwargs))

    def observe(self) -> ObservationBatch | None:
        """Look again without acting (the ``Pass`` action)."""
        return self.step("Pass")

    def move_ahead(self, meters: float | None = None) -> ObservationBatch | None:
        return self.step("MoveAhead", **_opt(moveMagnitude=meters))

    def move_back(self, meters: float | None = None) -> ObservationBatch | None:
        return self.step("MoveBack", **_opt(moveMagnitude=meters))

    def rotate_right(self, degrees: float | None = None) -> ObservationBatch | None:
        return self.step("RotateRight", **_opt(degrees=degrees))

    def rotate_left(self, degrees: float | None = None) -> ObservationBatch | None:
        return self.step("RotateLeft", **_opt(degrees=degrees))

    def look_up(self, degrees: float | None = None) -> ObservationBatch | None:
        return self.step("LookUp", **_opt(degrees=degrees))

    def look_down(self, degrees: float | None = None) -> ObservationBatch | None:
        return self.step("LookDown", **_opt(degrees=degrees))

    def teleport(
        self, position: Mapping[str, float], rotation_y: float | None = None, horizon: float | None = None
    ) -> ObservationBatch | None:
        """Teleport the agent (AI2-THOR axes) and face ``rotation_y``."""
        rotation = None if rotation_y is None else {"x": 0.0, "y": float(rotation_y), "z": 0.0}
        return self.step("Teleport", position=dict(position), **_opt(rotation=rotation, horizon=horizon))

    def open_object(self, object_id: str, openness: float = 1.0) -> ObservationBatch | None:
        return self.step("OpenObject", objectId=object_id, openness=openness)

    def close_object(self, object_id: str) -> ObservationBatch | None:
        return self.step("CloseObject", objectId=object_id)

    def toggle_on(self, object_id: str) -> ObservationBatch | None:
        return self.step("ToggleObjectOn", objectId=object_id)

    def toggle_off(self, object_id: str) -> ObservationBatch | None:
        return self.step("ToggleObjectOff", objectId=object_id)

    def pickup(self, object_id: str) -> ObservationBatch | None:
        return self.step("PickupObject", objectId=object_id)

    def put(self, receptacle_id: str) -> ObservationBatch | None:
        return self.step("PutObject", objectId=receptacle_id)

    def save_log(self, path: str | os.PathLike[str]) -> int:
        """Write the recorded frames as JSON Lines (see :func:`save_metadata_log`)."""
        return save_metadata_log(path, self.log)

    def stop(self) -> None:
        """Stop the controller (if it has ``stop``)."""
        stop = getattr(self.controller, "stop", None)
        if callable(stop):
            stop()


def _opt(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments that are not None (AI2-THOR's own defaults apply to the rest)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _start_controller(visibility_distance_m: float, kwargs: dict[str, Any]) -> Any:
    try:
        from ai2thor.controller import Controller
    except ImportError as exc:
        raise ImportError(
            "ThorLiveSource needs the optional 'ai2thor' package (pip install ai2thor==5.0.0) and its "
            "Unity build, which ai2thor downloads on first start; or pass controller=..."
        ) from exc
    return Controller(visibilityDistance=visibility_distance_m, **kwargs)
