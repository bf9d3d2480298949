"""The memory tools a planner may use, as a small protocol.

The planner sees memory only through :class:`MemoryTools`, so it can be backed by the in-process
:class:`robomem.core.Memory` (:class:`InProcessTools`), by the short-term change buffer alone
(:class:`ShortTermTools`), or later by ROS service clients. Records are plain data (no core types).
Every call is counted (:class:`CountingTools`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from robomem.core.config import normalize_label

NEAR_Z_M = 0.8  # height given to a 2D ``near`` point
INSTANCES_M = 1e4  # half-size of the box ``instances`` searches (the whole map)


@dataclass(frozen=True)
class ObjectRecord:
    """An object as a memory tool reports it (map frame, z up)."""

    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float] = (0.1, 0.1, 0.1)
    track_id: int = -1
    receptacle: str | None = None
    relation: str | None = None  # "in" | "on" | None
    state: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    last_seen: float | None = None

    def distance_to(self, xy: Iterable[float]) -> float:
        x, y = tuple(xy)[:2]
        return float(np.hypot(self.center[0] - x, self.center[1] - y))


@dataclass(frozen=True)
class ChangeRecord:
    """A change memory noticed: moved | appeared | disappeared | opened | closed | turned_on | turned_off."""

    label: str
    change: str
    track_id: int = -1
    center: tuple[float, float, float] | None = None
    t: float | None = None


@dataclass(frozen=True)
class PlaceRecord:
    """A receptacle where a thing probably is (``likely_places``): memory's record of it, the score (the
    places of one answer sum to at most 1), the relation a thing would have to it and why."""

    place: ObjectRecord
    score: float
    reason: str = ""
    relation: str = "on"
    source: str = "prior"  # the evidence that weighs most: history (these things were there) | changes | prior
    informed: bool = True  # False: no evidence for it (only a default share or smoothing)


class MemoryTools(Protocol):
    """What a planner may ask memory (``at``: a past time, None = now; ``near``: prefer the instance
    closest to this map point)."""

    def where_is(self, label: str, near: Iterable[float] | None = None, at: float | None = None
                 ) -> ObjectRecord | None: ...

    def contents(self, receptacle: str, at: float | None = None) -> list[ObjectRecord]: ...

    def instances(self, label: str | None) -> list[ObjectRecord]: ...  # every believed instance (None: of any label)

    def what_changed(self, since: float) -> list[ChangeRecord]: ...

    def last_seen(self, label: str) -> float | None: ...

    def planner_context(self, query: str, budget: int = 200) -> str: ...

    def search(self, text: str, k: int = 5) -> list[str]: ...

    # Optional (tools without long-term memory leave it out): where a thing of ``label`` is probably kept,
    # best first -- def likely_places(self, label: str, k: int = 5) -> list[PlaceRecord]


def _record(info: Any) -> ObjectRecord:
    return ObjectRecord(
        label=info.label, center=tuple(float(v) for v in info.center), size=tuple(float(v) for v in info.size),
        track_id=int(info.track_id), receptacle=info.receptacle, relation=info.relation,
        state=dict(info.state), last_seen=info.last_seen,
    )


class InProcessTools:
    """Tools backed by an in-process :class:`robomem.core.Memory` (long-term + short-term). ``long_term``
    False: a memory of the task alone (memory off), which ranks no likely places (AI2-THOR's statistics
    and a household's habits are long-term knowledge)."""

    def __init__(self, memory: Any, long_term: bool = True) -> None:
        self.memory = memory
        self.long_term = long_term
        if not long_term:
            self.likely_places = None  # not offered: a planner sees no such tool (and no call is counted)

    def where_is(self, label: str, near: Iterable[float] | None = None, at: float | None = None
                 ) -> ObjectRecord | None:
        point = None if near is None else np.asarray(tuple(near), float)
        if point is not None and point.shape == (2,):
            point = np.array([point[0], point[1], NEAR_Z_M])  # a floor point: compare at table height
        info = self.memory.where_is(label, near=point, at=at)
        return None if info is None else _record(info)

    def contents(self, receptacle: str, at: float | None = None) -> list[ObjectRecord]:
        return [_record(i) for i in self.memory.contents(receptacle, at=at)]

    def instances(self, label: str | None) -> list[ObjectRecord]:
        return [_record(i) for i in self.memory.within_box((-INSTANCES_M,) * 3, (INSTANCES_M,) * 3, label)]

    def what_changed(self, since: float) -> list[ChangeRecord]:
        out = []
        for change in self.memory.what_changed(since):
            info = self.memory.where_is(change.label) if change.change != "disappeared" else None
            center = None if info is None else tuple(float(v) for v in info.center)
            out.append(ChangeRecord(change.label, change.change, change.track_id, center))
        return out

    def last_seen(self, label: str) -> float | None:
        return self.memory.last_seen(label)

    def planner_context(self, query: str, budget: int = 200) -> str:
        from robomem.core.render import render_context

        return render_context(self.memory, query, token_budget=budget)

    def likely_places(self, label: str, k: int = 5) -> list[PlaceRecord]:  # type: ignore[no-redef]
        out = []
        for place in self.memory.likely_places(label, k):
            info = self.memory.where_is(place.label, near=np.asarray(place.center, float))
            if info is not None:
                out.append(PlaceRecord(_record(info), float(place.score), place.reason, place.relation,
                                       place.source, place.informed))
        return out

    def search(self, text: str, k: int = 5) -> list[str]:
        labels: list[str] = []
        for info, _ in self.memory.search(text, k=k):
            if info.label not in labels:
                labels.append(info.label)
        return labels


class ShortTermTools:
    """Only the short-term buffer of recent change events (with the positions noted when they were
    emitted), plus what the robot has seen during the task itself (``view``: tools of a memory fed
    only during the task). Nothing from long-term memory: no past times, no older objects."""

    def __init__(self, events: Callable[[], list[tuple[Any, np.ndarray]]], view: MemoryTools) -> None:
        self._events = events  # () -> [(ChangeEvent, center at emission)], oldest first
        self.view = view

    def _latest(self, label: str) -> list[tuple[Any, np.ndarray]]:
        key = normalize_label(label)
        return [(e, c) for e, c in reversed(self._events()) if normalize_label(e.label) == key]

    def where_is(self, label: str, near: Iterable[float] | None = None, at: float | None = None
                 ) -> ObjectRecord | None:
        if at is not None:
            return None  # the short-term buffer has no past beliefs
        seen = self.view.where_is(label, near=near)
        if seen is not None:
            return seen
        for event, center in self._latest(label):
            if event.change == "disappeared":
                return None
            return ObjectRecord(event.label, tuple(float(v) for v in center), track_id=event.track_id,
                                last_seen=event.t)
        return None

    def contents(self, receptacle: str, at: float | None = None) -> list[ObjectRecord]:
        return [] if at is not None else self.view.contents(receptacle)

    def instances(self, label: str | None) -> list[ObjectRecord]:
        return self.view.instances(label)

    def what_changed(self, since: float) -> list[ChangeRecord]:
        return [ChangeRecord(e.label, e.change, e.track_id, tuple(float(v) for v in c), e.t)
                for e, c in self._events() if e.t > since]

    def last_seen(self, label: str) -> float | None:
        times = [e.t for e, _ in self._latest(label)]
        own = self.view.last_seen(label)
        return max([*times, *([own] if own is not None else [])], default=None)

    def planner_context(self, query: str, budget: int = 200) -> str:
        lines = [f"- t={e.t:.1f} {e.label} {e.change} at ({c[0]:.2f}, {c[1]:.2f}, {c[2]:.2f})"
                 for e, c in reversed(self._events()[-8:])]
        text = "Recent changes:\n" + "\n".join(lines) + "\n" + self.view.planner_context(query, budget)
        return text[: budget * 4]

    def search(self, text: str, k: int = 5) -> list[str]:
        return self.view.search(text, k)


class CountingTools:
    """Wraps any tools and counts every call (``calls`` per method, ``total``)."""

    METHODS = ("where_is", "contents", "instances", "what_changed", "last_seen", "planner_context", "search",
               "likely_places")

    def __init__(self, inner: MemoryTools) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __getattr__(self, name: str) -> Any:
        if name not in self.METHODS:
            raise AttributeError(name)
        method = getattr(self.inner, name)
        if method is None:  # a tool these tools do not offer
            raise AttributeError(name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted
