"""Run `robomem qa` over a folder of episodes and list the wrong answers by question type.

    python scripts/qa_errors.py EPISODE_DIR [--type where_is] [--show 10] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from robomem.eval.scoring import read_jsonl, receptacle_score, score_question
from robomem.qa import run_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("episodes", type=Path)
    parser.add_argument("--type", help="only show errors of this question type")
    parser.add_argument("--show", type=int, default=8)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    paths = sorted(p for p in args.episodes.glob("*.jsonl") if not p.name.endswith(".truth.jsonl")
                   and p.name != "index.jsonl")[: args.limit]
    totals: dict[str, list[float]] = defaultdict(list)
    receptacles: list[float] = []
    errors: dict[str, list[str]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for episode in paths:
            out = Path(tmp) / episode.name
            run_episode(episode, out, log=lambda msg: None)
            answers = {row["id"]: row for row in read_jsonl(out)}
            for record in read_jsonl(episode.with_name(episode.name.replace(".jsonl", ".truth.jsonl"))):
                row = answers.get(record["id"])
                value = score_question(row, record)
                totals[record["type"]].append(value)
                rec = receptacle_score(row, record)
                if rec is not None:
                    receptacles.append(rec)
                    if rec < 1 and (args.type in (None, "receptacle")):
                        errors["receptacle"].append(
                            f"{episode.stem} {record['id']} {record.get('object')} chain={record['receptacle_chain']} "
                            f"answer={row and row['answer']}")
                if value < 1:
                    errors[record["type"]].append(
                        f"{episode.stem} {record['id']} t={record['t']} q={json.dumps(record['question'])} "
                        f"truth={json.dumps(record['truth'])} answer={json.dumps(row and row['answer'])} "
                        f"obj={record.get('object')}")
    allv = [v for vs in totals.values() for v in vs]
    print(f"overall {sum(allv) / len(allv):.4f} over {len(allv)} questions, {len(paths)} episodes")
    for kind, values in sorted(totals.items()):
        print(f"  {kind:13s} {sum(values) / len(values):.4f}  (n={len(values)})")
    if receptacles:
        print(f"  receptacle    {sum(receptacles) / len(receptacles):.4f}  (n={len(receptacles)})")
    for kind, lines in errors.items():
        if args.type and kind != args.type:
            continue
        print(f"\n== {kind}: {len(lines)} wrong")
        for line in lines[: args.show]:
            print("  " + line[:600])


if __name__ == "__main__":
    main()
