"""Memory-QA accuracy of robomem on RoomR episodes: build them, answer them, score them.

    python benchmarks/qa_accuracy.py --n all --out benchmarks/results/qa_roomr.json    # 2 x 1,000 episodes
    python benchmarks/qa_accuracy.py --n 100 --years 2023

Episodes come from `robomem make-episodes` (real RoomR val rearrangements + real AI2-THOR metadata);
answers from `robomem.qa.run_episode` (the code behind `robomem qa`); scores from robomem.eval.scoring.
Writes JSON with accuracy per question type, receptacle accuracy and answer latency, per year and overall.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from robomem.eval.roomr_episodes import build_suite
from robomem.eval.scoring import format_report, score_files
from robomem.qa import run_episode


def _answer(args: tuple[str, str]) -> str:
    episode, out = args
    run_episode(episode, out, log=lambda msg: None)
    return out


def evaluate_year(year: int, n: int | None, seed: int, workdir: Path, workers: int) -> dict:
    episodes_dir = workdir / f"episodes{year}"
    start = time.perf_counter()
    index = build_suite(year, n, seed, episodes_dir)
    built_s = time.perf_counter() - start
    episodes = sorted(p for p in episodes_dir.glob("*.jsonl") if not p.name.endswith(".truth.jsonl")
                      and p.name != "index.jsonl")
    jobs = [(str(p), str(workdir / f"answers{year}" / p.name)) for p in episodes]
    (workdir / f"answers{year}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        answers = list(pool.map(_answer, jobs, chunksize=8))
    answer_s = time.perf_counter() - start
    truths = [str(Path(e).with_name(Path(e).name.replace(".jsonl", ".truth.jsonl"))) for e, _ in jobs]
    report = score_files(answers, truths)
    report.update({"year": year, "episodes": len(index), "seed": seed, "build_s": round(built_s, 1),
                   "answer_s": round(answer_s, 1)})
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", default="2022,2023")
    parser.add_argument("--n", default="all", help="episodes per year, or 'all' (1,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/qa_roomr.json"))
    args = parser.parse_args()
    n = None if args.n == "all" else int(args.n)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for year in (int(y) for y in args.years.split(",")):
            results[str(year)] = evaluate_year(year, n, args.seed, Path(tmp), args.workers)
            print(f"== RoomR {year} val: {results[str(year)]['episodes']} episodes")
            print(format_report(results[str(year)]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
