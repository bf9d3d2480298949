"""eMEM 0.3.0 (PyPI ``emem``, EmbodiedAgents' memory: SQLite + hnswlib + R-tree) as a memory-QA baseline.

How the episode reaches eMEM (its own API, read from the installed package's source):

* One :class:`emem.SpatioTemporalMemory` per episode (a SQLite file + HNSW index in a temp folder),
  its clock the episode's time. Every confident detection (confidence >= ``min_confidence``, the
  threshold of the other baselines) of an observe event is one observation, as eMEM's README adds
  detector output: ``mem.add(label, x, y, z, timestamp=t, layer_name="detections", confidence=c,
  metadata={"label", "size", "state"})``, coordinates in robomem's z-up frame (eMEM's maps are x-y).
* Embeddings: all-MiniLM-L6-v2, the model eMEM's README names, through robomem's offline ONNX copy
  (:class:`robomem.core.embedding.MiniLMEmbedder`), passed as eMEM's ``embedding_provider``.
* Data association is eMEM's own: entities ("persistent tracked objects with auto-merge by semantic
  similarity + spatial proximity"). eMEM extracts entities with its ``LLMClient``; here that client
  is :class:`DetectionEntityClient`, which names each observation's entity by its detection label
  (what a perfect LLM would return; summaries are eMEM's concatenation fallback). eMEM then merges
  into an existing entity of similarity >= 0.85 within 5 m (its defaults), else creates one. The
  config extracts after every observation (``flush_batch_size=1``, ``entity_extract_flush_interval=1``,
  no wall-clock triggers): with the defaults eMEM extracts a batch every ~50 observations and puts
  every entity of the batch at the batch's centroid, and when depends on wall time. No episodes are
  started (the stream is one session; eMEM's consolidation never runs).

Answers use eMEM's store queries, the typed calls its ten LLM tools format into text
(``mem.store`` is its documented programmatic access): ``query_entities`` (the ``entity_query``
tool), ``get_entity_observations`` (the entity's OBSERVED_IN edges) and ``spatial_query`` (R-tree).

* where_is / last_seen: the entity named ``label`` seen last (``near``: the one closest to the
  point); its coordinates / ``last_seen``. eMEM keeps no notion of gone: a removed object stays.
* where_was: over those entities, their latest observation up to ``at``.
* receptacle (eMEM has no relations; a few lines on its API): a ``spatial_query`` around the object,
  the nearest receptacle-labelled observation whose box (from its metadata) is within 1 m below, as
  the flat vector store decides it.
* state: the latest value of the key in the entity's observations' metadata (eMEM stores no state).
* count: how many entities carry the label.
* contents (eMEM has none; a few lines): the receptacle's entity, the box of its latest observation,
  and the non-furniture entities (``query_entities`` near it) whose position lies in that box or up
  to 0.4 m above it.
* what_changed (eMEM has none; a few lines): per entity, its latest observation up to ``since``
  against its latest in (since, until]: "moved" when more than 0.5 m apart, opened/closed and
  turned_on/turned_off from the ``open``/``on`` state in their metadata. Nothing appears or
  disappears: eMEM has no negative evidence.

    python benchmarks/qa_wide.py --split val --baselines emem    # side by side with robomem

needs ``pip install emem==0.3.0`` (pinned in requirements.txt; pulls hnswlib, Rtree, scikit-learn).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from naive_baseline import MOVE_M, answer_question, in_box, nearest, parse_detections, state_changes
from vector_baseline import FOOTPRINT_MARGIN_M, ON_TOP_M, RECEPTACLE_REACH_M, box_distance

import robomem.qa as qa
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.embedding import MiniLMEmbedder, TextEmbedder

ALL = 1_000_000  # n_results meaning "every match" (eMEM's queries take a LIMIT)
RECEPTACLE_SEARCH_M = 3.0  # spatial_query radius for receptacle observations (centres of large furniture)
NEVER = 1e12  # seconds: wall-clock flush / extraction triggers that never fire within a run


class CachedEmbeddings:
    """eMEM's ``EmbeddingProvider`` protocol (``dim``, ``embed``) over a robomem text embedder, caching
    texts (labels repeat across thousands of observations)."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self._embedder = embedder
        self._cache: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return int(self._embedder.dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self._embedder.embed(missing), strict=True):
                self._cache[text] = np.asarray(vector, dtype=np.float32)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


class DetectionEntityClient:
    """eMEM's ``LLMClient`` protocol for detector output: an observation's text is its label, and that
    label is its entity. Summaries concatenate, as eMEM's own fallback (``ConcatenationSummarizer``)."""

    def summarize(self, texts: list[str]) -> str:
        return " | ".join(texts)

    def synthesize(self, layer_texts: dict[str, list[str]]) -> str:
        return " || ".join(f"[{layer}] {' | '.join(texts)}" for layer, texts in sorted(layer_texts.items()))

    def extract_entities(self, texts: list[str]) -> list[dict[str, Any]]:
        return [{"name": text, "entity_type": "object", "confidence": 1.0} for text in dict.fromkeys(texts)]


def emem_config(folder: Path, dim: int) -> Any:
    """eMEM's defaults, but entities extracted after every observation and no wall-clock triggers."""
    from emem import SpatioTemporalMemoryConfig

    return SpatioTemporalMemoryConfig(
        db_path=str(folder / "memory.db"), hnsw_path=str(folder / "memory.hnsw.bin"), embedding_dim=dim,
        flush_batch_size=1, flush_interval=NEVER, entity_extract_flush_interval=1,
        entity_extract_time_interval=NEVER, hnsw_max_elements=10_000)  # (the index grows by itself)


class EmemMemory:
    """One eMEM memory fed an episode's detections; answers through its queries (module docstring)."""

    def __init__(self, embedder: TextEmbedder | None = None, min_confidence: float = 0.5,
                 labels: MemoryConfig | None = None) -> None:
        from emem import SpatioTemporalMemory

        self._folder = Path(tempfile.mkdtemp(prefix="emem_baseline_"))
        self._now = 0.0
        provider = CachedEmbeddings(embedder if embedder is not None else MiniLMEmbedder())
        self.mem = SpatioTemporalMemory(
            config=emem_config(self._folder, provider.dim), embedding_provider=provider,
            llm_client=DetectionEntityClient(), get_current_time=lambda: self._now)
        self.store = self.mem.store
        self.min_confidence = min_confidence
        labels = labels or MemoryConfig()
        self._is_receptacle = labels.is_receptacle
        self._is_static = labels.is_static
        self.embed_s: float | None = None  # (RunStats fields of the flat store)
        self.add_s: float | None = None

    # ------------------------------------------------------------------ ingest
    def observe(self, event: dict[str, Any], frame: qa.Frame) -> int:
        """Add the confident detections of one observe event as eMEM observations."""
        self._now = float(event["t"])
        records = parse_detections(event, frame, self.min_confidence)
        for rec, confidence in records:
            x, y, z = (float(v) for v in rec.center)
            self.mem.add(rec.label, x, y, z, timestamp=rec.t, layer_name="detections", source_type="detector",
                         confidence=confidence,
                         metadata={"label": rec.label, "size": [float(v) for v in rec.size], "state": rec.state})
        return len(records)

    # ------------------------------------------------------------------ eMEM lookups
    def entities(self, label: str) -> list[Any]:
        """eMEM's entities named ``label`` (``query_entities`` matches substrings; keep exact names)."""
        key = normalize_label(label)
        return [e for e in self.store.query_entities(name=label, n_results=ALL) if normalize_label(e.name) == key]

    def pick(self, label: str, near: np.ndarray | None) -> Any:
        """The entity seen last, or the one closest to ``near``; None when eMEM has none."""
        found = self.entities(label)
        if not found:
            return None
        if near is None:
            return max(found, key=lambda e: e.last_seen)
        return found[nearest([e.coordinates for e in found], near)]

    def observations(self, entity: Any, until: float, after: float = -math.inf) -> list[Any]:
        """The entity's observations (OBSERVED_IN edges) with after < t <= until, oldest first."""
        return [o for o in self.store.get_entity_observations(entity.id) if after < o.timestamp <= until]

    def receptacle_of(self, point: np.ndarray, label: str, until: float) -> str | None:
        """Label of the nearest receptacle observation (t <= until) whose box is within 1 m below ``point``."""
        own = normalize_label(label)
        best, best_key = None, (math.inf, math.inf)
        for obs in self.store.spatial_query(center=point, radius=RECEPTACLE_SEARCH_M, n_results=ALL,
                                            time_range=(-NEVER, until)):
            name = str(obs.metadata.get("label", obs.text))
            if normalize_label(name) == own or not self._is_receptacle(name):
                continue
            size = np.asarray(obs.metadata.get("size", [0.0, 0.0, 0.0]), dtype=float)
            d = box_distance(point, obs.coordinates, size)
            if d > RECEPTACLE_REACH_M or not (d == 0.0 or obs.coordinates[2] < point[2]):
                continue
            key = (d, float(np.prod(size)))
            if key < best_key:
                best, best_key = name, key
        return best

    # ------------------------------------------------------------------ answers
    def _location(self, center: np.ndarray, label: str, until: float, frame: qa.Frame) -> dict[str, Any]:
        return {"center": [round(v, 4) for v in frame.from_core(center)],
                "receptacle": self.receptacle_of(center, label, until)}

    def where_is(self, label: str, t: float, near: np.ndarray | None, frame: qa.Frame) -> dict[str, Any] | None:
        entity = self.pick(label, near)
        return None if entity is None else self._location(entity.coordinates, label, t, frame)

    def where_was(self, label: str, at: float, t: float, near: np.ndarray | None,
                  frame: qa.Frame) -> dict[str, Any] | None:
        until = min(at, t)
        latest = [obs[-1] for obs in (self.observations(e, until) for e in self.entities(label)) if obs]
        if not latest:
            return None
        if near is None:
            chosen = max(latest, key=lambda o: o.timestamp)
        else:
            chosen = latest[nearest([o.coordinates for o in latest], near)]
        return self._location(chosen.coordinates, label, until, frame)

    def last_seen(self, label: str, t: float, near: np.ndarray | None) -> dict[str, float] | None:
        entity = self.pick(label, near)
        return None if entity is None else {"t": float(entity.last_seen)}

    def state(self, label: str, key: str, t: float, near: np.ndarray | None) -> dict[str, Any] | None:
        entity = self.pick(label, near)
        if entity is None:
            return None
        carrying = [o.metadata["state"][key] for o in self.observations(entity, t)
                    if key in (o.metadata.get("state") or {})]
        return {"value": carrying[-1]} if carrying else None

    def count(self, label: str, t: float) -> dict[str, int]:
        return {"n": len(self.entities(label))}

    def contents(self, receptacle: str, t: float) -> dict[str, list[str]] | None:
        holder = self.pick(receptacle, None)
        if holder is None:
            return None
        seen = self.observations(holder, t)
        size = np.asarray(seen[-1].metadata.get("size", [0.0, 0.0, 0.0]) if seen else [0.0, 0.0, 0.0], dtype=float)
        center = np.asarray(holder.coordinates, dtype=float)
        reach = float(np.linalg.norm(size / 2.0)) + ON_TOP_M + 2 * FOOTPRINT_MARGIN_M
        nearby = self.store.query_entities(near_coordinates=center, spatial_radius=reach, n_results=ALL)
        labels = [e.name for e in nearby
                  if e.id != holder.id and not self._is_static(e.name) and in_box(e.coordinates, center, size)]
        return {"labels": sorted(labels)}

    def what_changed(self, since: float, until: float) -> dict[str, list[dict[str, str]]]:
        changes: list[dict[str, str]] = []
        for entity in sorted(self.store.query_entities(n_results=ALL), key=lambda e: (e.name, e.first_seen)):
            before, after = self.observations(entity, since), self.observations(entity, until, after=since)
            if not before or not after:
                continue
            if float(np.linalg.norm(after[-1].coordinates - before[-1].coordinates)) > MOVE_M:
                changes.append({"label": entity.name, "change": "moved"})
            changes += state_changes(entity.name, before[-1].metadata.get("state") or {},
                                     after[-1].metadata.get("state") or {})
        return {"changes": changes}

    def answer(self, question: dict[str, Any], t: float, frame: qa.Frame) -> Any:
        """The spec's answer object for one question, from what eMEM holds at the question's time."""
        self._now = t
        return answer_question(self, question, t, frame)

    def close(self) -> None:
        """Close eMEM (it saves its index) and remove its files."""
        try:
            self.mem.close()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)
