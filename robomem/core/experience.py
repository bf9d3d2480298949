"""Experience memory: every household task run kept as an episode, the most similar successful runs
retrieved as few-shot examples for an LLM planner (KARMA / RAG-Modulo style).

Episodes are append-only. They go to the store with the rest of memory (``memory.flush``; durable after
``memory.flush(sync=True)`` or ``memory.close()``) and come back when the database is reopened. The
instructions are embedded with the memory's text embedder only when a query first needs them (the
model loads lazily, as for semantic search), then kept in an hnswlib index.

Ranking: cosine similarity of the instructions, plus :data:`OBJECT_BOOST` for each of the episode's
objects the new instruction names (as a word, "ButterKnife" matching "butter knife" or "butterknife",
plural "s"/"es" allowed), at most :data:`MAX_OBJECT_BOOST`; equal scores go to the most recent run.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from robomem.core.config import normalize_label
from robomem.core.embedding import VectorIndex
from robomem.core.locking import synchronized
from robomem.core.render import estimate_tokens
from robomem.core.types import MAX_LABEL_CHARS, RejectedInput

if TYPE_CHECKING:
    from robomem.core.embedding import TextEmbedder
    from robomem.core.journal import Journal

MAX_INSTRUCTION_CHARS = 2_000
MAX_PLAN_STEPS = 200
MAX_STEP_CHARS = 200
MAX_OBJECTS = 100
MAX_REASON_CHARS = 2_000
OBJECT_BOOST = 0.05  # added to the similarity per episode object the new instruction names
MAX_OBJECT_BOOST = 0.15
_EMBED_CHUNK = 64


@dataclass(kw_only=True)
class TaskEpisode:
    """One run of a household task: what was asked, the skill calls made, and how it ended."""

    episode_id: int = -1  # assigned by :meth:`ExperienceMemory.record`
    robot_id: str
    instruction: str
    plan: list[str] = field(default_factory=list)  # skill calls as text: "navigate_to(Fridge)", "open(Fridge)"
    success: bool
    failure_reason: str = ""
    objects: list[str] = field(default_factory=list)  # labels of the objects involved
    started: float
    finished: float


def check_episode(episode: TaskEpisode) -> TaskEpisode:
    """A clean copy of ``episode`` (texts stripped), or RejectedInput with a reason key."""
    if not isinstance(episode, TaskEpisode):
        raise RejectedInput("malformed", f"expected a TaskEpisode, got {type(episode).__name__}")
    if episode.episode_id != -1:
        raise RejectedInput("already_recorded", f"episode {episode.episode_id!r} was recorded already")
    instruction = episode.instruction
    if not isinstance(instruction, str) or not instruction.strip():
        raise RejectedInput("bad_instruction", f"instruction must be a non-empty string, got {instruction!r:.80}")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise RejectedInput("oversized", f"instruction has {len(instruction)} characters (> {MAX_INSTRUCTION_CHARS})")
    robot_id = _text(episode.robot_id, "robot_id", MAX_LABEL_CHARS, allow_empty=True)
    failure_reason = _text(episode.failure_reason, "failure_reason", MAX_REASON_CHARS, allow_empty=True)
    plan = _texts(episode.plan, "plan", MAX_PLAN_STEPS, MAX_STEP_CHARS)
    objects = _texts(episode.objects, "objects", MAX_OBJECTS, MAX_LABEL_CHARS)
    if not isinstance(episode.success, bool):
        raise RejectedInput("malformed", f"success must be a bool, got {episode.success!r:.80}")
    times = (episode.started, episode.finished)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in times):
        raise RejectedInput("malformed", f"started/finished must be numbers, got {times!r:.80}")
    if not all(math.isfinite(v) for v in times):
        raise RejectedInput("non_finite", f"started/finished must be finite, got {times!r}")
    if episode.finished < episode.started:
        raise RejectedInput("bad_times", f"finished {episode.finished} is before started {episode.started}")
    return TaskEpisode(
        robot_id=robot_id,
        instruction=instruction.strip(),
        plan=plan,
        success=episode.success,
        failure_reason=failure_reason,
        objects=objects,
        started=float(episode.started),
        finished=float(episode.finished),
    )


def _text(value: Any, name: str, max_chars: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise RejectedInput("malformed", f"{name} must be a{'' if allow_empty else ' non-empty'} string")
    if len(value) > max_chars:
        raise RejectedInput("oversized", f"{name} has {len(value)} characters (> {max_chars})")
    return value.strip()


def _texts(values: Any, name: str, max_items: int, max_chars: int) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise RejectedInput("malformed", f"{name} must be a list of strings, got {type(values).__name__}")
    if len(values) > max_items:
        raise RejectedInput("oversized", f"{name} has {len(values)} entries (> {max_items})")
    return [_text(value, f"{name}[{i}]", max_chars) for i, value in enumerate(values)]


def _copy(episode: TaskEpisode) -> TaskEpisode:
    return dataclasses.replace(episode, plan=list(episode.plan), objects=list(episode.objects))


def _to_row(e: TaskEpisode) -> tuple:
    return (e.episode_id, e.robot_id, e.instruction, list(e.plan), e.success, e.failure_reason, list(e.objects),
            e.started, e.finished)


def _from_row(row: tuple) -> TaskEpisode:
    eid, robot, instruction, plan, success, reason, objects, started, finished = row
    return TaskEpisode(episode_id=eid, robot_id=robot, instruction=instruction, plan=list(plan), success=success,
                       failure_reason=reason, objects=list(objects), started=started, finished=finished)


def _word_grams(text: str) -> set[str]:
    """The instruction's words, and runs of two or three of them written together ('butter knife' ->
    'butterknife'), normalized as labels are."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    grams = set(words)
    for n in (2, 3):
        grams.update("".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


def _named_objects(episode: TaskEpisode, grams: set[str]) -> int:
    """How many distinct objects of the episode the instruction names (singular or with 's'/'es')."""
    keys = {normalize_label(label) for label in episode.objects}
    return sum(1 for key in keys if key and (key in grams or key + "s" in grams or key + "es" in grams))


def example_text(episode: TaskEpisode) -> str:
    """One few-shot example: 'Task: ...', 'Plan: a; b; c.', 'Outcome: success' (or failure and why)."""
    plan = "; ".join(episode.plan) if episode.plan else "(none)"
    if episode.success:
        outcome = "success"
    else:
        outcome = f"failure ({episode.failure_reason})" if episode.failure_reason else "failure"
    return f"Task: {episode.instruction}\nPlan: {plan}.\nOutcome: {outcome}"


def render_examples(episodes: Iterable[TaskEpisode], token_budget: int = 200) -> str:
    """Few-shot text of ``episodes`` (best first) under a 'Similar past tasks:' header; whole examples
    only, cut before the first that would overrun ``token_budget`` ('' when none fits)."""
    lines = ["Similar past tasks:"]
    for episode in episodes:
        candidate = [*lines, example_text(episode)]
        if estimate_tokens("\n\n".join(candidate)) > token_budget:
            break
        lines = candidate
    return "\n\n".join(lines) if len(lines) > 1 else ""


class ExperienceMemory:
    """Past task runs, persisted through a memory's journal and guarded by its lock."""

    def __init__(
        self, rows: Iterable[tuple], lock: threading.RLock, journal: Journal,
        embedder: Callable[[], TextEmbedder], flush: Callable[[], None],
    ) -> None:
        """``rows``: the episodes stored so far (see ``MemoryStore.load_episodes``); ``embedder`` gives the
        text embedder when a query first needs it; ``flush`` hands the journal's batch to the store."""
        self._lock = lock  # one lock for the whole memory (see robomem.core.locking)
        self._journal = journal
        self._embedder = embedder
        self._flush = flush
        self._episodes: dict[int, TaskEpisode] = {}  # by id, in recording order
        for row in rows:
            episode = _from_row(row)
            self._episodes[episode.episode_id] = episode
        self._next_id = max(self._episodes, default=0) + 1
        self._vectors: VectorIndex | None = None
        self._unindexed: list[int] = list(self._episodes)  # embedded on the first query that needs them

    @synchronized
    def record(self, episode: TaskEpisode) -> int:
        """Keep a finished task run and return its new id (also set on ``episode``). Bad episodes raise
        RejectedInput, are counted as ``rejected.<reason>`` in memory.counters and change nothing else."""
        try:
            clean = check_episode(episode)
        except RejectedInput as error:
            finished = getattr(episode, "finished", 0.0)
            t = float(finished) if isinstance(finished, (int, float)) and math.isfinite(finished) else 0.0
            self._journal.reject(t, error.reason, f"episode: {error.detail}")
            raise
        clean.episode_id = self._next_id
        self._next_id += 1
        self._episodes[clean.episode_id] = clean
        self._unindexed.append(clean.episode_id)
        self._journal.episode(_to_row(clean))
        self._flush()  # handed to the store now (a rare, valuable write); flush(sync=True) waits for disk
        episode.episode_id = clean.episode_id
        return clean.episode_id

    def _index(self) -> VectorIndex:
        embedder = self._embedder()
        if self._vectors is None:
            self._vectors = VectorIndex(embedder.dim)
        while self._unindexed:
            chunk = self._unindexed[:_EMBED_CHUNK]
            vectors = embedder.embed([self._episodes[eid].instruction for eid in chunk])
            for eid, vector in zip(chunk, vectors, strict=True):
                self._vectors.add(eid, vector)
            del self._unindexed[: len(chunk)]
        return self._vectors

    @synchronized
    def similar(self, instruction: str, k: int = 3, successful_only: bool = True) -> list[tuple[TaskEpisode, float]]:
        """Up to ``k`` (episode, score) pairs for the runs most like ``instruction``, best first. The score is
        the cosine similarity of the instructions plus the object boost (see the module docstring)."""
        if not isinstance(instruction, str) or not instruction.strip() or k < 1 or not self._episodes:
            return []
        index = self._index()
        query = self._embedder().embed([instruction.strip()])[0]
        grams = _word_grams(instruction)
        total = len(index)
        fetch = min(total, max(4 * k, 32))
        while True:
            hits = index.search(query, fetch)
            scored = [
                (episode, similarity + min(MAX_OBJECT_BOOST, OBJECT_BOOST * _named_objects(episode, grams)))
                for episode, similarity in ((self._episodes[key], sim) for key, sim in hits)
                if episode.success or not successful_only
            ]
            scored.sort(key=lambda pair: (-round(pair[1], 6), -pair[0].finished, -pair[0].episode_id))
            if fetch >= total:
                break
            # an episode not fetched yet has a lower cosine than the last one fetched: beaten unless boosted
            if len(scored) >= k and scored[k - 1][1] > hits[-1][1] + MAX_OBJECT_BOOST:
                break
            fetch = min(total, fetch * 4)
        return [(_copy(episode), score) for episode, score in scored[:k]]

    @synchronized
    def render_examples(
        self, instruction: str, k: int = 3, token_budget: int = 200, successful_only: bool = True
    ) -> str:
        """Few-shot text of the ``k`` most similar runs (see :func:`render_examples`)."""
        return render_examples([episode for episode, _ in self.similar(instruction, k, successful_only)], token_budget)

    @synchronized
    def all(self) -> list[TaskEpisode]:
        """Every recorded episode (copies), oldest first."""
        return [_copy(episode) for episode in self._episodes.values()]

    @synchronized
    def __len__(self) -> int:
        return len(self._episodes)
