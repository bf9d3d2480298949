"""Perception node: depth image + camera info + camera pose + (instance mask and its labels | 2D boxes)
-> robomem/ObservationBatch on ``observations``. Thin: decodes messages with numpy, pairs them by exact
header stamp, calls :mod:`robomem.perception` and publishes through :mod:`robomem.ros.convert`.

Inputs (topic names are parameters):
  depth_topic        sensor_msgs/Image, 32FC1 (metres) or 16UC1 (millimetres)
  camera_info_topic  sensor_msgs/CameraInfo (the latest one is used; its size must match the depth)
  pose_topic         geometry_msgs/PoseStamped: the camera's *optical* frame (x right, y down, z forward)
                     (or its body frame, x forward / z up, with pose_is_optical=false) in any z-up frame
                     (map, odom, base_link; empty: ``map_frame``), stamped with the image's stamp. The batch
                     is published in that frame; the memory node transforms it into map with /tf at its
                     stamp (robomem.ros.tf), so a camera pose in odom needs no map localisation here.
  detections_topic   robomem/Detection2DArray: labels and scores (mask mode: by instance_id)
  mask_topic         sensor_msgs/Image, 32SC1 / 16UC1 / 8UC1 instance ids (mask mode only)
Malformed input is rejected with a logged reason and counted (``~/get_stats``); the node never dies.
"""

from __future__ import annotations

import sys
from collections import Counter, OrderedDict, deque
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image

from robomem import msg as rmsg
from robomem import srv
from robomem.core.types import RejectedInput
from robomem.perception import (
    BoxDetection,
    CameraIntrinsics,
    Frame,
    Perception,
    PerceptionParams,
    make_camera_pose,
    optical_from_body,
)
from robomem.ros import convert
from robomem.ros.params import Parameters, Spec, not_empty
from robomem.ros.qos import keep_last, observation_qos
from robomem.ros.runtime import run_node

DEPTH_TYPES = {"32FC1": np.dtype(np.float32), "16UC1": np.dtype(np.uint16)}
MASK_TYPES = {"32SC1": np.dtype(np.int32), "16UC1": np.dtype(np.uint16), "8UC1": np.dtype(np.uint8)}


def image_to_array(message: Image, types: dict[str, np.dtype]) -> np.ndarray:
    """A (height, width) numpy array of a single-channel image (copy; row padding and endianness handled)."""
    if message.encoding not in types:
        raise RejectedInput("bad_encoding", f"encoding {message.encoding!r} is not one of {sorted(types)}")
    dtype = types[message.encoding].newbyteorder(">" if message.is_bigendian else "<")
    height, width, step = int(message.height), int(message.width), int(message.step)
    if height == 0 or width == 0 or step < width * dtype.itemsize or len(message.data) < step * height:
        raise RejectedInput(
            "size_mismatch",
            f"{width}x{height} image with step {step} needs {step * height} bytes, has {len(message.data)}",
        )
    raw = np.frombuffer(bytes(message.data[: step * height]), dtype=np.uint8).reshape(height, step)
    return raw[:, : width * dtype.itemsize].copy().view(dtype).reshape(height, width).astype(dtype.newbyteorder("="))


def array_to_image(array: np.ndarray, encoding: str, stamp: Any = None, frame_id: str = "") -> Image:
    """The inverse of :func:`image_to_array` (for publishers and tests)."""
    arr = np.ascontiguousarray(array)
    out = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=0)
    out.step = arr.shape[1] * arr.dtype.itemsize
    out.data = arr.tobytes()
    if stamp is not None:
        out.header.stamp = stamp
    out.header.frame_id = frame_id
    return out


def intrinsics_from_msg(info: CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics.from_k(list(info.k), int(info.width), int(info.height))


class StampBuffer:
    """Messages of several streams keyed by exact header stamp; a key is complete when every required
    stream has one. At most ``capacity`` incomplete stamps are kept (the oldest are dropped)."""

    def __init__(self, streams: tuple[str, ...], capacity: int) -> None:
        self.streams = streams
        self.capacity = max(1, capacity)
        self._pending: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self.dropped = 0

    def add(self, stream: str, stamp: Any, message: Any) -> dict[str, Any] | None:
        """Store one message; returns the complete set for its stamp (and forgets it), else None."""
        key = (int(stamp.sec), int(stamp.nanosec))
        entry = self._pending.setdefault(key, {})
        entry[stream] = message
        if all(name in entry for name in self.streams):
            del self._pending[key]
            return entry
        while len(self._pending) > self.capacity:
            self._pending.popitem(last=False)
            self.dropped += 1
        return None

    def __len__(self) -> int:
        return len(self._pending)


def _input_mode(value: Any) -> str | None:
    return None if value in ("mask", "boxes") else "must be mask or boxes"


SPECS = (
    Spec("map_frame", "map", "frame of the camera pose and of the published observations", check=not_empty),
    Spec("robot_id", "robot", "the robot id every published batch carries", check=not_empty),
    Spec("input_mode", "mask", "mask: instance mask + Detection2DArray labels; boxes: 2D boxes only",
         read_only=True, check=_input_mode),
    Spec("max_range_m", 6.0, "depth beyond this is ignored (m)", 0.1, 100.0),
    Spec("min_pixels", 30, "smaller instances are skipped (counted)", 1, 1_000_000),
    Spec("pose_is_optical", True, "false: camera_pose is a body frame (x forward, y left, z up)"),
    Spec("sync_queue", 10, "stamps waiting for their depth/mask/pose/detections", 1, 1000, read_only=True),
    Spec("best_effort_inputs", False, "true to match sensor-data (BEST_EFFORT) camera publishers", read_only=True),
    Spec("depth_topic", "depth/image", "sensor_msgs/Image 32FC1 metres or 16UC1 millimetres", read_only=True),
    Spec("camera_info_topic", "depth/camera_info", "sensor_msgs/CameraInfo of the depth camera", read_only=True),
    Spec("pose_topic", "camera_pose", "geometry_msgs/PoseStamped, same stamp as the depth image", read_only=True),
    Spec("mask_topic", "instance_mask", "sensor_msgs/Image 32SC1/16UC1/8UC1 instance ids", read_only=True),
    Spec("detections_topic", "detections", "robomem/Detection2DArray", read_only=True),
    Spec("observations_topic", "observations", "robomem/ObservationBatch, to the memory node", read_only=True),
    Spec("autostart", True, "go to active (configure + activate) at start; false: a lifecycle manager does",
         read_only=True),
)


class PerceptionNode(LifecycleNode):
    """A managed node: configure builds the perception, activate subscribes and publishes, deactivate
    stops both (frames half-received are dropped), cleanup forgets the camera. Autostart by default."""

    def __init__(self, name: str = "perception") -> None:
        super().__init__(name)
        self.params = Parameters(self, SPECS)
        self.params.on_change(["max_range_m", "min_pixels"], self._new_perception)
        self.counters: Counter[str] = Counter()
        self.camera_info: CameraInfo | None = None
        self.perception: Perception | None = None
        self.publisher: Any = None
        self._inputs: list[Any] = []
        self._sequence = 0  # published batches, numbered for the memory node's loss count
        self.mode = self.params["input_mode"]
        queue = int(self.params["sync_queue"])
        self._waiting_for_info: deque[dict[str, Any]] = deque(maxlen=queue)
        streams = ("depth", "pose", "detections") + (("mask",) if self.mode == "mask" else ())
        self.buffer = StampBuffer(streams, queue)
        self.create_service(srv.GetStats, "~/get_stats", self._stats)
        if self.params["autostart"]:
            self.trigger_configure()
            self.trigger_activate()

    @property
    def map_frame(self) -> str:
        return self.params["map_frame"]

    @property
    def robot_id(self) -> str:
        return self.params["robot_id"]

    @property
    def pose_is_optical(self) -> bool:
        return bool(self.params["pose_is_optical"])

    def _new_perception(self) -> None:
        counters = self.perception.counters if self.perception is not None else None
        self.perception = Perception(PerceptionParams(min_pixels=int(self.params["min_pixels"]),
                                                      max_range_m=float(self.params["max_range_m"])))
        if counters is not None:
            self.perception.counters.update(counters)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._new_perception()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        get = self.params
        qos = keep_last(max(int(get["sync_queue"]), 5), reliable=not get["best_effort_inputs"])
        self._inputs = [
            self.create_subscription(Image, get["depth_topic"], lambda m: self._on("depth", m), qos),
            self.create_subscription(PoseStamped, get["pose_topic"], lambda m: self._on("pose", m), qos),
            self.create_subscription(rmsg.Detection2DArray, get["detections_topic"],
                                     lambda m: self._on("detections", m), qos),
            self.create_subscription(CameraInfo, get["camera_info_topic"], self._on_info, qos),
        ]
        if self.mode == "mask":
            self._inputs.append(self.create_subscription(Image, get["mask_topic"], lambda m: self._on("mask", m), qos))
        self.publisher = self.create_publisher(rmsg.ObservationBatch, get["observations_topic"], observation_qos(10))
        self.get_logger().info(f"perception node active: mode={self.mode}, map_frame={self.map_frame}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        if self.publisher is not None:
            self.destroy_publisher(self.publisher)
            self.publisher = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.camera_info = None
        self.perception = None
        return TransitionCallbackReturn.SUCCESS

    def _on_info(self, message: CameraInfo) -> None:
        first = self.camera_info is None
        self.camera_info = message
        if first:  # frames that were complete before the first CameraInfo arrived (topics are not ordered)
            while self._waiting_for_info:
                self._process(self._waiting_for_info.popleft())

    def _on(self, stream: str, message: Any) -> None:
        self.counters[f"received.{stream}"] += 1
        complete = self.buffer.add(stream, message.header.stamp, message)
        self.counters["sync.dropped"] = self.buffer.dropped
        if complete is None:
            return
        if self.camera_info is None:
            if len(self._waiting_for_info) == self._waiting_for_info.maxlen:
                self.counters["rejected.no_camera_info"] += 1  # the oldest waiting frame falls out
            self._waiting_for_info.append(complete)
            return
        self._process(complete)

    def _process(self, complete: dict[str, Any]) -> None:
        if self.perception is None or self.publisher is None:
            return
        try:
            frame = self.frame_from_msgs(complete, self.camera_info)
        except RejectedInput as error:
            self.counters[f"rejected.{error.reason}"] += 1
            self.get_logger().warning(f"rejected frame ({error.reason}): {error.detail}")
            return
        try:
            batch = self.perception.observe(frame)  # counts its own rejections
            # in the camera pose's frame (z up: map, odom, base_link); the memory node moves it into map with /tf
            frame_id = complete["pose"].header.frame_id.lstrip("/") or self.map_frame
            message = convert.batch_to_msg(batch, frame_id, self._sequence + 1)
        except RejectedInput as error:
            self.get_logger().warning(f"rejected frame ({error.reason}): {error.detail}")
            return
        except Exception as error:  # never die on one frame
            self.counters["internal_errors"] += 1
            self.get_logger().error(f"frame failed: {error!r}")
            return
        self.publisher.publish(message)
        self._sequence += 1
        self.counters["published"] += 1

    def frame_from_msgs(self, parts: dict[str, Any], info: CameraInfo) -> Frame:
        """The pure-perception Frame of one synchronised set of messages (RejectedInput if unusable)."""
        depth_msg: Image = parts["depth"]
        pose_msg: PoseStamped = parts["pose"]
        p, q = pose_msg.pose.position, pose_msg.pose.orientation
        to_pose = make_camera_pose if self.pose_is_optical else optical_from_body
        pose = to_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        intrinsics = intrinsics_from_msg(info)
        depth = image_to_array(depth_msg, DEPTH_TYPES)
        t = convert.time_from_msg(depth_msg.header.stamp)
        detections = parts["detections"].detections
        if self.mode == "boxes":
            boxes = [BoxDetection(d.label, d.score, d.x0, d.y0, d.x1, d.y1, convert.state_from_msgs(d.state))
                     for d in detections]
            return Frame(t, self.robot_id, depth, intrinsics, pose, boxes=boxes)
        mask = image_to_array(parts["mask"], MASK_TYPES)
        labels = {int(d.instance_id): d.label for d in detections if d.instance_id >= 0}
        scores = {int(d.instance_id): float(d.score) for d in detections if d.instance_id >= 0}
        states = {int(d.instance_id): convert.state_from_msgs(d.state) for d in detections
                  if d.instance_id >= 0 and len(d.state)}
        return Frame(t, self.robot_id, depth, intrinsics, pose, mask=mask.astype(np.int64), labels=labels,
                     scores=scores, states=states)

    def _stats(self, request: srv.GetStats.Request, response: srv.GetStats.Response) -> srv.GetStats.Response:
        counters = Counter(self.perception.counters if self.perception else {}) + self.counters
        response.counters = [rmsg.MemoryCounter(name=k, value=int(v)) for k, v in sorted(counters.items()) if v >= 0]
        return response


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run robomem perception_node`` or ``python -m robomem.ros.perception_node``)."""
    return run_node(PerceptionNode, args)


if __name__ == "__main__":
    sys.exit(main())
