"""The robot's eyes: rendered :class:`CameraFrame` -> ``robomem.perception`` -> memory.

Memory is fed only through perception (depth + intrinsics + optical pose + instance mask and
labels), never from the simulator's object list. ``robomem.perception.Frame`` has no field for
per-instance states, so the open/closed and on/off states the simulator renders (a real perception
model would see them) are attached afterwards: each detection of a label that has state-bearing
instances in the frame takes the states of the same-label instance whose depth pixels' centroid is
nearest to the detection's center (within ``STATE_MATCH_M``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from robomem.core import Memory
from robomem.core.types import ChangeEvent, ObservationBatch
from robomem.perception import CameraIntrinsics, Frame, Perception, PerceptionParams, make_camera_pose
from robomem.perception.camera import backproject
from robomem_sim.camera import CameraFrame

STATE_MATCH_M = 1.0  # a detection takes the states of a same-label instance at most this far away


def to_perception_frame(frame: CameraFrame, robot: str = "robot") -> Frame:
    """The perception input of one rendered frame (depth, intrinsics, optical pose, mask, labels)."""
    intrinsics = CameraIntrinsics(fx=frame.fx, fy=frame.fy, cx=frame.cx, cy=frame.cy,
                                  width=frame.width, height=frame.height)
    return Frame(t=frame.t, robot=robot, depth=frame.depth, intrinsics=intrinsics,
                 pose=make_camera_pose(frame.position, frame.quaternion_xyzw),
                 mask=frame.instance_mask, labels=dict(frame.labels))


def _instance_centroids(frame: CameraFrame, pf: Frame, instances: Iterable[int]) -> dict[int, np.ndarray]:
    """Map-frame centroid of the valid depth pixels of each instance."""
    matrix = pf.pose.matrix()
    out: dict[int, np.ndarray] = {}
    for inst in instances:
        rows, cols = np.nonzero(frame.instance_mask == inst)
        if rows.size == 0:
            continue
        pts = backproject(frame.depth, pf.intrinsics, rows, cols)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts):
            out[inst] = (matrix[:3, :3] @ np.median(pts, axis=0)) + matrix[:3, 3]
    return out


def attach_states(frame: CameraFrame, pf: Frame, batch: ObservationBatch) -> None:
    """Give each detection the rendered states (isOpen / isToggled) of its instance (see module doc)."""
    if not frame.states:
        return
    centroids = _instance_centroids(frame, pf, frame.states)
    for det in batch.detections:
        best, best_d = None, STATE_MATCH_M
        for inst, center in centroids.items():
            if frame.labels.get(inst) != det.label:
                continue
            d = float(np.linalg.norm(center - det.center))
            if d < best_d:
                best, best_d = inst, d
        if best is not None:
            det.state.update(frame.states[best])


@dataclass
class EventNote:
    """A short-term change event with where memory had the object when it noticed the change."""

    event: ChangeEvent
    center: np.ndarray
    size: np.ndarray


@dataclass
class MemoryFeed:
    """A memory fed by the eyes; keeps the position of each change event it emitted (the core's
    ``ChangeEvent`` carries no position, a short-term-only planner needs one)."""

    memory: Memory
    notes: dict[int, EventNote] = field(default_factory=dict)
    batches: int = 0

    def ingest(self, batch: ObservationBatch) -> list[ChangeEvent]:
        events = self.memory.ingest(batch)
        self.batches += 1
        for e in events:
            track = self.memory.tracks.get(e.track_id)
            if track is not None:
                self.notes[e.event_id] = EventNote(e, np.array(track.center, float), np.array(track.size, float))
        return events


class Eyes:
    """Perceives frames and feeds every attached memory."""

    def __init__(self, params: PerceptionParams | None = None, robot: str = "robot") -> None:
        self.perception = Perception(params) if params is not None else Perception()
        self.robot = robot
        self.feeds: list[MemoryFeed] = []
        self.frames = 0

    def perceive(self, frame: CameraFrame) -> ObservationBatch:
        """One frame through perception, with states attached."""
        pf = to_perception_frame(frame, self.robot)
        batch = self.perception.observe(pf)
        attach_states(frame, pf, batch)
        self.frames += 1
        return batch

    def see(self, frames: CameraFrame | Iterable[CameraFrame]) -> list[ObservationBatch]:
        """Perceive frames and ingest them into every feed; returns the batches."""
        if isinstance(frames, CameraFrame):
            frames = [frames]
        batches = [self.perceive(f) for f in frames]
        for batch in batches:
            for feed in self.feeds:
                feed.ingest(batch)
        return batches
