"""The memory node's health on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, once per ``diag_period_s``).

One DiagnosticStatus named ``robomem memory: <node>`` (hardware_id: the node's full name) with the
values: state, ingest_rate_hz and rejected_rate_hz (over the last ``diag_window_s``), lag_s (how far
behind the node's clock the newest batch's stamp was when it was taken), ingest_ms (last), flush_ms
(the last flush; the node flushes once per period, so at most a period of batches is lost on power
failure), db_bytes, objects_believed and rejected.<reason> (totals since start). The level:

- ERROR: lag_s >= diag_lag_error_s, flush >= diag_flush_error_s, or rejected share >= diag_rejected_error_fraction;
- WARN: the same against the *_warn_* thresholds, db_bytes >= diag_db_warn_mb, or the node is not active;
- OK otherwise. The message names every threshold crossed.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from robomem.ros.params import Parameters, Spec

if TYPE_CHECKING:
    from robomem.core.memory import Memory

DIAGNOSTICS_TOPIC = "/diagnostics"  # absolute: where diagnostic aggregators and rqt_robot_monitor listen
DIAGNOSTIC_SPECS = (
    Spec("diag_period_s", 1.0, "diagnostics published (and memory flushed) this often (s)", 0.1, 60.0),
    Spec("diag_window_s", 10.0, "rates over this much recent time (s)", 1.0, 3600.0),
    Spec("diag_lag_warn_s", 1.0, "WARN when the newest batch's stamp lags the clock by this much (s)", 0.0, 1e6),
    Spec("diag_lag_error_s", 5.0, "ERROR when it lags by this much (s)", 0.0, 1e6),
    Spec("diag_flush_warn_s", 0.2, "WARN when one flush to the file takes this long (s)", 0.0, 3600.0),
    Spec("diag_flush_error_s", 2.0, "ERROR when one flush takes this long (s)", 0.0, 3600.0),
    Spec("diag_rejected_warn_fraction", 0.05, "WARN when this share of recent batches/observations is rejected",
         0.0, 1.0),
    Spec("diag_rejected_error_fraction", 0.5, "ERROR when this share is rejected", 0.0, 1.0),
    Spec("diag_db_warn_mb", 2000.0, "WARN when the memory file (with its WAL) is this large (MB)", 0.0, 1e9),
)
LEVELS = {DiagnosticStatus.OK: "OK", DiagnosticStatus.WARN: "WARN", DiagnosticStatus.ERROR: "ERROR"}


class IngestDiagnostics:
    """Counts what the memory node takes and rejects, times its flushes, publishes the status."""

    def __init__(self, node: Any, params: Parameters) -> None:
        self.node = node
        self.params = params
        self.publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.taken: deque[float] = deque()  # monotonic times of recent ingested batches
        self.refused: deque[float] = deque()  # ... and of recent rejections
        self.rejected_by_reason: Counter[str] = Counter()
        self.lag_s = 0.0
        self.ingest_s = 0.0
        self.flush_s = 0.0
        self.published = 0
        self._timer = node.create_timer(float(params["diag_period_s"]), self.publish)
        params.on_change(["diag_period_s"], self._new_timer)

    def _new_timer(self) -> None:
        self.node.destroy_timer(self._timer)
        self._timer = self.node.create_timer(float(self.params["diag_period_s"]), self.publish)

    def ingested(self, stamp_s: float, took_s: float) -> None:
        now = time.monotonic()
        self.taken.append(now)
        self.lag_s = self.node.get_clock().now().nanoseconds * 1e-9 - stamp_s
        self.ingest_s = took_s
        self._trim(now)

    def rejected(self, reason: str) -> None:
        self.refused.append(time.monotonic())
        self.rejected_by_reason[reason] += 1

    def timed_flush(self, memory: Memory, sync: bool = False) -> None:
        start = time.monotonic()
        memory.flush(sync=sync)
        self.flush_s = time.monotonic() - start

    def _trim(self, now: float) -> None:
        horizon = now - float(self.params["diag_window_s"])
        for times in (self.taken, self.refused):
            while times and times[0] < horizon:
                times.popleft()

    def status(self) -> DiagnosticStatus:
        """The status now (flushes memory first, when the node has it open and active)."""
        node, p = self.node, self.params
        memory = node.memory
        if memory is not None and node.active:
            self.timed_flush(memory)
        now = time.monotonic()
        self._trim(now)
        window = float(p["diag_window_s"])
        taken, refused = len(self.taken), len(self.refused)
        share = refused / (taken + refused) if taken + refused else 0.0
        recent = bool(self.taken)
        db_bytes = node.db_size_bytes()
        problems: list[tuple[int, str]] = []

        def check(value: float, warn: float, error: float, what: str) -> None:
            if value >= error:
                problems.append((DiagnosticStatus.ERROR, f"{what} {value:.3g} >= {error:g}"))
            elif value >= warn:
                problems.append((DiagnosticStatus.WARN, f"{what} {value:.3g} >= {warn:g}"))

        if recent:
            check(self.lag_s, p["diag_lag_warn_s"], p["diag_lag_error_s"], "lag_s")
        check(self.flush_s, p["diag_flush_warn_s"], p["diag_flush_error_s"], "flush_s")
        check(share, p["diag_rejected_warn_fraction"], p["diag_rejected_error_fraction"], "rejected share")
        if db_bytes >= float(p["diag_db_warn_mb"]) * 1e6:
            problems.append((DiagnosticStatus.WARN, f"db {db_bytes / 1e6:.0f} MB >= {p['diag_db_warn_mb']:g}"))
        state = "active" if node.active else ("inactive" if memory is not None else "unconfigured")
        if not node.active:
            problems.append((DiagnosticStatus.WARN, f"not active ({state})"))
        level = max((lvl for lvl, _ in problems), default=DiagnosticStatus.OK)
        values = {
            "state": state,
            "ingest_rate_hz": f"{taken / window:.3f}",
            "rejected_rate_hz": f"{refused / window:.3f}",
            "rejected_share": f"{share:.3f}",
            "lag_s": f"{self.lag_s:.3f}" if recent else "",
            "ingest_ms": f"{self.ingest_s * 1e3:.3f}",
            "flush_ms": f"{self.flush_s * 1e3:.3f}",
            "db_bytes": str(db_bytes),
            "objects_believed": str(memory.count_believed()) if memory is not None else "0",
            **{f"rejected.{reason}": str(n) for reason, n in sorted(self.rejected_by_reason.items())},
        }
        name = node.get_fully_qualified_name()
        return DiagnosticStatus(
            level=level, name=f"robomem memory: {name}", hardware_id=name,
            message="; ".join(text for _, text in problems) or "ok",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )

    def publish(self) -> None:
        try:
            status = self.status()
        except Exception as error:  # diagnostics must never take the node down
            self.node.get_logger().error(f"diagnostics failed: {error!r}")
            status = DiagnosticStatus(level=DiagnosticStatus.ERROR, name=f"robomem memory: "
                                      f"{self.node.get_fully_qualified_name()}", message=f"internal: {error!r}")
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)
        self.published += 1
