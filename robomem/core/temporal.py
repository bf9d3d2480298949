"""Facts with validity intervals: a value holds from its time until the next one replaces it.

Nothing is deleted: replacing a value closes the old fact (``valid_to``) and opens a new one, so
any past time can be asked. Each fact carries a global id that storage uses as its row id.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from typing import Any


@dataclass
class Fact:
    """One value of one predicate of one subject, valid on [valid_from, valid_to)."""

    fact_id: int
    subject: int
    predicate: str
    value: Any
    valid_from: float
    valid_to: float | None = None


class FactIds:
    """Allocator of fact ids, resumable after reopening storage."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self) -> int:
        return next(self._counter)


class History:
    """The timeline of one predicate of one subject."""

    __slots__ = ("facts", "_starts")

    def __init__(self) -> None:
        self.facts: list[Fact] = []
        self._starts: list[float] = []

    def __len__(self) -> int:
        return len(self.facts)

    @property
    def current(self) -> Fact | None:
        last = self.facts[-1] if self.facts else None
        return last if last is not None and last.valid_to is None else None

    def value_now(self) -> Any:
        fact = self.current
        return None if fact is None else fact.value

    def at(self, t: float) -> Fact | None:
        """The fact valid at time t (the latest that started at or before t and had not ended)."""
        index = bisect.bisect_right(self._starts, t) - 1
        if index < 0:
            return None
        fact = self.facts[index]
        if fact.valid_to is not None and fact.valid_to <= t:
            return None
        return fact

    def value_at(self, t: float) -> Any:
        fact = self.at(t)
        return None if fact is None else fact.value

    def append(self, fact: Fact) -> None:
        """Add a fact (used when loading); it must not start before the last one."""
        if self._starts and fact.valid_from < self._starts[-1]:
            raise ValueError("facts must be appended in time order")
        self.facts.append(fact)
        self._starts.append(fact.valid_from)

    def replace(self, fact: Fact, t: float) -> Fact | None:
        """Close the current fact at t and open ``fact``; returns the closed fact, if any."""
        closed = self.close(t)
        self.append(fact)
        return closed

    def close(self, t: float) -> Fact | None:
        current = self.current
        if current is not None:
            current.valid_to = max(t, current.valid_from)
        return current
