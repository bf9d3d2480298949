"""robomem.ros.calls over real DDS (servers in this process, their own executor): an answer lost on the way
is recovered by sending the request again — a query as it is, a request that changes state with its
request id, which the server answers from its first answer — and every resend is counted; a request that
changes state and has no id is never sent again."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from ros_helpers import require_ros

require_ros()

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.ros.calls import AnsweredRequests, ServiceCaller, ServiceTimeout  # noqa: E402

pytestmark = pytest.mark.ros


class LossyClient:
    """A client whose first ``lose`` answers never arrive (what Fast DDS does to a client whose reader
    the server has not matched yet): the server gets and serves the request, the answer is dropped."""

    def __init__(self, client, lose: int) -> None:
        self.client = client
        self.lose = lose
        self.sent = 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def call_async(self, request):
        future = self.client.call_async(request)
        self.sent += 1
        if self.sent <= self.lose:
            self.client.remove_pending_request(future)  # its answer will find no one waiting
        return future


@pytest.fixture(scope="module")
def server(ros):
    """A node in this process serving ``trigger`` (counts requests) and ``record`` (an episode store
    behind AnsweredRequests), spun by its own executor."""
    import rclpy

    node = rclpy.create_node("calls_server", context=ros.context)
    state = {"triggers": 0, "episodes": [], "repeats": 0, "node": node}

    def trigger(request, response):
        state["triggers"] += 1
        response.success, response.message = True, str(state["triggers"])
        return response

    def record(request, response):
        state["episodes"].append((request.request_id, request.episode.instruction))
        response.accepted, response.episode_id = True, len(state["episodes"])
        return response

    def repeat():
        state["repeats"] += 1

    answered = AnsweredRequests()
    node.create_service(Trigger, "~/trigger", trigger)
    node.create_service(srv.RecordEpisode, "~/record", answered.serve(record, repeat))
    spin = SingleThreadedExecutor(context=ros.context)
    spin.add_node(node)
    thread = threading.Thread(target=spin.spin, daemon=True)
    thread.start()
    yield state
    spin.shutdown()
    thread.join(timeout=10.0)
    node.destroy_node()


@pytest.fixture
def caller(ros, server):
    helper = ServiceCaller(ros, timeout_s=10.0)
    yield helper
    helper.close()


def test_a_query_whose_answer_is_lost_is_sent_again_and_counted(caller, server) -> None:
    client = caller.client(Trigger, "/calls_server/trigger")
    caller.wait_until_ready()
    assert caller.call(client, Trigger.Request()).success and caller.resent == 0  # nothing lost: sent once
    before = server["triggers"]
    lossy = LossyClient(client, lose=2)
    response = caller.call(lossy, Trigger.Request(), name="trigger", resend_after_s=0.2)
    assert response.success and lossy.sent == 3
    assert caller.resends == Counter({"trigger": 2})
    assert server["triggers"] == before + 3  # the server answered every attempt; two answers were lost


def test_a_request_that_changes_state_is_sent_again_with_its_id_and_takes_effect_once(caller, server) -> None:
    client = caller.client(srv.RecordEpisode, "/calls_server/record")
    caller.wait_until_ready()
    lossy = LossyClient(client, lose=2)
    request = srv.RecordEpisode.Request(episode=rmsg.TaskEpisode(instruction="put the mug away"))
    before, repeats = len(server["episodes"]), server["repeats"]
    response = caller.call(lossy, request, name="record", idempotent=False, resend_after_s=0.2)
    assert request.request_id != 0  # the caller gave it an id
    assert lossy.sent == 3 and caller.resends["record"] == 2
    assert server["episodes"][before:] == [(request.request_id, "put the mug away")]  # kept once
    assert server["repeats"] == repeats + 2 and response.episode_id == before + 1  # the first answer, again
    again = caller.call(client, srv.RecordEpisode.Request(episode=rmsg.TaskEpisode(instruction="another")),
                        idempotent=False)
    assert again.episode_id == before + 2 and len(server["episodes"]) == before + 2  # a new id: a new episode


def test_a_request_that_changes_state_without_an_id_is_never_sent_again(caller, server) -> None:
    client = caller.client(Trigger, "/calls_server/trigger")
    caller.wait_until_ready()
    before = server["triggers"]
    lossy = LossyClient(client, lose=1)
    with pytest.raises(ServiceTimeout, match="did not answer within 1.5 s"):
        caller.call(lossy, Trigger.Request(), name="trigger", idempotent=False, timeout_s=1.5, resend_after_s=0.2)
    assert lossy.sent == 1 and caller.resent == 0
    assert caller.spin_until(lambda: server["triggers"] == before + 1, 5.0)  # it did arrive, and ran once


def test_a_service_nobody_serves_times_out_saying_so(caller) -> None:
    client = caller.client(Trigger, "/nobody/trigger")
    with pytest.raises(ServiceTimeout, match="/nobody/trigger did not appear within 0.5 s"):
        caller.call(client, Trigger.Request(), timeout_s=0.5)
    assert caller.resent == 0


def test_answered_requests_keep_the_last_answers_and_serve_requests_without_an_id() -> None:
    runs: list[int] = []
    repeats: list[int] = []

    def handler(request, response):
        runs.append(request.request_id)
        response.episode_id = len(runs)
        return response

    answered = AnsweredRequests(size=3)
    serve = answered.serve(handler, lambda: repeats.append(1))

    def send(request_id: int) -> int:
        return serve(srv.RecordEpisode.Request(request_id=request_id), srv.RecordEpisode.Response()).episode_id

    assert [send(i) for i in (1, 2, 3)] == [1, 2, 3]
    assert send(2) == 2 and len(repeats) == 1 and runs == [1, 2, 3]  # a repeat: the first answer, not run
    assert send(4) == 4 and len(answered) == 3  # bounded: the oldest (1) is forgotten ...
    assert send(1) == 5 and runs == [1, 2, 3, 4, 1]  # ... so its id runs again
    assert send(0) == 6 and send(0) == 7 and len(repeats) == 1  # no id: always served
