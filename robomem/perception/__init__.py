"""Perception: depth image + camera intrinsics/pose + 2D instance masks or boxes -> 3D observations.

numpy/scipy by default (surfaces grouped on the image grid); ``PerceptionParams(backend="open3d")`` uses open3d
(robomem.perception.open3d_objects: voxels, outliers, DBSCAN, RANSAC support plane, oriented boxes). No ROS
here. ``robomem.ros.perception_node`` wraps it."""

from robomem.perception.camera import (
    CameraIntrinsics,
    CameraPose,
    backproject,
    depth_from_opengl_buffer,
    depth_to_metres,
    make_camera_pose,
    optical_from_body,
    optical_pose_from_view_matrix,
    pose_from_matrix,
    view_cone_for,
)
from robomem.perception.objects import (
    BoxDetection,
    PerceptionParams,
    observations_from_boxes,
    observations_from_segmentation,
)
from robomem.perception.pipeline import Frame, Perception

__all__ = [
    "BoxDetection",
    "CameraIntrinsics",
    "CameraPose",
    "Frame",
    "Perception",
    "PerceptionParams",
    "backproject",
    "depth_from_opengl_buffer",
    "depth_to_metres",
    "make_camera_pose",
    "observations_from_boxes",
    "observations_from_segmentation",
    "optical_from_body",
    "optical_pose_from_view_matrix",
    "pose_from_matrix",
    "view_cone_for",
]
