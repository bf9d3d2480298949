"""URDF files of the articulated receptacles, written at run time.

* A drawer: a fixed, invisible base at the closed drawer's box center and an open-top
  tray on a prismatic joint sliding along the front axis.
* A hinged receptacle (cabinet, fridge, microwave, safe): a carcass open at the front
  (the base) and a door panel on a revolute joint at the front's left edge (seen from the
  front); a positive angle swings the door outwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomem_sim.shapes import WALL_M, Panel, carcass, tray

DOOR_OPEN_RAD = math.pi / 2  # door angle at openness 1
DRAWER_TRAVEL_FRAC = 0.8  # drawer travel at openness 1, as a part of its depth


@dataclass(frozen=True)
class Joint:
    """The movable part of an articulated receptacle."""

    kind: str  # "prismatic" (drawer) or "revolute" (door)
    upper: float  # joint position at openness 1 (m or rad)
    front: np.ndarray  # map-frame unit vector the front faces


def _fmt(vec: np.ndarray | list[float]) -> str:
    return " ".join(f"{float(v):.5f}" for v in vec)


def _visuals(panels: list[Panel], rgba: tuple[float, ...], name: str) -> str:
    out = []
    for i, (offset, half) in enumerate(panels):
        out.append(
            f'<visual><origin xyz="{_fmt(offset)}"/><geometry><box size="{_fmt(2 * half)}"/></geometry>'
            f'<material name="{name}{i}"><color rgba="{_fmt(rgba)}"/></material></visual>'
        )
    return "".join(out)


def _link(name: str, mass: float, visuals: str = "") -> str:
    inertial = (
        f'<inertial><mass value="{mass}"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/>'
        "</inertial>"
    )
    return f'<link name="{name}">{inertial}{visuals}</link>'


def _joint(kind: str, origin: np.ndarray, axis: np.ndarray, upper: float) -> str:
    return (
        f'<joint name="open" type="{kind}"><parent link="base"/><child link="part"/>'
        f'<origin xyz="{_fmt(origin)}"/><axis xyz="{_fmt(axis)}"/>'
        f'<limit lower="0" upper="{upper:.5f}" effort="200" velocity="1.0"/></joint>'
    )


def _write(path: Path, body: str) -> Path:
    path.write_text(f'<?xml version="1.0"?><robot name="{path.stem}">{body}</robot>', encoding="utf-8")
    return path


def write_drawer(path: Path, size: np.ndarray, front: np.ndarray, rgba: tuple[float, ...]) -> Joint:
    """A drawer URDF at ``path``: tray of ``size`` sliding along ``front``."""
    depth = float(np.abs(front) @ size)
    upper = DRAWER_TRAVEL_FRAC * depth
    body = (_link("base", 0.0) + _link("part", 1.0, _visuals(tray(size), rgba, "drawer"))
            + _joint("prismatic", np.zeros(3), front, upper))
    _write(path, body)
    return Joint("prismatic", upper, front)


def door_hinge(size: np.ndarray, front: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(hinge point relative to the box center, door direction from the hinge, door width)."""
    right = np.cross([0.0, 0.0, 1.0], front)  # right of a viewer facing the front
    depth = float(np.abs(front) @ size)
    width = float(np.abs(right) @ size)
    return front * depth / 2 - right * width / 2, right, width


def write_door(
    path: Path, size: np.ndarray, front: np.ndarray, body_rgba: tuple[float, ...], door_rgba: tuple[float, ...]
) -> Joint:
    """A hinged receptacle URDF at ``path``: carcass of ``size`` and a door on its ``front``."""
    size = np.asarray(size, dtype=float)
    hinge, right, width = door_hinge(size, front)
    t = min(WALL_M, 0.2 * float(np.min(size)))
    half = np.abs(right) * width / 2 + np.abs(front) * t / 2 + np.array([0.0, 0.0, size[2] / 2])
    door: Panel = (right * width / 2 + front * t / 2, half)
    body = (_link("base", 0.0, _visuals(carcass(size, front), body_rgba, "carcass"))
            + _link("part", 1.0, _visuals([door], door_rgba, "door"))
            + _joint("revolute", hinge, np.array([0.0, 0.0, -1.0]), DOOR_OPEN_RAD))
    _write(path, body)
    return Joint("revolute", DOOR_OPEN_RAD, front)
