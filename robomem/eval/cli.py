"""Evaluation subcommands of the ``robomem`` command: make-episodes and score."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def cmd_make_episodes(args: argparse.Namespace) -> int:
    """Write a RoomR episode suite + index.jsonl into ``args.out``."""
    from robomem.eval.roomr_episodes import build_suite

    start = time.perf_counter()
    try:
        index = build_suite(args.year, args.n, args.seed, args.out, data_dir=args.data_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    questions = sum(row["questions"] for row in index)
    print(f"{len(index)} episodes, {questions} questions -> {args.out} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score an answers file against a truth file."""
    from robomem.eval.scoring import format_report, score_files

    try:
        result = score_files(args.answers, args.truth)
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def _n_episodes(text: str) -> int | None:
    if text.lower() == "all":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--n must be >= 1 or 'all'")
    return value


def add_eval_commands(subparsers: Any) -> None:
    """Register ``make-episodes`` and ``score`` on an argparse subparsers object."""
    make = subparsers.add_parser(
        "make-episodes", help="build memory-QA episodes from real RoomR + AI2-THOR data")
    make.add_argument("--year", type=int, choices=(2022, 2023), default=2022)
    make.add_argument("--n", type=_n_episodes, default=100,
                      help="number of episodes, spread over the 20 scenes ('all' = 1000)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--out", type=Path, required=True, help="output folder")
    make.add_argument("--data-dir", help="RoomR folder (default: $ROBOMEM_ROOMR_DIR or "
                                         "../shared/data/roomr beside the repository)")
    make.set_defaults(func=cmd_make_episodes)
    sc = subparsers.add_parser("score", help="score answers against a truth file")
    sc.add_argument("answers", type=Path, help="ANSWERS.jsonl")
    sc.add_argument("truth", type=Path, help="TRUTH.jsonl")
    sc.add_argument("--json", action="store_true", help="print the full result as JSON")
    sc.set_defaults(func=cmd_score)
