"""Memory-QA accuracy over many rooms, both RoomR years, several detectors: per question type, per room
type and per detector setting.

    python benchmarks/qa_wide.py --split train --n 40 --detectors default,worse     # tuning
    python benchmarks/qa_wide.py --split val --n 100 --out benchmarks/results/qa_wide_val.json   # report

Tune on ``train`` (RoomR rooms 1-20 of each type); report on ``val`` (rooms 21-25), which is not tuned
on. Rooms 26-30 are held out and never generated. Writes JSON; prints a table per detector.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from robomem.eval.detectors import DETECTORS, episode_config
from robomem.eval.roomr_episodes import build_suite
from robomem.eval.scoring import format_report, score_files
from robomem.qa import run_episode

ROOM_TYPES = {0: "kitchen", 2: "living_room", 3: "bedroom", 4: "bathroom"}


def room_type(scene: str) -> str:
    return ROOM_TYPES[int(scene.removeprefix("FloorPlan")) // 100]


def _answer(job: tuple[str, str]) -> None:
    run_episode(job[0], job[1], log=lambda msg: None)


def evaluate(split: str, years: list[int], n: int | None, seed: int, detector: str, workdir: Path,
             workers: int) -> dict:
    rows = []
    for year in years:
        folder = workdir / f"{detector}_{year}"
        for row in build_suite(year, n, seed, folder, episode_config(detector), split=split):
            rows.append((folder / row["episode"], folder / row["truth"], room_type(row["scene"])))
    jobs = [(str(e), str(e.with_suffix(".answers"))) for e, _, _ in rows]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_answer, jobs, chunksize=4))
    answer_s = time.perf_counter() - start
    result = {"detector": DETECTORS[detector], "episodes": len(rows), "answer_s": round(answer_s, 1),
              **score_files([a for _, a in jobs], [str(t) for _, t, _ in rows])}
    result["per_room_type"] = {}
    for kind in sorted({k for _, _, k in rows}):
        picked = [(a, str(t)) for (_, a), (_, t, k) in zip(jobs, rows, strict=True) if k == kind]
        scored = score_files([a for a, _ in picked], [t for _, t in picked])
        result["per_room_type"][kind] = {"episodes": len(picked), "overall": scored["overall"],
                                         "per_type": {q: r["accuracy"] for q, r in scored["per_type"].items()},
                                         "receptacle": scored["receptacle"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("--years", default="2022,2023")
    parser.add_argument("--n", default="40", help="episodes per year and detector, or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detectors", default="default,worse", help=f"comma-separated: {', '.join(DETECTORS)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    n = None if args.n == "all" else int(args.n)
    years = [int(y) for y in args.years.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for detector in args.detectors.split(","):
            results[detector] = evaluate(args.split, years, n, args.seed, detector, Path(tmp), args.workers)
            print(f"== {args.split} {detector} ({results[detector]['episodes']} episodes)")
            print(format_report(results[detector]))
            for kind, row in results[detector]["per_room_type"].items():
                print(f"   {kind:<12} overall {100 * row['overall']:5.1f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"split": args.split, "years": years, "n": n, "seed": args.seed,
                                        "results": results}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
