"""The robot's eyes: rendered :class:`CameraFrame` -> ``robomem.perception`` -> memory.

Memory is fed only through perception (depth + intrinsics + optical pose + instance mask, labels and
the per-instance open/on states a perception model would recognise), never from the simulator's
object list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from robomem.core import Memory
from robomem.core.types import ChangeEvent, ObservationBatch
from robomem.perception import CameraIntrinsics, Frame, Perception, PerceptionParams, make_camera_pose
from robomem_sim.camera import CameraFrame

#: Perception of the sim's eyes: the view cone reaches as far as the frame sees (walls hide the next room).
SIM_PERCEPTION = PerceptionParams(view_range_quantile=0.9)
FULL_FRAME_PX = 320 * 240  # frames smaller than this need proportionally fewer pixels per object
MIN_PIXELS_FLOOR = 10


def to_perception_frame(frame: CameraFrame, robot: str = "robot") -> Frame:
    """The perception input of one rendered frame (depth, intrinsics, optical pose, mask, labels, and the
    open/on states of each instance, as a perception model that recognises states reports them)."""
    intrinsics = CameraIntrinsics(fx=frame.fx, fy=frame.fy, cx=frame.cx, cy=frame.cy,
                                  width=frame.width, height=frame.height)
    return Frame(t=frame.t, robot=robot, depth=frame.depth, intrinsics=intrinsics,
                 pose=make_camera_pose(frame.position, frame.quaternion_xyzw),
                 mask=frame.instance_mask, labels=dict(frame.labels), states=dict(frame.states))


def event_center(event: ChangeEvent, feed: MemoryFeed | None = None) -> np.ndarray | None:
    """Where memory had the object when it noticed the change (``detail["at"]``), or None."""
    at = event.detail.get("at") if event.detail else None
    return None if at is None else np.asarray(at, float)


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

    def perceive(self, frame: CameraFrame) -> ObservationBatch:
        """One frame through perception."""
        batch = self._perception_for(frame.width * frame.height).observe(to_perception_frame(frame, self.robot))
        self.frames += 1
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
        batches = [self.perceive(f) for f in frames]
        for batch in batches:
            for feed in self.feeds:
                feed.ingest(batch)
        return batches
