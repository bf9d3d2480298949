"""PostgreSQL vs SQLite, and a fleet of robot processes writing into one database.

1. One node at 10k objects (bench_core's world and frames): ingest throughput with the same flush
   policy on both backends, where_is p99, the cost of ``durability='batch'``, and restart to first answer.
2. Fleet: N robot processes (one memory node each, FleetMember threads) ingest at sensor rate for
   ``--duration`` s into one database; the server is stopped for ``--outage`` s in the middle and
   restarted. Reported: the lag from a batch's ingest on one robot until another robot's memory
   answers with it (p50/p99, also outside the outage), and the check that no fact is lost or doubled
   (every node's log entries 1..N once; every node took in every other node's batches exactly once).

Starts its own server (fsync on) unless ``--url`` is given. JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import LABELS, frames_over, make_world, percentiles, populate  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.types import Detection, ObservationBatch  # noqa: E402


def _new_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


# ---------------------------------------------------------------------------------------------- one node
def single_node(db: str, n: int, frames: int, queries: int, durability: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    centers, labels, side = make_world(n, rng)
    memory = Memory(MemoryConfig(db_path=db, durability=durability))
    wall_base = time.time() - 3600.0  # stamps in wall time, an hour ago (within every stamp rule)
    t = populate(memory, centers, labels, t0=wall_base)
    batch_frames = list(frames_over(centers, labels, side, rng, frames, t + 1.0))
    observations = sum(len(f.detections) for f in batch_frames)
    start = time.perf_counter()
    for f in batch_frames:
        memory.ingest(f)
    memory.flush(sync=True)
    elapsed = time.perf_counter() - start
    samples = []
    for i in range(queries):
        q0 = time.perf_counter()
        memory.where_is(LABELS[i % len(LABELS)])
        samples.append((time.perf_counter() - q0) * 1000.0)
    answer = memory.where_is("Mug").to_dict()
    memory.close()
    restarts = []
    for _ in range(3):
        r0 = time.perf_counter()
        reopened = Memory(MemoryConfig(db_path=db, durability=durability))
        again = reopened.where_is("Mug").to_dict()
        restarts.append(time.perf_counter() - r0)
        reopened.close()
    return {"objects": n, "durability": durability, "frames": frames, "observations": observations,
            "ingest_obs_per_s": round(observations / elapsed), "ingest_s": round(elapsed, 3),
            "where_is": percentiles(samples), "restart_to_first_answer_s": [round(r, 3) for r in restarts],
            "restart_same_answer": again == answer}


# ---------------------------------------------------------------------------------------------- fleet
def robot_process(args: argparse.Namespace) -> None:
    """One robot: its memory node, publishing at ``--rate`` Hz and taking in the others' batches."""
    from robomem.core.fleet import FleetMember

    rng = np.random.default_rng(hash(args.node) % 2**32)
    centers, labels, side = make_world(args.objects, np.random.default_rng(0))  # one shared world
    memory = Memory(MemoryConfig(db_path=f"{args.url}?node={args.node}&spool={args.spool}"))
    lags: list[tuple[float, float, bool]] = []  # (sent wall time, lag s, answered)

    def on_remote(seq: int, node: str, robot: str, payload: str) -> None:
        data = json.loads(payload)
        lag = time.time() - data["sent"]
        marker = data.get("marker")
        answered = marker is None or memory.where_is(marker) is not None
        lags.append((data["sent"], lag, answered))

    member = FleetMember(memory, poll_s=0.2, on_remote=on_remote).start()
    frames = frames_over(centers, labels, side, rng, 10**9, 0.0)
    period = 1.0 / args.rate
    next_tick = args.start_at
    published = 0
    while (now := time.time()) < args.start_at + args.duration:
        if now < next_tick:
            time.sleep(next_tick - now)
            continue
        next_tick = max(next_tick + period, now - period)  # a late start or a stall: no burst to catch up
        batch = next(frames)
        batch = ObservationBatch(time.time(), args.node, batch.detections, batch.view)
        extra = {"sent": time.time()}
        if published % 10 == 0:  # a new object this robot alone sees: the others must answer with it
            marker = f"Marker{args.node}n{published}"
            batch.detections.append(Detection(marker, np.array([rng.uniform(0, side), rng.uniform(0, side), 0.5]),
                                              np.array([0.1, 0.1, 0.1]), 0.95, {}))
            extra["marker"] = marker
        member.ingest(batch, **extra)
        published += 1
    memory.flush(sync=True)
    time.sleep(args.settle)  # the others' last batches
    member.stop()
    member.catch_up()
    result = {"node": args.node, "published": published, "fleet": dict(member.counters),
              "memory": {k: v for k, v in memory.counters.items() if k in ("batches", "duplicate_batches")
                         or k.startswith(("rejected.", "late"))},
              "store": memory.store.stats(), "lags": lags}
    memory.close()
    Path(args.result).write_text(json.dumps(result))


def fleet(url: str, server, robots: int, duration: float, rate: float, objects: int, outage: float,
          workdir: Path) -> dict:
    start_at = time.time() + 8.0  # every process up and caught up first
    load_before = os.getloadavg()
    processes, results = [], []
    for i in range(robots):
        node = f"robot{i + 1}"
        result = workdir / f"{node}.json"
        results.append(result)
        processes.append(subprocess.Popen([
            sys.executable, __file__, "_robot", "--url", url, "--node", node, "--spool", str(workdir / f"{node}.spool"),
            "--start-at", str(start_at), "--duration", str(duration), "--rate", str(rate), "--objects", str(objects),
            "--result", str(result), "--settle", "5"]))
    outage_window = None
    if server is not None and outage > 0:
        time.sleep(max(0.0, start_at + duration / 2 - time.time()))
        down = time.time()
        server.stop("fast")
        time.sleep(outage)
        server.start()
        outage_window = (down, time.time())
    for process in processes:
        process.wait(timeout=duration + 300)
    data = [json.loads(r.read_text()) for r in results]
    import psycopg

    with psycopg.connect(url) as conn:
        log = conn.execute("SELECT node, node_seq FROM robomem_fleet.batches").fetchall()
        committed = conn.execute("SELECT (payload::json->>'sent')::float8, "
                                 "extract(epoch FROM committed_at) - (payload::json->>'sent')::float8 "
                                 "FROM robomem_fleet.batches").fetchall()
    published = {d["node"]: d["published"] for d in data}
    in_log_ok = all(sorted(s for n, s in log if n == node) == list(range(1, count + 1))
                    for node, count in published.items())
    lags = [(sent, lag, answered) for d in data for sent, lag, answered in d["lags"]]
    if os.environ.get("BENCH_POSTGRES_LAGS"):  # raw (sent, lag, answered) for a closer look
        Path(os.environ["BENCH_POSTGRES_LAGS"]).write_text(json.dumps({"outage": outage_window, "lags": lags}))
    outside = [lag for sent, lag, _ in lags
               if outage_window is None or not (outage_window[0] - 2.0 <= sent <= outage_window[1] + 1.0)]
    per_node = []
    for d in data:
        others = sum(count for node, count in published.items() if node != d["node"])
        taken = d["fleet"].get("remote_applied", 0) + sum(v for k, v in d["fleet"].items()
                                                          if k.startswith("remote_rejected."))
        per_node.append({"node": d["node"], "published": d["published"], "took_in": taken, "others_published": others,
                         "refused_by_stamp_rules": {k: v for k, v in d["fleet"].items() if k.startswith("remote_rej")},
                         "duplicate_batches": d["memory"].get("duplicate_batches", 0), "store": d["store"]})
    return {
        "robots": robots, "duration_s": duration, "rate_hz": rate, "world_objects": objects,
        "server_outage_s": outage, "outage_window": outage_window,
        "log_rows": len(log), "log_each_batch_once": in_log_ok and len(log) == sum(published.values()),
        "every_node_took_in_every_other_batch_once": all(
            p["took_in"] == p["others_published"] and p["duplicate_batches"] == 0 for p in per_node),
        "markers_answered": f"{sum(a for _, _, a in lags)}/{len(lags)} batches (markers checked with where_is)",
        "visibility_lag_s": {"all": _lag_summary([lag for _, lag, _ in lags]), "outside_outage": _lag_summary(outside),
                             "outage_excluded": "sent from 2 s before the server stopped to 1 s after it was back"},
        "after_restart": None if outage_window is None else _after_restart(lags, outage_window[1]),
        "sender_ingest_to_commit_s": _lag_summary([float(d) for sent, d in committed if outage_window is None or not (
            outage_window[0] - 2.0 <= sent <= outage_window[1] + 1.0)]),  # the rest of the lag: the receivers
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()],
                         "note": "1/5/15-minute load on this machine, shared with other jobs"},
        "niceness": os.nice(0),  # < 0: the robots and the server ran at a higher priority than the other jobs
        "nodes": per_node,
    }


def _after_restart(lags: list[tuple[float, float, bool]], up: float) -> dict:
    """How soon after the server is back every new batch is seen within 1 s again (the queues drained)."""
    late = [sent - up for sent, lag, _ in lags if sent >= up and lag > 1.0]
    return {"lag_under_1s_for_every_batch_sent_after_s": round(max(late, default=0.0), 2),
            "first_5s": _lag_summary([lag for sent, lag, _ in lags if up <= sent < up + 5.0])}


def _lag_summary(lags: list[float]) -> dict:
    if not lags:
        return {}
    arr = np.asarray(lags)
    return {"n": len(lags), "p50_s": round(float(np.percentile(arr, 50)), 3),
            "p99_s": round(float(np.percentile(arr, 99)), 3), "max_s": round(float(arr.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", default="all", choices=["all", "single", "fleet", "_robot"])
    parser.add_argument("--url", help="an existing server's admin URL (default: start one, fsync on)")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--batch-frames", type=int, default=200, help="frames for the durability=batch runs")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--robots", type=int, default=3)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--fleet-objects", type=int, default=2000)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/postgres.json"))
    # a robot process's own arguments
    parser.add_argument("--node")
    parser.add_argument("--spool")
    parser.add_argument("--start-at", type=float)
    parser.add_argument("--result")
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "_robot":
        robot_process(args)
        return
    from robomem.core.pg_server import LocalPostgres

    server = None if args.url else LocalPostgres(fsync=True).start()
    admin = args.url or server.url
    report = {"benchmark": "postgres", "machine": {"python": platform.python_version(), "cores": os.cpu_count()},
              "postgres_fsync": True if server else "as configured"}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if args.mode in ("all", "single"):
                runs = {}
                for durability, frames in (("interval", args.frames), ("batch", args.batch_frames)):
                    for backend in ("sqlite", "postgres"):
                        name = f"{backend}_{durability}"
                        db = (str(work / f"{durability}.sqlite") if backend == "sqlite" else
                              _new_database(admin, f"bench_{durability}") + f"?node=n1&spool={work}/{durability}.spool")
                        runs[name] = single_node(db, args.objects, frames, args.queries, durability)
                        print(json.dumps({name: runs[name]}), flush=True)
                report["single_node"] = runs
                report["postgres_vs_sqlite_ingest"] = {
                    d: round(runs[f"postgres_{d}"]["ingest_obs_per_s"] / runs[f"sqlite_{d}"]["ingest_obs_per_s"], 3)
                    for d in ("interval", "batch")}
            if args.mode in ("all", "fleet"):
                url = _new_database(admin, "bench_fleet")
                report["fleet"] = fleet(url, server, args.robots, args.duration, args.rate, args.fleet_objects,
                                        args.outage if server else 0.0, work)
                print(json.dumps(report["fleet"]), flush=True)
    finally:
        if server is not None:
            server.destroy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.mode == "fleet" and args.out.exists():  # a fleet run keeps the file's single-node figures
        kept = json.loads(args.out.read_text())
        report = {**kept, **report, "single_node_from": "an earlier run (fleet-only run since)"} \
            if "single_node" in kept else report
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "fleet"}, indent=2))


if __name__ == "__main__":
    main()
