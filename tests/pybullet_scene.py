"""A small PyBullet scene whose object boxes are known, and its rendering (DIRECT mode, CPU renderer):
depth, segmentation, intrinsics and the optical pose. Shared by the perception tests
(tests/test_perception_pybullet.py) and the perception node's tests (tests/test_perception_node.py);
import it only after ``pytest.importorskip("pybullet")``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as pb
from scipy.spatial.transform import Rotation

from robomem.perception import CameraIntrinsics

NEAR, FAR = 0.05, 12.0
EYE = np.array([-0.3, -0.25, 1.3])
TARGET = np.array([2.0, 0.1, 0.6])
VFOV_DEG = 50.0


@dataclass
class Body:
    label: str
    body_id: int
    center: np.ndarray  # truth: axis-aligned box of the object in the world (z up)
    size: np.ndarray


@dataclass
class Scene:
    client: int
    bodies: dict[str, Body]


@dataclass
class Render:
    depth_m: np.ndarray  # float32 metres (z along the optical axis)
    seg: np.ndarray  # int32 body ids, -1 background
    intrinsics: CameraIntrinsics
    position: np.ndarray
    quaternion: np.ndarray  # optical frame (x right, y down, z forward) in the world, x y z w
    view_matrix: tuple
    projection: tuple


def add_box(client: int, label: str, center, size, color=(0.6, 0.6, 0.6, 1)) -> Body:
    half = [s / 2 for s in size]
    vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=color, physicsClientId=client)
    body = pb.createMultiBody(0, -1, vis, basePosition=list(center), physicsClientId=client)
    return Body(label, body, np.array(center, float), np.array(size, float))


def add_cylinder(client: int, label: str, center, radius: float, height: float) -> Body:
    vis = pb.createVisualShape(
        pb.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=(0.9, 0.2, 0.2, 1), physicsClientId=client
    )
    body = pb.createMultiBody(0, -1, vis, basePosition=list(center), physicsClientId=client)
    return Body(label, body, np.array(center, float), np.array([2 * radius, 2 * radius, height]))


def build_scene() -> Scene:
    """A room corner: floor, back wall, a table block with a mug and a book on it, a box on the floor,
    an apple hidden behind the table and a plant outside the field of view."""
    client = pb.connect(pb.DIRECT)
    bodies = [
        add_box(client, "Floor", (2.0, 0.0, -0.01), (8.0, 8.0, 0.02)),
        add_box(client, "Wall", (3.6, 0.0, 1.2), (0.1, 8.0, 2.4), (0.9, 0.9, 0.8, 1)),
        add_box(client, "DiningTable", (2.0, 0.0, 0.375), (0.7, 1.1, 0.75), (0.5, 0.3, 0.1, 1)),
        add_cylinder(client, "Mug", (1.85, 0.25, 0.80), 0.045, 0.10),
        add_box(client, "Book", (1.9, -0.25, 0.77), (0.22, 0.16, 0.04), (0.1, 0.3, 0.8, 1)),
        add_box(client, "Box", (1.3, -0.95, 0.2), (0.3, 0.3, 0.4), (0.7, 0.6, 0.3, 1)),
        add_box(client, "Apple", (2.6, 0.0, 0.05), (0.08, 0.08, 0.08), (0.2, 0.8, 0.2, 1)),  # behind the table
        add_box(client, "Plant", (0.0, 3.0, 0.4), (0.3, 0.3, 0.8), (0.2, 0.6, 0.2, 1)),  # out of view (left)
    ]
    return Scene(client, {b.label: b for b in bodies})


def optical_quaternion(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Optical frame looking from eye at target with the image's x axis horizontal (no roll)."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return Rotation.from_matrix(np.column_stack([x, y, z])).as_quat()


def render(scene: Scene, width: int, height: int, eye=EYE, target=TARGET) -> Render:
    view = pb.computeViewMatrix(list(eye), list(target), [0, 0, 1], physicsClientId=scene.client)
    proj = pb.computeProjectionMatrixFOV(VFOV_DEG, width / height, NEAR, FAR, physicsClientId=scene.client)
    _, _, _, depth_buf, seg = pb.getCameraImage(
        width, height, view, proj, renderer=pb.ER_TINY_RENDERER, physicsClientId=scene.client
    )
    depth_buf = np.asarray(depth_buf, dtype=np.float64).reshape(height, width)
    depth_m = (FAR * NEAR / (FAR - (FAR - NEAR) * depth_buf)).astype(np.float32)
    f = (height / 2.0) / math.tan(math.radians(VFOV_DEG) / 2.0)
    intr = CameraIntrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
    return Render(
        depth_m,
        np.asarray(seg, dtype=np.int32).reshape(height, width),
        intr,
        np.asarray(eye, float),
        optical_quaternion(np.asarray(eye, float), np.asarray(target, float)),
        view,
        proj,
    )


OBJECTS = ("DiningTable", "Mug", "Book", "Box", "Apple", "Plant")
