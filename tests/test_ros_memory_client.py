"""The planner's memory tools over the memory node's services give the same answers as the same tools
over an in-process memory fed the same batches (the node in its own process, real DDS)."""

from __future__ import annotations

import pytest
from ros_helpers import require_ros

require_ros()

from frames import kitchen_frames  # noqa: E402
from ros_helpers import NodeProcess  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.planner.tools import InProcessTools  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.memory_client import MemoryClient, MemoryServiceError, RosTools  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def tools(ros, tmp_path_factory):
    folder = tmp_path_factory.mktemp("memory_client")
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "m.sqlite")}, name="client_memory",
                       log_path=folder / "node.log")
    client = MemoryClient(ros, memory_node="client_memory")
    client.wait_until_ready()
    reference = Memory(MemoryConfig(db_path=":memory:"))
    for batch in kitchen_frames():
        client.ingest(batch)
        same, _ = convert.batch_from_msg(convert.batch_to_msg(batch), "map", 512)  # as the node receives it
        reference.ingest(same)
    yield RosTools(client), InProcessTools(reference), client
    node.stop()
    reference.close()


def test_tools_over_ros_answer_like_in_process(tools):
    remote, local, client = tools
    for label in ("Mug", "Fridge", "Apple", "Book", "Unicorn"):
        assert remote.where_is(label) == local.where_is(label)
        assert remote.last_seen(label) == local.last_seen(label)
    assert remote.where_is("Mug", at=3.5) == local.where_is("Mug", at=3.5)
    assert remote.where_is("Mug", near=(2.0, 0.0)) == local.where_is("Mug", near=(2.0, 0.0))
    assert remote.contents("Fridge", at=4.0) == local.contents("Fridge", at=4.0)
    assert remote.instances("Mug") == local.instances("Mug") and len(local.instances("Mug")) == 1
    assert [(c.label, c.change) for c in remote.what_changed(5.0)] == [(c.label, c.change) for c in
                                                                       local.what_changed(5.0)]
    assert remote.planner_context("mug", 80) == local.planner_context("mug", 80)
    assert remote.search("coffee cup") == local.search("coffee cup")
    assert client.stats()["batches"] == len(kitchen_frames())  # sync saw every batch before answering


def test_a_rejected_request_is_an_error_not_an_answer(tools):
    remote, _, _ = tools
    with pytest.raises(MemoryServiceError, match="bad_label"):
        remote.where_is("")
