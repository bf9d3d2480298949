"""What a robot skill answers the planner: success, or a typed :class:`Failure`.

A failure is a :class:`FailureKind` with the object and receptacle it concerns as fields; the planner
decides on the kind and the fields (never on words), and :attr:`Failure.text` is the human-readable
reason for logs, plan texts and the action result. The kinds' values are the ``FAILURE_*`` constants of
``robomem/srv/ExecuteSkill`` (``msg/srv/ExecuteSkill.srv``), which carries them over ROS.

Field conventions: ``obj`` is the object the skill handled (the held object for ``place``; the target
for navigate_to, open, close, toggle); ``receptacle`` is the receptacle involved: the one a ``place``
was aimed at, or the closed one an object is inside (``INSIDE_CLOSED``). Both are labels as memory
names them ("Fridge"), "" when none.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class FailureKind(IntEnum):
    """Why a skill failed. Values are fixed: they travel over ROS as ``uint8``."""

    NONE = 0  # not a failure (the skill succeeded)
    NOT_FOUND = 1  # the skill's target (a place's receptacle) is not at the believed position: not grounded
    INSIDE_CLOSED = 2  # pick: the object is inside a closed receptacle (``receptacle``: its label)
    NO_FREE_SPOT = 3  # place: no room on or in the receptacle
    UNREACHABLE = 4  # out of reach (or no free cell near the goal point)
    NO_PATH = 5  # no path to a cell from which the target is in reach
    RECEPTACLE_CLOSED = 6  # place: into a closed receptacle
    HAND_FULL = 7  # pick while holding something
    HAND_EMPTY = 8  # place with nothing held
    NOT_VISIBLE = 9  # pick: the camera does not see the object
    NOT_PICKUPABLE = 10
    NOT_RECEPTACLE = 11  # place: on something that is not a receptacle
    RECEPTACLE_HELD = 12  # place: on the thing being held
    NOT_OPENABLE = 13
    OBJECT_HELD = 14  # open/close: the object is in the hand
    NOT_TOGGLEABLE = 15
    UNKNOWN_OBJECT = 16  # the robot does not know the object it was given
    UNKNOWN_RECEPTACLE = 17  # place: the robot does not know the receptacle it was given
    ALREADY = 18  # open/close/toggle: already in that state (``detail``: open | closed | on | off)
    REJECTED = 19  # the skill server refused the request (``detail``: why, e.g. unknown_skill)
    ERROR = 20  # the robot raised while running the skill (``detail``: the error)


_TEXT = {
    FailureKind.NOT_FOUND: "not found at believed position",
    FailureKind.INSIDE_CLOSED: "inside closed {receptacle}",
    FailureKind.NO_FREE_SPOT: "no free spot",
    FailureKind.UNREACHABLE: "not reachable",
    FailureKind.NO_PATH: "no path",
    FailureKind.RECEPTACLE_CLOSED: "receptacle closed",
    FailureKind.HAND_FULL: "hand full",
    FailureKind.HAND_EMPTY: "hand empty",
    FailureKind.NOT_VISIBLE: "not visible",
    FailureKind.NOT_PICKUPABLE: "not pickupable",
    FailureKind.NOT_RECEPTACLE: "not a receptacle",
    FailureKind.RECEPTACLE_HELD: "receptacle is held",
    FailureKind.NOT_OPENABLE: "not openable",
    FailureKind.OBJECT_HELD: "object is held",
    FailureKind.NOT_TOGGLEABLE: "not toggleable",
    FailureKind.UNKNOWN_OBJECT: "unknown object",
    FailureKind.UNKNOWN_RECEPTACLE: "unknown receptacle",
    FailureKind.ALREADY: "already {detail}",
    FailureKind.REJECTED: "rejected: {detail}",
    FailureKind.ERROR: "error: {detail}",
}


@dataclass(frozen=True)
class Failure:
    """A failed skill: its kind, the object and receptacle concerned, and a detail for the kinds whose
    text needs one (ALREADY, REJECTED, ERROR)."""

    kind: FailureKind
    obj: str = ""
    receptacle: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FailureKind) or self.kind is FailureKind.NONE:
            raise ValueError(f"not a failure kind: {self.kind!r}")

    @property
    def text(self) -> str:
        """The human-readable reason, e.g. "inside closed Fridge"."""
        return _TEXT[self.kind].format(obj=self.obj, receptacle=self.receptacle, detail=self.detail)


@dataclass(frozen=True)
class StepResult:
    """The outcome of one skill: ``failure`` is None exactly when it succeeded."""

    success: bool
    failure: Failure | None = None

    def __post_init__(self) -> None:
        if self.failure is not None and not isinstance(self.failure, Failure):
            raise TypeError(f"failure must be a Failure, not {type(self.failure).__name__}")
        if self.success != (self.failure is None):
            raise ValueError("a step succeeds exactly when it has no failure")

    @classmethod
    def ok(cls) -> StepResult:
        return cls(True)

    @classmethod
    def failed(cls, kind: FailureKind, obj: str = "", receptacle: str = "", detail: str = "") -> StepResult:
        return cls(False, Failure(kind, obj, receptacle, detail))

    @property
    def kind(self) -> FailureKind:
        return FailureKind.NONE if self.failure is None else self.failure.kind

    @property
    def reason(self) -> str:
        """Why it failed, in words ("" on success): for logs, plan texts and feedback, not for decisions."""
        return "" if self.failure is None else self.failure.text
