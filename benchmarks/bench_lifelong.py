"""Lifelong operation: a robot patrolling a house at 10 Hz, objects moved now and then, 0.15 false
detections per view, simulated faster than real time; reports per simulated hour the ingest latency
(p50 / p99), the process RSS and the size of the SQLite file (with its WAL), with memory's default
retention.

    python benchmarks/bench_lifelong.py                 # 2 simulated hours (72k batches, a few minutes)
    python benchmarks/bench_lifelong.py --hours 24      # the full day: 864k batches

Targets (issue 15): ingest p99 of the last hour <= 1.5x the first, RSS <= 400 MB, database growth at
10 Hz <= 200 MB per day (a shorter run extrapolates its growth per hour after the first to 24 h).

Each batch's ingest is timed twice: wall time (perf_counter), which on a shared machine also holds the
time other processes (and memory's own writer thread) had the CPU, and the ingesting thread's CPU time
(thread_time), which does not. Both are reported, with the machine's load average per hour.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robomem.core import Memory, MemoryConfig
from robomem.core.geometry import in_view
from robomem.core.types import ObservationBatch, make_detection, make_view

RATE_HZ = 10.0
FURNITURE = [("CounterTop", (2.0, 0.6, 0.9)), ("DiningTable", (1.2, 0.8, 0.75)), ("Sofa", (2.0, 0.9, 0.8)),
             ("Fridge", (0.8, 0.8, 1.8)), ("Bed", (2.0, 1.6, 0.5)), ("Desk", (1.2, 0.6, 0.75)),
             ("Shelf", (1.0, 0.4, 1.8)), ("SideTable", (0.5, 0.5, 0.6)), ("CoffeeTable", (1.0, 0.6, 0.45)),
             ("Dresser", (1.2, 0.5, 1.0))]
OBJECTS = ["Mug", "Apple", "Book", "Laptop", "Bowl", "Plate", "Cup", "Spoon", "Pen", "Phone", "Remote",
           "Vase", "Bottle", "Keys", "Wallet", "Glasses", "Towel", "Pillow", "Candle", "Box", "Plant", "Clock"]


def uptime() -> str:
    """`uptime`'s line: the machine's load while this ran (other jobs share its cores)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def db_mb(path: Path) -> float:
    """The database file (its WAL, a few MB that SQLite reuses after each checkpoint, apart: wal_mb)."""
    return path.stat().st_size / 1e6 if path.exists() else 0.0


def wal_mb(path: Path) -> float:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size / 1e6 if wal.exists() else 0.0


class House:
    """A 12 x 10 m house: furniture on a grid, objects resting on it, a robot on a patrol loop."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.furniture = []
        for k, (label, size) in enumerate(FURNITURE):
            x, y = 1.5 + 3.0 * (k % 4), 1.5 + 3.5 * (k // 4)
            self.furniture.append((label, np.array([x, y, size[2] / 2]), np.array(size)))
        self.objects = [[label, self._spot()] for label in OBJECTS]
        self.next_move = rng.uniform(600, 2400, len(self.objects))  # each object moves every 10-40 min

    def _spot(self) -> np.ndarray:
        _, center, size = self.furniture[self.rng.integers(len(self.furniture))]
        offset = self.rng.uniform(-0.35, 0.35, 2) * size[:2]
        return np.array([center[0] + offset[0], center[1] + offset[1], size[2] + 0.05])

    def step(self, t: float) -> tuple[list, object]:
        rng = self.rng
        for k in np.flatnonzero(self.next_move <= t):
            self.objects[k][1] = self._spot()
            self.next_move[k] = t + rng.uniform(600, 2400)
        phase = (t / 120.0) % 1.0  # a 2-minute loop around the house, looking around
        angle = 2 * np.pi * phase
        position = (6.0 + 4.0 * np.cos(angle), 5.0 + 3.0 * np.sin(angle), 1.2)
        view = make_view(position, (np.degrees(angle) + 90.0 + 60.0 * np.sin(t / 7.0)) % 360.0, 90.0, 4.0)
        things = [(label, center, size, 0.95) for label, center, size in self.furniture]
        things += [(label, center, np.array([0.1, 0.1, 0.1]), 0.85) for label, center in self.objects]
        centers = np.array([c for _, c, _, _ in things])
        visible = np.flatnonzero(in_view(centers, view))
        detections = []
        for k in visible:
            if rng.random() < 0.8:
                label, center, size, conf = things[k]
                detections.append(make_detection(label, center + rng.normal(0, 0.02, 3), size, conf))
        if rng.random() < 0.15:  # a false detection somewhere in view
            distance, bearing = rng.uniform(0.5, 3.5), np.radians(view.yaw_deg + rng.uniform(-40, 40))
            point = (position[0] + distance * np.cos(bearing), position[1] + distance * np.sin(bearing),
                     rng.uniform(0.2, 1.5))
            detections.append(make_detection(str(rng.choice(OBJECTS)), point, (0.1, 0.1, 0.1),
                                              float(rng.uniform(0.3, 0.6))))
        return detections, view


def not_there(memory: Memory, house: House, tolerance_m: float = 0.5) -> int:
    """Believed objects with no real instance of their label within ``tolerance_m`` (the house has
    32: 22 objects, 10 pieces of furniture, one of each label)."""
    real: dict[str, list[np.ndarray]] = {}
    for label, center, _ in house.furniture:
        real.setdefault(label, []).append(center)
    for label, center in house.objects:
        real.setdefault(label, []).append(center)
    return sum(1 for track in memory.believed_tracks()
               if min((float(np.linalg.norm(track.center - c)) for c in real.get(track.label, [])),
                      default=np.inf) > tolerance_m)


def run(hours: float, seed: int, db: Path, progress: Callable[[list[dict]], None] = lambda rows: None) -> dict:
    memory = Memory(MemoryConfig(db_path=str(db)))
    house = House(seed)
    per_hour = []
    batches_per_hour = int(3600 * RATE_HZ)
    start = time.perf_counter()
    for hour in range(int(np.ceil(hours))):
        n = int(min(1.0, hours - hour) * batches_per_hour)
        latencies, cpu = np.zeros(n), np.zeros(n)
        for k in range(n):
            t = hour * 3600.0 + k / RATE_HZ
            detections, view = house.step(t)
            c0, t0 = time.thread_time(), time.perf_counter()
            memory.ingest(ObservationBatch(t, "robot", detections, view))
            latencies[k], cpu[k] = time.perf_counter() - t0, time.thread_time() - c0
        memory.flush(sync=True)
        stats = memory.stats()
        row = {
            "hour": hour + 1, "batches": n,
            "ingest_ms_p50": round(1000 * float(np.percentile(latencies, 50)), 3),
            "ingest_ms_p99": round(1000 * float(np.percentile(latencies, 99)), 3),
            "ingest_cpu_ms_p50": round(1000 * float(np.percentile(cpu, 50)), 3),
            "ingest_cpu_ms_p99": round(1000 * float(np.percentile(cpu, 99)), 3),
            "ingest_cpu_ms_mean": round(1000 * float(np.mean(cpu)), 3),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "rss_mb": round(rss_mb(), 1), "db_mb": round(db_mb(db), 2), "wal_mb": round(wal_mb(db), 2),
            "tracks_in_ram": stats["tracks"], "views_raw": stats["views"]["raw"], "view_cells": stats["views"]["cells"],
            "believed": memory.count_believed(), "believed_not_there": not_there(memory, house),
            "tracks_created": memory.counters["tracks_created"], "forgotten": memory.counters["forgotten_tracks"],
            "wall_s": round(time.perf_counter() - start, 1),
        }
        per_hour.append(row)
        print(json.dumps(row), flush=True)
        progress(per_hour)
    answers = {label: memory.where_is(label) for label in OBJECTS}
    memory.close()
    restarts = []
    for _ in range(3):  # the day-old file: reopen, first answer, same answers as before closing
        r0 = time.perf_counter()
        reopened = Memory(MemoryConfig(db_path=str(db)))
        reopened.where_is("Mug")
        restarts.append(round(time.perf_counter() - r0, 3))
        same = all(_same(reopened.where_is(label), info) for label, info in answers.items())
        reopened.close()
    first, last = per_hour[0], per_hour[-1]
    growth = (last["db_mb"] - first["db_mb"]) / max(1, len(per_hour) - 1) if len(per_hour) > 1 else first["db_mb"]
    return {
        "simulated_hours": hours, "rate_hz": RATE_HZ, "seed": seed, "objects": len(OBJECTS),
        "furniture": len(FURNITURE), "false_detections_per_view": 0.15, "per_hour": per_hour,
        "p99_last_over_first": round(last["ingest_ms_p99"] / first["ingest_ms_p99"], 3),
        "cpu_p99_last_over_first": round(last["ingest_cpu_ms_p99"] / first["ingest_cpu_ms_p99"], 3),
        "cpu_p50_last_over_first": round(last["ingest_cpu_ms_p50"] / first["ingest_cpu_ms_p50"], 3),
        "rss_max_mb": max(r["rss_mb"] for r in per_hour),
        "db_growth_mb_per_hour_after_first": round(growth, 3),
        "db_mb_per_day_extrapolated": round(first["db_mb"] + 23 * growth, 1) if hours < 24 else last["db_mb"],
        "extrapolated": hours < 24,
        "final_db_mb_on_disk": round(db_mb(db), 2),
        "restart_to_first_answer_s": restarts, "restart_same_answers": same,
    }


def _same(a: object, b: object) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.to_dict() == b.to_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours (24 for the full day)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_lifelong.json"))
    args = parser.parse_args()
    load_before = uptime()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def progress(rows: list[dict]) -> None:  # a long run leaves its hours so far (complete: false)
        partial = {"simulated_hours": args.hours, "complete": False, "hours_done": len(rows), "per_hour": rows,
                   "uptime_before": load_before, "uptime_now": uptime()}
        args.out.write_text(json.dumps(partial, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.hours, args.seed, Path(tmp) / "lifelong.sqlite", progress)
    result["complete"] = True
    result["machine"] = f"{os.cpu_count()} CPU cores (shared)"
    result["uptime_before"], result["uptime_after"] = load_before, uptime()
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_hour"}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
