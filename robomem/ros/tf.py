"""Transforms from ``/tf`` and ``/tf_static`` (tf2_msgs/TFMessage), kept in pytransform3d's
TemporalTransformManager, looked up at a message's stamp — what tf2_ros's Buffer + TransformListener
do on a full ROS 2 install (no tf2 wheel exists for PyPI's ROS; tf2_msgs is built locally, ros_deps/).

Bounds: per edge (parent, child) the samples of the last ``cache_s`` seconds (as tf2: 10 s) and at most
MAX_SAMPLES of them; at most MAX_FRAMES frames (further ones are counted, not kept). Between two
samples of an edge the transform is interpolated (ScLERP); outside them it is not available:

- a stamp later than an edge's newest sample (the transform has not arrived yet) or a frame not yet
  connected to the target: :data:`WAIT` — ask again later (the memory node waits a bounded time);
- a stamp older than the buffer (``latest - cache_s``): :data:`TOO_OLD` — it will never be available.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from pytransform3d.transform_manager import NumpyTimeseriesTransform, StaticTransform, TemporalTransformManager
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

MAX_FRAMES = 1000
MAX_SAMPLES = 10_000
WAIT = "transform_not_yet"
TOO_OLD = "transform_too_old"
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


def frame_name(frame_id: str) -> str:
    """tf2 ignores a leading '/' in frame names."""
    return frame_id.lstrip("/")


def pq_from_msg(transform) -> np.ndarray:
    """geometry_msgs/Transform as pytransform3d's (x, y, z, qw, qx, qy, qz)."""
    t, q = transform.translation, transform.rotation
    return np.array([t.x, t.y, t.z, q.w, q.x, q.y, q.z], dtype=float)


def matrix_from_pq(pq: np.ndarray) -> np.ndarray:
    from pytransform3d.transformations import transform_from_pq

    return transform_from_pq(pq)


@dataclass
class _Edge:
    times: deque = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    pqs: deque = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    dirty: bool = True


class TransformBuffer:
    """``lookup(target, source, t)`` -> (4x4 matrix mapping source points into target, or None; reason)."""

    def __init__(self, cache_s: float = 10.0) -> None:
        self.cache_s = cache_s
        self.manager = TemporalTransformManager(strict_check=True, check=False)
        self.edges: dict[tuple[str, str], _Edge] = {}  # (child, parent) of dynamic transforms
        self.static: set[tuple[str, str]] = set()
        self.frames: set[str] = set()
        self.latest = -np.inf  # newest stamp on /tf
        self.counters: Counter[str] = Counter()

    def _known(self, *frames: str) -> bool:
        new = [f for f in frames if f not in self.frames]
        if len(self.frames) + len(new) > MAX_FRAMES:
            self.counters["tf_frames_dropped"] += 1
            return False
        self.frames.update(new)
        return True

    def add(self, transforms: Iterable, static: bool) -> None:
        """Take the TransformStamped of one TFMessage (non-finite or unnormalisable ones are counted)."""
        for stamped in transforms:
            self.counters["tf_static_received" if static else "tf_received"] += 1
            parent, child = frame_name(stamped.header.frame_id), frame_name(stamped.child_frame_id)
            pq = pq_from_msg(stamped.transform)
            norm = float(np.linalg.norm(pq[3:]))
            if not parent or not child or parent == child or not np.all(np.isfinite(pq)) or norm < 1e-6:
                self.counters["tf_rejected"] += 1
                continue
            pq[3:] /= norm
            if not self._known(parent, child):
                continue
            if static:
                self.manager.add_transform(child, parent, StaticTransform(matrix_from_pq(pq)))
                self.static.add((child, parent))
                self.edges.pop((child, parent), None)
                continue
            t = stamped.header.stamp.sec + stamped.header.stamp.nanosec * 1e-9
            edge = self.edges.setdefault((child, parent), _Edge())
            if edge.times and t <= edge.times[-1]:
                if t == edge.times[-1]:
                    continue  # the same sample again
                self.counters["tf_out_of_order"] += 1
                continue
            edge.times.append(t)
            edge.pqs.append(pq)
            edge.dirty = True
            self.latest = max(self.latest, t)
        self._forget_old()

    def _forget_old(self) -> None:
        horizon = self.latest - self.cache_s
        for edge in self.edges.values():
            while len(edge.times) > 1 and edge.times[1] <= horizon:  # keep one sample at or before the horizon
                edge.times.popleft()
                edge.pqs.popleft()
                edge.dirty = True

    def _refresh(self) -> None:
        for (child, parent), edge in self.edges.items():
            if edge.dirty:
                self.manager.add_transform(child, parent, NumpyTimeseriesTransform(
                    np.array(edge.times), np.array(edge.pqs)))
                edge.dirty = False

    def lookup(self, target: str, source: str, t: float) -> tuple[np.ndarray | None, str]:
        target, source = frame_name(target), frame_name(source)
        if target == source:
            return np.eye(4), ""
        if np.isfinite(self.latest) and t < self.latest - self.cache_s:
            return None, TOO_OLD
        self._refresh()
        try:
            return self.manager.get_transform_at_time(source, target, t), ""
        except KeyError:  # a frame not (yet) connected
            return None, WAIT
        except ValueError:  # outside an edge's samples
            return None, WAIT


class TfListener:
    """Subscribes ``node`` to /tf and /tf_static and fills a :class:`TransformBuffer`."""

    def __init__(self, node: Node, buffer: TransformBuffer) -> None:
        from tf2_msgs.msg import TFMessage

        self.buffer = buffer
        self.subscriptions = [
            node.create_subscription(TFMessage, "/tf", lambda m: buffer.add(m.transforms, False), TF_QOS),
            node.create_subscription(TFMessage, "/tf_static", lambda m: buffer.add(m.transforms, True),
                                     TF_STATIC_QOS),
        ]

    def destroy(self, node: Node) -> None:
        for subscription in self.subscriptions:
            node.destroy_subscription(subscription)
        self.subscriptions = []


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def transform_extents(matrix: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The axis-aligned extents of a box of ``size`` after rotation (its rotated box's bounds)."""
    return np.abs(matrix[:3, :3]) @ size


def yaw_deg(matrix: np.ndarray) -> float:
    """The rotation's heading about z (degrees), for a view cone's yaw."""
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


def in_map(message, matrix: np.ndarray, map_frame: str) -> None:
    """An ObservationBatch message moved into the map frame, in place: centres and the view position
    transformed, boxes as the axis-aligned bounds of the rotated box, the view's yaw turned by the
    rotation's heading (a camera frame tilted about x/y keeps only its heading: a view cone is flat)."""
    from geometry_msgs.msg import Point, Vector3

    for observation in message.observations:
        c, s = observation.center, observation.size
        x, y, z = transform_points(matrix, np.array([c.x, c.y, c.z]))
        observation.center = Point(x=float(x), y=float(y), z=float(z))
        w, d, h = transform_extents(matrix, np.array([s.x, s.y, s.z]))
        observation.size = Vector3(x=float(w), y=float(d), z=float(h))
    if message.has_view:
        p = message.view.position
        x, y, z = transform_points(matrix, np.array([p.x, p.y, p.z]))
        message.view.position = Point(x=float(x), y=float(y), z=float(z))
        message.view.yaw_deg = float((message.view.yaw_deg + yaw_deg(matrix) + 180.0) % 360.0 - 180.0)
    message.header.frame_id = map_frame
