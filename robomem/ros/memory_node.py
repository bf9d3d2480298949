"""The memory node: owns the core Memory, ingests observation batches, serves every retrieval.

A managed (lifecycle) node: ``configure`` opens the store, ``activate`` starts ingest and answers,
``deactivate`` stops ingest and flushes (what is in memory is on disk), ``cleanup`` closes the store.
With ``autostart`` (default true; ``robomem ros`` and the launch file leave it on) it goes to active by
itself; with autostart false a lifecycle manager drives it (``~/change_state``, lifecycle_msgs). Its
services exist in every state; outside ``active`` they answer STATUS_NOT_ACTIVE.

Every name is relative, so a namespace (``-r __ns:=/r2``, ``robomem ros --namespace r2``) moves all of it:

Topics:
- ``observations`` (sub, robomem/ObservationBatch; the ``observation_topics`` parameter lists the
  topics, e.g. ``[/r1/observations, /r2/observations]`` for one memory shared by robots; each batch
  keeps its ``robot_id``): RELIABLE, KEEP_LAST(depth = ``observation_queue``, default 100), VOLATILE.
  Observations are evidence that an object is, or is no longer, somewhere: reliable delivery with a
  queue of a few seconds at camera rates so bursts are not silently dropped.
- ``events`` (pub, robomem/MemoryEvent): RELIABLE, KEEP_LAST(1000), VOLATILE — every change memory notices.
- ``skill_events`` (sub, robomem/MemoryEvent from the skill server): a pick (``picked_up``) or place
  (``placed``) that succeeded, mapped to Memory.picked / Memory.placed (robomem.ros.skill_server.skill_event).
- ``scene_graph`` (pub, robomem/SceneGraph) and ``scene_graph_markers`` (pub, visualization_msgs/MarkerArray):
  RELIABLE, KEEP_LAST(1), TRANSIENT_LOCAL (latched: RViz or a planner that starts late gets the latest
  graph at once; set the RViz topic's durability to Transient Local). Built and published only while
  someone subscribes, when memory changed or a subscriber joined, at most every ``graph_period_s``
  (longer if a build is slow); markers for at most ``max_marker_objects`` objects.
- ``/diagnostics`` (pub, diagnostic_msgs/DiagnosticArray, absolute as ROS convention has it): ingest
  rate, lag, rejections by reason, flush latency, database size; OK/WARN/ERROR by the ``diag_*``
  thresholds (robomem.ros.diagnostics).
Batches carry a per-robot ``sequence``; gaps are counted as ``batches_lost`` (a full queue, a lossy link).

Services (private, ``~/<name>``, robomem/srv): where_is, where_was, last_seen, contents,
get_object_state, count, what_changed, within_radius, within_box, relations, semantic_search,
planner_context, get_scene_graph, record_episode, similar_episodes, get_stats, likely_places. Every answer carries
``status`` (STATUS_* constants of its .srv), ``reason`` (a short key, counted as
``rejected_requests.<reason>``) and ``message``; an answer with positions carries a ``header`` (the map
frame; the time answered about). Not found: ``found`` false, STATUS_NOT_FOUND, the object's track_id -1.
Every one is a query except record_episode, whose request carries a ``request_id``: a request sent
again with the same id (its answer was lost on the way) gets the first answer, and the episode is kept
once (the node remembers the last 256 ids while it runs; robomem.ros.calls).

Frames: a batch in another frame than ``map_frame`` (a camera's, the robot's) is transformed into it at
its stamp from ``/tf`` and ``/tf_static`` (robomem.ros.tf; centres and view positions moved, boxes and
view yaw rotated); a transform not there yet: the batch waits up to ``tf_wait_s``, then is rejected
(``rejected.transform_timeout``, or ``unknown_frame`` for a frame /tf never named); a stamp older than
the ``tf_cache_s`` buffer: ``rejected.transform_too_old`` at once.

Time: batch stamps are passed to the core as they are, never re-stamped here; the core's stamp policy
(robomem.core.temporal.StampPolicy) refuses a batch from the future, one too late (``rejected.late``,
an unstamped one included: its stamp 0 is late) or a clock jump, takes one late within its tolerance as
of memory's clock (``late_within_tolerance``) and skips a repeated stamp (``duplicate_batches``); the
node logs each (throttled, once a second per reason) and counts it.

Fleet (README "Fleet memory"): with ``fleet`` true and ``db_path`` a ``postgresql://`` URL the node joins
the fleet of memories sharing that database (robomem.core.fleet.FleetMember): its batches are published
to the fleet log, the other nodes' are taken in (LISTEN/NOTIFY, in log order, late ones as history), so
its answers include what the other robots saw; their change events go out on ``events`` too. Its name in
the fleet: ``fleet_node``, else the URL's ``node=``, else the namespace. get_stats adds ``fleet.*``.

Bad input never reaches memory and never stops the node: a rejected batch or observation is logged
(throttled) with its reason, counted (``rejected.<reason>``, see get_stats) and persisted by the core.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from robomem import msg as rmsg
from robomem import srv
from robomem.core.config import MemoryConfig
from robomem.core.fleet import FleetMember, fleet_url
from robomem.core.memory import Memory
from robomem.core.render import estimate_tokens, render_context
from robomem.core.states import canonical_key
from robomem.core.types import RejectedInput, checked_label
from robomem.ros import convert
from robomem.ros.calls import AnsweredRequests
from robomem.ros.diagnostics import DIAGNOSTIC_SPECS, IngestDiagnostics
from robomem.ros.markers import GraphMessages
from robomem.ros.params import Parameters, Spec, not_empty
from robomem.ros.qos import EVENTS_QOS, LATCHED_QOS, observation_qos
from robomem.ros.runtime import run_node
from robomem.ros.state_dir import resolve_db_path
from robomem.ros.tf import TOO_OLD, TfListener, TransformBuffer, frame_name, in_map

_FAILED = object()  # what MemoryNode._into_core gives for an input the core refused or failed on

MAX_TEXT_CHARS = 2000
MAX_SPATIAL_RADIUS_M = 100.0
Status = srv.WhereIs.Response  # the STATUS_* codes, the same in every memory service
STATUS_BY_REASON = {"unknown_room": Status.STATUS_UNKNOWN_ROOM, "unknown_state_key": Status.STATUS_UNKNOWN_STATE_KEY}
LOG_EVERY_S = 1.0  # throttle of repeated warnings
SHOWN_STATES = ("open", "on")  # drawn on the RViz markers (the core's keys: isOpen is open, isToggled on)
TF_RETRY_S = 0.02  # batches waiting for /tf are tried again this often

SPECS = (
    Spec("config_file", "", "robomem core YAML (config/memory.yaml); '' = defaults", read_only=True),
    Spec("db_path", "", "SQLite file of this memory; '' = memory.sqlite in the state directory "
         "($ROS_HOME/robomem/<namespace>/, ROS_HOME defaults to ~/.ros); relative = inside it; ':memory:' keeps "
         "nothing", read_only=True),
    Spec("map_frame", "map", "frame of observation batches and of every position answered", check=not_empty),
    Spec("max_observations_per_batch", 512, "larger batches are rejected as oversized", 1, 100_000),
    Spec("max_results", 500, "cap on the objects/changes one service answer returns", 1, 100_000),
    Spec("observation_queue", 100, "depth of the observations subscription (RELIABLE)", 1, 10_000, read_only=True),
    Spec("observation_topics", ["observations"], "topics of observation batches; several: one memory shared by "
         "robots, e.g. [/r1/observations, /r2/observations] (each batch keeps its robot_id)", read_only=True),
    Spec("graph_period_s", 1.0, "scene graph and RViz markers republished at most this often (s)", 0.05, 1e9),
    Spec("max_marker_objects", 2000, "objects drawn as RViz markers at most", 0, 1_000_000),
    Spec("use_tf", True, "take batches in any frame: transformed into map_frame from /tf and /tf_static at their "
         "stamp (false: only map_frame batches)", read_only=True),
    Spec("tf_wait_s", 0.5, "a batch whose transform has not arrived waits this long, then is rejected (s)", 0.0, 10.0),
    Spec("tf_cache_s", 10.0, "transforms kept this long (s); older stamps are rejected at once", 1.0, 3600.0,
         read_only=True),
    Spec("tf_max_pending", 200, "batches waiting for /tf at most (the oldest are rejected)", 1, 100_000),
    Spec("fleet", False, "join the fleet: db_path is a postgresql:// URL shared by the robots' memories; this "
         "node's batches are shared, the others' taken in", read_only=True),
    Spec("fleet_node", "", "this memory's name in the fleet (a-z, 0-9, _); '' = the URL's node=, else the namespace",
         read_only=True),
    Spec("autostart", True, "go to active (configure + activate) at start; false: a lifecycle manager does",
         read_only=True),
    *DIAGNOSTIC_SPECS,
)


def _text(text: str, name: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise RejectedInput("oversized", f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return text


def _radius(value: float) -> float:
    if not math.isfinite(value) or not 0.0 < value <= MAX_SPATIAL_RADIUS_M:
        raise RejectedInput("bad_radius", f"radius must be in (0, {MAX_SPATIAL_RADIUS_M}] m, got {value}")
    return float(value)


class NotFound(Exception):
    """Nothing memory believes matches the request (STATUS_NOT_FOUND, with this message)."""


class MemoryNode(LifecycleNode):
    """Translates messages to core calls and back; the intelligence is in robomem.core."""

    def __init__(self, memory: Memory | None = None, node_name: str = "memory") -> None:
        super().__init__(node_name)
        self.params = Parameters(self, SPECS)
        self.params.on_change(["map_frame", "max_marker_objects"], self._new_graph_messages)
        self._given_memory = memory
        self.memory: Memory | None = None
        self.fleet: FleetMember | None = None
        self.active = False
        self.counters: Counter[str] = Counter()
        self._graph_messages: GraphMessages | None = None
        self._new_graph_messages()
        self._graph_version = -1
        self._next_graph_time = 0.0
        self._listeners = (0, 0)
        self._sequences: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._ingest_subscriptions: list[Any] = []
        self.tf: TransformBuffer | None = None
        self._tf_listener: TfListener | None = None
        self._tf_timer: Any = None
        self._waiting: deque[tuple[float, rmsg.ObservationBatch]] = deque()  # (deadline, batch) waiting for /tf
        self.diagnostics = IngestDiagnostics(self, self.params)

        self.events_pub = self.create_publisher(rmsg.MemoryEvent, "events", EVENTS_QOS)
        self.graph_pub = self.create_publisher(rmsg.SceneGraph, "scene_graph", LATCHED_QOS)
        self.markers_pub = self.create_publisher(MarkerArray, "scene_graph_markers", LATCHED_QOS)
        handlers: dict[str, tuple[Any, Callable[[Any, Any], None]]] = {
            "where_is": (srv.WhereIs, self._where_is),
            "where_was": (srv.WhereWas, self._where_was),
            "last_seen": (srv.LastSeen, self._last_seen),
            "contents": (srv.Contents, self._contents),
            "get_object_state": (srv.GetObjectState, self._get_object_state),
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
            "likely_places": (srv.LikelyPlaces, self._likely_places),
        }
        self.episodes_answered = AnsweredRequests()  # record_episode: a repeated request id gets its first answer
        for name, (service_type, handler) in handlers.items():
            serve = self._guarded(name, handler)
            if name == "record_episode":
                serve = self.episodes_answered.serve(serve, self._repeated_episode)
            self.create_service(service_type, f"~/{name}", serve)
        self.create_timer(0.5, self.publish_graph)
        if self.params["autostart"]:
            self.trigger_configure()
            if self.memory is not None:
                self.trigger_activate()

    @property
    def map_frame(self) -> str:
        return self.params["map_frame"].lstrip("/")

    @property
    def graph_messages(self) -> GraphMessages:
        assert self._graph_messages is not None
        return self._graph_messages

    def _new_graph_messages(self) -> None:
        self._graph_messages = GraphMessages(self.map_frame, int(self.params["max_marker_objects"]))
        self._graph_version = -1  # republish in the new frame

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the store (the memory file)."""
        try:
            if self._given_memory is not None:
                self.memory = self._given_memory
            else:
                config_file = self.params["config_file"]
                config = MemoryConfig.from_yaml(config_file) if config_file else MemoryConfig()
                config.db_path = resolve_db_path(self.params["db_path"], self.get_namespace())
                if self.params["fleet"]:
                    config.db_path = fleet_url(config.db_path, self.params["fleet_node"],
                                               self.get_namespace().strip("/").replace("/", "_") or self.get_name())
                self.memory = Memory(config)
            if self.params["fleet"]:
                self.fleet = FleetMember(self.memory, on_events=self._publish_events)
        except Exception as error:  # a bad file or config: stay unconfigured, say why
            self.get_logger().error(f"configure failed: {error}")
            if self.memory is not None and self.memory is not self._given_memory:
                self.memory.close()  # opened, but it cannot join the fleet
            self.memory = None
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f"memory configured: {self.memory.count_believed()} objects believed, db {self.memory.config.db_path!r}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start ingest (and listening to /tf) and answering."""
        if self.params["use_tf"]:
            self.tf = TransformBuffer(float(self.params["tf_cache_s"]))
            self._tf_listener = TfListener(self, self.tf)
            self._tf_timer = self.create_timer(TF_RETRY_S, lambda: self._waiting and self._retry_waiting())
        qos = observation_qos(int(self.params["observation_queue"]))
        self._ingest_subscriptions = [self.create_subscription(rmsg.ObservationBatch, topic, self.on_observations, qos)
                               for topic in self.params["observation_topics"]]
        self._ingest_subscriptions.append(self.create_subscription(rmsg.MemoryEvent, "skill_events",
                                                                   self.on_skill_event, EVENTS_QOS))
        self.active = True
        if self.fleet is not None:
            self.fleet.start()
        self.get_logger().info(f"memory active: ingesting {[s.topic_name for s in self._ingest_subscriptions]}"
                               + (f", fleet node {self.fleet.node!r}" if self.fleet else ""))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop ingest and flush: what memory holds is in the file."""
        self._stop_ingest()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the store."""
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _stop_ingest(self) -> None:
        self.active = False
        if self.fleet is not None:
            self.fleet.stop()
        for subscription in self._ingest_subscriptions:
            self.destroy_subscription(subscription)
        self._ingest_subscriptions = []
        if self._tf_listener is not None:
            self._tf_listener.destroy(self)
            self.destroy_timer(self._tf_timer)
            self._tf_listener = self._tf_timer = None
        if self.memory is not None:
            for _, message in self._waiting:  # the transform cannot come any more
                self._reject_batch(RejectedInput("transform_timeout", "stopped while waiting for /tf"), message)
        self._waiting = deque()
        if self.memory is not None:
            self.diagnostics.timed_flush(self.memory, sync=True)

    def close(self) -> None:
        """Stop ingest, flush and close the store (idempotent; also at process exit)."""
        if self.memory is None:
            return
        self._stop_ingest()
        self.fleet = None
        self.memory.close()
        self.get_logger().info(f"memory closed: {self.memory.config.db_path!r}")
        self.memory = None

    # ------------------------------------------------------------------ observations
    def on_skill_event(self, message: rmsg.MemoryEvent) -> None:
        """A pick or place the robot did: the object held by the robot, or at the reported spot. Never raises."""
        memory = self.memory
        if not self.active or memory is None:
            self.counters["skill_events_while_inactive"] += 1
            return
        self.counters["skill_events_received"] += 1
        detail = convert.state_from_msgs(message.detail)
        stamp = convert.time_from_msg(message.stamp)
        obj: str | int = int(message.track_id) if message.track_id >= 0 else message.label
        if message.change not in ("picked_up", "placed") or (message.change == "placed" and not message.has_position):
            self.counters["skill_events_rejected"] += 1
            self._rejected(RejectedInput("bad_skill_event", f"{message.change!r} is not picked_up, or placed with "
                                         "a position"[:300]), stamp)
            return
        if message.change == "picked_up":
            position = convert.xyz(message.position) if message.has_position else None
            report = functools.partial(memory.picked, obj, str(detail.get("robot", "")), stamp, position)
        else:
            receptacle_id = detail.get("receptacle_id", -1)
            by_id = isinstance(receptacle_id, float) and receptacle_id >= 0 and receptacle_id.is_integer()
            receptacle = int(receptacle_id) if by_id else (detail.get("receptacle") or None)
            report = functools.partial(memory.placed, obj, convert.xyz(message.position), receptacle, stamp,
                                       bool(detail.get("bottom")))
        if self._into_core("skill event", "skill_events_rejected", report) is _FAILED:
            return
        for event in memory.stm.events()[-1:]:
            self.events_pub.publish(convert.event_to_msg(event))

    def on_observations(self, message: rmsg.ObservationBatch) -> None:
        """Validate, ingest, publish the change events. Never raises."""
        memory = self.memory
        if not self.active or memory is None:
            self.counters["batches_while_inactive"] += 1
            return
        self.counters["batches_received"] += 1
        self._count_gaps(message.robot_id, message.sequence)
        stamp = convert.time_from_msg(message.header.stamp)
        if stamp == 0.0:
            self._log("unstamped", f"batch {message.sequence} of {message.robot_id!r} has no stamp (0): passed to "
                      "memory's time policy as it is")
        message.header.frame_id = frame_name(message.header.frame_id)
        if message.header.frame_id != self.map_frame and self.tf is not None:
            self._waiting.append((time.monotonic() + float(self.params["tf_wait_s"]), message))
            self._retry_waiting()
            return
        self._ingest(message)

    def _retry_waiting(self) -> None:
        """Batches in another frame: transformed into the map frame at their stamp once the transform is
        there; rejected when it is too old (transform_too_old), or after ``tf_wait_s`` (transform_timeout,
        or unknown_frame for a frame /tf never named), or when more than ``tf_max_pending`` wait
        (transform_queue_full, the oldest first)."""
        assert self.tf is not None
        limit = int(self.params["tf_max_pending"])
        while len(self._waiting) > limit:
            _, message = self._waiting.popleft()
            self._reject_batch(RejectedInput("transform_queue_full", f"more than {limit} batches wait for /tf"),
                               message)
        now, still = time.monotonic(), deque()
        for deadline, message in self._waiting:
            source, stamp = message.header.frame_id, convert.time_from_msg(message.header.stamp)
            matrix, reason = self.tf.lookup(self.map_frame, source, stamp)
            if matrix is not None:
                in_map(message, matrix, self.map_frame)
                self.counters["batches_transformed"] += 1
                self._ingest(message)
            elif reason == TOO_OLD:
                self._reject_batch(RejectedInput(TOO_OLD, f"{source} -> {self.map_frame} at {stamp:.3f} is older "
                                                 f"than the {self.tf.cache_s:g} s transform buffer"), message)
            elif now >= deadline:
                known = source in self.tf.frames
                error = (RejectedInput("transform_timeout", f"no {source} -> {self.map_frame} transform at "
                                       f"{stamp:.3f} within {self.params['tf_wait_s']} s") if known else
                         RejectedInput("unknown_frame", f"frame {source!r} is not {self.map_frame!r} and /tf never "
                                       f"named it (waited {self.params['tf_wait_s']} s)"))
                self._reject_batch(error, message)
            else:
                still.append((deadline, message))
        self._waiting = still

    def _reject_batch(self, error: RejectedInput, message: rmsg.ObservationBatch) -> None:
        self._rejected(error, convert.time_from_msg(message.header.stamp))
        self.counters["batches_rejected"] += 1

    def _ingest(self, message: rmsg.ObservationBatch) -> None:
        memory = self.memory
        assert memory is not None
        stamp = convert.time_from_msg(message.header.stamp)
        try:
            batch, rejected = convert.batch_from_msg(message, self.map_frame, int(
                self.params["max_observations_per_batch"]))
        except RejectedInput as error:
            self._rejected(error, stamp)
            self.counters["batches_rejected"] += 1
            return
        for error in rejected:
            self._rejected(error, stamp)
        late_before = memory.counters["late_within_tolerance"]
        started = time.monotonic()
        ingest = memory.ingest if self.fleet is None else self.fleet.ingest
        events = self._into_core("observation batch", "batches_rejected", functools.partial(ingest, batch))
        if events is _FAILED:
            return
        self.diagnostics.ingested(batch.t, time.monotonic() - started)
        if memory.counters["late_within_tolerance"] > late_before:
            self._log("late", f"late batch {message.sequence} of {message.robot_id!r}: stamp {batch.t:.3f} is "
                      f"{memory.now - batch.t:.3f} s before memory's clock, within the core's tolerance: taken as "
                      "of memory's clock, its sightings kept at their own stamp (late_within_tolerance)")
        self._publish_events(events)

    def _publish_events(self, events: list) -> None:
        """Change events out on ``events`` (also from the fleet's thread: another robot's batch)."""
        for event in events:
            self.events_pub.publish(convert.event_to_msg(event))

    def _into_core(self, what: str, rejected_counter: str, call: Callable[[], Any]) -> Any:
        """Hand one input to the core: a refusal (the core has counted and stored it) is logged, throttled,
        and counted under ``rejected_counter``; a bug is counted and logged, never taking the node down.
        Both give _FAILED."""
        try:
            return call()
        except RejectedInput as error:
            self.diagnostics.rejected(error.reason)
            self._log(error.reason, f"rejected {what} ({error.reason}): {error.detail}")
            self.counters[rejected_counter] += 1
        except Exception as error:  # a bug must not take the robot's memory down
            self.counters["internal_errors"] += 1
            self.get_logger().error(f"{what} failed: {error!r}")
        return _FAILED

    def _count_gaps(self, robot: str, sequence: int) -> None:
        """Batches a robot numbered but that never arrived (a full queue, a lossy link) are counted."""
        if sequence == 0:
            return
        last = self._sequences.get(robot)
        if last is not None and sequence > last + 1:
            self.counters["batches_lost"] += sequence - last - 1
        self._sequences[robot] = sequence  # a lower number: the publisher restarted

    def _rejected(self, error: RejectedInput, stamp: float) -> None:
        assert self.memory is not None
        self.memory.record_rejection(error, stamp if math.isfinite(stamp) else 0.0)
        self.diagnostics.rejected(error.reason)
        self._log(error.reason, f"rejected observation input ({error.reason}): {error.detail}")

    def _log(self, key: str, text: str) -> None:
        """A warning at most once a second per kind: a broken publisher must not flood the log."""
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= LOG_EVERY_S:
            self._last_log[key] = now
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ scene graph
    def publish_graph(self) -> None:
        """Publish the graph and markers when memory changed or a subscriber joined — only to topics
        someone listens to. A slow build stretches the period: at most a quarter of the node's time."""
        memory = self.memory
        if not self.active or memory is None:
            return
        listeners = (self.graph_pub.get_subscription_count(), self.markers_pub.get_subscription_count())
        joined = any(now > before for now, before in zip(listeners, self._listeners, strict=True))
        self._listeners = listeners
        version = memory.events_recorded + memory.counters["batches"]
        if not any(listeners) or (version == self._graph_version and not joined):
            return
        if not joined and time.monotonic() < self._next_graph_time:
            return
        start = time.monotonic()
        self._graph_version = version
        nodes, edges = memory.scene_graph()
        if listeners[0]:
            self.graph_pub.publish(self.graph_messages.graph(nodes, edges, self.get_clock().now().to_msg()))
        if listeners[1]:
            self.markers_pub.publish(self.graph_messages.markers(nodes, edges, self._shown_states(nodes)))
        period = float(self.params["graph_period_s"])
        self._next_graph_time = start + max(period, 4.0 * (time.monotonic() - start))

    def _shown_states(self, nodes: list) -> dict[int, dict]:
        """The states the markers show (open/closed, on/off), by track id, as memory believes them now."""
        assert self.memory is not None
        shown: dict[int, dict] = {}
        for node in nodes:
            track = self.memory.tracks.get(node.track_id) if node.track_id >= 0 else None
            if track is None:
                continue
            values = {key: track.histories[f"state:{key}"].value_now() for key in SHOWN_STATES
                      if f"state:{key}" in track.histories}
            values = {k: v for k, v in values.items() if v is not None}
            if values:
                shown[node.track_id] = values
        return shown

    # ------------------------------------------------------------------ services
    def _guarded(self, name: str, handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], Any]:
        """Wrap a handler: the answer's status, reason and message set; nothing escapes."""

        def serve(request: Any, response: Any) -> Any:
            self.counters[f"requests.{name}"] += 1
            if not self.active or self.memory is None:
                response.status, response.reason = Status.STATUS_NOT_ACTIVE, "not_active"
                response.message = "the memory node is not active (lifecycle: configure, then activate)"
                return response
            try:
                handler(request, response)
            except NotFound as missing:
                response.status, response.message = Status.STATUS_NOT_FOUND, str(missing)
            except RejectedInput as error:
                self.counters[f"rejected_requests.{error.reason}"] += 1
                response.status = STATUS_BY_REASON.get(error.reason, Status.STATUS_INVALID_ARGUMENT)
                response.reason, response.message = error.reason, error.detail
            except Exception as error:
                self.counters["internal_errors"] += 1
                self.get_logger().error(f"{name} failed: {error!r}")
                response.status, response.reason = Status.STATUS_INTERNAL_ERROR, "internal"
                response.message = repr(error)
            return response

        return serve

    def _header(self, at: float | None = None) -> Header:
        assert self.memory is not None
        return Header(frame_id=self.map_frame, stamp=convert.time_to_msg(self.memory.now if at is None else at))

    @staticmethod
    def _at(request: Any) -> float | None:
        return convert.time_from_msg(request.at) if request.use_time else None

    @staticmethod
    def _near(request: Any) -> Any:
        return convert.finite_point(request.near, "near") if request.use_near else None

    def _cap(self, requested: int) -> int:
        limit = int(self.params["max_results"])
        return limit if requested <= 0 else min(int(requested), limit)

    def _info(self, info: Any) -> rmsg.ObjectInfo:
        assert self.memory is not None
        track = self.memory.tracks.get(info.track_id)
        return convert.info_to_msg(info, track.robot if track is not None else "")

    def _fill_objects(self, response: Any, infos: list, limit: int) -> None:
        response.objects = [self._info(i) for i in infos[:limit]]
        response.truncated = len(infos) > limit

    def _found(self, response: Any, info: Any, what: str) -> None:
        response.found = info is not None
        if info is None:
            raise NotFound(what)
        response.object = self._info(info)

    def _where_is(self, request: srv.WhereIs.Request, response: srv.WhereIs.Response) -> None:
        assert self.memory is not None
        label, at = checked_label(request.label), self._at(request)
        response.header = self._header(at)
        self._found(response, self.memory.where_is(label, near=self._near(request), at=at),
                    f"memory believes in no {label}" + (f" at {at}" if at is not None else ""))

    def _where_was(self, request: srv.WhereWas.Request, response: srv.WhereWas.Response) -> None:
        assert self.memory is not None
        label, at = checked_label(request.label), convert.time_from_msg(request.at)
        response.header = self._header(at)
        self._found(response, self.memory.where_was(label, at, near=self._near(request)),
                    f"memory believed in no {label} at {at}")

    def _last_seen(self, request: srv.LastSeen.Request, response: srv.LastSeen.Response) -> None:
        assert self.memory is not None
        label = checked_label(request.label)
        seen = self.memory.last_seen(label, near=self._near(request), at=self._at(request))
        response.found = seen is not None
        if seen is None:
            raise NotFound(f"no {label} was ever seen")
        response.stamp = convert.time_to_msg(seen)

    def _contents(self, request: srv.Contents.Request, response: srv.Contents.Response) -> None:
        assert self.memory is not None
        at = self._at(request)
        response.header = self._header(at)
        infos = self.memory.contents(checked_label(request.receptacle, "receptacle"), at=at,
                                     include_fixtures=request.include_fixtures)
        response.objects = [self._info(i) for i in infos[: int(self.params["max_results"])]]

    def _get_object_state(self, request: srv.GetObjectState.Request, response: srv.GetObjectState.Response) -> None:
        assert self.memory is not None
        label, key = checked_label(request.label), checked_label(request.key, "key")
        tracks = [t for t in self.memory.tracks.values() if t.label == label]
        if not tracks:
            raise NotFound(f"memory knows no {label}")
        known = sorted({k for t in tracks for k in t.state_keys() if len(t.histories[f"state:{k}"])})
        if canonical_key(key) not in known:  # isOpen and open are one key (robomem.core.states)
            raise RejectedInput("unknown_state_key", f"no {label} was ever seen with state {key!r}; "
                                f"seen: {', '.join(known) or 'none'}")
        value = self.memory.state(label, key, near=self._near(request), at=self._at(request))
        response.found = value is not None
        if value is None:
            raise NotFound(f"no {label} had a value of {key!r} at the time asked about")
        response.value = convert.state_value_to_msg(key, value)

    def _count(self, request: srv.Count.Request, response: srv.Count.Response) -> None:
        assert self.memory is not None
        response.count = self.memory.count(checked_label(request.label), at=self._at(request))

    def known_rooms(self) -> list[str]:
        """The rooms memory can place objects in: the configured ones and the default room."""
        assert self.memory is not None
        config = self.memory.config
        return [*(room.name for room in config.room_regions()), config.default_room]

    def _what_changed(self, request: srv.WhatChanged.Request, response: srv.WhatChanged.Response) -> None:
        assert self.memory is not None
        until = convert.time_from_msg(request.until) if request.use_until else None
        room = _text(request.room, "room") or None
        if room is not None and room not in (rooms := self.known_rooms()):
            configured = "" if len(rooms) > 1 else " (no rooms are configured: memory.rooms in the core YAML)"
            raise RejectedInput("unknown_room", f"no room {room!r}{configured}; known: {', '.join(rooms)}")
        response.header = self._header(until)
        changes = self.memory.what_changed(convert.time_from_msg(request.since), until, room=room)
        limit = self._cap(request.max_results)
        response.changes = [convert.change_to_msg(c) for c in changes[:limit]]
        response.truncated = len(changes) > limit

    def _within_radius(self, request: srv.WithinRadius.Request, response: srv.WithinRadius.Response) -> None:
        assert self.memory is not None
        center = convert.finite_point(request.center, "center")
        label = _text(request.label, "label") or None
        response.header = self._header()
        infos = self.memory.within_radius(center, _radius(request.radius), label)
        self._fill_objects(response, infos, self._cap(request.max_results))

    def _likely_places(self, request: srv.LikelyPlaces.Request, response: srv.LikelyPlaces.Response) -> None:
        assert self.memory is not None
        label, limit = checked_label(request.label), self._cap(request.max_results or 5)
        response.header = self._header()
        places = self.memory.likely_places(label, limit + 1)
        kept = []
        for place in places[:limit]:
            info = self.memory.where_is(place.label, near=place.center)
            if info is not None:
                kept.append((place, info))
        response.places = [self._info(info) for _, info in kept]
        response.scores = [float(place.score) for place, _ in kept]
        response.reasons = [place.reason for place, _ in kept]
        response.sources = [place.source if place.informed else "default" for place, _ in kept]
        response.relations = [place.relation for place, _ in kept]
        response.truncated = len(places) > limit

    def _within_box(self, request: srv.WithinBox.Request, response: srv.WithinBox.Response) -> None:
        assert self.memory is not None
        lower = convert.finite_point(request.lower, "lower")
        upper = convert.finite_point(request.upper, "upper")
        if (upper < lower).any() or float(((upper - lower) ** 2).sum()) ** 0.5 > 2 * MAX_SPATIAL_RADIUS_M:
            raise RejectedInput("bad_box", "need lower <= upper and a diagonal of at most 200 m")
        label = _text(request.label, "label") or None
        response.header = self._header()
        self._fill_objects(response, self.memory.within_box(lower, upper, label), self._cap(request.max_results))

    def _relations(self, request: srv.Relations.Request, response: srv.Relations.Response) -> None:
        assert self.memory is not None
        label, near = checked_label(request.label), self._near(request)
        radius = _radius(request.radius) if request.radius != 0.0 else None
        response.header = self._header()
        anchor = self.memory.where_is(label, near=near)
        self._found(response, anchor, f"memory believes in no {label}")
        nearby = self.memory.near(label, radius=radius, near=near)[: int(self.params["max_results"])]
        response.nearby = [self._info(i) for i in nearby]
        me = str(anchor.track_id)
        edges = [rmsg.SceneGraphEdge(child=me, parent=str(anchor.receptacle_id), relation=anchor.relation or "on")]
        response.edges = (edges if anchor.receptacle_id is not None else []) + [
            rmsg.SceneGraphEdge(child=me, parent=str(i.track_id), relation="near") for i in nearby
        ]

    def _semantic_search(self, request: srv.SemanticSearch.Request, response: srv.SemanticSearch.Response) -> None:
        assert self.memory is not None
        k = self._cap(request.k)
        response.header = self._header()
        if request.text.strip():
            found = self.memory.search(_text(request.text, "text"), k=k, min_similarity=request.min_similarity)
        elif len(request.embedding):
            vector = convert.np.asarray(request.embedding, dtype=float)
            if not convert.np.all(convert.np.isfinite(vector)) or len(vector) > 4096:
                raise RejectedInput("bad_embedding", "embedding must be finite with at most 4096 values")
            found = self.memory.search_by_embedding(vector, k=k)
        else:
            raise RejectedInput("malformed", "give a text or an embedding")
        response.objects = [self._info(info) for info, _ in found]
        response.similarities = [float(s) for _, s in found]

    def _planner_context(self, request: srv.PlannerContext.Request, response: srv.PlannerContext.Response) -> None:
        assert self.memory is not None
        budget = int(request.token_budget)
        if not 0 < budget <= 32000:
            raise RejectedInput("bad_budget", f"token_budget must be in (0, 32000], got {budget}")
        text = render_context(self.memory, _text(request.query, "query"), budget, int(request.max_changes))
        response.context = text
        response.tokens = estimate_tokens(text)

    def _get_scene_graph(self, request: srv.GetSceneGraph.Request, response: srv.GetSceneGraph.Response) -> None:
        assert self.memory is not None
        nodes, edges = self.memory.scene_graph()
        response.graph = self.graph_messages.graph(nodes, edges, self.get_clock().now().to_msg())

    def _record_episode(self, request: srv.RecordEpisode.Request, response: srv.RecordEpisode.Response) -> None:
        assert self.memory is not None
        episode = convert.episode_from_msg(request.episode)
        response.episode_id = int(self.memory.experience.record(episode))
        response.accepted = True

    def _repeated_episode(self) -> None:
        """A record_episode request sent again (its answer was lost): answered, the episode kept once."""
        self.counters["repeated_requests.record_episode"] += 1

    def _similar_episodes(
        self, request: srv.SimilarEpisodes.Request, response: srv.SimilarEpisodes.Response
    ) -> None:
        assert self.memory is not None
        instruction = _text(request.instruction, "instruction")
        if not instruction.strip():
            raise RejectedInput("malformed", "instruction is empty")
        found = self.memory.experience.similar(instruction, k=self._cap(request.k),
                                               successful_only=request.successful_only)
        response.episodes = [convert.episode_to_msg(e) for e, _ in found]
        response.similarities = [float(s) for _, s in found]

    def _get_stats(self, request: srv.GetStats.Request, response: srv.GetStats.Response) -> None:
        assert self.memory is not None
        counters = Counter(self.memory.counters) + self.counters + (self.tf.counters if self.tf else Counter())
        if self.fleet is not None:
            counters.update({f"fleet.{k}": v for k, v in self.fleet.counters.items()})
        counters["subscribers.events"] = self.events_pub.get_subscription_count()  # matched readers of /events
        response.counters = [rmsg.MemoryCounter(name=k, value=int(v)) for k, v in sorted(counters.items())]
        response.objects_believed = self.memory.count_believed()
        response.robot_ids = sorted(self._sequences)
        response.last_sequences = [int(self._sequences[r]) for r in response.robot_ids]

    def db_size_bytes(self) -> int:
        """The memory file and its write-ahead log, in bytes (0 in memory only)."""
        if self.memory is None or self.memory.config.db_path == ":memory:":
            return 0
        path = self.memory.config.db_path
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def main(args: list[str] | None = None) -> int:
    """Entry point (``ros2 run robomem memory_node`` or ``python -m robomem.ros.memory_node``)."""
    return run_node(MemoryNode, args)


if __name__ == "__main__":
    sys.exit(main())
