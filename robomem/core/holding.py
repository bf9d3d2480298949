"""Objects a robot holds: what its pick and place skills report, kept as facts until the camera says
otherwise.

A pick makes the track's holder ``["robot:<id>", "held"]`` (a parent fact like any other, so where_was,
what_changed and a reopened memory see it); while held, the track is exempt from negative evidence
(it is no longer where it was, and that is no sign it is gone) and from geometric re-derivation of its
holder. A place gives the track a new placement at the reported center with the reported receptacle as
holder; from then on the camera confirms it (ordinary association) or contradicts it (ordinary negative
evidence: misses there make it missing, then gone).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.core.config import MemoryConfig
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.temporal import StampPolicy
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, GONE, PARENT, TENTATIVE, Track
from robomem.core.types import RejectedInput, checked_label, checked_point, checked_time

HELD = "held"  # the relation of a held object to the robot holding it
ROBOT_PREFIX = "robot:"  # a holder that is a robot, not a track: "robot:r1"
_PICKABLE = (CONFIRMED, TENTATIVE, GONE)  # a robot may pick what memory thought gone: it is there after all


def holding_robot(parent: Any) -> str | None:
    """The robot id of a parent value ``["robot:<id>", "held"]``, else None."""
    if isinstance(parent, (list, tuple)) and len(parent) == 2 and isinstance(parent[0], str) \
            and parent[0].startswith(ROBOT_PREFIX) and parent[1] == HELD:
        return parent[0][len(ROBOT_PREFIX):]
    return None


def held_by(track: Track) -> str | None:
    """The robot holding the track now, or None."""
    if PARENT not in track.histories:
        return None
    return holding_robot(track.history(PARENT).value_now())


@dataclass(eq=False)
class Holding:
    """Applies pick and place reports to tracks, as facts and change events."""

    config: MemoryConfig
    tracks: TrackStore
    lifecycle: Lifecycle
    journal: Journal
    stamps: StampPolicy
    counters: Counter[str]

    def pick(self, track_ref: Any, robot: Any, t: Any, position: Any = None) -> Track:
        """``robot`` picked the object (a track id, or a label: its most likely instance, nearest
        ``position`` if given): held by the robot from ``t``, at ``position`` (the gripper) if given."""
        try:
            robot = checked_label(robot, "robot")
            t = self._time(t)
            point = None if position is None else self._point(position, "robot position")
            track = self._track(track_ref, point)
            if track.status not in _PICKABLE:
                raise RejectedInput("unknown_track", f"track {track.track_id} is {track.status}, not an object")
        except RejectedInput as error:
            self._refuse(t, error)
            raise
        self._advance(t)
        life = self.lifecycle
        if track.status != CONFIRMED:
            life.set_status(track, CONFIRMED, t)
        if point is not None:
            life.place(track, point, track.size, t)
        self.journal.record_fact(track, PARENT, [ROBOT_PREFIX + robot, HELD], t)
        self._settle(track)
        life.emit(t, track, "picked_up", {"robot": robot})
        self.counters["picked"] += 1
        return track

    def place(self, track_ref: Any, center: Any, receptacle: Any, t: Any, bottom: bool = False) -> Track:
        """The object was put at ``center`` in/on ``receptacle`` (a track id or a label: the instance
        nearest ``center``; None: on whatever geometry says) at ``t``: a new placement there.
        ``bottom``: ``center`` is where the object's bottom rests (a skill that knows only the surface)."""
        try:
            t = self._time(t)
            point = self._point(center, "placed center")
            track = self._held_instance(track_ref) or self._track(track_ref, point)
            holder = None if receptacle is None else self._receptacle(receptacle, point, track)
        except RejectedInput as error:
            self._refuse(t, error)
            raise
        self._advance(t)
        life = self.lifecycle
        robot = held_by(track)
        if robot is None:
            self.counters["placed_not_held"] += 1
        if track.status != CONFIRMED:
            life.set_status(track, CONFIRMED, t)
        if bottom:
            point = point + np.array([0.0, 0.0, float(track.size[2]) / 2.0])
        life.place(track, point, track.size, t)
        if holder is None:
            self.journal.close_fact(track, PARENT, t)  # the next frame's relations say what holds it
        else:
            relation = "in" if self.config.is_container(holder.label) else "on"
            self.journal.record_fact(track, PARENT, [holder.track_id, relation], t)
        self._settle(track)
        life.emit(t, track, "placed", {"robot": robot or "", "receptacle": None if holder is None else holder.label,
                                       "receptacle_id": None if holder is None else holder.track_id})
        self.counters["placed"] += 1
        return track

    # ------------------------------------------------------------------ helpers
    def _settle(self, track: Track) -> None:
        """Fresh knowledge of where the track is: earlier misses no longer count against it."""
        track.misses_since_hit = 0
        track.miss_evidence = 0.0
        self.tracks.mark_missing(track, False)
        self.tracks.note_latest(track)
        self.lifecycle.reindex(track)

    def _time(self, t: Any) -> float:
        t = checked_time(t, "skill time")
        refusal = self.stamps.check(t, self.journal.now)
        if refusal is not None:
            raise RejectedInput(*refusal)
        return t

    def _advance(self, t: float) -> None:
        """Memory's clock moves to the report (facts never start before the clock)."""
        now = self.journal.now
        self.journal.now = t if not math.isfinite(now) else max(now, t)

    def _point(self, value: Any, name: str) -> np.ndarray:
        point = checked_point(value, name)
        if float(np.max(np.abs(point))) > self.config.map_extent_m:
            raise RejectedInput("out_of_bounds", f"{name} {point.tolist()} is outside the map")
        return point

    def _track(self, ref: Any, near: np.ndarray | None) -> Track:
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            track = self.tracks.get(int(ref))
            if track is None:
                raise RejectedInput("unknown_track", f"no track {int(ref)}")
            return track
        label = checked_label(ref, "object")
        track = self.tracks.best_confirmed(label) if near is None else self.tracks.nearest_confirmed(label, near)
        if track is None:
            raise RejectedInput("unknown_track", f"memory believes in no {label!r}")
        return track

    def _held_instance(self, ref: Any) -> Track | None:
        """For a label: the instance of it a robot holds (the one a place report is about), if any."""
        if not isinstance(ref, str):
            return None
        held = [t for t in self.tracks.of_label(checked_label(ref, "object")) if held_by(t) is not None]
        return max(held, key=lambda t: t.history(PARENT).current.valid_from, default=None)

    def _receptacle(self, ref: Any, near: np.ndarray, track: Track) -> Track:
        try:
            holder = self._track(ref, near)
        except RejectedInput as error:
            raise RejectedInput("unknown_receptacle", error.detail) from None
        if holder.track_id == track.track_id or holder.status != CONFIRMED:
            raise RejectedInput("unknown_receptacle", f"track {holder.track_id} cannot hold track {track.track_id}")
        return holder

    def _refuse(self, t: Any, error: RejectedInput) -> None:
        stamp = t if isinstance(t, (int, float)) and math.isfinite(t) else 0.0
        self.journal.reject(stamp, error.reason, error.detail)
