"""Short-term memory: a bounded buffer of recent change events with a pluggable replacement policy.

Every event is consolidated into long-term memory (the durable event history) before it can be
evicted, so eviction forgets nothing: it only decides what stays in the fast working set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from robomem.core.types import ChangeEvent

#: How much each kind of change matters to a planner (the relevance term of the score policy).
CHANGE_RELEVANCE = {
    "moved": 1.0,
    "appeared": 0.9,
    "disappeared": 0.9,
    "opened": 0.7,
    "closed": 0.7,
    "turned_on": 0.6,
    "turned_off": 0.6,
    "state": 0.5,
}


@dataclass
class Entry:
    """One buffered event with its access statistics (times are a logical clock)."""

    event: ChangeEvent
    inserted: int
    last_access: int
    frequency: int = 1
    consolidated: bool = False

    @property
    def relevance(self) -> float:
        return CHANGE_RELEVANCE.get(self.event.change, 0.5)


class ReplacementPolicy(Protocol):
    """Chooses which entry leaves a full buffer."""

    name: str

    def victim(self, entries: Iterable[Entry], now: int) -> Entry: ...


class LRUPolicy:
    """Evict the least recently used (inserted or retrieved) event."""

    name = "lru"

    def victim(self, entries: Iterable[Entry], now: int) -> Entry:
        return min(entries, key=lambda e: (e.last_access, e.inserted))


class LFUPolicy:
    """Evict the least frequently used event; ties go to the oldest."""

    name = "lfu"

    def victim(self, entries: Iterable[Entry], now: int) -> Entry:
        return min(entries, key=lambda e: (e.frequency, e.last_access, e.inserted))


class ScorePolicy:
    """Evict the lowest recency × frequency × relevance score (KARMA-style)."""

    name = "score"

    def __init__(self, half_life: float = 64.0) -> None:
        self.half_life = half_life

    def score(self, entry: Entry, now: int) -> float:
        recency = math.exp(-math.log(2.0) * (now - entry.last_access) / self.half_life)
        return recency * math.log1p(entry.frequency + 1) * entry.relevance

    def victim(self, entries: Iterable[Entry], now: int) -> Entry:
        return min(entries, key=lambda e: (self.score(e, now), e.inserted))


POLICIES: dict[str, Callable[[], ReplacementPolicy]] = {"lru": LRUPolicy, "lfu": LFUPolicy, "score": ScorePolicy}


def make_policy(name: str) -> ReplacementPolicy:
    try:
        return POLICIES[name]()
    except KeyError as exc:
        raise ValueError(f"unknown replacement policy {name!r}; choose from {sorted(POLICIES)}") from exc


class ShortTermMemory:
    """Recent change events, at most ``capacity`` of them, consolidated into long-term memory."""

    def __init__(
        self,
        capacity: int,
        policy: ReplacementPolicy,
        consolidate: Callable[[list[ChangeEvent]], None],
    ) -> None:
        if capacity < 1:
            raise ValueError("short-term memory capacity must be at least 1")
        self.capacity = capacity
        self.policy = policy
        self._consolidate = consolidate
        self._entries: dict[int, Entry] = {}
        self._clock = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: int) -> bool:
        return event_id in self._entries

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def add(self, event: ChangeEvent) -> None:
        """Buffer an event, evicting by policy when full."""
        if len(self._entries) >= self.capacity:
            victim = self.policy.victim(self._entries.values(), self._clock)
            if not victim.consolidated:
                self.consolidate()
            del self._entries[victim.event.event_id]
            self.evictions += 1
        now = self._tick()
        self._entries[event.event_id] = Entry(event, now, now)

    def touch(self, event_ids: Iterable[int]) -> None:
        """Record that these events were retrieved (feeds LRU, LFU and the score)."""
        now = self._tick()
        for event_id in event_ids:
            entry = self._entries.get(event_id)
            if entry is not None:
                entry.last_access = now
                entry.frequency += 1

    def events(self) -> list[ChangeEvent]:
        """Buffered events, oldest first."""
        return sorted((e.event for e in self._entries.values()), key=lambda ev: (ev.t, ev.event_id))

    def events_since(self, event_id: int) -> list[ChangeEvent]:
        """Buffered events with an id of at least ``event_id``, oldest first (no sort of the whole buffer)."""
        found = [e.event for e in self._entries.values() if e.event.event_id >= event_id]
        return sorted(found, key=lambda ev: (ev.t, ev.event_id)) if len(found) > 1 else found

    def pending(self) -> list[ChangeEvent]:
        return [e.event for e in self._entries.values() if not e.consolidated]

    def mark_consolidated(self) -> None:
        """Mark every buffered event as already durable (used when reloading from storage)."""
        for entry in self._entries.values():
            entry.consolidated = True

    def consolidate(self) -> int:
        """Hand every not-yet-consolidated event to long-term memory; returns how many."""
        todo = [e for e in self._entries.values() if not e.consolidated]
        if todo:
            self._consolidate([e.event for e in sorted(todo, key=lambda e: e.event.event_id)])
            for entry in todo:
                entry.consolidated = True
        return len(todo)
