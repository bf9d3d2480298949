"""Memory-QA episodes (spec: memory-qa.md) from real RoomR rearrangements.

An episode: a walkthrough of the room in its RoomR "target" arrangement, a silent gap
while the room is shuffled into the "start" arrangement (plus a few objects taken away
and brought in: shuffle.py), then a second exploration.
Questions are asked at the end of the walkthrough, halfway through the second
exploration and at its end.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robomem.eval import questions as qs
from robomem.eval.shuffle import shuffle_extras
from robomem.eval.simulate import Detection, EpisodeConfig, SceneArrays, View, detect, plan_views
from robomem.thor.scene import build_world, load_roomr, thor_vocabulary

__all__ = [
    "EpisodeConfig",
    "QuestionPlan",
    "Trace",
    "build_episode",
    "build_suite",
    "sample_suite",
    "simulate",
    "write_episode",
]

EXTRAS_STREAM = 0x5EED  # random stream of the objects removed and added in the shuffle


@dataclass(frozen=True)
class QuestionPlan:
    """How many questions of each type to try at each ask time (fewer if undecidable)."""

    walk_end: tuple[tuple[str, int], ...] = (
        ("where_is", 6), ("last_seen", 3), ("contents", 3), ("state", 4), ("count", 3),
        ("absent", 2),
    )
    mid_explore: tuple[tuple[str, int], ...] = (
        ("where_is", 5), ("last_seen", 2), ("contents", 1), ("state", 2), ("count", 2),
        ("what_changed", 1),
    )
    explore_end: tuple[tuple[str, int], ...] = (
        ("where_is", 6), ("where_was", 5), ("last_seen", 3), ("contents", 2), ("state", 3),
        ("count", 3), ("what_changed", 1), ("absent", 2),
    )


@dataclass
class Trace:
    """Everything simulated for one episode (ground truth included)."""

    scene: str
    views: list[View]
    detections: list[list[Detection]]
    knowledge: qs.Knowledge
    ask_times: list[float]
    questions: list[qs.Question]
    removed: list[str] = field(default_factory=list)  # keys taken out in the shuffle
    added: list[str] = field(default_factory=list)  # keys brought in by the shuffle


def simulate(
    scene: str,
    roomr_episode: dict[str, Any],
    seed: int,
    config: EpisodeConfig | None = None,
    plan: QuestionPlan | None = None,
) -> Trace:
    """Simulate views, detections and questions of one RoomR episode (deterministic)."""
    cfg = config or EpisodeConfig()
    plan = plan or QuestionPlan()
    rng = np.random.default_rng(seed)
    target = build_world(scene, roomr_episode, "target")
    start = build_world(scene, roomr_episode, "start")
    arrays1 = SceneArrays(target)
    views1 = plan_views(arrays1, cfg.walk_viewpoints, 1.0, 1, rng, cfg)
    t_walk_end = views1[-1].t + 0.5
    t_shuffle = views1[-1].t + cfg.view_dt_s
    views2 = plan_views(SceneArrays(start), cfg.explore_viewpoints,
                        views1[-1].t + cfg.shuffle_gap_s, 2, rng, cfg)
    detections = [detect(arrays1, v, rng, cfg) for v in views1]
    seen = {d.key for dets in detections for d in dets if d.key is not None}
    extras_rng = np.random.default_rng([seed, EXTRAS_STREAM])  # own stream: RoomR part kept
    start, removed, added = shuffle_extras(
        target, start, cfg.removed_per_episode, cfg.added_per_episode, views1, seen,
        extras_rng)
    arrays2 = SceneArrays(start)
    detections += [detect(arrays2, v, rng, cfg) for v in views2]
    views = views1 + views2
    half = (cfg.explore_viewpoints // 2) * cfg.headings
    t_mid = views2[max(half - 1, 0)].t + 0.5
    t_end = views2[-1].t + 0.5
    kn = qs.Knowledge({1: target, 2: start}, views, detections, t_shuffle)
    questions = _make_questions(kn, plan, [t_walk_end, t_mid, t_end], views1, rng)
    return Trace(scene, views, detections, kn, [t_walk_end, t_mid, t_end], questions,
                 removed, added)


def _make_questions(
    kn: qs.Knowledge,
    plan: QuestionPlan,
    times: list[float],
    views1: list[View],
    rng: np.random.Generator,
) -> list[qs.Question]:
    vocab = thor_vocabulary()
    out: list[qs.Question] = []
    for t, spec in zip(times, (plan.walk_end, plan.mid_explore, plan.explore_end), strict=True):
        for kind, n in spec:
            if kind == "where_was":  # at the walkthrough's end and at a time within it
                mid_at = views1[int(rng.integers(len(views1) // 2, len(views1) - 1))].t + 0.5
                out += qs.ask_where_was(kn, t, times[0], n - n // 2, rng, n_null=1)
                out += qs.ask_where_was(kn, t, mid_at, n // 2, rng, n_null=0)
            elif kind == "what_changed":
                out += qs.ask_what_changed(kn, t, times[0])
            elif kind == "absent":
                out += qs.ask_absent(kn, t, n, rng, vocab)
            else:
                out += getattr(qs, f"ask_{kind}")(kn, t, n, rng)
    return out


def to_events(trace: Trace, source: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Spec events (header, observe, ask in time order) and truth records."""
    events: list[dict[str, Any]] = [
        {"kind": "header", "version": 1, "scene": trace.scene, "up": "y", "source": source}
    ]
    timed: list[tuple[float, int, dict[str, Any]]] = []
    for i, (view, dets) in enumerate(zip(trace.views, trace.detections, strict=True)):
        timed.append((view.t, i, {
            "kind": "observe", "t": view.t, "robot": "r1", "view": view.to_json(),
            "objects": [d.to_json() for d in dets],
        }))
    truth: list[dict[str, Any]] = []
    ordered = sorted(enumerate(trace.questions), key=lambda iq: (iq[1].t, iq[0]))
    for n, (_, q) in enumerate(ordered, start=1):
        qid = f"q{n}"
        timed.append((q.t, len(trace.views) + n,
                      {"kind": "ask", "t": q.t, "id": qid, "question": q.question}))
        truth.append({"id": qid, "type": q.type, "t": q.t, "question": q.question,
                      "truth": q.truth, **q.extra})
    events += [e for _, _, e in sorted(timed, key=lambda x: (x[0], x[1]))]
    return events, truth


def build_episode(
    scene: str,
    roomr_episode: dict[str, Any],
    seed: int,
    config: EpisodeConfig | None = None,
    source: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One episode as (events, truth records); deterministic for a given seed."""
    trace = simulate(scene, roomr_episode, seed, config)
    src = source or f"RoomR val {scene} + AI2-THOR object metadata (procthor 0.0.1.dev2)"
    return to_events(trace, src)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def write_episode(
    out_dir: str | os.PathLike[str],
    name: str,
    events: list[dict[str, Any]],
    truth: list[dict[str, Any]],
) -> tuple[Path, Path]:
    """Write ``NAME.jsonl`` (the episode) and ``NAME.truth.jsonl``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    episode_path, truth_path = out / f"{name}.jsonl", out / f"{name}.truth.jsonl"
    _write_jsonl(episode_path, events)
    _write_jsonl(truth_path, truth)
    return episode_path, truth_path


def sample_suite(
    year: int, n_episodes: int | None, seed: int, data_dir: str | None = None, split: str = "val"
) -> list[tuple[str, int]]:
    """Deterministic (scene, episode index) picks spread round-robin over all scenes of the split."""
    data = load_roomr(year, data_dir, split)
    scenes = sorted(data, key=lambda s: int(s.removeprefix("FloorPlan")))
    if n_episodes is None:
        return [(s, i) for s in scenes for i in range(len(data[s]))]
    rng = np.random.default_rng(seed)
    orders = {s: list(rng.permutation(len(data[s]))) for s in scenes}
    picks: list[tuple[str, int]] = []
    k = 0
    while len(picks) < n_episodes and any(orders.values()):
        scene = scenes[k % len(scenes)]
        if orders[scene]:
            picks.append((scene, int(orders[scene].pop(0))))
        k += 1
    return picks


def build_suite(
    year: int,
    n_episodes: int | None,
    seed: int,
    out_dir: str | os.PathLike[str],
    config: EpisodeConfig | None = None,
    data_dir: str | None = None,
    split: str = "val",
) -> list[dict[str, Any]]:
    """Write a suite of episodes of a RoomR split (train for tuning, val for reporting) +
    ``index.jsonl``; return the index rows."""
    cfg = config or EpisodeConfig()
    data = load_roomr(year, data_dir, split)
    index = []
    for scene, i in sample_suite(year, n_episodes, seed, data_dir, split):
        name = f"roomr{year}{'' if split == 'val' else split}_{scene}_{i:02d}"
        ep_seed = seed * 1_000_003 + int(scene.removeprefix("FloorPlan")) * 1000 + i
        source = f"RoomR {year} {split} {scene} #{i} + AI2-THOR object metadata (procthor 0.0.1.dev2)"
        events, truth = build_episode(scene, data[scene][i], ep_seed, cfg, source)
        ep_path, truth_path = write_episode(out_dir, name, events, truth)
        index.append({"name": name, "scene": scene, "year": year, "split": split, "roomr_index": i,
                      "seed": ep_seed, "episode": ep_path.name, "truth": truth_path.name,
                      "questions": len(truth)})
    _write_jsonl(Path(out_dir) / "index.jsonl", index)
    with open(Path(out_dir) / "config.json", "w", encoding="utf-8") as fh:
        json.dump({"year": year, "split": split, "n": n_episodes, "seed": seed, "config": asdict(cfg)}, fh,
                  indent=1)
    return index
