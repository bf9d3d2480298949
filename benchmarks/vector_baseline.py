"""Flat vector-store baseline (ReMEmbR-style) vs robomem on the same memory-QA episodes.

:class:`FlatVectorMemory` is what a ReMEmbR user would build: every detection of every observe event
becomes one record in a chromadb collection, with a caption document ("Mug at (1.20, 0.90, -0.60),
open=False, seen at t=12.0"), its all-MiniLM-L6-v2 embedding (robomem's offline model, passed
explicitly so chromadb downloads nothing) and metadata (label, position, size, t, state). Questions
are answered the way a retrieval-augmented agent over such a store would: a vector query for the
label text, filtered on metadata (label, t <= question time), then simple rules over the returned
records. It has no data association and no negative evidence: that is what the comparison measures.

    python benchmarks/vector_baseline.py --episodes /tmp/bench_eps --out benchmarks/results/qa_compare.json

needs ``pip install -r requirements-bench.txt`` (chromadb; not part of CI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

import robomem.qa as qa
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.embedding import MiniLMEmbedder, TextEmbedder
from robomem.eval.scoring import score_files

PLACE_M = 0.5  # records of one label closer than this are one "distinct position"
RECEPTACLE_REACH_M = 1.0  # a receptacle counts if its box is within this distance below an object
ON_TOP_M = 0.4  # how far above a receptacle's top its contents may reach (objects resting on it)
FOOTPRINT_MARGIN_M = 0.05
TOP_K = 1000  # vector query depth: far above the records one label gets in an episode
STATE_FLIPS = {"open": ("opened", "closed"), "on": ("turned_on", "turned_off")}


@dataclass(frozen=True)
class Record:
    """One stored detection, in the core's z-up frame."""

    label: str
    center: np.ndarray
    size: np.ndarray
    t: float
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Place:
    """Records of one label within PLACE_M of each other (what a flat store calls one instance)."""

    records: list[Record]

    @property
    def latest(self) -> Record:
        return self.records[-1]


def cluster_places(records: Sequence[Record], radius: float = PLACE_M) -> list[Place]:
    """Greedy clustering in time order: each record joins the place whose latest position is nearest,
    if within ``radius``, else starts a new place."""
    places: list[Place] = []
    for rec in sorted(records, key=lambda r: r.t):
        best, best_d = None, radius
        for place in places:
            d = float(np.linalg.norm(place.latest.center - rec.center))
            if d <= best_d:
                best, best_d = place, d
        if best is None:
            places.append(Place([rec]))
        else:
            best.records.append(rec)
    return places


def box_distance(point: np.ndarray, center: np.ndarray, size: np.ndarray) -> float:
    """Euclidean distance from a point to an axis-aligned box (0 inside)."""
    gap = np.maximum(np.abs(point - center) - size / 2.0, 0.0)
    return float(np.linalg.norm(gap))


def caption(label: str, center: Sequence[float], t: float, state: dict[str, Any]) -> str:
    """ReMEmbR-style text memory of one detection (coordinates in the episode's own frame)."""
    where = ", ".join(f"{v:.2f}" for v in center)
    states = "".join(f", {k}={v}" for k, v in sorted(state.items()))
    return f"{label} at ({where}){states}, seen at t={t:.1f}"


def _metadata(label: str, center: np.ndarray, size: np.ndarray, t: float, confidence: float,
              state: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "label": label, "key": normalize_label(label), "t": t, "confidence": confidence,
        "x": float(center[0]), "y": float(center[1]), "z": float(center[2]),
        "sx": float(size[0]), "sy": float(size[1]), "sz": float(size[2]),
        "state": json.dumps(state, sort_keys=True),
    }
    for k, v in state.items():
        if isinstance(v, bool | int | float | str):
            meta[f"state_{k}"] = v
    return meta


def _record(meta: dict[str, Any]) -> Record:
    return Record(str(meta["label"]), np.array([meta["x"], meta["y"], meta["z"]], dtype=float),
                  np.array([meta["sx"], meta["sy"], meta["sz"]], dtype=float), float(meta["t"]),
                  json.loads(meta.get("state") or "{}"))


def make_client(path: str | Path) -> Any:
    """An in-process persistent chromadb client with telemetry off."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


class FlatVectorMemory:
    """Every detection is one chromadb record; answers come from vector + metadata retrieval and rules."""

    def __init__(self, embedder: TextEmbedder | None = None, client: Any = None, min_confidence: float = 0.5,
                 labels: MemoryConfig | None = None, top_k: int = TOP_K) -> None:
        self._own_dir = None if client is not None else tempfile.mkdtemp(prefix="flat_vector_")
        self._client = client if client is not None else make_client(self._own_dir)
        self._name = f"flat-{uuid.uuid4().hex}"
        self.collection = self._client.create_collection(
            self._name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        self.embedder = embedder if embedder is not None else MiniLMEmbedder()
        self.min_confidence = min_confidence
        self.top_k = top_k
        labels = labels or MemoryConfig()
        self._receptacles = sorted(labels.receptacles)
        self._is_static = labels.is_static
        self._query_vectors: dict[str, list[float]] = {}
        self._next_id = 0
        self.embed_s = 0.0  # time spent embedding captions at ingest
        self.add_s = 0.0  # time spent in collection.add at ingest

    # ------------------------------------------------------------------ ingest
    def observe(self, event: dict[str, Any], frame: qa.Frame) -> int:
        """Store the detections of one observe event (z-up); returns how many were stored."""
        t = float(event["t"])
        ids, docs, metas = [], [], []
        for raw in event.get("objects") or []:
            try:
                confidence = float(raw.get("confidence", 1.0))
                if not confidence >= self.min_confidence:
                    continue
                label = str(raw["label"])
                seen_at = [float(v) for v in raw["center"]]
                center = frame.to_core(seen_at)
                size = np.abs(frame.to_core([float(v) for v in raw.get("size", [0.1, 0.1, 0.1])]))
                state = raw.get("state") or {}
                if len(center) != 3 or not np.all(np.isfinite(center)) or not isinstance(state, dict):
                    continue
                meta = _metadata(label, center, size, t, confidence, state)
            except (AttributeError, KeyError, TypeError, ValueError):
                continue  # a malformed object is dropped, as any ingest pipeline would
            ids.append(str(self._next_id))
            self._next_id += 1
            docs.append(caption(label, seen_at, t, state))
            metas.append(meta)
        if ids:
            start = time.perf_counter()
            vectors = self.embedder.embed(docs)
            self.embed_s += time.perf_counter() - start
            start = time.perf_counter()
            self.collection.add(ids=ids, embeddings=vectors, documents=docs, metadatas=metas)
            self.add_s += time.perf_counter() - start
        return len(ids)

    # ------------------------------------------------------------------ retrieval
    def _query_vector(self, text: str) -> list[float]:
        if text not in self._query_vectors:
            self._query_vectors[text] = self.embedder.embed([text])[0].tolist()
        return self._query_vectors[text]

    def label_records(self, label: str, until: float) -> list[Record]:
        """Vector query for the label text, filtered to records of that label with t <= until."""
        if self.collection.count() == 0:
            return []
        result = self.collection.query(
            query_embeddings=[self._query_vector(label)], n_results=self.top_k, include=["metadatas"],
            where={"$and": [{"key": normalize_label(label)}, {"t": {"$lte": until}}]})
        return [_record(m) for m in result["metadatas"][0]]

    def _get(self, where: dict[str, Any]) -> list[Record]:
        return [_record(m) for m in self.collection.get(where=where, include=["metadatas"])["metadatas"]]

    def _pick(self, records: list[Record], near: np.ndarray | None) -> Record | None:
        """The most recent record, or with ``near`` the latest record of the place closest to it."""
        if not records:
            return None
        if near is None:
            return max(records, key=lambda r: r.t)
        place = min(cluster_places(records), key=lambda p: float(np.linalg.norm(p.latest.center - near)))
        return place.latest

    def receptacle_of(self, rec: Record, until: float) -> str | None:
        """Label of the nearest receptacle record (t <= until) within 1 m below ``rec``, or None."""
        candidates = self._get({"$and": [{"key": {"$in": self._receptacles}}, {"t": {"$lte": until}},
                                         {"key": {"$ne": normalize_label(rec.label)}}]})
        best, best_key = None, (math.inf, math.inf)
        for cand in candidates:
            d = box_distance(rec.center, cand.center, cand.size)
            if d > RECEPTACLE_REACH_M or not (d == 0.0 or cand.center[2] < rec.center[2]):
                continue
            key = (d, float(np.prod(cand.size)))  # nearest; among containing boxes the smallest
            if key < best_key:
                best, best_key = cand, key
        return best.label if best is not None else None

    # ------------------------------------------------------------------ answers
    def _location(self, rec: Record | None, until: float, frame: qa.Frame) -> dict[str, Any] | None:
        return location_answer(rec, frame, lambda found: self.receptacle_of(found, until))

    def where_is(self, label: str, t: float, near: np.ndarray | None, frame: qa.Frame) -> dict[str, Any] | None:
        return self._location(self._pick(self.label_records(label, t), near), t, frame)

    def where_was(self, label: str, at: float, t: float, near: np.ndarray | None,
                  frame: qa.Frame) -> dict[str, Any] | None:
        until = min(at, t)
        return self._location(self._pick(self.label_records(label, until), near), until, frame)

    def last_seen(self, label: str, t: float, near: np.ndarray | None) -> dict[str, float] | None:
        rec = self._pick(self.label_records(label, t), near)
        return None if rec is None else {"t": rec.t}

    def state(self, label: str, key: str, t: float, near: np.ndarray | None) -> dict[str, Any] | None:
        records = self.label_records(label, t)
        if near is not None and records:
            records = min(cluster_places(records),
                          key=lambda p: float(np.linalg.norm(p.latest.center - near))).records
        carrying = [r for r in records if key in r.state]
        return None if not carrying else {"value": max(carrying, key=lambda r: r.t).state[key]}

    def count(self, label: str, t: float) -> dict[str, int]:
        return {"n": len(cluster_places(self.label_records(label, t)))}

    def contents(self, receptacle: str, t: float) -> dict[str, list[str]] | None:
        """Labels of the places (other, non-furniture labels) inside the receptacle's latest box or on it."""
        box = self._pick(self.label_records(receptacle, t), None)
        if box is None:
            return None
        lo = box.center - box.size / 2.0 - FOOTPRINT_MARGIN_M
        hi = box.center + box.size / 2.0 + FOOTPRINT_MARGIN_M
        hi[2] += ON_TOP_M
        where = [{"t": {"$lte": t}}, {"key": {"$ne": normalize_label(receptacle)}}]
        for axis, name in enumerate("xyz"):
            where += [{name: {"$gte": float(lo[axis])}}, {name: {"$lte": float(hi[axis])}}]
        by_label: dict[str, list[Record]] = defaultdict(list)
        for rec in self._get({"$and": where}):
            if not self._is_static(rec.label):
                by_label[rec.label].append(rec)
        return {"labels": sorted(label for label, recs in by_label.items() for _ in cluster_places(recs))}

    def what_changed(self, since: float, until: float) -> dict[str, list[dict[str, str]]]:
        """'moved' for a label with a place seen only before ``since`` and another seen only after it
        (> PLACE_M apart); opened/closed/turned_on/turned_off where a place's latest state flipped."""
        by_label: dict[str, list[Record]] = defaultdict(list)
        for rec in self._get({"t": {"$lte": until}}):
            by_label[rec.label].append(rec)
        changes = []
        for label, records in sorted(by_label.items()):
            places = cluster_places(records)
            old = sum(all(r.t <= since for r in p.records) for p in places)
            new = sum(all(r.t > since for r in p.records) for p in places)
            changes += [{"label": label, "change": "moved"}] * min(old, new)
            for place in places:
                for key, (became_true, became_false) in STATE_FLIPS.items():
                    before = [r.state[key] for r in place.records if r.t <= since and key in r.state]
                    after = [r.state[key] for r in place.records if r.t > since and key in r.state]
                    if before and after and isinstance(before[-1], bool) and isinstance(after[-1], bool) \
                            and before[-1] != after[-1]:
                        changes.append({"label": label, "change": became_true if after[-1] else became_false})
        return {"changes": changes}

    def answer(self, question: dict[str, Any], t: float, frame: qa.Frame) -> Any:
        """The spec's answer object for one question, from records with t <= the question's time."""
        return answer_question(self, question, t, frame)

    def close(self) -> None:
        """Drop the collection (and the temporary database folder if this memory made it)."""
        with contextlib.suppress(Exception):
            self._client.delete_collection(self._name)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)


# ---------------------------------------------------------------------- episode runners
@dataclass
class RunStats:
    """Timing of one system over one episode."""

    observations: int = 0
    questions: int = 0
    ingest_s: float = 0.0
    wall_s: float = 0.0
    embed_s: float | None = None  # flat store only: part of ingest_s spent embedding captions
    add_s: float | None = None  # flat store only: part of ingest_s spent in chromadb add


def run_flat_episode(episode: Path, out: Path, memory: FlatVectorMemory) -> RunStats:
    """Replay ``episode`` through ``memory``; answers (JSON Lines, with ms) go to ``out``."""
    stats = RunStats()
    frame = qa.Frame()
    start_wall = time.perf_counter()
    with out.open("w") as sink:
        for _, event in qa.read_events(episode):
            kind = (event or {}).get("kind")
            if kind == "header":
                frame = qa.Frame(str(event.get("up", "z")))
            elif kind == "observe":
                start = time.perf_counter()
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    memory.observe(event, frame)
                stats.ingest_s += time.perf_counter() - start
                stats.observations += 1
            elif kind == "ask":
                stats.questions += 1
                start = time.perf_counter()
                try:
                    result = memory.answer(event.get("question") or {}, float(event["t"]), frame)
                except (KeyError, TypeError, ValueError):
                    result = None
                ms = (time.perf_counter() - start) * 1000.0
                sink.write(json.dumps({"id": event.get("id"), "answer": result, "ms": round(ms, 3)}) + "\n")
    stats.wall_s = time.perf_counter() - start_wall
    stats.embed_s, stats.add_s = memory.embed_s, memory.add_s
    return stats


@contextlib.contextmanager
def _timed_robomem_ingest(stats: RunStats) -> Iterator[None]:
    """Time robomem's parse + ingest of each observe event inside ``robomem.qa.run_episode``."""
    parse, memory_cls = qa.observation_batch, qa.Memory

    class TimedMemory(memory_cls):  # type: ignore[misc, valid-type]
        def ingest(self, batch: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().ingest(batch)
            finally:
                stats.ingest_s += time.perf_counter() - start
                stats.observations += 1

    def timed_parse(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return parse(*args, **kwargs)
        finally:
            stats.ingest_s += time.perf_counter() - start

    with mock.patch.object(qa, "Memory", TimedMemory), mock.patch.object(qa, "observation_batch", timed_parse):
        yield


def run_robomem_episode(episode: Path, out: Path) -> RunStats:
    """``robomem.qa.run_episode`` with its ingest time measured."""
    stats = RunStats()
    start = time.perf_counter()
    with _timed_robomem_ingest(stats):
        run = qa.run_episode(episode, out, log=lambda msg: None)
    stats.wall_s = time.perf_counter() - start
    stats.questions = run.questions
    return stats


# ---------------------------------------------------------------------- comparison
SYSTEMS = ("robomem", "flat_vector")


def find_episodes(items: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """(episode, truth) pairs from episode files and folders of them (NAME.jsonl + NAME.truth.jsonl)."""
    pairs = []
    for item in map(Path, items):
        files = sorted(item.glob("*.jsonl")) if item.is_dir() else [item]
        for path in files:
            if path.name.endswith(".truth.jsonl") or path.name == "index.jsonl":
                continue
            truth = path.with_name(path.name[: -len(".jsonl")] + ".truth.jsonl")
            if truth.is_file():
                pairs.append((path, truth))
            elif not item.is_dir():
                raise FileNotFoundError(f"no truth file beside {path}: {truth}")
    return pairs


def summarize(result: dict[str, Any], stats: list[RunStats]) -> dict[str, Any]:
    """Accuracies, answer latency and ingest time of one system."""
    observations = sum(s.observations for s in stats)
    ingest_s = sum(s.ingest_s for s in stats)

    def per_obs(seconds: list[float | None]) -> float | None:
        known = [v for v in seconds if v is not None]
        return 1000.0 * sum(known) / observations if observations and known else None

    return {
        "overall": result["overall"],
        "per_type": result["per_type"],
        "receptacle": result["receptacle"],
        "null_truth": result["null_truth"],
        "answer_ms": result["ms"],
        "ingest_ms_per_observation": 1000.0 * ingest_s / observations if observations else None,
        "ingest_embed_ms_per_observation": per_obs([s.embed_s for s in stats]),
        "ingest_db_add_ms_per_observation": per_obs([s.add_s for s in stats]),
        "observations": observations,
        "wall_s": sum(s.wall_s for s in stats),
        "missing_answers": result["missing"],
    }


def markdown_table(systems: dict[str, dict[str, Any]]) -> str:
    """Side-by-side markdown table of :func:`summarize` results."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    def num(v: float | None, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    a, b = (systems[s] for s in SYSTEMS)
    rows = [f"| metric | n | {' | '.join(SYSTEMS)} |", "|---|---:|---:|---:|"]
    for qtype in sorted(set(a["per_type"]) | set(b["per_type"])):
        n = (a["per_type"].get(qtype) or b["per_type"][qtype])["n"]
        rows.append(f"| {qtype} acc % | {n} | " + " | ".join(
            pct((s["per_type"].get(qtype) or {}).get("accuracy")) for s in (a, b)) + " |")
    rows.append(f"| receptacle acc % | {a['receptacle']['n']} | "
                f"{pct(a['receptacle']['accuracy'])} | {pct(b['receptacle']['accuracy'])} |")
    rows.append(f"| null-truth acc % | {a['null_truth']['n']} | "
                f"{pct(a['null_truth']['accuracy'])} | {pct(b['null_truth']['accuracy'])} |")
    rows.append(f"| **overall acc %** | {a['answer_ms']['n']} | "
                f"**{pct(a['overall'])}** | **{pct(b['overall'])}** |")
    for key in ("p50", "p99"):
        rows.append(f"| answer ms {key} | | {num(a['answer_ms'][key], '.3f')} | {num(b['answer_ms'][key], '.3f')} |")
    rows.append(f"| ingest ms / observation | {a['observations']} | "
                f"{num(a['ingest_ms_per_observation'])} | {num(b['ingest_ms_per_observation'])} |")
    for key, name in (("ingest_embed_ms_per_observation", "caption embedding"),
                      ("ingest_db_add_ms_per_observation", "chromadb add")):
        rows.append(f"| ... of which {name} ms | | {num(a[key])} | {num(b[key])} |")
    rows.append(f"| total wall s | | {num(a['wall_s'], '.1f')} | {num(b['wall_s'], '.1f')} |")
    return "\n".join(rows)


def compare(pairs: list[tuple[Path, Path]], work: Path, min_confidence: float = 0.5,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run both systems over every (episode, truth) pair; answers go under ``work``."""
    import chromadb

    embedder = MiniLMEmbedder()
    client = make_client(work / "chroma")
    answers: dict[str, list[Path]] = {s: [] for s in SYSTEMS}
    stats: dict[str, list[RunStats]] = {s: [] for s in SYSTEMS}
    for i, (episode, _) in enumerate(pairs, 1):
        out = {s: work / s / f"{episode.stem}.answers.jsonl" for s in SYSTEMS}
        for path in out.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        stats["robomem"].append(run_robomem_episode(episode, out["robomem"]))
        memory = FlatVectorMemory(embedder, client, min_confidence=min_confidence)
        try:
            stats["flat_vector"].append(run_flat_episode(episode, out["flat_vector"], memory))
        finally:
            memory.close()
        for s in SYSTEMS:
            answers[s].append(out[s])
        log(f"[{i}/{len(pairs)}] {episode.name}: robomem {stats['robomem'][-1].wall_s:.2f} s, "
            f"flat_vector {stats['flat_vector'][-1].wall_s:.2f} s")
    truths = [truth for _, truth in pairs]
    systems = {s: summarize(score_files(answers[s], truths), stats[s]) for s in SYSTEMS}
    return {
        "episodes": [episode.name for episode, _ in pairs],
        "n_episodes": len(pairs),
        "n_questions": systems["robomem"]["answer_ms"]["n"],
        "settings": {"flat_vector": {"store": f"chromadb {chromadb.__version__} PersistentClient (cosine HNSW)",
                                     "embedding": "all-MiniLM-L6-v2 int8 ONNX (robomem.core.embedding)",
                                     "min_confidence": min_confidence, "place_radius_m": PLACE_M,
                                     "receptacle_reach_m": RECEPTACLE_REACH_M, "top_k": TOP_K}},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "systems": systems,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", nargs="+", required=True, help="episode files or folders of them")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/qa_compare.json"))
    parser.add_argument("--limit", type=int, help="use only the first N episodes (sorted by name)")
    parser.add_argument("--min-confidence", type=float, default=0.5,
                        help="detector score below which the flat store drops a detection (default 0.5)")
    parser.add_argument("--keep-answers", type=Path, help="write answer files here (default: a temp folder)")
    args = parser.parse_args(argv)
    pairs = find_episodes(args.episodes)[: args.limit]
    if not pairs:
        print("error: no episodes with truth files found", file=sys.stderr)
        return 2
    work = args.keep_answers or Path(tempfile.mkdtemp(prefix="qa_compare_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = compare(pairs, work, args.min_confidence, log=lambda msg: print(msg, file=sys.stderr))
    finally:
        if args.keep_answers is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work / "chroma", ignore_errors=True)
    table = markdown_table(report["systems"])
    report["table_markdown"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['n_episodes']} episodes, {report['n_questions']} questions -> {args.out}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def location_answer(rec: Record | None, frame: qa.Frame,
                    receptacle_of: Callable[[Record], str | None]) -> dict[str, Any] | None:
    """The spec's location answer for a baseline's record (its centre in the episode's frame and the
    receptacle the baseline names for it), or None when it has no record."""
    if rec is None:
        return None
    return {"center": [round(v, 4) for v in frame.from_core(rec.center)], "receptacle": receptacle_of(rec)}


def answer_question(memory: Any, question: dict[str, Any], t: float, frame: qa.Frame) -> Any:
    """The spec's answer object for one question, dispatched to a baseline memory's methods (the
    interface of :class:`FlatVectorMemory`)."""
    kind = question.get("type")
    near = question.get("near")
    near_core = frame.to_core(near) if near is not None else None
    if kind == "where_is":
        return memory.where_is(question["label"], t, near_core, frame)
    if kind == "where_was":
        return memory.where_was(question["label"], float(question["at"]), t, near_core, frame)
    if kind == "last_seen":
        return memory.last_seen(question["label"], t, near_core)
    if kind == "state":
        return memory.state(question["label"], question["key"], t, near_core)
    if kind == "count":
        return memory.count(question["label"], t)
    if kind == "contents":
        return memory.contents(question["receptacle"], t)
    if kind == "what_changed":
        return memory.what_changed(float(question["since"]), float(question.get("until", t)))
    return None
