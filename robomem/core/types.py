"""Plain data exchanged with the memory core (world frame z-up, metres, seconds): what goes in
(detections, view cones, observation batches) and what comes out (objects, scene-graph nodes and
edges, changes, change events).

Input is validated once, where it is built: a :class:`Detection` or :class:`ViewCone` that exists is
sound, so ingest, converters and nodes rely on it. Every input limit lives here.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

StateValue = bool | int | float | str

MAX_LABEL_CHARS = 128  # an object label or a robot id
MAX_OBJECT_SIZE_M = 50.0  # no household object's box side is larger (memory's configured bounds are tighter)
MAX_VIEW_RANGE_M = 100.0  # no camera sees objects farther away
MAX_COORDINATE_M = 10_000.0  # no map-frame coordinate is farther from the origin (memory's map extent is tighter)
MAX_ANGLE_DEG = 3600.0  # a yaw beyond ten turns is a unit or overflow error, not an angle
MAX_TIME_S = 1.0e10  # |stamp| (the year 2286); beyond it a stamp is garbage, not time
MAX_EMBEDDING_DIM = 4096
NUMBER_TYPES = frozenset((int, float))  # a stored number as sqlite3 / psycopg give it (not bool: no flag is a size)


class RejectedInput(ValueError):
    """Raised for input the memory refuses; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def checked_label(label: Any, what: str = "label") -> str:
    """A non-empty label of at most MAX_LABEL_CHARS characters, stripped, or RejectedInput('bad_label')."""
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
        raise RejectedInput("bad_label", f"{what} must be a non-empty string of at most {MAX_LABEL_CHARS} "
                                         f"characters, got {label!r}"[:300])
    return label.strip()


def _finite_vector(values: Any, name: str, length: int = 3) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("malformed", f"{name} is not numeric: {values!r}"[:300]) from exc
    if arr.shape != (length,):
        raise RejectedInput("malformed", f"{name} needs {length} numbers, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise RejectedInput("non_finite", f"{name} has NaN/inf: {arr.tolist()}")
    return arr


def _real(value: Any, name: str) -> float:
    if isinstance(value, (str, bool)) or not isinstance(value, numbers.Real):
        raise RejectedInput("malformed", f"{name} is not a number: {value!r}"[:300])
    return float(value)


def _bounded_vector(values: Any, name: str, limit: float) -> np.ndarray:
    arr = _finite_vector(values, name)
    if np.any(np.abs(arr) > limit):
        raise RejectedInput("out_of_bounds", f"{name} {arr.tolist()} beyond {limit:g} m of the map origin")
    return arr


def checked_time(value: Any, name: str = "time") -> float:
    """A finite stamp in seconds with |t| <= MAX_TIME_S, or RejectedInput ('malformed', 'non_finite',
    'out_of_bounds')."""
    t = _real(value, name)
    if not math.isfinite(t):
        raise RejectedInput("non_finite", f"{name} is not finite: {t!r}")
    if abs(t) > MAX_TIME_S:
        raise RejectedInput("out_of_bounds", f"{name} {t!r} is beyond {MAX_TIME_S:g} s")
    return t


def checked_point(value: Any, name: str = "point", limit: float = MAX_COORDINATE_M) -> np.ndarray:
    """A finite [x, y, z] within ``limit`` metres of the origin on every axis, or RejectedInput."""
    return _bounded_vector(value, name, limit)


def checked_distance(value: Any, name: str = "radius", limit: float = MAX_COORDINATE_M) -> float:
    """A finite distance in [0, ``limit``] metres, or RejectedInput."""
    d = _real(value, name)
    if not math.isfinite(d) or not 0.0 <= d <= limit:
        raise RejectedInput("out_of_bounds", f"{name} must be in [0, {limit:g}] m, got {d!r}")
    return d


def _clean_state(state: Any) -> dict[str, StateValue]:
    if state is None:
        return {}
    if not isinstance(state, dict):
        raise RejectedInput("malformed", f"state must be a mapping, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, (bool, int, float, str)):
            raise RejectedInput("malformed", f"bad state entry {key!r}: {value!r}"[:300])
        if isinstance(value, float) and not math.isfinite(value):
            raise RejectedInput("non_finite", f"state {key!r} is not finite")
    return dict(state)


def _unit_embedding(embedding: Any) -> np.ndarray | None:
    if embedding is None:
        return None
    try:
        emb = np.asarray(embedding, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("bad_embedding", f"embedding is not numeric: {embedding!r}"[:300]) from exc
    if emb.size == 0 or emb.size > MAX_EMBEDDING_DIM or not np.all(np.isfinite(emb)):
        raise RejectedInput("bad_embedding", f"embedding is empty, longer than {MAX_EMBEDDING_DIM} or not finite")
    norm = float(np.linalg.norm(emb))
    return emb / norm if norm > 0 else emb


@dataclass(frozen=True)
class ViewCone:
    """The camera view cone of one frame (only the horizontal angle counts). Built only when sound:
    a position within MAX_COORDINATE_M of the origin, a yaw within MAX_ANGLE_DEG (kept in [-180, 180)),
    a field of view in (0, 360] degrees and a range in (0, MAX_VIEW_RANGE_M]."""

    position: tuple[float, float, float]
    yaw_deg: float
    fov_deg: float
    range_m: float

    def __post_init__(self) -> None:
        pos = _bounded_vector(self.position, "view.position", MAX_COORDINATE_M)
        yaw, fov, rng = (_real(v, f"view.{n}") for v, n in
                         ((self.yaw_deg, "yaw_deg"), (self.fov_deg, "fov_deg"), (self.range_m, "range_m")))
        if not all(math.isfinite(v) for v in (yaw, fov, rng)):
            raise RejectedInput("non_finite", "view yaw/fov/range must be finite")
        if not 0.0 < fov <= 360.0 or not 0.0 < rng <= MAX_VIEW_RANGE_M:
            raise RejectedInput("bad_view", f"fov {fov} or range {rng} out of bounds")
        if abs(yaw) > MAX_ANGLE_DEG:
            raise RejectedInput("bad_view", f"yaw {yaw} beyond {MAX_ANGLE_DEG:g} degrees")
        yaw = wrapped_yaw_deg(yaw)
        object.__setattr__(self, "position", (float(pos[0]), float(pos[1]), float(pos[2])))
        object.__setattr__(self, "yaw_deg", yaw)
        object.__setattr__(self, "fov_deg", fov)
        object.__setattr__(self, "range_m", rng)


def wrapped_yaw_deg(yaw: Any) -> Any:
    """A yaw (degrees; a number or an array) in [-180, 180)."""
    return (yaw + 180.0) % 360.0 - 180.0


def sound_views(table: np.ndarray, extent_m: float) -> np.ndarray:
    """Which rows (x, y, z, yaw_deg, fov_deg, range_m) ViewCone takes with a position within ``extent_m``
    of the origin: its checks, for many rows at once (opening a memory that logged a day of views)."""
    with np.errstate(invalid="ignore"):
        return (np.all(np.isfinite(table), axis=1)
                & np.all(np.abs(table[:, :3]) <= min(extent_m, MAX_COORDINATE_M), axis=1)
                & (np.abs(table[:, 3]) <= MAX_ANGLE_DEG) & (table[:, 4] > 0.0) & (table[:, 4] <= 360.0)
                & (table[:, 5] > 0.0) & (table[:, 5] <= MAX_VIEW_RANGE_M))


@dataclass
class Detection:
    """One object seen in one frame, as a detector names it (a type, never a unique id). Built only
    when sound: a label (see :func:`checked_label`), a center within MAX_COORDINATE_M of the origin, box
    sides in [0, MAX_OBJECT_SIZE_M], confidence in [0, 1], plain state values, a finite embedding of at
    most MAX_EMBEDDING_DIM values (stored with unit length). Memory checks its own, tighter, configured
    bounds (map extent, largest furniture and object) when it takes the detection (see ingest)."""

    label: str
    center: np.ndarray
    size: np.ndarray
    confidence: float = 1.0
    state: dict[str, StateValue] = field(default_factory=dict)
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.label = checked_label(self.label)
        self.center = _bounded_vector(self.center, "center", MAX_COORDINATE_M)
        size = _finite_vector(self.size, "size")
        if np.any(size < 0) or np.any(size > MAX_OBJECT_SIZE_M):
            raise RejectedInput("bad_size", f"size out of range: {size.tolist()}")
        self.size = np.abs(size)
        confidence = _real(self.confidence, "confidence")
        if not math.isfinite(confidence) or not 0.0 <= confidence <= 1.0:
            raise RejectedInput("bad_confidence", f"confidence must be in [0, 1], got {self.confidence!r}")
        self.confidence = confidence
        self.state = _clean_state(self.state)
        self.embedding = _unit_embedding(self.embedding)


@dataclass
class ObservationBatch:
    """What one view of one robot's camera showed at time ``t``. The source is ``robot`` (+ ``sensor``);
    ``sequence`` (the robot's batch number, if it numbers them) makes a repeated batch recognisable.
    Checked by memory when ingested (stamp, source, size): see :mod:`robomem.core.ingest`."""

    t: float
    robot: str
    detections: list[Detection]
    view: ViewCone | None = None
    sensor: str = ""
    sequence: int | None = None


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


def make_detection(
    label: Any, center: Any, size: Any = (0.1, 0.1, 0.1), confidence: Any = 1.0, state: Any = None,
    embedding: Any = None,
) -> Detection:
    """A :class:`Detection` from raw fields (a 0.1 m box unless ``size`` is given); RejectedInput if unsound."""
    return Detection(label, center, size, confidence, state, embedding)


def make_view(position: Any, yaw_deg: Any, fov_deg: Any, range_m: Any) -> ViewCone:
    """A :class:`ViewCone` from raw fields; RejectedInput if unsound."""
    return ViewCone(position, yaw_deg, fov_deg, range_m)


# ---------------------------------------------------------------------------------------------- results
@dataclass
class ObjectInfo:
    """One object as memory believes it at some time."""

    track_id: int
    label: str
    center: np.ndarray
    size: np.ndarray
    status: str
    last_seen: float
    receptacle: str | None = None
    receptacle_id: int | None = None
    relation: str | None = None
    room: str = ""
    state: dict[str, Any] = field(default_factory=dict)  # latest value of each observed state

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.track_id,
            "label": self.label,
            "center": [round(float(v), 4) for v in self.center],
            "size": [round(float(v), 4) for v in self.size],
            "status": self.status,
            "last_seen": self.last_seen,
            "receptacle": self.receptacle,
            "receptacle_id": self.receptacle_id,
            "relation": self.relation,
            "room": self.room,
            "state": dict(self.state),
        }


@dataclass
class GraphNode:
    """A node of the believed scene graph: a room or an object."""

    node_id: str  # "room:<name>" or the track id as text
    kind: str  # room | receptacle | object
    label: str
    track_id: int  # -1 for rooms
    center: np.ndarray
    size: np.ndarray


@dataclass
class GraphEdge:
    """child --relation--> parent, relation in | on (rooms hold their objects "in")."""

    child: str
    parent: str
    relation: str


@dataclass
class Change:
    """A difference between what memory believed at two times: when it happened (as memory dates it:
    the start of the fact that holds at the later time) and the object's center before and after
    (None where it was not believed present)."""

    label: str
    change: str
    track_id: int
    detail: dict[str, Any]
    t: float | None = None
    before: np.ndarray | None = None
    after: np.ndarray | None = None
