"""The robot's eyes: rendered :class:`CameraFrame` -> ``robomem.perception`` -> memory.

Memory is fed only through perception (depth + intrinsics + optical pose + instance mask, labels and
the per-instance open/on states a perception model would recognise), never from the simulator's
object list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from robomem.core import Memory
from robomem.core.types import ChangeEvent, ObservationBatch
from robomem.perception import CameraIntrinsics, Frame, Perception, PerceptionParams, make_camera_pose
from robomem_sim.camera import CameraFrame

#: Perception of the sim's eyes: the view cone reaches as far as the frame sees (walls hide the next room).
SIM_PERCEPTION = PerceptionParams(view_range_quantile=0.9, support_tol_m=0.005)
FULL_FRAME_PX = 320 * 240  # frames smaller than this need proportionally fewer pixels per object
MIN_PIXELS_FLOOR = 10
#: Things memory keeps stand this far below the camera (counters, tables, seats); a frame's view
#: (negative evidence) reaches only as far as its vertical field of view shows them (:func:`vertical_reach`).
OBJECT_BELOW_CAMERA_M = (0.3, 1.0)
NEAR_BLIND_M = 0.8  # a frame that misses them closer than this gives no negative evidence at all
#: Occlusion: a frame's view is split into this many sectors of bearing, each reaching as far as the
#: ``SECTOR_QUANTILE`` of its surfaces at object heights (plus a margin): what stands in front hides
#: what is behind (a wall, an open door), so a thing behind it counts as unseen, not as missing.
VIEW_SECTORS = 8
SECTOR_QUANTILE = 0.6
SECTOR_MARGIN_M = 0.25
BAND_BELOW_CAMERA_M = (0.05, 1.4)  # object heights: from just under the camera to just above the floor


def to_perception_frame(frame: CameraFrame, robot: str = "robot") -> Frame:
    """The perception input of one rendered frame (depth, intrinsics, optical pose, mask, labels, and the
    open/on states of each instance, as a perception model that recognises states reports them)."""
    intrinsics = CameraIntrinsics(fx=frame.fx, fy=frame.fy, cx=frame.cx, cy=frame.cy,
                                  width=frame.width, height=frame.height)
    return Frame(t=frame.t, robot=robot, depth=frame.depth, intrinsics=intrinsics,
                 pose=make_camera_pose(frame.position, frame.quaternion_xyzw),
                 mask=frame.instance_mask, labels=dict(frame.labels), states=dict(frame.states))


def event_center(event: ChangeEvent) -> np.ndarray | None:
    """Where memory had the object when it noticed the change (``detail["at"]``), or None."""
    at = event.detail.get("at") if event.detail else None
    return None if at is None else np.asarray(at, float)


def vertical_reach(frame: CameraFrame, below_m: tuple[float, float] = OBJECT_BELOW_CAMERA_M) -> float:
    """How far (horizontally) the frame surely sees things ``below_m`` (from, to) under the camera (tables,
    counters): unlimited unless the image's top edge looks down (a head tilted at a low drawer does not see the
    counter beyond); 0 when the bottom edge looks so far up that it misses them nearby (a head raised to a wall
    cabinet does not see the counter under it)."""
    forward = _rotation(frame.quaternion_xyzw)[:, 2]  # optical frame: z forward
    pitch = math.asin(max(-1.0, min(1.0, -float(forward[2]))))  # > 0: looking down
    half = math.atan2(frame.height / 2.0, frame.fy)
    top, bottom = pitch - half, pitch + half  # depressions of the image's top and bottom edges
    if bottom <= 0.0 or below_m[1] / math.tan(bottom) > NEAR_BLIND_M:
        return 0.0
    return math.inf if top <= math.radians(1.0) else below_m[0] / math.tan(top)


def _points(frame: CameraFrame) -> np.ndarray:
    """The frame's valid depth pixels as map points (N, 3)."""
    depth = frame.depth
    v, u = np.nonzero(np.isfinite(depth) & (depth > 0.05))
    d = depth[v, u].astype(float)
    cam = np.stack([(u - frame.cx) / frame.fx * d, (v - frame.cy) / frame.fy * d, d], axis=1)
    return np.asarray(frame.position, float) + cam @ _rotation(frame.quaternion_xyzw).T


def _sector_of(point: np.ndarray, cam: np.ndarray, yaw_deg: float, fov_deg: float, n: int) -> int:
    bearing = (math.degrees(math.atan2(point[1] - cam[1], point[0] - cam[0])) - yaw_deg + 180.0) % 360.0 - 180.0
    return int(min(n - 1, max(0, math.floor((bearing + fov_deg / 2) / (fov_deg / n)))))


def sector_ranges(frame: CameraFrame, yaw_deg: float, fov_deg: float, n: int = VIEW_SECTORS) -> np.ndarray:
    """Per sector of bearing, how far the frame sees at object heights (:data:`SECTOR_QUANTILE` of the 3D
    distances of its surfaces there, plus :data:`SECTOR_MARGIN_M`); a sector seeing only floor: its farthest floor."""
    pts = _points(frame)
    cam = np.asarray(frame.position, float)
    out = np.full(n, 0.05)
    if len(pts) == 0:
        return out
    delta = pts - cam
    dist = np.linalg.norm(delta, axis=1)
    bearing = (np.degrees(np.arctan2(delta[:, 1], delta[:, 0])) - yaw_deg + 180.0) % 360.0 - 180.0
    sector = np.clip(np.floor((bearing + fov_deg / 2) / (fov_deg / n)).astype(int), 0, n - 1)
    lo, hi = BAND_BELOW_CAMERA_M
    band = (delta[:, 2] <= -lo) & (delta[:, 2] >= -hi)
    for k in range(n):
        mine = sector == k
        pick = dist[mine & band]
        if pick.size:
            out[k] = float(np.quantile(pick, SECTOR_QUANTILE)) + SECTOR_MARGIN_M
        elif mine.any():
            out[k] = float(dist[mine].max())
    return out


def _rotation(q: np.ndarray) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@dataclass
class MemoryFeed:
    """A memory fed by the eyes (counts the batches it ingested)."""

    memory: Memory
    batches: int = 0

    def ingest(self, batch: ObservationBatch) -> list[ChangeEvent]:
        events = self.memory.ingest(batch)
        self.batches += 1
        return events


class Eyes:
    """Perceives frames and feeds every attached memory."""

    def __init__(self, params: PerceptionParams | None = None, robot: str = "robot") -> None:
        self.perception = Perception(params or SIM_PERCEPTION)
        self._small: dict[int, Perception] = {}  # per pixel count of smaller frames: min_pixels scaled down
        self.robot = robot
        self.feeds: list[MemoryFeed] = []
        self.frames = 0

    def perceive_sectors(self, frame: CameraFrame) -> list[ObservationBatch]:
        """One frame through perception, as one batch per sector of bearing (see :data:`VIEW_SECTORS`): each
        sector's view reaches only as far as that sector sees, and holds the detections whose centres lie in it."""
        batch = self.perceive(frame)
        if batch.view is None:
            return [batch]
        view = batch.view
        ranges = sector_ranges(frame, view.yaw_deg, view.fov_deg, VIEW_SECTORS)
        width = view.fov_deg / VIEW_SECTORS
        cam = np.asarray(view.position)
        out: list[ObservationBatch] = []
        bins: list[list[Any]] = [[] for _ in range(VIEW_SECTORS)]
        for det in batch.detections:
            bins[_sector_of(np.asarray(det.center, float), cam, view.yaw_deg, view.fov_deg, VIEW_SECTORS)].append(det)
        for k in range(VIEW_SECTORS):
            yaw = view.yaw_deg - view.fov_deg / 2 + (k + 0.5) * width
            reach = max(0.05, min(view.range_m, ranges[k]))
            out.append(ObservationBatch(batch.t, batch.robot, bins[k], replace(view, yaw_deg=yaw, fov_deg=width,
                                                                                 range_m=reach)))
        return out

    def perceive(self, frame: CameraFrame) -> ObservationBatch:
        """One frame through perception (one batch, the whole frame's view)."""
        batch = self._perception_for(frame.width * frame.height).observe(to_perception_frame(frame, self.robot))
        self.frames += 1
        if batch.view is not None:
            reach = vertical_reach(frame)
            if reach < 0.3:
                batch = replace(batch, view=None)
            elif reach < batch.view.range_m:
                batch = replace(batch, view=replace(batch.view, range_m=reach))
        return batch

    def _perception_for(self, pixels: int) -> Perception:
        """Small frames (en-route 160x120) keep objects of the same angular size: fewer pixels suffice."""
        if pixels >= FULL_FRAME_PX:
            return self.perception
        if pixels not in self._small:
            params = self.perception.params
            scaled = max(MIN_PIXELS_FLOOR, round(params.min_pixels * pixels / FULL_FRAME_PX))
            self._small[pixels] = Perception(replace(params, min_pixels=min(params.min_pixels, scaled)))
        return self._small[pixels]

    def see(self, frames: CameraFrame | Iterable[CameraFrame]) -> list[ObservationBatch]:
        """Perceive frames and ingest them into every feed; returns the batches."""
        if isinstance(frames, CameraFrame):
            frames = [frames]
        batches = [b for f in frames for b in self.perceive_sectors(f)]
        for batch in batches:
            for feed in self.feeds:
                feed.ingest(batch)
        return batches
