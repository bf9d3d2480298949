"""The memory node: owns the core Memory, ingests observation batches, serves every retrieval.

Topics (relative names; remap as usual):
- ``observations`` (sub, robomem/ObservationBatch): RELIABLE, KEEP_LAST(depth = ``observation_queue``,
  default 100), VOLATILE. Observations are evidence that an object is, or is no longer, somewhere:
  reliable delivery with a queue of a few seconds at camera rates so bursts are not silently dropped.
- ``events`` (pub, robomem/MemoryEvent): RELIABLE, KEEP_LAST(1000), VOLATILE — every change memory notices.
- ``scene_graph`` (pub, robomem/SceneGraph) and ``scene_graph_markers`` (pub, visualization_msgs/MarkerArray):
  RELIABLE, KEEP_LAST(1), TRANSIENT_LOCAL (latched: RViz or a planner that starts late gets the latest
  graph at once; set the RViz topic's durability to Transient Local). Built and published only while
  someone subscribes, when memory changed or a subscriber joined, at most every ``graph_period_s``
  (longer if a build is slow); markers for at most ``max_marker_objects`` objects.
Batches carry a per-robot ``sequence``; gaps are counted as ``batches_lost`` (a full queue, a lossy link).
Services (private, ``~/<name>``, robomem/srv): where_is, where_was, last_seen, contents, get_state, count,
what_changed, within_radius, within_box, relations, semantic_search, planner_context, get_scene_graph,
record_episode, similar_episodes, get_stats. Every one is a query except record_episode, whose request
carries a ``request_id``: a request sent again with the same id (its answer was lost on the way) gets
the first answer, and the episode is kept once (the node remembers the last 256 ids while it runs;
robomem.ros.calls).

Bad input never reaches memory and never stops the node: a rejected batch or observation is logged
(throttled) with its reason, counted (``rejected.<reason>``, see get_stats) and persisted by the core.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from robomem import msg as rmsg
from robomem import srv
from robomem.core.config import MemoryConfig
from robomem.core.memory import Memory
from robomem.core.render import estimate_tokens, render_context
from robomem.core.types import RejectedInput, checked_label
from robomem.ros import convert
from robomem.ros.calls import AnsweredRequests
from robomem.ros.markers import GraphMessages
from robomem.ros.qos import EVENTS_QOS, LATCHED_QOS, observation_qos
from robomem.ros.runtime import run_node

MAX_TEXT_CHARS = 2000
MAX_SPATIAL_RADIUS_M = 100.0


def _text(text: str, name: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise RejectedInput("oversized", f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return text


def _radius(value: float) -> float:
    if not math.isfinite(value) or not 0.0 < value <= MAX_SPATIAL_RADIUS_M:
        raise RejectedInput("bad_radius", f"radius must be in (0, {MAX_SPATIAL_RADIUS_M}] m, got {value}")
    return float(value)


class MemoryNode(Node):
    """Translates messages to core calls and back; the intelligence is in robomem.core."""

    def __init__(self, memory: Memory | None = None, node_name: str = "memory") -> None:
        super().__init__(node_name)
        self.declare_parameter("config_file", "")  # robomem core YAML (config/memory.yaml); "" = defaults
        self.declare_parameter("db_path", "robomem_memory.sqlite")  # overrides the YAML's db_path
        self.declare_parameter("map_frame", "map")
        self.declare_parameter("max_observations_per_batch", 512)
        self.declare_parameter("max_results", 500)
        self.declare_parameter("observation_queue", 100)
        self.declare_parameter("graph_period_s", 1.0)
        self.declare_parameter("max_marker_objects", 2000)
        param = self.get_parameter
        self.map_frame = param("map_frame").value
        self.max_observations = int(param("max_observations_per_batch").value)
        self.max_results = int(param("max_results").value)
        if memory is None:
            config_file = param("config_file").value
            config = MemoryConfig.from_yaml(config_file) if config_file else MemoryConfig()
            config.db_path = param("db_path").value
            memory = Memory(config)
        self.memory = memory
        self.counters: Counter[str] = Counter()
        self.graph_period_s = float(param("graph_period_s").value)
        self.graph_messages = GraphMessages(self.map_frame, int(param("max_marker_objects").value))
        self._graph_version = -1
        self._next_graph_time = 0.0
        self._listeners = (0, 0)
        self._sequences: dict[str, int] = {}
        self._last_reject_log = 0.0

        self.events_pub = self.create_publisher(rmsg.MemoryEvent, "events", EVENTS_QOS)
        self.graph_pub = self.create_publisher(rmsg.SceneGraph, "scene_graph", LATCHED_QOS)
        self.markers_pub = self.create_publisher(MarkerArray, "scene_graph_markers", LATCHED_QOS)
        self.create_subscription(
            rmsg.ObservationBatch, "observations", self.on_observations,
            observation_qos(int(param("observation_queue").value)),
        )
        handlers: dict[str, tuple[Any, Callable[[Any, Any], None]]] = {
            "where_is": (srv.WhereIs, self._where_is),
            "where_was": (srv.WhereWas, self._where_was),
            "last_seen": (srv.LastSeen, self._last_seen),
            "contents": (srv.Contents, self._contents),
            "get_state": (srv.GetState, self._get_state),
            "count": (srv.Count, self._count),
            "what_changed": (srv.WhatChanged, self._what_changed),
            "within_radius": (srv.WithinRadius, self._within_radius),
            "within_box": (srv.WithinBox, self._within_box),
            "relations": (srv.Relations, self._relations),
            "semantic_search": (srv.SemanticSearch, self._semantic_search),
            "planner_context": (srv.PlannerContext, self._planner_context),
            "get_scene_graph": (srv.GetSceneGraph, self._get_scene_graph),
            "record_episode": (srv.RecordEpisode, self._record_episode),
            "similar_episodes": (srv.SimilarEpisodes, self._similar_episodes),
            "get_stats": (srv.GetStats, self._get_stats),
        }
        self.episodes_answered = AnsweredRequests()  # record_episode: a repeated request id gets its first answer
        for name, (service_type, handler) in handlers.items():
            serve = self._guarded(name, handler)
            if name == "record_episode":
                serve = self.episodes_answered.serve(serve, self._repeated_episode)
            self.create_service(service_type, f"~/{name}", serve)
        self.create_timer(min(self.graph_period_s, 0.5), self.publish_graph)
        self.get_logger().info(
            f"memory ready: {self.memory.count_believed()} objects believed, db {self.memory.config.db_path!r}"
        )

    # ------------------------------------------------------------------ observations
    def on_observations(self, message: rmsg.ObservationBatch) -> None:
        """Validate, ingest, publish the change events. Never raises."""
        self.counters["batches_received"] += 1
        self._count_gaps(message.robot_id, message.sequence)
        stamp = convert.time_from_msg(message.header.stamp)
        try:
            batch, rejected = convert.batch_from_msg(message, self.map_frame, self.max_observations)
        except RejectedInput as error:
            self._rejected(error, stamp)
            self.counters["batches_rejected"] += 1
            return
        for error in rejected:
            self._rejected(error, stamp)
        try:
            events = self.memory.ingest(batch)
        except RejectedInput as error:  # the core has counted and stored it
            self._log_rejection(error)
            self.counters["batches_rejected"] += 1
            return
        except Exception as error:  # a bug must not take the robot's memory down
            self.counters["internal_errors"] += 1
            self.get_logger().error(f"ingest failed: {error!r}")
            return
        for event in events:
            self.events_pub.publish(convert.event_to_msg(event))

    def _count_gaps(self, robot: str, sequence: int) -> None:
        """Batches a robot numbered but that never arrived (a full queue, a lossy link) are counted."""
        if sequence == 0:
            return
        last = self._sequences.get(robot)
        if last is not None and sequence > last + 1:
            self.counters["batches_lost"] += sequence - last - 1
        self._sequences[robot] = sequence  # a lower number: the publisher restarted

    def _rejected(self, error: RejectedInput, stamp: float) -> None:
        self.memory.record_rejection(error, stamp if math.isfinite(stamp) else 0.0)
        self._log_rejection(error)

    def _log_rejection(self, error: RejectedInput) -> None:
        now = time.monotonic()
        if now - self._last_reject_log >= 1.0:  # throttled: a broken publisher must not flood the log
            self._last_reject_log = now
            self.get_logger().warning(f"rejected observation input ({error.reason}): {error.detail}")

    # ------------------------------------------------------------------ scene graph
    def publish_graph(self) -> None:
        """Publish the graph and markers when memory changed or a subscriber joined — only to topics
        someone listens to. A slow build stretches the period: at most a quarter of the node's time."""
        listeners = (self.graph_pub.get_subscription_count(), self.markers_pub.get_subscription_count())
        joined = any(now > before for now, before in zip(listeners, self._listeners, strict=True))
        self._listeners = listeners
        version = self.memory.events_recorded + self.memory.counters["batches"]
        if not any(listeners) or (version == self._graph_version and not joined):
            return
        if not joined and time.monotonic() < self._next_graph_time:
            return
        start = time.monotonic()
        self._graph_version = version
        nodes, edges = self.memory.scene_graph()
        if listeners[0]:
            self.graph_pub.publish(self.graph_messages.graph(nodes, edges, self.get_clock().now().to_msg()))
        if listeners[1]:
            self.markers_pub.publish(self.graph_messages.markers(nodes, edges))
        self._next_graph_time = start + max(self.graph_period_s, 4.0 * (time.monotonic() - start))

    # ------------------------------------------------------------------ services
    def _guarded(self, name: str, handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], Any]:
        """Wrap a handler: a rejected request answers with ``error`` set; nothing escapes."""

        def serve(request: Any, response: Any) -> Any:
            self.counters[f"requests.{name}"] += 1
            try:
                handler(request, response)
            except RejectedInput as error:
                self.counters[f"rejected_requests.{error.reason}"] += 1
                response.error = f"{error.reason}: {error.detail}"
            except Exception as error:
                self.counters["internal_errors"] += 1
                self.get_logger().error(f"{name} failed: {error!r}")
                if hasattr(response, "error"):
                    response.error = f"internal: {error!r}"
            return response

        return serve

    @staticmethod
    def _at(request: Any) -> float | None:
        return convert.time_from_msg(request.at) if request.use_time else None

    @staticmethod
    def _near(request: Any) -> Any:
        return convert.finite_point(request.near, "near") if request.use_near else None

    def _cap(self, requested: int) -> int:
        return self.max_results if requested <= 0 else min(int(requested), self.max_results)

    def _fill_objects(self, response: Any, infos: list, limit: int) -> None:
        response.objects = [convert.info_to_msg(i) for i in infos[:limit]]
        response.truncated = len(infos) > limit

    def _where_is(self, request: srv.WhereIs.Request, response: srv.WhereIs.Response) -> None:
        info = self.memory.where_is(checked_label(request.label), near=self._near(request), at=self._at(request))
        response.found = info is not None
        if info is not None:
            response.object = convert.info_to_msg(info)

    def _where_was(self, request: srv.WhereWas.Request, response: srv.WhereWas.Response) -> None:
        at = convert.time_from_msg(request.at)
        info = self.memory.where_was(checked_label(request.label), at, near=self._near(request))
        response.found = info is not None
        if info is not None:
            response.object = convert.info_to_msg(info)

    def _last_seen(self, request: srv.LastSeen.Request, response: srv.LastSeen.Response) -> None:
        seen = self.memory.last_seen(checked_label(request.label), near=self._near(request), at=self._at(request))
        response.found = seen is not None
        response.stamp = convert.time_to_msg(seen)

    def _contents(self, request: srv.Contents.Request, response: srv.Contents.Response) -> None:
        infos = self.memory.contents(
            checked_label(request.receptacle, "receptacle"), at=self._at(request),
            include_fixtures=request.include_fixtures,
        )
        response.objects = [convert.info_to_msg(i) for i in infos[: self.max_results]]

    def _get_state(self, request: srv.GetState.Request, response: srv.GetState.Response) -> None:
        key = checked_label(request.key, "key")
        value = self.memory.state(checked_label(request.label), key, near=self._near(request), at=self._at(request))
        response.found = value is not None
        if value is not None:
            response.value = convert.state_value_to_msg(key, value)

    def _count(self, request: srv.Count.Request, response: srv.Count.Response) -> None:
        response.count = self.memory.count(checked_label(request.label), at=self._at(request))

    def _what_changed(self, request: srv.WhatChanged.Request, response: srv.WhatChanged.Response) -> None:
        until = convert.time_from_msg(request.until) if request.use_until else None
        room = _text(request.room, "room") or None
        changes = self.memory.what_changed(convert.time_from_msg(request.since), until, room=room)
        limit = self._cap(request.max_results)
        response.changes = [convert.change_to_msg(c) for c in changes[:limit]]
        response.truncated = len(changes) > limit

    def _within_radius(self, request: srv.WithinRadius.Request, response: srv.WithinRadius.Response) -> None:
        center = convert.finite_point(request.center, "center")
        label = _text(request.label, "label") or None
        infos = self.memory.within_radius(center, _radius(request.radius), label)
        self._fill_objects(response, infos, self._cap(request.max_results))

    def _within_box(self, request: srv.WithinBox.Request, response: srv.WithinBox.Response) -> None:
        lower = convert.finite_point(request.lower, "lower")
        upper = convert.finite_point(request.upper, "upper")
        if (upper < lower).any() or float(((upper - lower) ** 2).sum()) ** 0.5 > 2 * MAX_SPATIAL_RADIUS_M:
            raise RejectedInput("bad_box", "need lower <= upper and a diagonal of at most 200 m")
        label = _text(request.label, "label") or None
        self._fill_objects(response, self.memory.within_box(lower, upper, label), self._cap(request.max_results))

    def _relations(self, request: srv.Relations.Request, response: srv.Relations.Response) -> None:
        label, near = checked_label(request.label), self._near(request)
        radius = _radius(request.radius) if request.radius != 0.0 else None
        anchor = self.memory.where_is(label, near=near)
        response.found = anchor is not None
        if anchor is None:
            return
        response.object = convert.info_to_msg(anchor)
        nearby = self.memory.near(label, radius=radius, near=near)[: self.max_results]
        response.nearby = [convert.info_to_msg(i) for i in nearby]
        me = str(anchor.track_id)
        edges = [rmsg.SceneGraphEdge(child=me, parent=str(anchor.receptacle_id), relation=anchor.relation or "on")]
        response.edges = (edges if anchor.receptacle_id is not None else []) + [
            rmsg.SceneGraphEdge(child=me, parent=str(i.track_id), relation="near") for i in nearby
        ]

    def _semantic_search(self, request: srv.SemanticSearch.Request, response: srv.SemanticSearch.Response) -> None:
        k = self._cap(request.k)
        if request.text.strip():
            found = self.memory.search(_text(request.text, "text"), k=k, min_similarity=request.min_similarity)
        elif len(request.embedding):
            vector = convert.np.asarray(request.embedding, dtype=float)
            if not convert.np.all(convert.np.isfinite(vector)) or len(vector) > 4096:
                raise RejectedInput("bad_embedding", "embedding must be finite with at most 4096 values")
            found = self.memory.search_by_embedding(vector, k=k)
        else:
            raise RejectedInput("malformed", "give a text or an embedding")
        response.objects = [convert.info_to_msg(info) for info, _ in found]
        response.similarities = [float(s) for _, s in found]

    def _planner_context(self, request: srv.PlannerContext.Request, response: srv.PlannerContext.Response) -> None:
        budget = int(request.token_budget)
        if not 0 < budget <= 32000:
            raise RejectedInput("bad_budget", f"token_budget must be in (0, 32000], got {budget}")
        text = render_context(self.memory, _text(request.query, "query"), budget, int(request.max_changes))
        response.context = text
        response.tokens = estimate_tokens(text)

    def _get_scene_graph(self, request: srv.GetSceneGraph.Request, response: srv.GetSceneGraph.Response) -> None:
        nodes, edges = self.memory.scene_graph()
        response.graph = self.graph_messages.graph(nodes, edges, self.get_clock().now().to_msg())

    def _record_episode(self, request: srv.RecordEpisode.Request, response: srv.RecordEpisode.Response) -> None:
        episode = convert.episode_from_msg(request.episode)
        response.episode_id = int(self.memory.experience.record(episode))
        response.accepted = True

    def _repeated_episode(self) -> None:
        """A record_episode request sent again (its answer was lost): answered, the episode kept once."""
        self.counters["repeated_requests.record_episode"] += 1

    def _similar_episodes(
        self, request: srv.SimilarEpisodes.Request, response: srv.SimilarEpisodes.Response
    ) -> None:
        instruction = _text(request.instruction, "instruction")
        if not instruction.strip():
            raise RejectedInput("malformed", "instruction is empty")
        found = self.memory.experience.similar(instruction, k=self._cap(request.k),
                                               successful_only=request.successful_only)
        response.episodes = [convert.episode_to_msg(e) for e, _ in found]
        response.similarities = [float(s) for _, s in found]

    def _get_stats(self, request: srv.GetStats.Request, response: srv.GetStats.Response) -> None:
        counters = Counter(self.memory.counters) + self.counters
        response.counters = [rmsg.MemoryCounter(name=k, value=int(v)) for k, v in sorted(counters.items())]
        response.objects_believed = self.memory.count_believed()
        response.robot_ids = sorted(self._sequences)
        response.last_sequences = [int(self._sequences[r]) for r in response.robot_ids]

    def close(self) -> None:
        self.memory.close()


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run robomem memory_node`` or ``python -m robomem.ros.memory_node``)."""
    return run_node(MemoryNode, args)


if __name__ == "__main__":
    sys.exit(main())
