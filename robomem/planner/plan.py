"""Plans of skills over objects memory knows, and their validation before execution."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robomem.planner.tools import MemoryTools, ObjectRecord

SKILLS = ("navigate_to", "open", "close", "pick", "place", "toggle_on", "toggle_off")
OPENABLE = frozenset({"Fridge", "Cabinet", "Drawer", "Microwave", "Safe", "Box", "Laptop", "Toilet",
                      "ShowerDoor", "Kettle"})
RECEPTACLE_OPENABLE = frozenset({"Fridge", "Cabinet", "Drawer", "Microwave", "Safe", "Box"})
VALID_TOL_M = 0.5  # a step's object must be where memory has it, within this (or its size)


@dataclass(frozen=True)
class Step:
    """One skill call on an object memory knows (``target`` is memory's record of it)."""

    skill: str
    target: ObjectRecord

    def __str__(self) -> str:
        c = self.target.center
        return f"{self.skill}({self.target.label}@{c[0]:.2f},{c[1]:.2f})"


@dataclass
class Plan:
    """Steps for one subgoal."""

    steps: list[Step] = field(default_factory=list)

    def add(self, skill: str, target: ObjectRecord) -> None:
        self.steps.append(Step(skill, target))

    def __str__(self) -> str:
        return " -> ".join(str(s) for s in self.steps)


class InvalidPlan(ValueError):
    """A plan failed validation (``errors`` say why)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def is_open(record: ObjectRecord) -> bool | None:
    """What memory believes about an openable's state (None: never seen open or closed)."""
    for key in ("isOpen", "open"):
        if key in record.state:
            return bool(record.state[key])
    return None


def validate(plan: Plan, tools: MemoryTools, holding: str | None = None) -> list[str]:
    """Errors of a plan (empty if valid): unknown skills, objects memory does not know (or not there),
    picks with a full hand, places with an empty one."""
    errors: list[str] = []
    hand = holding
    for k, step in enumerate(plan.steps):
        if step.skill not in SKILLS:
            errors.append(f"step {k}: unknown skill {step.skill!r}")
            continue
        rec = step.target
        if not (hand is not None and step.skill == "navigate_to" and rec.label == hand):
            known = tools.where_is(rec.label, near=rec.center)
            tol = max(VALID_TOL_M, float(max(rec.size)))
            if known is None:
                errors.append(f"step {k}: {rec.label} is unknown to memory")
            elif float(np.linalg.norm(np.subtract(known.center, rec.center))) > tol:
                errors.append(f"step {k}: memory has no {rec.label} at {tuple(round(v, 2) for v in rec.center)}")
        if step.skill == "pick":
            if hand is not None:
                errors.append(f"step {k}: pick {rec.label} with a full hand")
            hand = rec.label
        elif step.skill == "place":
            if hand is None:
                errors.append(f"step {k}: place on {rec.label} with an empty hand")
            hand = None
        elif step.skill in ("open", "close") and rec.label not in OPENABLE:
            errors.append(f"step {k}: {rec.label} cannot be opened or closed")
    return errors


def check(plan: Plan, tools: MemoryTools, holding: str | None = None) -> Plan:
    """The plan if valid, else :class:`InvalidPlan`."""
    errors = validate(plan, tools, holding)
    if errors:
        raise InvalidPlan(errors)
    return plan
