"""likely_places over the memory node's service (its own process, real DDS) gives the planner the same
ranked places, scores and reasons as over an in-process memory fed the same batches."""

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

pytestmark = [pytest.mark.ros, pytest.mark.data("thor")]


@pytest.fixture(scope="module")
def tools(ros, tmp_path_factory):
    folder = tmp_path_factory.mktemp("likely_places")
    node = NodeProcess("robomem.ros.memory_node", {"db_path": str(folder / "m.sqlite")}, name="places_memory",
                       log_path=folder / "node.log")
    client = MemoryClient(ros, memory_node="places_memory")
    client.wait_until_ready()
    reference = Memory(MemoryConfig(db_path=":memory:"))
    for batch in kitchen_frames():
        client.ingest(batch)
        same, _ = convert.batch_from_msg(convert.batch_to_msg(batch), "map", 512)  # as the node receives it
        reference.ingest(same)
    yield RosTools(client), InProcessTools(reference)
    node.stop()
    reference.close()


def test_likely_places_over_ros_answer_like_in_process(tools):
    remote, local = tools
    for label in ("Mug", "Apple", "Pillow", "Egg"):
        here, there = local.likely_places(label, 4), remote.likely_places(label, 4)
        assert there == here and there, label
        assert all(p.reason for p in there) and sum(p.score for p in there) <= 1.0 + 1e-9
    assert len(remote.likely_places("Mug", 1)) == 1


def test_a_bad_label_is_an_error_not_an_answer(tools):
    remote, _ = tools
    with pytest.raises(MemoryServiceError, match="bad_label"):
        remote.likely_places("", 3)
