"""A client of the memory node: publish observation batches, ask its services.

:class:`MemoryClient` is what a robot program (the simulator, a planner) uses to talk to a memory node
running in another process; :class:`RosTools` gives the planner's :class:`MemoryTools` protocol over
it, so a planner uses memory only through the node's services.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rclpy.executors import Executor
from rclpy.node import Node

from robomem import msg as rmsg
from robomem import srv
from robomem.core.experience import TaskEpisode, render_examples
from robomem.core.types import ObservationBatch
from robomem.planner.tools import NEAR_Z_M, ChangeRecord, ObjectRecord, PlaceRecord
from robomem.ros import convert
from robomem.ros.calls import ServiceCaller, ServiceError
from robomem.ros.qos import observation_qos

STATE_CHANGING = frozenset({"record_episode"})  # sent again only with their request id (see robomem.ros.calls)
HOME_M = 50.0  # instances() looks this far from the map origin in every direction

MemoryServiceError = ServiceError  # the memory node answered with an error, or did not answer in time


class ObservationPublisher:
    """Publishes observation batches to ``observations``, numbered per publisher (``sequence``) so the
    memory node counts lost ones and clients can wait for them (GetStats.last_sequences)."""

    def __init__(self, node: Node, frame_id: str = "map") -> None:
        self.frame_id = frame_id
        self.publisher = node.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
        self.published = 0

    def ingest(self, batch: ObservationBatch) -> list:
        """Publish one batch (the events come out of the memory node, on ``events``)."""
        self.published += 1
        self.publisher.publish(convert.batch_to_msg(batch, self.frame_id, self.published))
        return []


class MemoryClient:
    """Publishes batches to ``observations`` and calls ``<memory_node>/<service>`` (relative names: in
    ``node``'s namespace; an absolute ``memory_node`` such as ``/memory`` reaches a memory shared by robots).
    ``executor``: the executor that spins ``node`` for these calls (None: rclpy's global one; see robomem.ros.calls)."""

    SERVICES = {
        "where_is": srv.WhereIs, "where_was": srv.WhereWas, "last_seen": srv.LastSeen, "contents": srv.Contents,
        "get_object_state": srv.GetObjectState, "count": srv.Count, "what_changed": srv.WhatChanged,
        "within_radius": srv.WithinRadius, "within_box": srv.WithinBox, "relations": srv.Relations,
        "semantic_search": srv.SemanticSearch, "planner_context": srv.PlannerContext,
        "get_scene_graph": srv.GetSceneGraph, "record_episode": srv.RecordEpisode,
        "similar_episodes": srv.SimilarEpisodes, "get_stats": srv.GetStats, "likely_places": srv.LikelyPlaces,
    }

    def __init__(self, node: Node, memory_node: str = "memory", frame_id: str = "map", timeout_s: float = 10.0,
                 executor: Executor | None = None):
        self.node = node
        self.caller = ServiceCaller(node, executor, timeout_s)
        self.observations = ObservationPublisher(node, frame_id)
        self.publisher = self.observations.publisher
        self.clients = {name: self.caller.client(kind, f"{memory_node}/{name}")
                        for name, kind in self.SERVICES.items()}
        self.expected: dict[str, int] = {}  # robot id -> batch sequence memory must have taken before answering
        self.taken: dict[str, int] = {}  # robot id -> last batch sequence the node is known to have taken
        self.calls = 0

    @property
    def timeout_s(self) -> float:
        return self.caller.timeout_s

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the node's services are matched and this client's ``observations`` publisher has
        matched the node's subscription (a batch published before would be lost: the topic is volatile)."""
        deadline = time.monotonic() + timeout_s
        self.caller.wait_until_ready(timeout_s=timeout_s, what="memory")
        if not self.caller.spin_until(lambda: self.publisher.get_subscription_count() > 0,
                                      max(0.0, deadline - time.monotonic())):
            raise MemoryServiceError("the memory node does not subscribe to observations")

    def call(self, name: str, request: Any) -> Any:
        """Call a memory service: a query is sent again while unanswered, record_episode with its request
        id (see robomem.ros.calls)."""
        self.calls += 1
        return self.caller.call(self.clients[name], request, name=name, idempotent=name not in STATE_CHANGING)

    def close(self) -> None:
        """Destroy this client's service clients and its publisher."""
        self.caller.close()
        self.node.destroy_publisher(self.publisher)

    @property
    def published(self) -> int:
        return self.observations.published

    def ingest(self, batch: ObservationBatch) -> None:
        """Publish one batch; the next answer will reflect it."""
        self.observations.ingest(batch)
        self.expect(batch.robot, self.published)

    def expect(self, robot_id: str, sequence: int) -> None:
        """The next answer must reflect ``robot_id``'s batches up to ``sequence`` (published by this
        client or by another process, e.g. the robot's perception)."""
        if sequence > self.expected.get(robot_id, 0):
            self.expected[robot_id] = int(sequence)

    def stats(self) -> dict[str, int]:
        return self._stats()[0]

    def _stats(self) -> tuple[dict[str, int], dict[str, int]]:
        response = self.call("get_stats", srv.GetStats.Request())
        counters = {c.name: c.value for c in response.counters} | {"objects_believed": response.objects_believed}
        return counters, dict(zip(response.robot_ids, (int(s) for s in response.last_sequences), strict=True))

    def sync(self, timeout_s: float | None = None) -> None:
        """Wait until the node has taken every batch expected so far (ingested, rejected or counted
        lost), so that the next answer reflects them (no call when nothing new is expected)."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        def behind() -> dict[str, str]:
            return {r: f"{self.taken.get(r, 0)}/{s}" for r, s in self.expected.items() if self.taken.get(r, 0) < s}

        while behind():
            self.taken = self._stats()[1]
            if not behind():
                return
            if time.monotonic() > deadline:
                raise MemoryServiceError(f"the memory node has not taken these robots' batches: {behind()}")
            self.caller.spin_once(0.01)


def _near(near: Iterable[float] | None) -> tuple[bool, Any]:
    if near is None:
        return False, convert.point_to_msg([0.0, 0.0, 0.0])
    point = [float(v) for v in near]
    return True, convert.point_to_msg(point if len(point) == 3 else [*point[:2], NEAR_Z_M])


def _record(info: rmsg.ObjectInfo) -> ObjectRecord:
    return ObjectRecord(
        label=info.label, center=tuple(convert.xyz(info.center)), size=tuple(convert.xyz(info.size)),
        track_id=int(info.track_id), receptacle=info.receptacle or None, relation=info.relation or None,
        state=convert.state_from_msgs(info.state), last_seen=convert.time_from_msg(info.last_seen),
    )


class RosTools:
    """The planner's memory tools over the memory node's services (see robomem.planner.tools)."""

    def __init__(self, client: MemoryClient) -> None:
        self.client = client

    def _synced(self) -> None:
        self.client.sync()

    def where_is(self, label: str, near: Iterable[float] | None = None, at: float | None = None
                 ) -> ObjectRecord | None:
        self._synced()
        use_near, point = _near(near)
        request = srv.WhereIs.Request(label=label, use_near=use_near, near=point, use_time=at is not None,
                                      at=convert.time_to_msg(at))
        response = self.client.call("where_is", request)
        return _record(response.object) if response.found else None

    def contents(self, receptacle: str, at: float | None = None) -> list[ObjectRecord]:
        self._synced()
        request = srv.Contents.Request(receptacle=receptacle, use_time=at is not None, at=convert.time_to_msg(at))
        return [_record(o) for o in self.client.call("contents", request).objects]

    def instances(self, label: str | None) -> list[ObjectRecord]:
        """Every believed instance of ``label`` (None: of any label) within 50 m of the map origin: a home."""
        self._synced()
        request = srv.WithinBox.Request(lower=convert.point_to_msg([-HOME_M] * 3), upper=convert.point_to_msg(
            [HOME_M] * 3), label=label or "")
        return [_record(o) for o in self.client.call("within_box", request).objects]

    def what_changed(self, since: float) -> list[ChangeRecord]:
        self._synced()
        changes = self.client.call("what_changed", srv.WhatChanged.Request(since=convert.time_to_msg(since))).changes
        out = []
        for change in changes:
            center = None
            if change.change != "disappeared":
                now = self.where_is(change.label)
                center = None if now is None else now.center
            out.append(ChangeRecord(change.label, change.change, int(change.track_id), center))
        return out

    def last_seen(self, label: str) -> float | None:
        self._synced()
        response = self.client.call("last_seen", srv.LastSeen.Request(label=label))
        return convert.time_from_msg(response.stamp) if response.found else None

    def planner_context(self, query: str, budget: int = 200) -> str:
        self._synced()
        request = srv.PlannerContext.Request(query=query, token_budget=max(1, int(budget)))
        return self.client.call("planner_context", request).context

    def likely_places(self, label: str, k: int = 5) -> list[PlaceRecord]:
        self._synced()
        found = self.client.call("likely_places", srv.LikelyPlaces.Request(label=label, max_results=max(1, int(k))))
        return [PlaceRecord(_record(info), float(score), reason, relation, "prior" if source == "default" else source,
                            source != "default")
                for info, score, reason, source, relation in zip(found.places, found.scores, found.reasons,
                                                                 found.sources, found.relations, strict=False)]

    def search(self, text: str, k: int = 5) -> list[str]:
        self._synced()
        found = self.client.call("semantic_search", srv.SemanticSearch.Request(text=text, k=k, min_similarity=0.5))
        labels: list[str] = []
        for info in found.objects:
            if info.label not in labels:
                labels.append(info.label)
        return labels


class RosExperience:
    """Experience memory over the memory node's services: record runs, few-shot text of similar ones
    (what :class:`robomem.planner.LLMPlanner` takes as ``experience``)."""

    def __init__(self, client: MemoryClient) -> None:
        self.client = client

    def record(self, episode: TaskEpisode) -> int:
        request = srv.RecordEpisode.Request(episode=convert.episode_to_msg(episode))
        response = self.client.call("record_episode", request)
        return int(response.episode_id)

    def similar(self, instruction: str, k: int = 3, successful_only: bool = True) -> list[tuple[TaskEpisode, float]]:
        response = self.client.call("similar_episodes", srv.SimilarEpisodes.Request(
            instruction=instruction, k=k, successful_only=successful_only))
        return [(convert.episode_from_msg(e), float(s)) for e, s in zip(response.episodes, response.similarities,
                                                                        strict=True)]

    def render_examples(self, instruction: str, k: int = 3, token_budget: int = 200,
                        successful_only: bool = True) -> str:
        return render_examples([e for e, _ in self.similar(instruction, k, successful_only)], token_budget)
