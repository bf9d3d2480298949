"""The QoS profiles of robomem's topics (the choices are explained in memory_node's docstring)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def keep_last(depth: int, reliable: bool = True, latched: bool = False) -> QoSProfile:
    """KEEP_LAST(depth); RELIABLE or BEST_EFFORT; TRANSIENT_LOCAL (latched) or VOLATILE."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def observation_qos(depth: int) -> QoSProfile:
    """Observation batches: evidence, so reliable, with a queue of ``depth`` batches."""
    return keep_last(depth)


EVENTS_QOS = keep_last(1000)
LATCHED_QOS = keep_last(1, latched=True)
