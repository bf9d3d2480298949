"""Pinhole camera model, depth images and camera poses (no ROS).

Conventions
-----------
* Pixels: ``u`` is the column, ``v`` the row, and integer coordinates are pixel *centres* (the ROS
  ``sensor_msgs/CameraInfo`` convention), so a centred principal point is ``((W-1)/2, (H-1)/2)``.
* Camera frame: the *optical* frame of REP-103 (``*_optical_frame`` in ROS): x right, y down,
  z forward along the optical axis. A depth value is the z coordinate of the point in that frame
  (what depth cameras and OpenGL depth buffers give), not the length of the ray.
* Pose: the position and orientation (quaternion x, y, z, w) of the optical frame in the map frame
  (z up, metres), i.e. the transform that takes optical-frame points to map points. A pose given for
  a ``camera_link`` style body frame (x forward, y left, z up) converts with :func:`optical_from_body`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robomem.core.types import RejectedInput, ViewCone, make_view

DEFAULT_MM_SCALE = 0.001  # metres per unit of an integer (uint16) depth image
QUATERNION_TOLERANCE = 1e-2  # |norm - 1| above this is refused; below it the quaternion is renormalised

# Columns: the optical axes (x right, y down, z forward) written in a body frame (x forward, y left, z up).
BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted (rectified) image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise RejectedInput("bad_intrinsics", f"fx, fy, cx, cy must be finite numbers, got {values}")
        if self.fx <= 0 or self.fy <= 0:
            raise RejectedInput("bad_intrinsics", f"focal lengths must be positive, got fx={self.fx} fy={self.fy}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise RejectedInput("bad_intrinsics", f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: Any, width: int, height: int) -> CameraIntrinsics:
        """From a 3x3 camera matrix (or its 9 numbers row by row, as in ``CameraInfo.k``)."""
        try:
            mat = np.asarray(k, dtype=float).reshape(3, 3)
        except (TypeError, ValueError) as exc:
            raise RejectedInput("bad_intrinsics", f"K must be 9 numbers, got {k!r}") from exc
        if not np.all(np.isfinite(mat)) or mat[0, 0] <= 0 or mat[1, 1] <= 0:
            raise RejectedInput("bad_intrinsics", f"K is empty or invalid: {mat.reshape(-1).tolist()}")
        return cls(float(mat[0, 0]), float(mat[1, 1]), float(mat[0, 2]), float(mat[1, 2]), int(width), int(height))

    @classmethod
    def from_projection(cls, projection: Any, width: int, height: int) -> CameraIntrinsics:
        """From an OpenGL projection matrix as pybullet returns it (16 numbers, column-major)."""
        p = np.asarray(projection, dtype=float).reshape(4, 4).T
        fx = p[0, 0] * width / 2.0
        fy = p[1, 1] * height / 2.0
        cx = (1.0 - p[0, 2]) * width / 2.0 - 0.5
        cy = (1.0 + p[1, 2]) * height / 2.0 - 0.5
        return cls(float(fx), float(fy), float(cx), float(cy), int(width), int(height))

    @property
    def k(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view: the angle between the rays through the left and right image edges."""
        left = math.atan2(self.cx + 0.5, self.fx)
        right = math.atan2(self.width - 0.5 - self.cx, self.fx)
        return math.degrees(left + right)


@dataclass(frozen=True)
class CameraPose:
    """Pose of the optical frame in the map frame; build it with :func:`make_camera_pose`."""

    position: np.ndarray  # (3,) metres
    quaternion: np.ndarray  # (4,) x, y, z, w; unit

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform map <- optical."""
        out = np.eye(4)
        out[:3, :3] = Rotation.from_quat(self.quaternion).as_matrix()
        out[:3, 3] = self.position
        return out

    @property
    def rotation(self) -> np.ndarray:
        return Rotation.from_quat(self.quaternion).as_matrix()


def make_camera_pose(position: Any, quaternion: Any) -> CameraPose:
    """Validate a position and an (x, y, z, w) quaternion; RejectedInput('bad_pose') if unusable."""
    try:
        pos = np.asarray(position, dtype=float).reshape(-1)
        quat = np.asarray(quaternion, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise RejectedInput("bad_pose", f"pose is not numeric: {position!r}, {quaternion!r}") from exc
    if pos.shape != (3,) or quat.shape != (4,):
        raise RejectedInput("bad_pose", f"need 3 position and 4 quaternion numbers, got {pos.size} and {quat.size}")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
        raise RejectedInput("bad_pose", f"pose has NaN/inf: {pos.tolist()} {quat.tolist()}")
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise RejectedInput("bad_pose", f"quaternion is not unit (norm {norm:.4f})")
    return CameraPose(pos, quat / norm)


def pose_from_matrix(matrix: Any) -> CameraPose:
    """A :class:`CameraPose` from a 4x4 map <- optical transform."""
    mat = np.asarray(matrix, dtype=float)
    if mat.shape != (4, 4) or not np.all(np.isfinite(mat)):
        raise RejectedInput("bad_pose", "transform must be a finite 4x4 matrix")
    rot = mat[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
        raise RejectedInput("bad_pose", "transform's rotation part is not a rotation")
    return make_camera_pose(mat[:3, 3], Rotation.from_matrix(rot).as_quat())


def optical_from_body(position: Any, quaternion: Any) -> CameraPose:
    """Optical-frame pose from the pose of a body-style camera frame (x forward, y left, z up)."""
    body = make_camera_pose(position, quaternion)
    rot = body.rotation @ BODY_FROM_OPTICAL
    return make_camera_pose(body.position, Rotation.from_matrix(rot).as_quat())


def optical_pose_from_view_matrix(view_matrix: Any) -> CameraPose:
    """Optical-frame pose from an OpenGL view matrix as pybullet returns it (16 numbers, column-major).

    The view matrix maps world points into the OpenGL camera frame (x right, y up, z backwards); the
    optical frame is that frame with y and z flipped."""
    view = np.asarray(view_matrix, dtype=float).reshape(4, 4).T
    world_from_gl = np.linalg.inv(view)
    return pose_from_matrix(world_from_gl @ np.diag([1.0, -1.0, -1.0, 1.0]))


def depth_from_opengl_buffer(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth (float32 metres) from a non-linear OpenGL depth buffer in [0, 1] (pybullet's)."""
    buf = np.asarray(buffer, dtype=np.float64)
    return (far * near / (far - (far - near) * buf)).astype(np.float32)


def depth_to_metres(depth: Any, scale: float | None = None) -> np.ndarray:
    """A float32 depth image in metres, with NaN where the depth is invalid (0, negative, NaN, inf).

    Float images are taken as metres (times ``scale`` if given); integer images (uint16 as depth cameras
    and ROS ``16UC1`` give) as millimetres unless ``scale`` (metres per unit) says otherwise."""
    arr = np.asarray(depth)
    if arr.ndim != 2 or arr.size == 0:
        raise RejectedInput("bad_depth", f"depth must be a non-empty 2-D image, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32, copy=True)
        if scale is not None:
            out *= np.float32(scale)
    elif np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
        out = arr.astype(np.float32) * np.float32(DEFAULT_MM_SCALE if scale is None else scale)
    else:
        raise RejectedInput("bad_depth", f"unsupported depth type {arr.dtype}")
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def backproject(
    depth_m: np.ndarray, intrinsics: CameraIntrinsics, rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> np.ndarray:
    """Optical-frame points (N, 3) of the given pixels (all pixels if ``rows``/``cols`` are None).

    ``depth_m`` is metric depth (NaN where invalid); invalid pixels give NaN points, which callers drop."""
    if rows is None or cols is None:
        rows, cols = np.indices(depth_m.shape).reshape(2, -1)
    z = depth_m[rows, cols].astype(np.float64)
    x = (cols - intrinsics.cx) * z / intrinsics.fx
    y = (rows - intrinsics.cy) * z / intrinsics.fy
    return np.stack([x, y, z], axis=1)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) points."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def view_cone_for(intrinsics: CameraIntrinsics, pose: CameraPose, range_m: float) -> ViewCone | None:
    """The horizontal view cone memory uses for negative evidence: camera position, yaw of the optical
    axis in the map frame (degrees, counter-clockwise from +x) and the image's horizontal FOV.

    Assumes a camera without roll (image rows horizontal). Returns None when the optical axis is within
    10 degrees of vertical: the heading is then meaningless, and a frame without a cone gives no
    negative evidence (safer than a wrong one)."""
    axis = pose.rotation[:, 2]
    horizontal = math.hypot(axis[0], axis[1])
    if horizontal < math.sin(math.radians(10.0)):
        return None
    yaw = math.degrees(math.atan2(axis[1], axis[0]))
    return make_view(pose.position, yaw, intrinsics.hfov_deg, range_m)
