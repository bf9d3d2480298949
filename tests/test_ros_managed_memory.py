"""The memory node as a managed node on a robot, in its own process over real DDS: lifecycle transitions
(configure opens the file, activate starts ingest and answers, deactivate stops them, cleanup closes
the file), parameters with descriptions and ranges (read-only ones refused, the others applied at
once), and its health on /diagnostics as a separate subscriber sees it."""

from __future__ import annotations

import time

import pytest
from ros_helpers import require_ros

require_ros()

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from frames import det, frame  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, SetParameters  # noqa: E402
from ros_helpers import NodeProcess, call, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.qos import observation_qos  # noqa: E402

pytestmark = pytest.mark.ros
Status = srv.WhereIs.Response


def state_of(ros, node: str) -> int:
    return call(ros, GetState, f"/{node}/get_state", GetState.Request()).current_state.id


def transition(ros, node: str, transition_id: int) -> None:
    answer = call(ros, ChangeState, f"/{node}/change_state",
                  ChangeState.Request(transition=Transition(id=transition_id)), timeout=20)
    assert answer.success


def batch(t: float, label: str, x: float, sequence: int, frame_id: str = "map") -> rmsg.ObservationBatch:
    return convert.batch_to_msg(frame(t, None, det(label, x, 0.0, 0.9)), frame_id, sequence)


def test_lifecycle_transitions_open_ingest_stop_and_close(ros, tmp_path):
    db = tmp_path / "managed.sqlite"
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(db), "autostart": False}, name="managed",
                       log_path=tmp_path / "managed.log")
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(10))
    try:
        assert state_of(ros, "managed") == State.PRIMARY_STATE_UNCONFIGURED
        asked = call(ros, srv.WhereIs, "/managed/where_is", srv.WhereIs.Request(label="Mug"))
        assert (asked.status, asked.reason) == (Status.STATUS_NOT_ACTIVE, "not_active")
        assert not db.exists()  # the store opens on configure

        transition(ros, "managed", Transition.TRANSITION_CONFIGURE)
        assert state_of(ros, "managed") == State.PRIMARY_STATE_INACTIVE and db.exists()
        assert publisher.get_subscription_count() == 0  # no ingest while inactive

        transition(ros, "managed", Transition.TRANSITION_ACTIVATE)
        assert wait_for(lambda: publisher.get_subscription_count() == 1, ros)
        for sequence, t in ((1, 10.0), (2, 11.0)):
            publisher.publish(batch(t, "Mug", 1.5, sequence))
        assert wait_for(lambda: call(ros, srv.WhereIs, "/managed/where_is",
                                     srv.WhereIs.Request(label="Mug")).found, ros, timeout=10)

        transition(ros, "managed", Transition.TRANSITION_DEACTIVATE)
        assert state_of(ros, "managed") == State.PRIMARY_STATE_INACTIVE
        assert wait_for(lambda: publisher.get_subscription_count() == 0, ros)
        assert call(ros, srv.WhereIs, "/managed/where_is",
                    srv.WhereIs.Request(label="Mug")).status == Status.STATUS_NOT_ACTIVE

        transition(ros, "managed", Transition.TRANSITION_CLEANUP)  # the file is closed: another reader sees all
        assert state_of(ros, "managed") == State.PRIMARY_STATE_UNCONFIGURED
        reopened = Memory(MemoryConfig(db_path=str(db)))
        try:
            assert reopened.where_is("Mug") is not None
        finally:
            reopened.close()
    finally:
        ros.destroy_publisher(publisher)
        assert node.stop() == 0, node.log()


def _set(ros, node: str, name: str, value: ParameterValue) -> tuple[bool, str]:
    answer = call(ros, SetParameters, f"/{node}/set_parameters",
                  SetParameters.Request(parameters=[Parameter(name=name, value=value)]))
    return answer.results[0].successful, answer.results[0].reason


def text(value: str) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)


def integer(value: int) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)


def test_parameters_are_described_ranged_read_only_or_applied(ros, tmp_path):
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(tmp_path / "p.sqlite")}, name="params_memory",
                       log_path=tmp_path / "params.log")
    try:
        names = ["map_frame", "max_results", "db_path", "graph_period_s"]
        described = call(ros, DescribeParameters, "/params_memory/describe_parameters",
                         DescribeParameters.Request(names=names), timeout=20).descriptors
        by_name = {d.name: d for d in described}
        assert all(by_name[n].description for n in names)
        assert (by_name["max_results"].integer_range[0].from_value, by_name["max_results"].integer_range[0].to_value
                ) == (1, 100_000)
        assert by_name["graph_period_s"].floating_point_range[0].from_value == pytest.approx(0.05)
        assert by_name["db_path"].read_only and not by_name["map_frame"].read_only

        ok, reason = _set(ros, "params_memory", "db_path", text(str(tmp_path / "other.sqlite")))
        assert not ok and "read-only" in reason
        ok, _ = _set(ros, "params_memory", "max_results", integer(0))  # out of range
        assert not ok
        ok, reason = _set(ros, "params_memory", "map_frame", text(""))
        assert not ok and "empty" in reason

        ok, _ = _set(ros, "params_memory", "map_frame", text("odom"))  # takes effect at once
        assert ok
        publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(10))
        assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
        publisher.publish(batch(10.0, "Mug", 1.0, 1, frame_id="map"))  # the old frame: rejected now
        publisher.publish(batch(11.0, "Mug", 2.0, 2, frame_id="odom"))
        publisher.publish(batch(12.0, "Mug", 2.0, 3, frame_id="odom"))

        def stats() -> dict[str, int]:
            answer = call(ros, srv.GetStats, "/params_memory/get_stats", srv.GetStats.Request())
            return {c.name: c.value for c in answer.counters}

        assert wait_for(lambda: stats().get("batches", 0) == 2 and stats().get("rejected.unknown_frame") == 1, ros,
                        timeout=10), stats()
        mug = call(ros, srv.WhereIs, "/params_memory/where_is", srv.WhereIs.Request(label="Mug"))
        assert mug.found and mug.header.frame_id == "odom" and mug.object.center.x == pytest.approx(2.0, abs=0.05)
        ros.destroy_publisher(publisher)
    finally:
        assert node.stop() == 0, node.log()


def test_diagnostics_report_rate_rejections_and_levels(ros, tmp_path):
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(tmp_path / "d.sqlite"), "diag_period_s": 0.2,
                                                   "diag_rejected_error_fraction": 0.5},
                       name="diag_memory", log_path=tmp_path / "diag.log")
    received: list[DiagnosticStatus] = []

    def keep(array: DiagnosticArray) -> None:
        received.extend(s for s in array.status if s.hardware_id == "/diag_memory")

    subscription = ros.create_subscription(DiagnosticArray, "/diagnostics", keep, 10)
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(10))
    try:
        assert wait_for(lambda: received, ros, timeout=20), node.log()
        assert received[-1].name == "robomem memory: /diag_memory"
        assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
        now = time.time()
        for sequence in (1, 2, 3):  # stamped now: no lag
            publisher.publish(batch(now + 0.01 * sequence, "Mug", 1.0, sequence))

        def latest() -> dict[str, str]:
            return {v.key: v.value for v in received[-1].values} if received else {}

        assert wait_for(lambda: float(latest().get("ingest_rate_hz", 0)) > 0, ros, timeout=10)
        healthy = received[-1]
        assert healthy.level == DiagnosticStatus.OK, healthy.message
        assert {"lag_s", "flush_ms", "db_bytes", "rejected_share", "state"} <= set(latest())
        assert latest()["state"] == "active" and int(latest()["db_bytes"]) > 0

        for sequence in (4, 5, 6, 7):  # in a frame memory does not know: more rejected than taken
            publisher.publish(batch(now + 1.0, "Mug", 1.0, sequence, frame_id="camera"))
        assert wait_for(lambda: received[-1].level == DiagnosticStatus.ERROR, ros, timeout=10), received[-1]
        assert "rejected share" in received[-1].message and latest()["rejected.unknown_frame"] == "4"
    finally:
        ros.destroy_subscription(subscription)
        ros.destroy_publisher(publisher)
        assert node.stop() == 0, node.log()
