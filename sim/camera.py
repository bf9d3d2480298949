"""RGB-D + instance segmentation from a pinhole camera in the simulated room (TinyRenderer).

Conventions (those of ``robomem.perception.camera``): integer pixel coordinates are pixel
centres, so the principal point of the centred camera is ((W-1)/2, (H-1)/2); depth is the
z coordinate in the optical frame (x right, y down, z forward), NaN where nothing is within
range; the pose is the optical frame's position and (x, y, z, w) quaternion in the map frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from robomem_sim.scene import Scene

WIDTH, HEIGHT = 320, 240
VFOV_DEG = 60.0
NEAR_M, FAR_M = 0.05, 10.0
BACKGROUND = -1


@dataclass
class CameraFrame:
    """One rendered frame, ready for perception.

    ``instance_mask`` holds the pybullet body id of the AI2-THOR object seen at each pixel
    (-1 for floor, walls, robot and sky); ids are stable within a scene, so a realistic
    consumer must not use them to track objects across frames. ``labels`` maps each
    instance to its objectType; ``object_ids`` (the AI2-THOR objectId) and ``states`` are
    ground truth, for evaluation and for a perception model that reads states.
    """

    t: float
    depth: np.ndarray  # float32 (H, W), metres, NaN = no return
    rgb: np.ndarray  # uint8 (H, W, 3)
    instance_mask: np.ndarray  # int32 (H, W)
    labels: dict[int, str]
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    position: np.ndarray  # (3,) optical frame origin, map frame
    quaternion_xyzw: np.ndarray  # (4,) optical frame orientation, map frame
    link_mask: np.ndarray  # int32 (H, W): the body's link at each pixel (-1 base; a door or drawer is 0)
    object_ids: dict[int, str] = field(default_factory=dict)
    states: dict[int, dict[str, bool]] = field(default_factory=dict)

    @property
    def k(self) -> np.ndarray:
        """The 3x3 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def pixels_of(self, instance: int) -> np.ndarray:
        """Boolean mask of one instance."""
        return self.instance_mask == instance


def optical_axes(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """3x3 matrix whose columns are the optical x (right), y (down), z (forward) axes in the
    map frame, for a camera turned ``yaw_deg`` (counter-clockwise from +x) and tilted
    ``pitch_deg`` down."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def render(
    scene: Scene,
    position: np.ndarray,
    yaw_deg: float,
    pitch_deg: float,
    width: int = WIDTH,
    height: int = HEIGHT,
    vfov_deg: float = VFOV_DEG,
    near: float = NEAR_M,
    far: float = FAR_M,
) -> CameraFrame:
    """Render the room from ``position`` (map frame) looking along yaw/pitch."""
    c = scene.client
    axes = optical_axes(yaw_deg, pitch_deg)
    eye = np.asarray(position, dtype=float)
    view = c.computeViewMatrix(eye.tolist(), (eye + axes[:, 2]).tolist(), (-axes[:, 1]).tolist())
    proj = c.computeProjectionMatrixFOV(vfov_deg, width / height, near, far)
    _, _, rgba, zbuf, seg = c.getCameraImage(
        width, height, view, proj, renderer=c.ER_TINY_RENDERER,
        flags=c.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
    zbuf = np.asarray(zbuf, dtype=np.float64).reshape(height, width)
    depth = (far * near / (far - (far - near) * zbuf)).astype(np.float32)
    depth[zbuf >= 1.0 - 1e-7] = np.nan
    seg = np.asarray(seg, dtype=np.int64).reshape(height, width)
    body = np.where(seg >= 0, seg & 0xFFFFFF, BACKGROUND)
    link = np.where(seg >= 0, (seg >> 24) - 1, BACKGROUND)
    labels: dict[int, str] = {}
    object_ids: dict[int, str] = {}
    states: dict[int, dict[str, bool]] = {}
    instance = np.full((height, width), BACKGROUND, dtype=np.int32)
    for b in np.unique(body):
        obj = scene.object_of_body(int(b)) if b >= 0 else None
        if obj is None:
            continue
        instance[body == b] = int(b)
        labels[int(b)] = obj.object_type
        object_ids[int(b)] = obj.object_id
        st: dict[str, bool] = {}
        if obj.is_open is not None:
            st["isOpen"] = obj.is_open
        if obj.toggled is not None:
            st["isToggled"] = obj.toggled
        if st:
            states[int(b)] = st
    fy = (height / 2) / math.tan(math.radians(vfov_deg) / 2)
    quat = Rotation.from_matrix(axes).as_quat()
    return CameraFrame(
        t=scene.t, depth=depth, rgb=rgb, instance_mask=instance, labels=labels,
        fx=fy, fy=fy, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height,
        position=eye.copy(), quaternion_xyzw=quat, link_mask=np.where(instance >= 0, link, BACKGROUND).astype(np.int32),
        object_ids=object_ids, states=states,
    )
