"""Observation batches from the simulator's camera for the record/replay, view and Foxglove tests: the
PyBullet room of tests/pybullet_scene.py rendered from three eyes, twice each, with the mug on the
table, then (after someone moved it) on the box; perceived by robomem.perception. Import it only after
``pytest.importorskip("pybullet")``."""

from __future__ import annotations

import numpy as np
import pybullet as pb
from pybullet_scene import OBJECTS, build_scene, render

from robomem.core.types import ObservationBatch
from robomem.perception import Frame, Perception, PerceptionParams, make_camera_pose

EYES = [np.array([-0.3, -0.25, 1.3]), np.array([-0.2, 0.3, 1.3]), np.array([0.1, -0.6, 1.2])]
TARGET = np.array([2.0, 0.1, 0.6])
MUG_ON_BOX = (1.3, -0.95, 0.45)  # the mug moved from the table onto the box
ROOM = {"name": "kitchen", "min": [-1.0, -2.0], "max": [4.0, 2.0]}


def camera_frames() -> list[tuple[float, object, dict[int, str]]]:
    """(time, render, instance labels) of the walk: t = 100-105 the mug on the table, t = 120-125 on the box."""
    scene = build_scene()
    labels = {scene.bodies[name].body_id: name for name in OBJECTS}
    out = []
    try:
        for t0 in (100.0, 120.0):
            if t0 > 100.0:
                pb.resetBasePositionAndOrientation(scene.bodies["Mug"].body_id, MUG_ON_BOX, (0, 0, 0, 1),
                                                   physicsClientId=scene.client)
            for k, eye in enumerate(EYES):
                for repeat in range(2):
                    out.append((t0 + 2 * k + repeat, render(scene, 320, 240, eye=eye, target=TARGET), labels))
    finally:
        pb.disconnect(scene.client)
    return out


def camera_batches(frames=None) -> list[ObservationBatch]:
    perception = Perception(PerceptionParams(max_range_m=5.0))
    return [perception.observe(Frame(t, "r1", r.depth_m, r.intrinsics, make_camera_pose(r.position, r.quaternion),
                                     mask=r.seg, labels=labels)) for t, r, labels in frames or camera_frames()]
