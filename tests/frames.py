"""Tiny builders for observation frames used across the tests."""

from __future__ import annotations

from robomem.core.types import ObservationBatch, make_detection, make_view

SIZES = {
    "Mug": (0.1, 0.1, 0.1),
    "Apple": (0.08, 0.08, 0.08),
    "Book": (0.2, 0.15, 0.04),
    "CounterTop": (2.0, 0.6, 0.9),
    "Fridge": (0.8, 0.8, 1.8),
    "Chair": (0.5, 0.5, 0.9),
    "Cup": (0.08, 0.08, 0.1),
}


def det(label: str, x: float, y: float, z: float = 1.0, confidence: float = 0.9, **state):
    return make_detection(label, (x, y, z), SIZES.get(label, (0.1, 0.1, 0.1)), confidence, state or None)


def looking(x: float, y: float, yaw: float = 0.0, fov: float = 90.0, rng: float = 5.0):
    """A camera at (x, y, 1.5) looking along yaw (degrees, REP-103)."""
    return make_view((x, y, 1.5), yaw, fov, rng)


def frame(t: float, view, *detections, robot: str = "r1") -> ObservationBatch:
    return ObservationBatch(t, robot, list(detections), view)


def kitchen_frames():
    """Counter with a mug, an open fridge with an apple; later the mug moves to the table, the apple is
    taken out of sight and the fridge is closed."""
    early = [
        frame(t, looking(0.0, 0.0), det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 2.0, 0.1, 0.95),
              det("Fridge", 2.5, 1.5, 0.9, isOpen=True), det("Apple", 2.5, 1.5, 1.0), det("Book", 1.5, -1.0, 0.5))
        for t in (1.0, 2.0, 3.0, 4.0)
    ]
    late = [
        frame(t, looking(0.0, 0.0), det("CounterTop", 2.0, 0.0, 0.45), det("Mug", 1.0, -1.5, 0.8),
              det("Fridge", 2.5, 1.5, 0.9, isOpen=False), det("Book", 1.5, -1.0, 0.5))
        for t in (20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0)
    ]
    return early + late
