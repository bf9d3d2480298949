"""The memory node in its own process over real DDS: observations in, every service answered as the
core answers the same messages, bad input rejected and counted, memory kept across a restart."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()

from frames import det, frame, kitchen_frames  # noqa: E402
from ros_helpers import NodeProcess, call, caller, handshake, wait_for  # noqa: E402

from robomem import msg as rmsg  # noqa: E402
from robomem import srv  # noqa: E402
from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.render import render_context  # noqa: E402
from robomem.ros import convert  # noqa: E402
from robomem.ros.memory_node import observation_qos  # noqa: E402

pytestmark = pytest.mark.ros

NODE = "memory"
MAX_OBSERVATIONS = 40


@pytest.fixture(scope="module")
def world(ros, tmp_path_factory):
    """The node (separate process, this file's domain) and a reference core Memory fed the same messages."""
    folder: Path = tmp_path_factory.mktemp("memory_node")
    messages = [convert.batch_to_msg(b) for b in kitchen_frames()]
    reference = Memory(MemoryConfig(db_path=":memory:"))
    for message in messages:
        batch, rejected = convert.batch_from_msg(message, "map", MAX_OBSERVATIONS)
        assert not rejected
        reference.ingest(batch)
    params = {"db_path": str(folder / "memory.sqlite"), "max_observations_per_batch": MAX_OBSERVATIONS,
              "graph_period_s": 0.2}
    node = NodeProcess("robomem.ros.memory_node", params, name=NODE, log_path=folder / "node.log")
    state = {"node": node, "reference": reference, "messages": messages, "params": params, "folder": folder}
    yield state
    state["node"].stop()  # the node running now (test_restart_keeps_memory replaces it)
    node.stop()
    reference.close()


def stats(ros) -> dict[str, int]:
    response = call(ros, srv.GetStats, f"/{NODE}/get_stats", srv.GetStats.Request())
    return {c.name: c.value for c in response.counters}


def test_observations_are_ingested_and_events_published(ros, world):
    events: list[rmsg.MemoryEvent] = []
    ros.create_subscription(rmsg.MemoryEvent, f"/{NODE}/events", events.append, 100)
    ros.create_subscription(rmsg.MemoryEvent, "events", events.append, 100)
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
    # the node's events writer must have matched our readers (events are volatile), our publisher its reader
    handshake(ros, srv.GetStats, f"/{NODE}/get_stats")
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
    for message in world["messages"]:
        publisher.publish(message)
    total = len(world["messages"])
    assert wait_for(lambda: stats(ros).get("batches", 0) >= total, ros, timeout=20), world["node"].log()
    reference_events = [(e.label, e.change) for e in world["reference"].stm.events()]
    assert wait_for(lambda: len(events) >= len(reference_events), ros, timeout=5)
    assert sorted((e.label, e.change) for e in events) == sorted(reference_events)
    assert ("Mug", "moved") in reference_events  # the scenario does produce changes
    moved = next(e for e in events if (e.label, e.change) == ("Mug", "moved"))
    assert moved.has_position and abs(moved.position.x - 1.0) < 0.05 and abs(moved.position.y + 1.5) < 0.05


def _same_object(message: rmsg.ObjectInfo, info) -> None:
    assert message.track_id == info.track_id
    assert message.label == info.label
    np.testing.assert_allclose(convert.xyz(message.center), info.center, atol=1e-9)
    np.testing.assert_allclose(convert.xyz(message.size), info.size, atol=1e-9)
    assert message.status == info.status
    assert message.receptacle == (info.receptacle or "")
    assert message.relation == (info.relation or "")
    assert convert.state_from_msgs(message.state) == pytest.approx(info.state)


def test_every_retrieval_service_answers_like_the_core(ros, world):
    memory: Memory = world["reference"]
    base = f"/{NODE}"
    answer = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Mug"))
    assert answer.found and answer.status == srv.WhereIs.Response.STATUS_OK and not answer.message
    assert answer.header.frame_id == "map" and answer.object.robot_id == "r1"
    _same_object(answer.object, memory.where_is("Mug"))
    assert abs(answer.object.center.x - 1.0) < 0.05  # the mug's new place

    request = srv.WhereIs.Request(label="Mug", use_time=True, at=convert.time_to_msg(3.5))
    _same_object(call(ros, srv.WhereIs, f"{base}/where_is", request).object, memory.where_is("Mug", at=3.5))
    was = call(ros, srv.WhereWas, f"{base}/where_was", srv.WhereWas.Request(label="Mug", at=convert.time_to_msg(3.5)))
    _same_object(was.object, memory.where_was("Mug", 3.5))
    assert abs(was.object.center.x - 2.0) < 0.05

    gone = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Apple"))
    assert gone.found == (memory.where_is("Apple") is not None)
    unknown = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Unicorn"))
    assert not unknown.found and unknown.status == srv.WhereIs.Response.STATUS_NOT_FOUND and unknown.reason == ""
    assert unknown.object.track_id == -1 and "Unicorn" in unknown.message  # no fake id

    seen = call(ros, srv.LastSeen, f"{base}/last_seen", srv.LastSeen.Request(label="Apple"))
    assert seen.found and convert.time_from_msg(seen.stamp) == pytest.approx(memory.last_seen("Apple"))

    contents = call(ros, srv.Contents, f"{base}/contents",
                    srv.Contents.Request(receptacle="Fridge", use_time=True, at=convert.time_to_msg(4.0)))
    expected = memory.contents("Fridge", at=4.0)
    assert [o.track_id for o in contents.objects] == [i.track_id for i in expected]

    state = call(ros, srv.GetObjectState, f"{base}/get_object_state",
                 srv.GetObjectState.Request(label="Fridge", key="isOpen"))
    assert state.found and convert.state_value_from_msg(state.value) is memory.state("Fridge", "isOpen") is False
    count = call(ros, srv.Count, f"{base}/count", srv.Count.Request(label="Mug"))
    assert count.count == memory.count("Mug") == 1

    changed = call(ros, srv.WhatChanged, f"{base}/what_changed",
                   srv.WhatChanged.Request(since=convert.time_to_msg(5.0)))
    expected_changes = memory.what_changed(5.0)
    assert sorted((c.label, c.change) for c in changed.changes) == sorted((c.label, c.change) for c in expected_changes)
    assert {"moved", "closed"} <= {c.change for c in changed.changes}

    radius = call(ros, srv.WithinRadius, f"{base}/within_radius",
                  srv.WithinRadius.Request(center=convert.point_to_msg([2.0, 0.0, 0.5]), radius=1.0))
    assert [o.track_id for o in radius.objects] == [i.track_id for i in memory.within_radius([2.0, 0.0, 0.5], 1.0)]
    box = call(ros, srv.WithinBox, f"{base}/within_box", srv.WithinBox.Request(
        lower=convert.point_to_msg([0.0, -2.0, 0.0]), upper=convert.point_to_msg([1.6, 0.0, 2.0])))
    assert sorted(o.label for o in box.objects) == sorted(i.label for i in memory.within_box([0, -2, 0], [1.6, 0, 2]))
    assert {"Mug", "Book"} <= {o.label for o in box.objects}

    relations = call(ros, srv.Relations, f"{base}/relations", srv.Relations.Request(label="Book", radius=1.0))
    assert relations.found
    assert sorted(o.track_id for o in relations.nearby) == sorted(i.track_id for i in memory.near("Book", 1.0))

    search = call(ros, srv.SemanticSearch, f"{base}/semantic_search",
                  srv.SemanticSearch.Request(text="coffee cup", k=3, min_similarity=0.3))
    expected_search = memory.search("coffee cup", k=3, min_similarity=0.3)
    assert [o.track_id for o in search.objects] == [i.track_id for i, _ in expected_search]
    assert search.objects and search.objects[0].label == "Mug"

    context = call(ros, srv.PlannerContext, f"{base}/planner_context",
                   srv.PlannerContext.Request(query="mug", token_budget=120, max_changes=4))
    assert context.context == render_context(memory, "mug", 120, 4)
    assert 0 < context.tokens <= 120

    graph = call(ros, srv.GetSceneGraph, f"{base}/get_scene_graph", srv.GetSceneGraph.Request()).graph
    nodes, edges = memory.scene_graph()
    assert sorted(n.id for n in graph.nodes) == sorted(n.node_id for n in nodes)
    assert sorted((e.child, e.parent, e.relation) for e in graph.edges) == sorted(
        (e.child, e.parent, e.relation) for e in edges)


def test_typed_status_unknown_room_state_key_and_label(ros, world):
    base, codes = f"/{NODE}", srv.WhatChanged.Response
    kitchen = call(ros, srv.WhatChanged, f"{base}/what_changed", srv.WhatChanged.Request(room="kitchen"))
    assert (kitchen.status, kitchen.reason) == (codes.STATUS_UNKNOWN_ROOM, "unknown_room")
    assert "no rooms are configured" in kitchen.message and "home" in kitchen.message  # says what is known
    home = call(ros, srv.WhatChanged, f"{base}/what_changed",
                srv.WhatChanged.Request(since=convert.time_to_msg(5.0), room="home"))
    expected = world["reference"].what_changed(5.0, room="home")
    assert home.status == codes.STATUS_OK and expected  # every object is in the default room
    assert sorted((c.label, c.change) for c in home.changes) == sorted((c.label, c.change) for c in expected)

    def state(label: str, key: str) -> srv.GetObjectState.Response:
        return call(ros, srv.GetObjectState, f"{base}/get_object_state",
                    srv.GetObjectState.Request(label=label, key=key))

    typo = state("Fridge", "isOpne")
    assert (typo.status, typo.found) == (srv.GetObjectState.Response.STATUS_UNKNOWN_STATE_KEY, False)
    assert "seen: open" in typo.message  # the keys seen on fridges (isOpen is the core's 'open')
    assert state("Fridge", "isOpne").status == typo.status  # asking does not make the key known
    unicorn = state("Unicorn", "isOpen")
    assert (unicorn.status, unicorn.found) == (srv.GetObjectState.Response.STATUS_NOT_FOUND, False)
    seen = call(ros, srv.LastSeen, f"{base}/last_seen", srv.LastSeen.Request(label="Unicorn"))
    assert (seen.status, seen.found) == (srv.LastSeen.Response.STATUS_NOT_FOUND, False)
    assert stats(ros).get("rejected_requests.unknown_room", 0) >= 1


def test_latched_scene_graph_and_markers_reach_a_late_subscriber(ros, world):
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from visualization_msgs.msg import Marker, MarkerArray

    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    graphs: list[rmsg.SceneGraph] = []
    markers: list[MarkerArray] = []
    ros.create_subscription(rmsg.SceneGraph, "scene_graph", graphs.append, latched)
    ros.create_subscription(MarkerArray, "scene_graph_markers", markers.append, latched)
    assert wait_for(lambda: graphs and markers, ros, timeout=10)
    nodes, edges = world["reference"].scene_graph()
    objects = [n for n in nodes if n.kind != "room"]
    graph = graphs[-1]
    assert graph.header.frame_id == "map"
    assert sorted(n.label for n in graph.nodes if n.kind != "room") == sorted(n.label for n in objects)
    boxes = [m for m in markers[-1].markers if m.ns == "objects"]
    assert markers[-1].markers[0].action == Marker.DELETEALL
    assert sorted(m.id for m in boxes) == sorted(n.track_id for n in objects)
    mug = next(m for m in boxes if m.id == world["reference"].where_is("Mug").track_id)
    assert mug.pose.position.x == pytest.approx(world["reference"].where_is("Mug").center[0])
    fridge = world["reference"].where_is("Fridge")
    fridge_label = next(m for m in markers[-1].markers if m.ns == "labels" and m.id == fridge.track_id)
    assert fridge_label.text == f"Fridge#{fridge.track_id} closed"  # its state, as memory believes it
    links = [m for m in markers[-1].markers if m.ns == "links"]
    object_edges = [e for e in edges if not e.parent.startswith("room:")]
    assert len(links[0].points if links else []) == 2 * len(object_edges)


def test_markers_draw_rooms_as_floor_areas_and_open_or_on_states():
    from robomem.core.types import GraphNode
    from robomem.ros.markers import OPEN_COLOR, GraphMessages

    nodes = [GraphNode("room:kitchen", "room", "kitchen", -1, np.array([2.0, 1.0, 0.0]), np.array([4.0, 2.0, 0.0])),
             GraphNode("room:home", "room", "home", -1, np.zeros(3), np.zeros(3)),
             GraphNode("7", "receptacle", "Fridge", 7, np.array([1.0, 1.0, 0.9]), np.array([0.8, 0.7, 1.8])),
             GraphNode("8", "object", "Television", 8, np.array([3.0, 1.0, 1.0]), np.array([1.0, 0.1, 0.6]))]
    drawn = GraphMessages("map").markers(nodes, [], {7: {"isOpen": True}, 8: {"isToggled": False}}).markers
    rooms = [m for m in drawn if m.ns == "rooms"]
    assert len(rooms) == 1 and (rooms[0].scale.x, rooms[0].scale.y) == (4.0, 2.0)  # home has no area: not drawn
    assert [m.text for m in drawn if m.ns == "room_names"] == ["kitchen"]
    labels = {m.id: m.text for m in drawn if m.ns == "labels"}
    assert labels == {7: "Fridge#7 open", 8: "Television#8 off"}
    assert next(m for m in drawn if m.ns == "objects" and m.id == 7).color == OPEN_COLOR
    from robomem.core.types import GraphEdge
    from robomem.ros.markers import LINK_COLOR, RELATION_COLORS

    nodes += [GraphNode("9", "receptacle", "TowelHolder", 9, np.array([2.0, 0.0, 1.4]), np.array([0.6, 0.05, 0.05])),
              GraphNode("10", "object", "Towel", 10, np.array([2.0, 0.0, 1.1]), np.array([0.5, 0.05, 0.6])),
              GraphNode("11", "object", "Boots", 11, np.array([0.5, 0.5, 0.1]), np.array([0.3, 0.2, 0.2]))]
    edges = [GraphEdge("10", "9", "hanging"), GraphEdge("11", "room:kitchen", "on_floor"), GraphEdge("8", "7", "on")]
    links = next(m for m in GraphMessages("map").markers(nodes, edges).markers if m.ns == "links")
    assert len(links.points) == 6 and len(links.colors) == 6
    assert links.colors[0] == RELATION_COLORS["hanging"] and links.colors[4] == LINK_COLOR
    assert links.colors[2] == RELATION_COLORS["on_floor"]
    assert (links.points[3].x, links.points[3].y, links.points[3].z) == (0.5, 0.5, 0.0)  # down to the floor
    import yaml  # the RViz config shows this topic, latched, with every namespace drawn

    rviz = yaml.safe_load((Path(__file__).parents[1] / "config/robomem.rviz").read_text())
    display = next(d for d in rviz["Visualization Manager"]["Displays"] if d["Class"].endswith("/MarkerArray"))
    assert display["Topic"]["Value"] == "/scene_graph_markers"
    assert display["Topic"]["Durability Policy"] == "Transient Local"
    assert {m.ns for m in drawn if m.ns} <= set(display["Namespaces"])


def test_experience_is_recorded_and_retrieved(ros, world):
    base = f"/{NODE}"
    runs = [("put the apple in the fridge", True, ["Apple", "Fridge"]),
            ("turn on the television", True, ["Television"]),
            ("put an apple into the fridge", False, ["Apple", "Fridge"])]
    for instruction, success, objects in runs:
        episode = rmsg.TaskEpisode(robot_id="r1", instruction=instruction, success=success, objects=objects,
                                   plan=["navigate_to(Fridge)", "open(Fridge)"], started=convert.time_to_msg(40.0),
                                   finished=convert.time_to_msg(55.0))
        answer = call(ros, srv.RecordEpisode, f"{base}/record_episode", srv.RecordEpisode.Request(episode=episode))
        assert answer.accepted and answer.episode_id > 0 and answer.status == srv.RecordEpisode.Response.STATUS_OK
    query = srv.SimilarEpisodes.Request(instruction="chill an apple in the refrigerator", k=2, successful_only=True)
    found = call(ros, srv.SimilarEpisodes, f"{base}/similar_episodes", query)
    assert [e.instruction for e in found.episodes][0] == "put the apple in the fridge"
    assert all(e.success for e in found.episodes)
    assert found.similarities[0] >= found.similarities[-1]
    # sent again with the same request id (its answer was lost): the first answer, the run kept once
    plants = rmsg.TaskEpisode(robot_id="r1", instruction="water the plants in the hall", success=True,
                              objects=["HousePlant"], started=convert.time_to_msg(60.0),
                              finished=convert.time_to_msg(70.0))
    name = f"{base}/record_episode"
    first = call(ros, srv.RecordEpisode, name, srv.RecordEpisode.Request(episode=plants, request_id=4242))
    again = call(ros, srv.RecordEpisode, name, srv.RecordEpisode.Request(episode=plants, request_id=4242))
    assert first.accepted and (again.accepted, again.episode_id) == (True, first.episode_id)
    assert stats(ros)["repeated_requests.record_episode"] == 1 + caller(ros).resends[name]
    kept = call(ros, srv.SimilarEpisodes, f"{base}/similar_episodes",
                srv.SimilarEpisodes.Request(instruction="water the plants in the hall", k=10))
    assert [e.episode_id for e in kept.episodes if e.instruction == plants.instruction] == [first.episode_id]
    bad = rmsg.TaskEpisode(robot_id="r1", instruction="", started=convert.time_to_msg(1.0),
                           finished=convert.time_to_msg(0.5))
    refused = call(ros, srv.RecordEpisode, f"{base}/record_episode", srv.RecordEpisode.Request(episode=bad))
    assert not refused.accepted and refused.status == srv.RecordEpisode.Response.STATUS_INVALID_ARGUMENT
    assert refused.message


def test_bad_input_is_rejected_counted_and_harmless(ros, world):
    base = f"/{NODE}"
    before = stats(ros)
    mug_before = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Mug")).object
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)

    nan = convert.batch_to_msg(frame(30.0, None, det("Mug", 1.0, -1.5, 0.8)))
    nan.observations[0].center.x = math.nan
    wrong_frame = convert.batch_to_msg(frame(31.0, None, det("Mug", 5.0, 5.0, 0.8)), frame_id="camera")
    cups = [det("Cup", 0.1 * i, 3.0) for i in range(MAX_OBSERVATIONS + 1)]
    oversized = convert.batch_to_msg(frame(32.0, None, *cups))
    no_label = convert.batch_to_msg(frame(33.0, None, det("Mug", 1.0, -1.5, 0.8)))
    no_label.observations[0].label = ""
    for message in (nan, wrong_frame, oversized, no_label):
        publisher.publish(message)

    def counted() -> bool:
        now = stats(ros)
        return all(now.get(f"rejected.{r}", 0) > before.get(f"rejected.{r}", 0)
                   for r in ("non_finite", "unknown_frame", "oversized", "bad_label"))

    assert wait_for(counted, ros, timeout=10), stats(ros)
    assert world["node"].alive()
    mug_after = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Mug")).object
    assert convert.xyz(mug_after.center) == pytest.approx(convert.xyz(mug_before.center))
    cups = call(ros, srv.Count, f"{base}/count", srv.Count.Request(label="Cup"))
    assert cups.count == 0  # nothing of the oversized batch got in

    # bad requests: an answer with an error, never a crash
    empty = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label=""))
    invalid = srv.WhereIs.Response.STATUS_INVALID_ARGUMENT
    assert (empty.status, empty.reason, empty.found) == (invalid, "bad_label", False)
    nan_near = srv.WhereIs.Request(label="Mug", use_near=True, near=convert.point_to_msg([math.nan, 0, 0]))
    assert call(ros, srv.WhereIs, f"{base}/where_is", nan_near).reason == "non_finite"
    huge = srv.WithinRadius.Request(center=convert.point_to_msg([0, 0, 0]), radius=1e9)
    bad_radius = call(ros, srv.WithinRadius, f"{base}/within_radius", huge)
    assert (bad_radius.status, bad_radius.reason) == (srv.WithinRadius.Response.STATUS_INVALID_ARGUMENT, "bad_radius")
    long_query = srv.PlannerContext.Request(query="x" * 5000, token_budget=100)
    assert call(ros, srv.PlannerContext, f"{base}/planner_context", long_query).reason == "oversized"
    assert stats(ros).get("rejected_requests.bad_label", 0) >= 1
    assert world["node"].alive()


def test_gaps_in_a_robots_sequence_are_counted_as_lost(ros, world):
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
    before = stats(ros).get("batches_lost", 0)
    for sequence, t in ((1, 40.0), (2, 41.0), (5, 42.0), (6, 43.0)):  # 3 and 4 never sent
        message = convert.batch_to_msg(frame(t, None, det("Book", 1.5, -1.0, 0.5), robot="r2"), sequence=sequence)
        publisher.publish(message)
    assert wait_for(lambda: stats(ros).get("batches_lost", 0) - before == 2, ros, timeout=10), stats(ros)


def test_unstamped_and_late_batches_are_refused_by_the_stamp_rule_never_restamped(ros, world):
    publisher = ros.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
    assert wait_for(lambda: publisher.get_subscription_count() > 0, ros)
    before = stats(ros)
    # a robot new to memory (a stamp it sent before would be skipped as a repeat, not judged late)
    unstamped = convert.batch_to_msg(frame(0.0, None, det("Teapot", 3.0, 3.0, 0.9), robot="r9"))  # stamp never set
    late = convert.batch_to_msg(frame(20.0, None, det("Teapot", 3.0, 3.0, 0.9), robot="r9"))  # memory is past 40 s
    for message in (unstamped, late):
        publisher.publish(message)
    late_count = before.get("rejected.late", 0)
    assert wait_for(lambda: stats(ros).get("rejected.late", 0) - late_count == 2, ros), str(stats(ros))
    teapot = call(ros, srv.WhereIs, f"/{NODE}/where_is", srv.WhereIs.Request(label="Teapot"))
    assert not teapot.found  # neither landed at "now"
    log = world["node"].log()
    assert "has no stamp (0)" in log and "rejected observation batch (late)" in log


def test_restart_keeps_memory(ros, world):
    base = f"/{NODE}"
    before = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Mug")).object
    at = convert.time_to_msg(3.5)
    past = call(ros, srv.WhereWas, f"{base}/where_was", srv.WhereWas.Request(label="Mug", at=at)).object
    assert world["node"].stop() == 0, world["node"].log()
    restarted = NodeProcess("robomem.ros.memory_node", world["params"], name=NODE,
                            log_path=world["folder"] / "node2.log")
    world["node"] = restarted
    after = call(ros, srv.WhereIs, f"{base}/where_is", srv.WhereIs.Request(label="Mug")).object
    assert after.track_id == before.track_id
    assert convert.xyz(after.center) == pytest.approx(convert.xyz(before.center))
    past_after = call(ros, srv.WhereWas, f"{base}/where_was",
                      srv.WhereWas.Request(label="Mug", at=convert.time_to_msg(3.5))).object
    assert convert.xyz(past_after.center) == pytest.approx(convert.xyz(past.center))
    assert stats(ros).get("rejected.unknown_frame", 0) >= 1  # the counters survive too
    again = call(ros, srv.SimilarEpisodes, f"{base}/similar_episodes",
                 srv.SimilarEpisodes.Request(instruction="put the apple in the fridge", k=1, successful_only=True))
    assert [e.instruction for e in again.episodes] == ["put the apple in the fridge"]  # experience too
