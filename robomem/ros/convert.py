"""Conversions between the memory core's plain types and robomem's ROS 2 messages.

Incoming messages are validated here with the core's own validators: whatever cannot be trusted
comes back as :class:`RejectedInput` (reason = counter key) instead of reaching memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3

from robomem import msg as rmsg
from robomem.core.experience import TaskEpisode
from robomem.core.types import (
    Change,
    ChangeEvent,
    Detection,
    ObjectInfo,
    ObservationBatch,
    RejectedInput,
    ViewCone,
    checked_label,
    make_detection,
    make_view,
)
from robomem.planner.results import FailureKind, StepResult

MAX_TIME_S = 2.0**31 - 1  # builtin_interfaces/Time holds int32 seconds


# ---------------------------------------------------------------------- time and geometry
def time_to_msg(t: float | None) -> Time:
    """Seconds as builtin_interfaces/Time (None, -inf or NaN give zero)."""
    if t is None or not math.isfinite(t):
        return Time()
    t = min(max(float(t), -MAX_TIME_S), MAX_TIME_S)
    sec = math.floor(t)
    nanosec = min(int(round((t - sec) * 1e9)), 999_999_999)
    return Time(sec=int(sec), nanosec=nanosec)


def time_from_msg(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def point_to_msg(values: Sequence[float] | np.ndarray) -> Point:
    return Point(x=float(values[0]), y=float(values[1]), z=float(values[2]))


def vector_to_msg(values: Sequence[float] | np.ndarray) -> Vector3:
    return Vector3(x=float(values[0]), y=float(values[1]), z=float(values[2]))


def xyz(message: Point | Vector3) -> np.ndarray:
    return np.array([message.x, message.y, message.z], dtype=float)


def finite_point(message: Point, name: str) -> np.ndarray:
    """A point from a request, or RejectedInput('non_finite') if any coordinate is NaN/inf."""
    values = xyz(message)
    if not np.all(np.isfinite(values)):
        raise RejectedInput("non_finite", f"{name} has NaN/inf: {values.tolist()}")
    return values


# ---------------------------------------------------------------------- state values
def state_value_to_msg(key: str, value: Any) -> rmsg.StateValue:
    """One key/value as a typed StateValue (bool, number, or text for anything else)."""
    out = rmsg.StateValue(key=str(key))
    if isinstance(value, bool):
        out.type, out.bool_value = rmsg.StateValue.TYPE_BOOL, value
    elif isinstance(value, (int, float, np.integer, np.floating)):
        out.type, out.number_value = rmsg.StateValue.TYPE_NUMBER, float(value)
    else:
        out.type, out.text_value = rmsg.StateValue.TYPE_TEXT, "" if value is None else str(value)
    return out


def state_to_msgs(state: Mapping[str, Any]) -> list[rmsg.StateValue]:
    return [state_value_to_msg(key, value) for key, value in state.items()]


def state_value_from_msg(message: rmsg.StateValue) -> Any:
    if message.type == rmsg.StateValue.TYPE_BOOL:
        return bool(message.bool_value)
    if message.type == rmsg.StateValue.TYPE_NUMBER:
        return float(message.number_value)
    if message.type == rmsg.StateValue.TYPE_TEXT:
        return message.text_value
    raise RejectedInput("malformed", f"state {message.key!r} has unknown type {message.type}")


def state_from_msgs(messages: Iterable[rmsg.StateValue]) -> dict[str, Any]:
    return {m.key: state_value_from_msg(m) for m in messages}


# ---------------------------------------------------------------------- observations
def detection_to_msg(detection: Detection) -> rmsg.ObjectObservation:
    out = rmsg.ObjectObservation(
        label=detection.label,
        center=point_to_msg(detection.center),
        size=vector_to_msg(detection.size),
        confidence=float(detection.confidence),
        state=state_to_msgs(detection.state),
    )
    if detection.embedding is not None:
        out.embedding = [float(v) for v in detection.embedding]
    return out


def view_to_msg(view: ViewCone) -> rmsg.ViewCone:
    return rmsg.ViewCone(
        position=point_to_msg(view.position), yaw_deg=float(view.yaw_deg), fov_deg=float(view.fov_deg),
        range_m=float(view.range_m),
    )


def batch_to_msg(batch: ObservationBatch, frame_id: str = "map", sequence: int = 0) -> rmsg.ObservationBatch:
    """A core ObservationBatch as the message the memory node subscribes to (``sequence``: the
    publisher's per-robot batch counter from 1, so the node can count lost batches; 0 = none)."""
    out = rmsg.ObservationBatch(robot_id=batch.robot, sequence=sequence,
                                observations=[detection_to_msg(d) for d in batch.detections])
    out.header.stamp = time_to_msg(batch.t)
    out.header.frame_id = frame_id
    if batch.view is not None:
        out.has_view = True
        out.view = view_to_msg(batch.view)
    return out


def detection_from_msg(message: rmsg.ObjectObservation) -> Detection:
    embedding = np.asarray(message.embedding, dtype=np.float32) if len(message.embedding) else None
    return make_detection(
        message.label, xyz(message.center), xyz(message.size), message.confidence,
        state_from_msgs(message.state), embedding,
    )


def batch_from_msg(
    message: rmsg.ObservationBatch, map_frame: str, max_observations: int
) -> tuple[ObservationBatch, list[RejectedInput]]:
    """Validate a batch message. Raises RejectedInput for a batch that cannot be used at all (wrong
    frame, oversized, bad view); single bad observations are left out and returned (and the view
    dropped with them)."""
    if message.header.frame_id != map_frame:
        raise RejectedInput("unknown_frame", f"frame {message.header.frame_id!r}, expected {map_frame!r}")
    if len(message.observations) > max_observations:
        raise RejectedInput("oversized", f"{len(message.observations)} observations > {max_observations}")
    robot = checked_label(message.robot_id, "robot_id")
    view = None
    if message.has_view:
        v = message.view
        view = make_view(xyz(v.position), v.yaw_deg, v.fov_deg, v.range_m)
    detections: list[Detection] = []
    rejected: list[RejectedInput] = []
    for observation in message.observations:
        try:
            detections.append(detection_from_msg(observation))
        except RejectedInput as error:
            rejected.append(error)
    if rejected:  # the dropped objects were seen, not missed: this frame gives no negative evidence
        view = None
    batch = ObservationBatch(time_from_msg(message.header.stamp), robot, detections, view)
    return batch, rejected


# ---------------------------------------------------------------------- answers
def info_to_msg(info: ObjectInfo, robot_id: str = "") -> rmsg.ObjectInfo:
    """``robot_id``: the robot that saw the object last (memory's track, not part of ObjectInfo)."""
    return rmsg.ObjectInfo(
        track_id=int(info.track_id),
        label=info.label,
        center=point_to_msg(info.center),
        size=vector_to_msg(info.size),
        status=info.status,
        last_seen=time_to_msg(info.last_seen),
        receptacle=info.receptacle or "",
        receptacle_id=-1 if info.receptacle_id is None else int(info.receptacle_id),
        relation=info.relation or "",
        room=info.room,
        state=state_to_msgs(info.state),
        robot_id=robot_id,
    )


def _detail_to_msgs(detail: Mapping[str, Any]) -> list[rmsg.StateValue]:
    return [state_value_to_msg(key, value) for key, value in detail.items() if value is not None]


def event_to_msg(event: ChangeEvent) -> rmsg.MemoryEvent:
    detail = dict(event.detail)
    at = detail.pop("at", None)
    out = rmsg.MemoryEvent(
        stamp=time_to_msg(event.t), event_id=int(event.event_id), track_id=int(event.track_id),
        label=event.label, change=event.change, detail=_detail_to_msgs(detail),
    )
    if at is not None:
        out.has_position, out.position = True, point_to_msg(at)
    return out


def change_to_msg(change: Change) -> rmsg.MemoryEvent:
    return rmsg.MemoryEvent(
        event_id=-1, track_id=int(change.track_id), label=change.label, change=change.change,
        detail=_detail_to_msgs(change.detail),
    )


# ---------------------------------------------------------------------- experience
def episode_to_msg(episode: TaskEpisode) -> rmsg.TaskEpisode:
    return rmsg.TaskEpisode(
        episode_id=int(episode.episode_id), robot_id=episode.robot_id, instruction=episode.instruction,
        plan=list(episode.plan), success=bool(episode.success), failure_reason=episode.failure_reason,
        objects=list(episode.objects), started=time_to_msg(episode.started), finished=time_to_msg(episode.finished),
    )


def episode_from_msg(message: rmsg.TaskEpisode) -> TaskEpisode:
    """The message as a core TaskEpisode (validated by the core when recorded)."""
    return TaskEpisode(
        robot_id=message.robot_id, instruction=message.instruction, plan=list(message.plan),
        success=bool(message.success), failure_reason=message.failure_reason, objects=list(message.objects),
        started=time_from_msg(message.started), finished=time_from_msg(message.finished),
    )


# ---------------------------------------------------------------------- skill results
def step_result_to_response(result: StepResult, response: Any) -> Any:
    """Sets the response's success, reason and typed failure fields (kind, object, receptacle, detail):
    an ExecuteSkill service response or action result (the same fields)."""
    failure = result.failure
    response.success = failure is None
    response.reason = result.reason
    response.failure_kind = int(result.kind)
    response.failure_object = failure.obj if failure else ""
    response.failure_receptacle = failure.receptacle if failure else ""
    response.failure_detail = failure.detail if failure else ""
    return response


def step_result_from_response(response: Any) -> StepResult:
    """The typed result of an ExecuteSkill answer. A failure without a kind this planner knows (a robot
    that does not fill ``failure_kind``, or a newer one) is an ERROR with the robot's reason as detail."""
    if response.success:
        return StepResult.ok()
    try:
        kind = FailureKind(response.failure_kind)
    except ValueError:
        kind = FailureKind.NONE
    if kind is FailureKind.NONE:
        return StepResult.failed(FailureKind.ERROR, detail=response.reason)
    return StepResult.failed(kind, response.failure_object, response.failure_receptacle, response.failure_detail)
