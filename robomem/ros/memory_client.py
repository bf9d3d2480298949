"""A client of the memory node: publish observation batches, ask its services.

:class:`MemoryClient` is what a robot program (the simulator, a planner) uses to talk to a memory node
running in another process; :class:`RosTools` gives the planner's :class:`MemoryTools` protocol over
it, so a planner uses memory only through the node's services.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import rclpy
from rclpy.node import Node

from robomem import msg as rmsg
from robomem import srv
from robomem.core.types import ObservationBatch
from robomem.planner.tools import NEAR_Z_M, ChangeRecord, ObjectRecord
from robomem.ros import convert
from robomem.ros.qos import observation_qos

ATTEMPT_S = 5.0  # a query unanswered this long is sent again (see MemoryClient.call)
NOT_REPEATED = frozenset({"record_episode"})
HOME_M = 50.0  # instances() looks this far from the map origin in every direction


class MemoryServiceError(RuntimeError):
    """The memory node answered with an error, or did not answer in time."""


class MemoryClient:
    """Publishes batches to ``observations`` and calls ``/<memory_node>/<service>``."""

    SERVICES = {
        "where_is": srv.WhereIs, "where_was": srv.WhereWas, "last_seen": srv.LastSeen, "contents": srv.Contents,
        "get_state": srv.GetState, "count": srv.Count, "what_changed": srv.WhatChanged,
        "within_radius": srv.WithinRadius, "within_box": srv.WithinBox, "relations": srv.Relations,
        "semantic_search": srv.SemanticSearch, "planner_context": srv.PlannerContext,
        "get_scene_graph": srv.GetSceneGraph, "record_episode": srv.RecordEpisode,
        "similar_episodes": srv.SimilarEpisodes, "get_stats": srv.GetStats,
    }

    def __init__(self, node: Node, memory_node: str = "memory", frame_id: str = "map", timeout_s: float = 10.0):
        self.node = node
        self.frame_id = frame_id
        self.timeout_s = timeout_s
        self.publisher = node.create_publisher(rmsg.ObservationBatch, "observations", observation_qos(100))
        self.clients = {name: node.create_client(kind, f"/{memory_node}/{name}")
                        for name, kind in self.SERVICES.items()}
        self.published = 0
        self.taken = 0  # batches the node is known to have taken (ingested, rejected or lost)
        self.calls = 0

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        """Wait for the node's services and for its subscription to ``observations``."""
        deadline = time.monotonic() + timeout_s
        for name, client in self.clients.items():
            if not client.wait_for_service(timeout_sec=max(0.1, deadline - time.monotonic())):
                raise MemoryServiceError(f"memory service {name} did not appear within {timeout_s} s")
        while self.publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise MemoryServiceError("the memory node does not subscribe to observations")
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def call(self, name: str, request: Any) -> Any:
        """Call a service. A query whose answer does not come within ATTEMPT_S is asked again, until
        ``timeout_s``: Fast DDS can drop the response to a client whose response reader the server has
        not discovered yet ("failed to send response"), and queries are safe to repeat. Recording an
        episode is not repeated."""
        self.calls += 1
        repeatable = name not in NOT_REPEATED
        deadline = time.monotonic() + self.timeout_s
        while True:
            future = self.clients[name].call_async(request)
            remaining = max(0.0, deadline - time.monotonic())
            rclpy.spin_until_future_complete(
                self.node, future, timeout_sec=min(ATTEMPT_S, remaining) if repeatable else remaining
            )
            if future.done() or not repeatable or time.monotonic() >= deadline:
                break
        if not future.done():
            raise MemoryServiceError(f"memory service {name} did not answer within {self.timeout_s} s")
        response = future.result()
        if getattr(response, "error", ""):
            raise MemoryServiceError(f"{name}: {response.error}")
        return response

    def ingest(self, batch: ObservationBatch) -> None:
        """Publish one batch (numbered, so the node counts any that get lost)."""
        self.published += 1
        self.publisher.publish(convert.batch_to_msg(batch, self.frame_id, self.published))

    def stats(self) -> dict[str, int]:
        response = self.call("get_stats", srv.GetStats.Request())
        return {c.name: c.value for c in response.counters} | {"objects_believed": response.objects_believed}

    def sync(self, timeout_s: float | None = None) -> None:
        """Wait until the node has taken every batch published so far (ingested, rejected or lost), so
        that the next answer reflects them (no call when nothing was published since the last sync)."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while self.taken < self.published:
            counters = self.stats()
            self.taken = counters.get("batches_received", 0) + counters.get("batches_lost", 0)
            if self.taken >= self.published:
                return
            if time.monotonic() > deadline:
                raise MemoryServiceError(f"the memory node took {counters.get('batches_received', 0)} of "
                                         f"{self.published} batches")
            rclpy.spin_once(self.node, timeout_sec=0.01)


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

    def instances(self, label: str) -> list[ObjectRecord]:
        """Every believed instance of ``label`` (within 50 m of the map origin: a home)."""
        self._synced()
        request = srv.WithinBox.Request(lower=convert.point_to_msg([-HOME_M] * 3), upper=convert.point_to_msg(
            [HOME_M] * 3), label=label)
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

    def search(self, text: str, k: int = 5) -> list[str]:
        self._synced()
        found = self.client.call("semantic_search", srv.SemanticSearch.Request(text=text, k=k, min_similarity=0.5))
        labels: list[str] = []
        for info in found.objects:
            if info.label not in labels:
                labels.append(info.label)
        return labels
