"""Parameters declared the ROS way: a description, a range for numbers, read-only where a change could
not take effect while the node runs; the others are applied when set (``ros2 param set``).

:class:`Parameters` declares them from a table of :class:`Spec` and keeps the current values in
``values``; a node registers ``on_change`` callbacks to apply a change, and a value outside its range
or a change to a read-only one is refused with the reason (rclpy checks ranges and read-only itself;
the callbacks add checks rclpy cannot express, e.g. an empty frame name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Spec:
    """One parameter: name, default, description; ``low``/``high`` for numbers; ``read_only``: fixed
    once the node has started (a file opened, a subscription's depth); ``check`` refuses a value
    (returns the reason) before it is applied."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False
    check: Callable[[Any], str | None] | None = None


def not_empty(value: Any) -> str | None:
    return "must not be empty" if isinstance(value, str) and not value.strip() else None


def descriptor(spec: Spec) -> ParameterDescriptor:
    out = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if isinstance(spec.default, bool) or spec.low is None:
        return out
    if isinstance(spec.default, int):
        out.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
    elif isinstance(spec.default, float):
        out.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high))]
    return out


class Parameters:
    """The declared parameters of one node; ``values[name]`` is always the value in effect."""

    def __init__(self, node: Node, specs: Iterable[Spec]) -> None:
        self.node = node
        self.specs = {spec.name: spec for spec in specs}
        self.values: dict[str, Any] = {}
        self._on_change: list[tuple[frozenset[str], Callable[[], None]]] = []
        for spec in self.specs.values():
            default = spec.default
            if isinstance(default, list) and not default:
                value = node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor(spec)).value
                value = value or []
            else:
                value = node.declare_parameter(spec.name, default, descriptor(spec)).value
            reason = spec.check(value) if spec.check else None
            if reason:
                raise ValueError(f"parameter {spec.name}: {reason}")
            self.values[spec.name] = list(value) if isinstance(value, (list, tuple)) else value
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._apply)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def on_change(self, names: Iterable[str], apply: Callable[[], None]) -> None:
        """Call ``apply()`` after any of ``names`` was set (``values`` already holds the new values)."""
        self._on_change.append((frozenset(names), apply))

    def _validate(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            spec = self.specs.get(parameter.name)
            if spec is None:
                continue  # use_sim_time and other parameters rclpy owns
            if spec.read_only:
                return SetParametersResult(successful=False, reason=f"{spec.name} is read-only (set at start)")
            reason = spec.check(parameter.value) if spec.check else None
            if reason:
                return SetParametersResult(successful=False, reason=f"{spec.name} {reason}")
        return SetParametersResult(successful=True)

    def _apply(self, parameters: list[Parameter]) -> None:
        changed = set()
        for parameter in parameters:
            if parameter.name in self.specs:
                value = parameter.value
                self.values[parameter.name] = list(value) if isinstance(value, (list, tuple)) else value
                changed.add(parameter.name)
        for names, apply in self._on_change:
            if names & changed:
                apply()
