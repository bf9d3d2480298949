"""Memory-QA accuracy over many rooms, both RoomR years, several detectors: per question type, per room
type and per detector setting.

    python benchmarks/qa_wide.py --split train --n 40 --detectors default,worse     # tuning
    python benchmarks/qa_wide.py --split val --n 100 --out benchmarks/results/qa_wide_val.json   # report
    python benchmarks/qa_wide.py --split val --n 40 --baselines emem,naive,vector \
        --out benchmarks/results/qa_baselines_val.json                                   # side by side

Tune on ``train`` (RoomR rooms 1-20 of each type); report on ``val`` (rooms 21-25), which is not tuned
on. Rooms 26-30 are held out and never generated. Writes JSON; prints a table per detector.

``--baselines`` answers the same episodes (per detector) with other memories under the same contract:
``emem`` (eMEM 0.3.0, benchmarks/emem_baseline.py), ``naive`` (last detection per label,
benchmarks/naive_baseline.py), ``vector`` (flat chromadb store, benchmarks/vector_baseline.py; needs
requirements-bench.txt). robomem's numbers are computed as without it; each detector's result gains
``baselines`` (name -> the same scores, ingest time, per room type) and ``table_markdown``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the baseline modules beside this file

from robomem.eval.detectors import DETECTORS, episode_config
from robomem.eval.roomr_episodes import build_suite
from robomem.eval.scoring import format_report, score_files
from robomem.qa import run_episode

ROOM_TYPES = {0: "kitchen", 2: "living_room", 3: "bedroom", 4: "bathroom"}
BASELINES = {"emem": "emem", "naive": None, "vector": "chromadb"}  # name -> the package it needs
MIN_CONFIDENCE = 0.5  # detector score below which every baseline drops a detection
_PROCESS: dict[str, Any] = {}  # per worker process: the text model and a chromadb client, made once


def room_type(scene: str) -> str:
    return ROOM_TYPES[int(scene.removeprefix("FloorPlan")) // 100]


def _answer(job: tuple[str, str]) -> None:
    run_episode(job[0], job[1], log=lambda msg: None)


def missing_packages(baselines: list[str]) -> list[str]:
    """'name: pip install ...' for each requested baseline whose package is not installed."""
    hints = {"emem": "pip install -r requirements.txt (emem==0.3.0)",
             "chromadb": "pip install -r requirements-bench.txt"}
    return [f"{name}: {BASELINES[name]} not installed ({hints[BASELINES[name]]})" for name in baselines
            if BASELINES[name] and importlib.util.find_spec(BASELINES[name]) is None]


def baseline_memory(name: str, workdir: Path, min_confidence: float = MIN_CONFIDENCE) -> Any:
    """A fresh memory of baseline ``name`` for one episode (the text model and chromadb client are shared
    within a process; chromadb's files live under ``workdir``)."""
    if name == "naive":
        import naive_baseline

        return naive_baseline.NaiveLastDetectionMemory(min_confidence)
    if "embedder" not in _PROCESS:
        from robomem.core.embedding import MiniLMEmbedder

        _PROCESS["embedder"] = MiniLMEmbedder()
    if name == "emem":
        import emem_baseline

        return emem_baseline.EmemMemory(_PROCESS["embedder"], min_confidence)
    if name == "vector":
        import vector_baseline

        if "chroma" not in _PROCESS:
            _PROCESS["chroma"] = vector_baseline.make_client(workdir / f"chroma_{os.getpid()}")
        return vector_baseline.FlatVectorMemory(_PROCESS["embedder"], _PROCESS["chroma"], min_confidence)
    raise ValueError(f"unknown baseline {name!r} (choose from {', '.join(BASELINES)})")


def _answer_baseline(job: tuple[str, str, str, str]) -> dict[str, Any]:
    """Answer one episode with one baseline; returns its RunStats as a dict."""
    import vector_baseline

    name, episode, out, workdir = job
    memory = baseline_memory(name, Path(workdir))
    try:
        stats = vector_baseline.run_flat_episode(Path(episode), Path(out), memory)
    finally:
        memory.close()
    return dataclasses.asdict(stats)


def _per_room_type(answers: list[str], rows: list[tuple[Path, Path, str]]) -> dict[str, Any]:
    out = {}
    for kind in sorted({k for _, _, k in rows}):
        picked = [(a, str(t)) for a, (_, t, k) in zip(answers, rows, strict=True) if k == kind]
        scored = score_files([a for a, _ in picked], [t for _, t in picked])
        out[kind] = {"episodes": len(picked), "overall": scored["overall"],
                     "per_type": {q: r["accuracy"] for q, r in scored["per_type"].items()},
                     "receptacle": scored["receptacle"]}
    return out


def run_baseline(name: str, rows: list[tuple[Path, Path, str]], workdir: Path, workers: int) -> dict[str, Any]:
    """Scores of baseline ``name`` over the episodes of ``rows`` (episode, truth, room type)."""
    import vector_baseline

    answers = [str(e.with_suffix(f".{name}.answers")) for e, _, _ in rows]
    jobs = [(name, str(e), a, str(workdir)) for (e, _, _), a in zip(rows, answers, strict=True)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        stats = [vector_baseline.RunStats(**s) for s in pool.map(_answer_baseline, jobs, chunksize=4)]
    answer_s = time.perf_counter() - start
    scored = score_files(answers, [str(t) for _, t, _ in rows])
    summary = vector_baseline.summarize(scored, stats)
    return {"episodes": len(rows), "answer_s": round(answer_s, 1), "n_questions": scored["n_questions"],
            "overall": scored["overall"], "per_type": scored["per_type"], "receptacle": scored["receptacle"],
            "null_truth": scored["null_truth"], "ms": scored["ms"], "missing": scored["missing"],
            "ingest_ms_per_observation": summary["ingest_ms_per_observation"],
            "observations": summary["observations"], "per_room_type": _per_room_type(answers, rows)}


def side_by_side(result: dict[str, Any]) -> str:
    """Markdown table: accuracy % per question type, robomem and each baseline of ``result``."""
    systems = {"robomem": result, **result.get("baselines", {})}

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    def acc(system: dict[str, Any], qtype: str) -> float | None:
        return (system["per_type"].get(qtype) or {}).get("accuracy")

    rows = [f"| type | n | {' | '.join(systems)} |", "|---|---:|" + "---:|" * len(systems)]
    for qtype, row in result["per_type"].items():
        rows.append(f"| {qtype} | {row['n']} | " + " | ".join(pct(acc(s, qtype)) for s in systems.values()) + " |")
    for key, title in (("receptacle", "receptacle"), ("null_truth", "null truth")):
        rows.append(f"| {title} | {result[key]['n']} | "
                    + " | ".join(pct(s[key]["accuracy"]) for s in systems.values()) + " |")
    rows.append(f"| **overall** | {result['n_questions']} | "
                + " | ".join(f"**{pct(s['overall'])}**" for s in systems.values()) + " |")
    for key in ("p50", "p99"):
        rows.append(f"| answer ms {key} | | " + " | ".join(
            "-" if s["ms"][key] is None else f"{s['ms'][key]:.3f}" for s in systems.values()) + " |")
    return "\n".join(rows)


def evaluate(split: str, years: list[int], n: int | None, seed: int, detector: str, workdir: Path,
             workers: int, baselines: tuple[str, ...] = ()) -> dict:
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
    result["per_room_type"] = _per_room_type([a for _, a in jobs], rows)
    if baselines:
        result["baselines"] = {name: run_baseline(name, rows, workdir, workers) for name in baselines}
        result["table_markdown"] = side_by_side(result)
    return result


def baseline_settings(baselines: tuple[str, ...]) -> dict[str, Any]:
    """What each baseline is (versions, thresholds), for the JSON report."""
    from importlib.metadata import version

    settings: dict[str, Any] = {"min_confidence": MIN_CONFIDENCE}
    if "emem" in baselines:
        import emem_baseline

        config = dataclasses.asdict(emem_baseline.emem_config(Path("."), 384))
        settings["emem"] = {"package": f"emem {version('emem')}",
                            "embedding": "all-MiniLM-L6-v2 int8 ONNX (robomem.core.embedding)",
                            "config": {k: v for k, v in config.items() if not k.endswith("_path")}}
    if "naive" in baselines:
        import naive_baseline

        settings["naive"] = {"instance_radius_m": naive_baseline.PLACE_M, "move_m": naive_baseline.MOVE_M}
    if "vector" in baselines:
        import vector_baseline

        settings["vector"] = {"store": f"chromadb {version('chromadb')} (cosine HNSW)", "top_k": vector_baseline.TOP_K,
                              "place_radius_m": vector_baseline.PLACE_M}
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("--years", default="2022,2023")
    parser.add_argument("--n", default="40", help="episodes per year and detector, or 'all'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detectors", default="default,worse", help=f"comma-separated: {', '.join(DETECTORS)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baselines", default="",
                        help=f"comma-separated baselines to run on the same episodes: {', '.join(BASELINES)}")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    n = None if args.n == "all" else int(args.n)
    years = [int(y) for y in args.years.split(",")]
    baselines = tuple(b for b in args.baselines.split(",") if b)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        parser.error(f"unknown baseline(s) {', '.join(unknown)} (choose from {', '.join(BASELINES)})")
    if missing_packages(list(baselines)):
        parser.error("; ".join(missing_packages(list(baselines))))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for detector in args.detectors.split(","):
            results[detector] = evaluate(args.split, years, n, args.seed, detector, Path(tmp), args.workers,
                                         baselines)
            print(f"== {args.split} {detector} ({results[detector]['episodes']} episodes)")
            print(format_report(results[detector]))
            for kind, row in results[detector]["per_room_type"].items():
                print(f"   {kind:<12} overall {100 * row['overall']:5.1f}")
            if baselines:
                print(results[detector]["table_markdown"])
            sys.stdout.flush()
            if args.out:  # after every detector, so a long run keeps what it has done
                report: dict[str, Any] = {"split": args.split, "years": years, "n": n, "seed": args.seed}
                if baselines:
                    report["baselines"] = baseline_settings(baselines)
                report["results"] = results
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2))
    if args.out:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
