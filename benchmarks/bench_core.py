"""Ingest throughput and query latency of the memory core at 1k, 10k and 100k tracked objects.

Objects of ~60 household types are spread over a large floor (density ~1 per 2 m²). The robot
walks a lawnmower path; each frame is one camera view (fov 90°, range 4 m) with detections of the
objects inside it (3 cm noise, 10% misses), so association *and* negative evidence run as in use.
Prints JSON (also written to --out). Not a test: targets are checked by reading the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from robomem.core import Memory, MemoryConfig
from robomem.core.geometry import in_view
from robomem.core.types import Detection, ObservationBatch, ViewCone

OBJECT_AREA_M2 = 0.5  # one object per half square metre: a cluttered home

LABELS = [
    "Apple", "Book", "Bottle", "Bowl", "Bread", "ButterKnife", "Candle", "CellPhone", "Cloth", "CreditCard",
    "Cup", "DishSponge", "Egg", "Fork", "Kettle", "KeyChain", "Knife", "Ladle", "Laptop", "Lettuce", "Mug",
    "Newspaper", "Pan", "Pen", "Pencil", "PepperShaker", "Pillow", "Plate", "Pot", "Potato", "RemoteControl",
    "SaltShaker", "SoapBar", "SoapBottle", "Spatula", "Spoon", "SprayBottle", "Statue", "TeddyBear",
    "TissueBox", "Tomato", "Towel", "Vase", "Watch", "WateringCan", "WineBottle", "AlarmClock", "BaseballBat",
    "BasketBall", "Boots", "Box", "CD", "Dumbbell", "HandTowel", "Plunger", "ScrubBrush", "TennisRacket",
    "ToiletPaper", "PaperTowelRoll", "Footstool",
]


def make_world(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    side = float(np.sqrt(OBJECT_AREA_M2 * n))
    centers = np.column_stack([rng.uniform(0, side, n), rng.uniform(0, side, n), rng.uniform(0.0, 1.5, n)])
    labels = rng.integers(0, len(LABELS), n)
    return centers, labels, side


def frames_over(centers, labels, side, rng, n_frames, t0, miss=0.1, noise=0.03):
    """Camera views along a random walk; each yields the detections of the objects in its cone."""
    for i in range(n_frames):
        pos = np.array([rng.uniform(0, side), rng.uniform(0, side), 1.5])
        view = ViewCone(tuple(pos), float(rng.uniform(-180, 180)), 90.0, 4.0)
        near = np.flatnonzero(np.all(np.abs(centers[:, :2] - pos[:2]) <= 4.0, axis=1))
        visible = near[in_view(centers[near], view)]
        visible = visible[rng.random(len(visible)) >= miss]
        dets = [
            Detection(LABELS[labels[j]], centers[j] + rng.normal(0, noise, 3), np.array([0.1, 0.1, 0.1]), 0.9, {})
            for j in visible
        ]
        yield ObservationBatch(t0 + i * 0.1, "r1", dets, view)


def populate(memory: Memory, centers, labels, t0: float = 0.0) -> float:
    """Show every object twice (frames without a view: no negative evidence) so all are confirmed."""
    order = np.argsort(centers[:, 0] // 4 * 1e6 + centers[:, 1])
    t = t0
    for _repeat in range(2):
        for chunk in np.array_split(order, max(1, len(order) // 20)):
            dets = [Detection(LABELS[labels[j]], centers[j].copy(), np.array([0.1, 0.1, 0.1]), 0.9, {})
                    for j in chunk]
            memory.ingest(ObservationBatch(t, "r1", dets, None))
            t += 0.01
    return t


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 4), "p99_ms": round(float(np.percentile(arr, 99)), 4),
            "mean_ms": round(float(arr.mean()), 4)}


def run_size(n: int, seed: int, n_frames: int, n_queries: int, workdir: Path, flush_every: int) -> dict:
    rng = np.random.default_rng(seed)
    centers, labels, side = make_world(n, rng)
    db = workdir / f"bench_{n}.sqlite"
    config = MemoryConfig(db_path=str(db))
    if flush_every:
        config.flush_every_batches = flush_every
    memory = Memory(config)
    start = time.perf_counter()
    t = populate(memory, centers, labels)
    populate_s = time.perf_counter() - start
    rates, n_obs, total_s = [], 0, 0.0
    for repeat in range(3):  # three passes of fresh frames: this machine's timing is noisy, report the median
        frames = list(frames_over(centers, labels, side, rng, n_frames, t + 1.0 + repeat * n_frames * 0.1))
        pass_obs = sum(len(f.detections) for f in frames)
        start = time.perf_counter()
        for f in frames:
            memory.ingest(f)
        memory.flush()
        elapsed = time.perf_counter() - start
        rates.append(pass_obs / elapsed)
        n_obs, total_s = n_obs + pass_obs, total_s + elapsed
    t = t + 1.0 + 3 * n_frames * 0.1
    result = {
        "objects": n,
        "tracks": len(memory.tracks),
        "populate_obs_per_s": round(2 * n / populate_s),
        "ingest": {"frames": 3 * n_frames, "observations": n_obs, "seconds": round(total_s, 3),
                   "obs_per_s_median": round(float(np.median(rates))),
                   "obs_per_s_passes": [round(r) for r in rates],
                   "detections_per_frame": round(n_obs / (3 * n_frames), 1)},
    }
    queries = {
        "where_is": lambda i: memory.where_is(LABELS[i % len(LABELS)]),
        "where_is_near": lambda i: memory.where_is(LABELS[i % len(LABELS)], near=centers[i % n]),
        "where_was": lambda i: memory.where_was(LABELS[i % len(LABELS)], at=t * (i % 7) / 7.0),
        "last_seen": lambda i: memory.last_seen(LABELS[i % len(LABELS)]),
        "count": lambda i: memory.count(LABELS[i % len(LABELS)]),
        "state": lambda i: memory.state(LABELS[i % len(LABELS)], "open"),
        "within_radius_1m": lambda i: memory.within_radius(centers[i % n], 1.0),
        "what_changed": lambda i: memory.what_changed(since=t + (i % 5) * 2.0),
    }
    result["queries"] = {}
    for name, call in queries.items():
        reps = n_queries if name != "what_changed" else max(5, n_queries // 50)
        samples = []
        for i in range(reps):
            q0 = time.perf_counter()
            call(i)
            samples.append((time.perf_counter() - q0) * 1000.0)
        result["queries"][name] = {"n": reps, **percentiles(samples)}
    memory.close()
    result["sqlite_mb"] = round(db.stat().st_size / 1e6, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--flush-every", type=int, default=0,
                        help="SQLite commit every N frames (default: the memory's own policy, 50 frames or 0.25 s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/core.json"))
    args = parser.parse_args()
    report = {"benchmark": "core", "machine": {"python": platform.python_version(), "cpu": platform.processor(),
                                                "cores": __import__("os").cpu_count()},
              "flush_every_batches": args.flush_every or MemoryConfig().flush_every_batches,
              "flush_interval_s": MemoryConfig().flush_interval_s, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            report["sizes"].append(run_size(n, args.seed, args.frames, args.queries, Path(tmp), args.flush_every))
            print(json.dumps(report["sizes"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
