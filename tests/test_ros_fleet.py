# ruff: noqa: F811 (pytest fixtures imported from postgres_fixture and named as arguments)
"""Two robots' memory nodes, each in its own process and namespace, join one fleet through a real
PostgreSQL server (``fleet`` true, ``db_path`` its URL): what robot r1 saw, r2's memory answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ros_helpers import require_ros

require_ros()
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frames import det, frame  # noqa: E402
from postgres_fixture import fresh_db, postgres_server  # noqa: E402, F401 (fixtures, used by name)
from ros_helpers import NodeProcess, call, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.qos import observation_qos  # noqa: E402

pytestmark = pytest.mark.ros


def _stats(ros, memory: str) -> dict[str, int]:
    answer = call(ros, srv.GetStats, f"{memory}/get_stats", srv.GetStats.Request(), timeout=30)
    assert answer.status == srv.GetStats.Response.STATUS_OK
    return {c.name: c.value for c in answer.counters}


def _where_is(ros, memory: str, label: str) -> srv.WhereIs.Response:
    return call(ros, srv.WhereIs, f"{memory}/where_is", srv.WhereIs.Request(label=label))


def test_robot_b_answers_with_what_robot_a_saw(ros, fresh_db, tmp_path):
    url = fresh_db().split("?")[0]  # the database; each node adds its name (its namespace), its spool in its state dir
    nodes = {ns: NodeProcess("robomem.ros.memory_node", {"db_path": url, "fleet": True}, name="memory", namespace=ns,
                             env={"ROBOMEM_STATE_DIR": str(tmp_path / ns)}, log_path=tmp_path / f"{ns}.log")
             for ns in ("r1", "r2")}
    try:
        for ns, node in nodes.items():
            assert "fleet.published" not in _stats(ros, f"/{ns}/memory"), node.log()
        publisher = ros.create_publisher(rmsg.ObservationBatch, "/r1/observations", observation_qos(10))
        assert wait_for(lambda: publisher.get_subscription_count() > 0, ros, timeout=20)
        for sequence, t in ((1, 10.0), (2, 11.0)):  # robot r1 sees a mug twice
            publisher.publish(convert.batch_to_msg(frame(t, None, det("Mug", 1.5, -0.5, 0.9), robot="r1"),
                                                   sequence=sequence))
        # the mug may be answered after the first batch: wait until r2 has taken in both (a condition), then exact
        assert wait_for(lambda: _stats(ros, "/r2/memory").get("fleet.remote_applied", 0) >= 2, ros, timeout=20), \
            nodes["r2"].log()
        found = _where_is(ros, "/r2/memory", "Mug")
        assert found.found, nodes["r2"].log()
        mug = found.object
        assert (mug.center.x, mug.center.y, mug.robot_id) == (pytest.approx(1.5, abs=0.05),
                                                              pytest.approx(-0.5, abs=0.05), "r1")
        two, one = _stats(ros, "/r2/memory"), _stats(ros, "/r1/memory")
        assert two["fleet.remote_applied"] == 2 and "fleet.published" not in two, "r2 took in r1's two batches"
        assert one["fleet.published"] == 2 and "fleet.remote_applied" not in one
    finally:
        for node in nodes.values():
            assert node.stop() == 0, node.log()
