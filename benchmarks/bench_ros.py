"""The memory node over real DDS: service round trip against a bare Trigger server, and ingest through the
``observations`` topic at sensor rates.

1. Round trip. The memory node runs in its own process on a SQLite file preloaded with N objects (the
   benchmark process writes it with the core Memory, bench_core's world and populate, closes it, then
   starts the node on it). A bare std_srvs/Trigger server (benchmarks/ros_trigger_server.py) runs in a
   second process. This process (one client node) calls where_is (random labels present in the world)
   and Trigger interleaved, the same way (robomem.ros.calls.ServiceCaller.call, kept clients; a lost
   answer is sent again and counted), after warm-up.
   The core's where_is on the same data, in-process, is given for reference.
2. Ingest. Frames of bench_core's camera path (~20 detections with a view cone each) are published on
   ``observations`` (the node's documented QoS, observation_qos) at 10 Hz, 30 Hz and as fast as possible.
   The node's get_stats counters give batches received / ingested; one get_stats poll is kept in flight
   while published batches are not yet ingested, so each batch's lag (publish -> first answer that counts
   it as ingested) is an upper bound within one poll round trip.

Isolated DDS (random ROS_DOMAIN_ID, localhost discovery, temp ROS_LOG_DIR) from tests/ros_helpers.py.
Prints JSON (also written to --out). Not a test: targets are checked by reading the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # ros_helpers: isolated env, nodes in their own process
sys.path.insert(0, str(HERE))

from bench_core import LABELS, frames_over, make_world, populate  # noqa: E402
from ros_helpers import ISOLATION, NodeProcess, isolate_this_process  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402

NODE = "bench_memory"
TRIGGER_NODE = "bench_trigger"
OBSERVATION_QUEUE = 100  # the node's default observation_queue (subscriber depth); the publisher uses the same


def stats_ms(samples_s: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_s) * 1000.0
    if not len(arr):
        return {"n": 0}
    return {"n": int(len(arr)), **{f"p{q}_ms": round(float(np.percentile(arr, q)), 4) for q in (50, 90, 99)},
            "mean_ms": round(float(arr.mean()), 4), "max_ms": round(float(arr.max()), 4)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for the node's utilisation per phase."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_info() -> dict:
    import rclpy

    distro = os.environ.get("ROS_DISTRO", "")
    if not distro:
        for name in ("kilted", "jazzy", "rolling", "humble"):
            try:
                metadata.version(f"ros-{name}-rclpy")
                distro = name
                break
            except metadata.PackageNotFoundError:
                continue
    try:
        rclpy_version = metadata.version("rclpy")
    except metadata.PackageNotFoundError:
        rclpy_version = "?"
    return {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(), "rclpy": rclpy_version,
            "ros_distro": distro, "rmw": rclpy.get_rmw_implementation_identifier()}


# ---------------------------------------------------------------------- setup
def preload(db: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Write the node's SQLite file with the core Memory (every object confirmed); returns the world."""
    rng = np.random.default_rng(seed)
    centers, labels, side = make_world(n, rng)
    memory = Memory(MemoryConfig(db_path=str(db)))
    start = time.perf_counter()
    t = populate(memory, centers, labels)
    memory.close()
    return centers, labels, side, t, time.perf_counter() - start


def core_reference(db: Path, query_labels: list[str], n_calls: int) -> dict:
    """The core's where_is on the same file, in-process (reopened like the node does), plus the node's
    own per-request work for the same answer (label check + core + conversion to the message)."""
    from robomem.core.types import MAX_LABEL_CHARS
    from robomem.ros.convert import info_to_msg

    start = time.perf_counter()
    memory = Memory(MemoryConfig(db_path=str(db)))
    load_s = time.perf_counter() - start
    core, with_msg, found = [], [], 0
    for i in range(n_calls):
        label = query_labels[i % len(query_labels)]
        t0 = time.perf_counter()
        info = memory.where_is(label)
        t1 = time.perf_counter()
        if info is not None and len(label) <= MAX_LABEL_CHARS:
            info_to_msg(info)
        t2 = time.perf_counter()
        core.append(t1 - t0)
        with_msg.append(t2 - t0)
        found += info is not None
    # What the node does besides answering: get_stats (count_believed over every track) and, once a second
    # after memory changed, the full scene graph + RViz markers (publish_graph).
    from builtin_interfaces.msg import Time

    from robomem.ros.markers import GraphMessages

    stats_s, graph_s = [], []
    messages = GraphMessages("map")
    for _ in range(6):  # the first build fills the per-object message caches; later ones reuse them
        t0 = time.perf_counter()
        memory.count_believed()
        stats_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        nodes, edges = memory.scene_graph()
        messages.graph(nodes, edges, Time())
        messages.markers(nodes, edges)
        graph_s.append(time.perf_counter() - t0)
    cold_graph_s, graph_s = graph_s[:1], graph_s[1:]
    tracks = len(memory.tracks)
    memory.close()
    return {"load_s": round(load_s, 3), "tracks": tracks, "found": found,
            "where_is": stats_ms(core), "where_is_plus_to_msg": stats_ms(with_msg),
            "node_get_stats_count_believed": stats_ms(stats_s),
            "node_publish_graph_build_first": stats_ms(cold_graph_s),
            "node_publish_graph_build_cached": stats_ms(graph_s)}


def node_path_profile(db: Path, pool: list, n_frames: int, clock: float) -> dict:
    """Where a batch's time goes in the node's subscription callback, measured in-process on a copy of the
    preloaded file: CDR deserialisation to the Python message (what rclpy does before the callback),
    convert.batch_from_msg (validation), Memory.ingest, events to messages."""
    import shutil

    from rclpy.serialization import deserialize_message, serialize_message

    from robomem import msg as rmsg
    from robomem.ros import convert

    copy = db.with_name("profile.sqlite")
    shutil.copy(db, copy)
    memory = Memory(MemoryConfig(db_path=str(copy)))
    parts: dict[str, list[float]] = {"deserialize": [], "batch_from_msg": [], "ingest": [], "events_to_msg": [],
                                     "total": []}
    for i in range(n_frames):
        message = pool[i % len(pool)]
        message.header.stamp = convert.time_to_msg(clock)
        clock += 0.1
        raw = serialize_message(message)
        t0 = time.perf_counter()
        received = deserialize_message(raw, rmsg.ObservationBatch)
        t1 = time.perf_counter()
        batch, _ = convert.batch_from_msg(received, "map", 512)
        t2 = time.perf_counter()
        events = memory.ingest(batch)
        t3 = time.perf_counter()
        for event in events:
            convert.event_to_msg(event)
        t4 = time.perf_counter()
        for name, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            parts[name].append(value)
    memory.close()
    copy.unlink()
    total_mean = float(np.mean(parts["total"]))
    return {"frames": n_frames, **{name: stats_ms(values) for name, values in parts.items()},
            "batches_per_s_if_alone": round(1.0 / total_mean, 1),
            "observations_per_s_if_alone": round(np.mean([len(m.observations) for m in pool]) / total_mean)}


# ---------------------------------------------------------------------- round trip
def round_trip(caller, n_calls: int, warmup: int, query_labels: list[str], seed: int) -> dict:
    from std_srvs.srv import Trigger

    from robomem import srv
    from robomem.ros.calls import is_error

    where_is = caller.client(srv.WhereIs, f"/{NODE}/where_is")
    trigger = caller.client(Trigger, f"/{TRIGGER_NODE}/trigger")
    resent_before = caller.resent

    def timed(client, request) -> tuple[float, object]:
        t0 = time.perf_counter()
        response = caller.call(client, request, idempotent=True, raise_on_error=False)
        return time.perf_counter() - t0, response

    rng = np.random.default_rng(seed + 1)
    samples: dict[str, list[float]] = {"where_is": [], "trigger": []}
    found = errors = 0
    for i in range(warmup + n_calls):
        label = query_labels[i % len(query_labels)]
        calls = [("where_is", where_is, srv.WhereIs.Request(label=label)), ("trigger", trigger, Trigger.Request())]
        if rng.random() < 0.5:  # interleaved, order shuffled per pair
            calls.reverse()
        for name, client, request in calls:
            elapsed, response = timed(client, request)
            if i < warmup:
                continue
            samples[name].append(elapsed)
            if name == "where_is":
                found += bool(response.found)
                errors += is_error(response)
    where, trig = stats_ms(samples["where_is"]), stats_ms(samples["trigger"])
    return {"pattern": "robomem.ros.calls.ServiceCaller.call (kept clients), one client node, interleaved "
                       "pairs (order shuffled), after warm-up",
            "resends": caller.resent - resent_before, "warmup_calls": warmup,
            "where_is": {**where, "found": found, "errors": errors}, "trigger": trig,
            "ratio_p50": round(where["p50_ms"] / trig["p50_ms"], 3),
            "ratio_mean": round(where["mean_ms"] / trig["mean_ms"], 3),
            "extra_p50_ms": round(where["p50_ms"] - trig["p50_ms"], 4)}


# ---------------------------------------------------------------------- ingest
class StatsPoller:
    """Keeps at most one get_stats request in flight (sent again if its answer is lost:
    ServiceCaller.start); records (sent, answered, counters)."""

    def __init__(self, caller) -> None:
        from robomem import srv

        self.srv = srv
        self.caller = caller
        self.client = caller.client(srv.GetStats, f"/{NODE}/get_stats")
        self.future = None
        self.sent = 0.0
        self.samples: list[tuple[float, float, dict[str, int]]] = []

    def poll(self) -> None:
        if self.future is None:
            self.sent = time.perf_counter()
            self.future = self.caller.start(self.client, self.srv.GetStats.Request(), idempotent=True,
                                            timeout_s=60.0)

    def collect(self) -> dict[str, int] | None:
        if self.future is not None and self.future.poll() is None and self.future.expired():
            raise self.future.fail()
        if self.future is not None and self.future.done:
            response = self.future.response
            counters = {c.name: int(c.value) for c in response.counters}
            counters["objects_believed"] = int(response.objects_believed)
            self.samples.append((self.sent, time.perf_counter(), counters))
            self.future = None
            return counters
        return None

    def now(self, client_node) -> dict[str, int]:
        import rclpy

        while self.future is not None:
            rclpy.spin_once(client_node, timeout_sec=0.05)
            self.collect()
        self.poll()
        while self.future is not None:
            rclpy.spin_once(client_node, timeout_sec=0.05)
            self.collect()
        return self.samples[-1][2]


SEQUENCE = [0]  # the publisher's batch counter, over all phases


def ingest_phase(client_node, publisher, poller: StatsPoller, pool: list, clock: list[float], rate_hz: float | None,
                 seconds: float, node_pid: int, drain_timeout: float, max_count: int | None = None) -> dict:
    """Publish frames at rate_hz (None: back to back) for `seconds` (or until max_count are out); follow the
    node's counters until every received batch is ingested and nothing more arrives."""
    import rclpy

    from robomem.ros import convert

    base = poller.now(client_node)
    base_batches, base_received = base.get("batches", 0), base.get("batches_received", 0)
    base_obs = base.get("observations", 0)
    cpu0 = cpu_seconds(node_pid)
    poller.samples.clear()
    period = 1.0 / rate_hz if rate_hz else 0.0
    pub_times: list[float] = []
    offered_obs = 0
    start = time.perf_counter()
    next_due = start
    ingested = 0
    while True:
        now = time.perf_counter()
        if now - start >= seconds or (max_count is not None and len(pub_times) >= max_count):
            break
        if now >= next_due:
            message = pool[len(pub_times) % len(pool)]
            message.header.stamp = convert.time_to_msg(clock[0])
            clock[0] += 0.1
            SEQUENCE[0] += 1
            message.sequence = SEQUENCE[0]  # the node counts gaps as batches_lost
            publisher.publish(message)
            pub_times.append(time.perf_counter())
            offered_obs += len(message.observations)
            next_due = start + len(pub_times) * period if period else now
        if ingested < len(pub_times):
            poller.poll()
        counters = poller.collect()
        if counters is not None:
            ingested = counters.get("batches", 0) - base_batches
        if period:
            rclpy.spin_once(client_node, timeout_sec=max(0.0, min(next_due - time.perf_counter(), 0.002)))
        else:
            rclpy.spin_once(client_node, timeout_sec=0.0)
    publish_end = time.perf_counter()
    # drain: until all received batches are ingested and the received count has not moved for 1 s
    last_change, last_seen = time.perf_counter(), (-1, -1)
    deadline = publish_end + drain_timeout
    drained = False
    while time.perf_counter() < deadline:
        poller.poll()
        rclpy.spin_once(client_node, timeout_sec=0.01)
        counters = poller.collect()
        if counters is None:
            continue
        seen = (counters.get("batches_received", 0) - base_received, counters.get("batches", 0) - base_batches)
        if seen != last_seen:
            last_seen, last_change = seen, time.perf_counter()
        if seen[1] >= len(pub_times) or (seen[0] == seen[1] and time.perf_counter() - last_change >= 1.0):
            drained = True
            break
        time.sleep(0.005)
    cpu1 = cpu_seconds(node_pid)
    final = poller.samples[-1][2]
    received = final.get("batches_received", 0) - base_received
    batches = final.get("batches", 0) - base_batches
    observations = final.get("observations", 0) - base_obs
    # per-batch lag: first answer whose count includes batch k (batches are ingested in order)
    lags, answered_at = [], []
    samples = poller.samples
    j = 0
    for k, t_pub in enumerate(pub_times, start=1):
        while j < len(samples) and samples[j][2].get("batches", 0) - base_batches < k:
            j += 1
        if j == len(samples):
            break
        lags.append(samples[j][1] - t_pub)
        answered_at.append(samples[j][1])
    poll_rtt = [s[1] - s[0] for s in samples]
    last_ingest = answered_at[-1] if answered_at else publish_end
    span = max(last_ingest - pub_times[0], 1e-9) if pub_times else 1e-9
    publish_span = max(pub_times[-1] - pub_times[0], 1e-9) if len(pub_times) > 1 else 1e-9
    lost = len(pub_times) - received
    if not drained:
        lag = {"note": f"not drained within {drain_timeout} s: {lost} batches published but not (yet) received",
               "first_publish_to_last_ingested_ms": round((last_ingest - pub_times[0]) * 1000.0, 1)}
    elif lost:
        lag = {"note": f"{lost} batches lost: which ones is unknown, so lags cannot be matched by count",
               "first_publish_to_last_ingested_ms": round((last_ingest - pub_times[0]) * 1000.0, 1)}
    else:
        lag = stats_ms(lags)
    result = {
        "rate_hz": rate_hz or "burst", "seconds": round(publish_end - start, 3), "max_count": max_count,
        "published": len(pub_times), "received": received, "ingested": batches,
        "drained": drained, "lost": lost if drained else None, "rejected_or_failed": received - batches,
        "publish_rate_hz": round((len(pub_times) - 1) / publish_span, 1),
        "ingested_batches_per_s": round(batches / span, 1),
        "observations_offered_per_s": round(offered_obs / max(publish_end - start, 1e-9)),
        "observations_ingested_per_s": round(observations / span),
        "observations_per_batch": round(offered_obs / max(len(pub_times), 1), 1),
        "lag_publish_to_ingested": lag,
        "poll_round_trip": stats_ms(poll_rtt), "polls": len(samples),
        "drain_after_publish_s": round(max(last_ingest - publish_end, 0.0), 3),
        "node_cpu_fraction": round((cpu1 - cpu0) / max(time.perf_counter() - start, 1e-9), 3),
    }
    return result


def wait_first_graph(client_node, since: float, timeout: float = 60.0) -> float | None:
    """Wait for the node's first (latched) scene graph, so that its one-off publication, which blocks the
    node's executor for seconds at 10k objects, does not fall into the round-trip measurement."""
    import rclpy

    from robomem import msg as rmsg
    from robomem.ros.memory_node import LATCHED_QOS

    got: list[float] = []
    subscription = client_node.create_subscription(rmsg.SceneGraph, "scene_graph",
                                                   lambda _: got.append(time.perf_counter()), LATCHED_QOS)
    deadline = time.perf_counter() + timeout
    while not got and time.perf_counter() < deadline:
        rclpy.spin_once(client_node, timeout_sec=0.1)
    client_node.destroy_subscription(subscription)
    return round(got[0] - since, 2) if got else None


def build_pool(centers, labels, side, seed: int, n_frames: int) -> list:
    from robomem.ros import convert

    rng = np.random.default_rng(seed + 2)
    return [convert.batch_to_msg(frame) for frame in frames_over(centers, labels, side, rng, n_frames, 0.0)]


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--calls", type=int, default=500, help="timed calls per service (where_is and Trigger)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--core-calls", type=int, default=2000)
    parser.add_argument("--rates", default="10,30,queue,burst",
                        help="comma list: a rate in Hz; 'queue' = as many batches as the node's queue depth back "
                             "to back; 'burst' = back to back for --seconds")
    parser.add_argument("--seconds", type=float, default=4.0, help="publishing time per rate")
    parser.add_argument("--pool-frames", type=int, default=300, help="distinct frames published (cycled, re-stamped)")
    parser.add_argument("--profile-frames", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=20.0,
                        help="after publishing, follow the counters at most this long")
    parser.add_argument("--graph-period-s", type=float, default=1.0,
                        help="the node's graph_period_s parameter (its default is 1.0; a large value such as 1e6 "
                             "keeps the scene graph/markers publication out of the measurement)")
    parser.add_argument("--no-graph-subscriber", dest="graph_subscriber", action="store_false",
                        help="run without subscribers to scene_graph/scene_graph_markers (the node then builds none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ros.json")
    args = parser.parse_args()
    wall0 = time.perf_counter()

    isolate_this_process()
    import rclpy

    from robomem import msg as rmsg
    from robomem import srv
    from robomem.ros.calls import ServiceCaller, ServiceTimeout
    from robomem.ros.memory_node import observation_qos

    report: dict = {"benchmark": "ros", "machine": machine_info(), "objects": args.objects,
                    "node_params": {"graph_period_s": args.graph_period_s, "observation_queue": OBSERVATION_QUEUE},
                    "isolation": {k: v for k, v in ISOLATION.items() if k.startswith("ROS_")}}
    with tempfile.TemporaryDirectory(prefix="robomem-bench-ros-") as tmp:
        db = Path(tmp) / "memory.sqlite"
        centers, labels, side, t_end, populate_s = preload(db, args.objects, args.seed)
        present = sorted({LABELS[i] for i in labels})
        rng = np.random.default_rng(args.seed)
        query_labels = [present[i] for i in rng.integers(0, len(present), args.warmup + args.calls)]
        report["fill"] = {"method": "preload: the benchmark process writes the SQLite file with the core Memory "
                                    "(bench_core.populate: every object seen twice, all confirmed), closes it, "
                                    "then starts the node on it",
                          "populate_s": round(populate_s, 2), "labels_present": len(present),
                          "sqlite_mb": round(db.stat().st_size / 1e6, 1)}
        report["core_in_process"] = core_reference(db, query_labels, args.core_calls)
        pool = build_pool(centers, labels, side, args.seed, args.pool_frames)
        report["node_callback_profile_in_process"] = node_path_profile(db, pool, args.profile_frames, t_end + 1.0)
        print(json.dumps({"node_callback_profile_in_process": report["node_callback_profile_in_process"]}),
              flush=True)
        print(json.dumps({"core_in_process": report["core_in_process"]}), flush=True)

        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        node_start = time.perf_counter()
        memory_node = NodeProcess("robomem.ros.memory_node",
                                  {"db_path": str(db), "graph_period_s": float(args.graph_period_s)}, name=NODE,
                                  log_path=Path(tmp) / "memory_node.log")
        trigger_node = NodeProcess("ros_trigger_server", name=TRIGGER_NODE, log_path=Path(tmp) / "trigger.log")
        rclpy.init()
        client_node = rclpy.create_node("bench_ros_client")
        try:
            caller = ServiceCaller(client_node, timeout_s=30.0)
            stats_client = caller.client(srv.GetStats, f"/{NODE}/get_stats")
            try:
                caller.wait_until_ready([stats_client], timeout_s=120.0)
            except ServiceTimeout as exc:
                raise RuntimeError(f"memory node did not come up:\n{memory_node.log()}") from exc
            poller = StatsPoller(caller)
            first = poller.now(client_node)
            report["node_startup_s"] = round(time.perf_counter() - node_start, 2)
            report["node_objects_believed_at_start"] = first.get("objects_believed")
            viewers = []
            if args.graph_subscriber:  # like RViz and a planner watching: the node builds and publishes the graph
                from visualization_msgs.msg import MarkerArray

                from robomem.ros.memory_node import LATCHED_QOS

                viewers = [client_node.create_subscription(rmsg.SceneGraph, "scene_graph", lambda _: None, LATCHED_QOS),
                           client_node.create_subscription(MarkerArray, "scene_graph_markers", lambda _: None,
                                                           LATCHED_QOS)]
                report["first_graph_published_after_s"] = wait_first_graph(client_node, node_start)
            report["graph_subscribers"] = len(viewers)
            from std_srvs.srv import Trigger

            try:
                caller.wait_until_ready([caller.client(Trigger, f"/{TRIGGER_NODE}/trigger")], timeout_s=30.0)
            except ServiceTimeout as exc:
                raise RuntimeError(f"trigger server did not come up:\n{trigger_node.log()}") from exc
            rt = round_trip(caller, args.calls, args.warmup, query_labels, args.seed)
            rt["core_where_is_p50_ms"] = report["core_in_process"]["where_is"]["p50_ms"]
            report["round_trip"] = rt
            print(json.dumps({"round_trip": rt}), flush=True)

            publisher = client_node.create_publisher(rmsg.ObservationBatch, "observations",
                                                     observation_qos(OBSERVATION_QUEUE))
            deadline = time.monotonic() + 10.0
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                rclpy.spin_once(client_node, timeout_sec=0.05)
            clock = [t_end + 1.0]  # sim time of the frames (stamps), after the preload's
            report["ingest"] = {"qos": f"observation_qos({OBSERVATION_QUEUE}): RELIABLE, KEEP_LAST, VOLATILE "
                                       "(publisher and node's subscriber)",
                                "distinct_frames": len(pool), "phases": []}
            for rate in (r.strip() for r in args.rates.split(",")):
                rate_hz = None if rate in ("burst", "queue") else float(rate)
                phase = ingest_phase(client_node, publisher, poller, pool, clock, rate_hz, args.seconds,
                                     memory_node.process.pid, args.drain_timeout,
                                     OBSERVATION_QUEUE if rate == "queue" else None)
                time.sleep(1.5)  # let the node's once-a-second scene graph publication settle between phases
                phase = {"phase": rate if rate_hz is None else f"{rate_hz:g} Hz", **phase}
                report["ingest"]["phases"].append(phase)
                print(json.dumps(phase), flush=True)
            report["node_alive_at_end"] = memory_node.alive()
            report["resends"] = dict(caller.resends)  # requests sent again because no answer had come
            final = poller.now(client_node)
            report["node_counters_at_end"] = {k: v for k, v in final.items()
                                              if k.startswith(("batches", "late", "rejected", "internal"))}
        finally:
            client_node.destroy_node()
            rclpy.try_shutdown()
            trigger_node.stop()
            memory_node.stop()
        log = memory_node.log_path.read_text()
        report["node_log_warnings"] = [line for line in log.splitlines() if "WARN" in line or "ERROR" in line][:10]
    report["wall_s"] = round(time.perf_counter() - wall0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
