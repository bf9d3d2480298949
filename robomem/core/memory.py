"""The memory facade: ingest observation batches, keep beliefs and their history, answer queries.

It composes the collaborators and holds the one lock; each does one job behind a small interface:

- :class:`~robomem.core.track_store.TrackStore` — the tracks and the indexes that find them;
- :class:`~robomem.core.journal.Journal` — the clock, fact timeline, change events and write buffer;
- :class:`~robomem.core.ingest.IngestPipeline` — association, update, negative evidence, moved vs new,
  relations (each its own module);
- :class:`~robomem.core.belief.Belief` — what was believed at any time, from the facts;
- :class:`~robomem.core.queries.Queries` and :class:`~robomem.core.semantic.SemanticSearch` — the answers.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from robomem.core import priors
from robomem.core.association import PositionNoise
from robomem.core.belief import Belief
from robomem.core.config import MemoryConfig
from robomem.core.detector import DetectorModel
from robomem.core.embedding import TextEmbedder
from robomem.core.evidence import NegativeEvidence
from robomem.core.experience import ExperienceMemory
from robomem.core.holding import Holding
from robomem.core.ingest import IngestPipeline
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.locking import synchronized
from robomem.core.moves import Moves
from robomem.core.priors import LikelyPlace
from robomem.core.queries import Queries
from robomem.core.relations import Relations
from robomem.core.scene_graph import SceneGraph
from robomem.core.semantic import SemanticSearch
from robomem.core.short_term import ShortTermMemory
from robomem.core.storage import MemoryStore, open_store
from robomem.core.temporal import StampPolicy
from robomem.core.track_store import TrackStore, unsound_track_row
from robomem.core.tracks import PARENT, REJECTED, STATUS, Track
from robomem.core.trust import Quarantine, QuarantinedReport
from robomem.core.types import (
    NUMBER_TYPES,
    Change,
    ChangeEvent,
    GraphEdge,
    GraphNode,
    ObjectInfo,
    ObservationBatch,
    RejectedInput,
    sound_views,
    wrapped_yaw_deg,
)
from robomem.core.update import Updater
from robomem.core.views import ViewLog


class Memory:
    """Long-term spatio-temporal scene graph + short-term change buffer, persisted in a store.
    Every public method holds one re-entrant lock: a memory may be shared between threads."""

    def __init__(
        self,
        config: MemoryConfig | None = None,
        store: MemoryStore | None = None,
        embedder: TextEmbedder | None = None,
    ) -> None:
        self.config = cfg = config or MemoryConfig()
        self._lock = threading.RLock()
        self.store = store or open_store(cfg.db_path, cfg.durability)  # a path, ':memory:' or postgresql://
        self._embedder = embedder
        self.counters: Counter[str] = Counter()
        self.track_store = TrackStore(cfg)
        self.journal = Journal(cfg, self.counters)
        self.graph = SceneGraph(cfg.room_regions(), cfg.default_room)
        self.views = ViewLog.from_config(cfg)
        self.quarantine = Quarantine(cfg, self.counters)
        self.noise = PositionNoise(cfg)
        lifecycle = Lifecycle(cfg, self.track_store, self.journal, self.counters)
        self.evidence = NegativeEvidence(cfg, self.track_store, lifecycle, self.views, DetectorModel(cfg),
                                         self.counters)
        self.relations_index = Relations(cfg, self.track_store, self.journal, self.graph)
        self.pipeline = IngestPipeline(
            cfg, self.track_store, self.journal, lifecycle,
            updater=Updater(cfg, self.track_store, lifecycle, self.journal, self.graph, self.noise, self.counters),
            evidence=self.evidence, moves=Moves(cfg, self.track_store, lifecycle, self.counters, self.relations_index),
            relations=self.relations_index, views=self.views, noise=self.noise, counters=self.counters,
            quarantine=self.quarantine, graph=self.graph, stamps=StampPolicy(cfg),
        )
        self.holding = Holding(cfg, self.track_store, lifecycle, self.journal, self.pipeline.stamps, self.counters)
        self.belief = Belief(self.track_store, self.journal, self.store, self.graph)
        self.queries = Queries(cfg, self.track_store, self.belief, self.journal, self.graph)
        self.semantic = SemanticSearch(self.track_store, self.belief, lambda: self.embedder)
        with _no_gc():  # loading builds many objects and no garbage: collections would only re-scan them
            self._load()
        self.experience = ExperienceMemory(  # past task runs, for few-shot planner prompts
            self.store.load_episodes(), self._lock, self.journal, lambda: self.embedder, self.flush)

    # ------------------------------------------------------------------ what others read
    @property
    def lock(self) -> threading.RLock:
        """The memory's lock: hold it to read several things as of one moment."""
        return self._lock

    @property
    def tracks(self) -> dict[int, Track]:
        """Every track memory has, by id (read only: change memory through :meth:`ingest`)."""
        return self.track_store.tracks

    @property
    def stm(self) -> ShortTermMemory:
        """The short-term memory of recent change events."""
        return self.journal.stm

    @property
    def now(self) -> float:
        """The latest batch time memory has taken (-inf before the first)."""
        return self.journal.now

    @property
    def detector(self) -> DetectorModel:
        return self.evidence.detector

    @property
    def events_recorded(self) -> int:
        """How many change events memory has recorded (all kept in long-term storage)."""
        return self.journal.events_recorded

    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from robomem.core.embedding import MiniLMEmbedder

            self._embedder = MiniLMEmbedder(self.config.embedding_model_path, self.config.embedding_tokenizer_path)
        return self._embedder

    def noise_margin(self) -> np.ndarray:
        """Per-axis gate margin from the position noise measured so far (gate_sigmas standard deviations)."""
        return self.noise.margin()

    # ------------------------------------------------------------------ ingest
    @synchronized
    def ingest(self, batch: ObservationBatch, as_history: bool = False) -> list[ChangeEvent]:
        """Take one frame of observations; returns the change events it caused. ``as_history``: the
        batch is another fleet node's, taken even if late (README "Fleet memory"; counted ``late_as_history``)."""
        events = self.pipeline.ingest(batch, as_history)
        if self.journal.batch_taken():
            self.flush()
        return events

    @synchronized
    def record_rejection(self, error: RejectedInput, t: float = 0.0) -> None:
        """Count and persist input refused before it reached :meth:`ingest` (adapters call this)."""
        self.journal.reject(t if isinstance(t, (int, float)) else 0.0, str(error.reason)[:64], str(error.detail))

    @synchronized
    def picked(self, label_or_track_id: str | int, robot: str, t: float, position: Any = None) -> ObjectInfo:
        """A pick skill succeeded: ``robot`` holds the object (a track id, or a label: its believed instance
        nearest ``position`` if given) from ``t``, at ``position`` (the gripper) if given. Until placed it is
        "held by robot:<robot>" and not missed where it was. Bad input: RejectedInput, counted."""
        track = self.holding.pick(label_or_track_id, robot, t, position)
        self.flush()
        return self.belief.info(track, None)

    @synchronized
    def placed(self, label_or_track_id: str | int, center: Any, receptacle: str | int | None, t: float,
               bottom: bool = False) -> ObjectInfo:
        """A place skill succeeded: the object is at ``center`` in/on ``receptacle`` (a track id or label,
        the instance nearest ``center``; None: whatever geometry says) from ``t``. The camera's next frames
        confirm it there or, not showing it, make it missing as usual; ``bottom``: ``center`` is where the
        object's bottom rests. Bad input: RejectedInput, counted."""
        track = self.holding.place(label_or_track_id, center, receptacle, t, bottom)
        self.flush()
        return self.belief.info(track, None)

    @synchronized
    def quarantined(self) -> list[QuarantinedReport]:
        """Reports memory holds instead of believing them (untrusted source, implausible), oldest first."""
        return self.quarantine.held()

    @synchronized
    def stats(self) -> dict[str, Any]:
        """Counters, the sources memory took batches from (accepted batches only: a refused batch never
        adds its robot id), the quarantine and what retention keeps in RAM."""
        return {
            "counters": dict(sorted(self.counters.items())),
            "sources": {name: {"batches": s.batches, "last_t": s.last_t, "last_sequence": s.last_sequence,
                               "quarantined": s.quarantined, "trusted": self.quarantine.trusted(name)}
                        for name, s in sorted(self.quarantine.sources.items())},
            "quarantined": len(self.quarantine.held()),
            "tracks": len(self.track_store),
            "views": {"raw": self.views.raw_views, "cells": self.views.cells, "stands_for": len(self.views)},
            "now": self.journal.now,
        }

    # ------------------------------------------------------------------ queries
    @synchronized
    def where_is(self, label: str, near: Any = None, at: float | None = None) -> ObjectInfo | None:
        """The most likely instance of ``label`` (closest to ``near`` if given); None if unknown or gone."""
        return self.queries.where_is(label, near, at)

    @synchronized
    def where_was(self, label: str, at: float, near: Any = None) -> ObjectInfo | None:
        """Where memory believed ``label`` was at time ``at``."""
        return self.queries.where_is(label, near, at)

    @synchronized
    def last_seen(self, label: str, near: Any = None, at: float | None = None) -> float | None:
        """Time of the latest observation of the object (of any instance unless ``near`` is given)."""
        return self.queries.last_seen(label, near, at)

    @synchronized
    def count(self, label: str, at: float | None = None) -> int:
        """How many distinct instances of ``label`` memory believes in."""
        return self.queries.count(label, at)

    @synchronized
    def knows_state_key(self, key: str) -> bool:
        """Whether a state key means something to memory ('isOpen' and 'open' are one key, see
        states.canonical_key) or was ever observed; a question about another key has no answer."""
        return self.queries.knows_state_key(key)

    @synchronized
    def floor_height(self) -> float | None:
        """Height of the floor in the map frame: configured (``floor_z``) or learned from the furniture
        standing on it; None while unknown. What rests there on nothing else is "on" the Floor."""
        return self.track_store.floor_z()

    @synchronized
    def count_believed(self) -> int:
        """How many objects, of any label, memory believes present now."""
        return self.queries.count_believed()

    @synchronized
    def believed_tracks(self) -> list[Track]:
        """The tracks memory believes present now."""
        return self.queries.believed_now()

    @synchronized
    def state(self, label: str, key: str, near: Any = None, at: float | None = None) -> Any:
        """Latest observed value of ``key`` for the instance (None if never observed)."""
        return self.queries.state(label, key, near, at)

    @synchronized
    def contents(self, receptacle: str, at: float | None = None, include_fixtures: bool = False) -> list[ObjectInfo]:
        """Objects believed in/on any instance of the receptacle label (nested containment included)."""
        return self.queries.contents(receptacle, at, include_fixtures)

    @synchronized
    def what_changed(self, since: float, until: float | None = None, room: str | None = None) -> list[Change]:
        """Differences between what memory believed at ``since`` and at ``until`` (default: now); with
        ``room``, only changes of objects that were, or are, in that room ("what changed in the kitchen")."""
        return self.queries.what_changed(since, until, room)

    @synchronized
    def likely_places(self, label: str, k: int = 5) -> list[LikelyPlace]:
        """The receptacles of this home where a ``label`` most likely is, best first, each with its score and
        reason: where these things have been, what changed since one was lost, AI2-THOR's placement
        statistics (:mod:`robomem.core.priors`)."""
        return priors.likely_places(self, label, k)

    @synchronized
    def within_radius(self, center: Any, radius: float, label: str | None = None) -> list[ObjectInfo]:
        """Believed objects whose center lies within ``radius`` metres of ``center`` (nearest first)."""
        return self.queries.within_radius(center, radius, label)

    @synchronized
    def within_box(self, lower: Any, upper: Any, label: str | None = None) -> list[ObjectInfo]:
        """Believed objects whose center lies in the axis-aligned box [lower, upper]."""
        return self.queries.within_box(lower, upper, label)

    @synchronized
    def near(self, label: str, radius: float | None = None, near: Any = None) -> list[ObjectInfo]:
        """Objects *near* the most likely instance of ``label`` (within ``radius``, default the
        configured near radius), closest first, the object itself and its holders excluded."""
        return self.queries.near(label, radius, near)

    @synchronized
    def relations(self, label: str, near: Any = None) -> list[tuple[str, str]]:
        """The scene-graph relations of the most likely instance: ('in'|'on', holder) and ('near', other)."""
        return self.queries.relations(label, near)

    @synchronized
    def scene_graph(self) -> tuple[list[GraphNode], list[GraphEdge]]:
        """The scene graph of what memory believes now: rooms, believed objects, their in/on edges
        (an object whose holder is not believed hangs under its room)."""
        return self.queries.scene_graph()

    @synchronized
    def search(self, text: str, k: int = 10, min_similarity: float = 0.5) -> list[tuple[ObjectInfo, float]]:
        """Objects whose label means what ``text`` says ("cup" finds a Mug), best first."""
        return self.semantic.search(text, k, min_similarity)

    @synchronized
    def search_by_embedding(self, vector: Any, k: int = 10) -> list[tuple[ObjectInfo, float]]:
        """Objects whose detection embeddings (e.g. image features) are nearest to ``vector``."""
        return self.semantic.search_by_embedding(vector, k)

    # ------------------------------------------------------------------ persistence
    @synchronized
    def flush(self, sync: bool = False) -> None:
        """Hand everything pending to the store as one transaction; ``sync`` waits until it is durable."""
        detector = self.evidence.detector
        self.journal.flush(self.store, self.track_store.tracks, {
            "now": repr(self.journal.now),
            "detector": f"{detector.hits!r} {detector.expected!r}",
            "position_noise_var": " ".join(repr(float(v)) for v in self.noise.variance),
            "reject_counts": json.dumps({k[9:]: v for k, v in self.counters.items() if k.startswith("rejected.")}),
        })
        if sync:
            self.store.sync()

    @synchronized
    def close(self) -> None:
        self.journal.write_open_placements(self.track_store.tracks)
        self.flush()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> None:
        """Resume from the store. Rows that are not sound (non-finite or absurd boxes and times, facts of
        unknown tracks or out of time order, views out of bounds) are skipped and counted (``loaded.*``)."""
        state = self.store.load()
        if not state.tracks and not state.facts:
            self._restore_reject_counts(state)
            return
        tracks = self.track_store
        cfg = self.config
        loaded = []
        for row in state.tracks:
            reason = unsound_track_row(row, cfg.map_extent_m, max(cfg.max_furniture_size_m, cfg.max_object_size_m))
            if reason is None:
                loaded.append(Track.from_row(row))
            else:
                self.counters[f"loaded.skipped_track.{reason}"] += 1
        by_id = {track.track_id: track for track in loaded}
        facts = []
        for fact in state.facts:
            track = by_id.get(fact.subject)
            if track is None or not _sound_fact(fact, cfg.map_extent_m):
                self.counters["loaded.skipped_fact"] += 1
                continue
            try:
                track.history(fact.predicate).append(fact)
            except ValueError:  # out of time order
                self.counters["loaded.skipped_fact"] += 1
                continue
            facts.append(fact)
        now = _stored_float(state.meta.get("now"))
        loaded, facts = self._without_forgettable(loaded, facts, now)
        self.journal.restore(facts, state.events, now, state.meta)
        if math.isfinite(now):
            self.pipeline.stamps.decide_base(now)
        if "position_noise_var" in state.meta:
            self.noise.variance = np.array([float(v) for v in state.meta["position_noise_var"].split()])
        if "detector" in state.meta:
            hits, expected = (float(v) for v in state.meta["detector"].split())
            self.evidence.detector.hits, self.evidence.detector.expected = hits, expected
        self._load_views(state.views)
        if math.isfinite(now):
            self.views.consolidate(now)
        tracks.restore_many(loaded)
        self.graph.load([(track.track_id, track.label, track.center, track.size, cfg.is_receptacle(track.label),
                          track.history(PARENT).value_now()) for track in loaded if track.is_live])
        self._restore_reject_counts(state)

    def _load_views(self, rows: list[tuple]) -> None:
        """The stored views, checked as ViewCone checks a new one (:func:`~robomem.core.types.sound_views`),
        in one numpy pass (a day at 10 Hz leaves ~70k); unsound rows, written by an older robomem, are
        skipped and counted."""
        values = [(row[0], *row[2:8]) for row in rows]
        try:
            table = np.array(values, dtype=float).reshape(-1, 7)
        except (TypeError, ValueError):  # text where numbers belong: those rows are unsound
            table = np.array([v for v in values if NUMBER_TYPES.issuperset(map(type, v))], dtype=float).reshape(-1, 7)
        sound = np.isfinite(table[:, 0]) & sound_views(table[:, 1:], self.config.map_extent_m)
        self.counters["rejected.stored_view"] += len(values) - int(np.count_nonzero(sound))
        table = table[sound]
        table[:, 4] = wrapped_yaw_deg(table[:, 4])
        self.views.add_many(table)

    def _without_forgettable(self, loaded: list[Track], facts: list[Any], now: float) -> tuple[list[Track], list]:
        """Dismissed tracks never believed (false detections) that retention would have forgotten by now
        are left out (a store that keeps their rows, or a crash before they were deleted); the others are
        forgotten ``rejected_forget_s`` after their dismissal, as if memory had never stopped."""
        horizon = now - self.config.rejected_forget_s
        left_out = set()
        for track in loaded:
            if track.status != REJECTED or track.ever_confirmed:
                continue
            status = track.history(STATUS).current
            since = status.valid_from if status is not None else -math.inf
            if since < horizon:
                left_out.add(track.track_id)
            else:
                self.track_store.dismissed(track, since)
        if not left_out:
            return loaded, facts
        self.counters["loaded.forgotten_tracks"] += len(left_out)
        return ([track for track in loaded if track.track_id not in left_out],
                [fact for fact in facts if fact.subject not in left_out])

    def _restore_reject_counts(self, state: Any) -> None:
        """Refusal counts: the store's rows, or the counts flushed with the meta (rows are capped)."""
        counts = dict(state.reject_counts)
        try:
            stored = json.loads(state.meta.get("reject_counts", "{}"))
        except ValueError:
            stored = {}
        if isinstance(stored, dict):
            for reason, value in stored.items():
                if isinstance(value, int) and value > counts.get(reason, 0):
                    counts[reason] = value
        self.counters.update({f"rejected.{k}": v for k, v in counts.items()})


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stored_float(text: Any) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return -math.inf
    return value if math.isfinite(value) else -math.inf


def _sound_fact(fact: Any, extent_m: float) -> bool:
    """A stored fact with finite times and, for a placement, a finite box within the map."""
    start, end = fact.valid_from, fact.valid_to
    if type(start) not in NUMBER_TYPES or not math.isfinite(start) or (
            end is not None and (type(end) not in NUMBER_TYPES or not math.isfinite(end))):
        return False
    if fact.predicate == "pose":
        value = fact.value
        if type(value) is not list or len(value) != 6 or not NUMBER_TYPES.issuperset(map(type, value)) \
                or not all(map(math.isfinite, value)):
            return False
        return max(map(abs, value[:3])) <= extent_m
    return True

