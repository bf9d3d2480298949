"""How memory-QA accuracy holds up when the detector is worse (or better) than the one tuned on.

    python benchmarks/qa_robustness.py --n 40 --out benchmarks/results/qa_robustness.json

Builds the same RoomR episodes with several detector settings of the episode generator (detection
rate, false detections per view, center and size noise), answers them with default robomem, and
writes accuracy per question type for each setting.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from robomem.eval.detectors import DETECTORS, episode_config
from robomem.eval.roomr_episodes import build_suite
from robomem.eval.scoring import format_report, score_files
from robomem.qa import run_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--year", type=int, default=2022)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/qa_robustness.json"))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in DETECTORS.items():
            folder = Path(tmp) / name
            build_suite(args.year, args.n, args.seed, folder, episode_config(name))
            episodes = sorted(p for p in folder.glob("*.jsonl")
                              if not p.name.endswith(".truth.jsonl") and p.name != "index.jsonl")
            answers = []
            for episode in episodes:
                out = folder / f"{episode.stem}.answers.jsonl"
                run_episode(episode, out, log=lambda msg: None)
                answers.append(out)
            truths = [e.with_name(e.name.replace(".jsonl", ".truth.jsonl")) for e in episodes]
            results[name] = {"detector": overrides, **score_files(answers, truths)}
            print(f"== {name} {overrides}\n{format_report(results[name])}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"year": args.year, "episodes": args.n, "seed": args.seed, "settings": results},
                                   indent=2))


if __name__ == "__main__":
    main()
