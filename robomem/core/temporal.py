"""Facts with validity intervals: a value holds from its time until the next one replaces it; and the
rule for the stamps of incoming batches (:class:`StampPolicy`).

Nothing is deleted: replacing a value closes the old fact (``valid_to``) and opens a new one, so
any past time can be asked. Each fact carries a global id that storage uses as its row id.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import math
import time
from collections.abc import Callable
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


WALL_CLOCK_WINDOW_S = 366 * 86400.0  # a first stamp this close to the wall clock means stamps are wall time
RECENT_KEYS = 64  # stamps / sequences remembered per source to recognise a repeated batch


class StampPolicy:
    """The rule for batch stamps (README "Running for weeks"). A stamp is never changed silently:

    - **future**: more than ``future_tolerance_s`` ahead of the wall clock (stamps in wall time), or, in
      another time base (simulation, replay), more than ``max_clock_jump_s`` ahead of memory's clock:
      refused (``future_stamp`` / ``clock_jump``), so one batch can never move memory's clock to 2038;
    - **late**: more than ``late_tolerance_s`` behind memory's clock: refused (``late``), history is not
      rewritten; within the tolerance it is taken as of memory's clock, counted (``late_within_tolerance``),
      its sightings logged at their own stamp. Another fleet node's batch is never refused as late: it is
      taken as history (``late_as_history``, README "Fleet memory"): its sightings keep their stamp, and
      an object memory has newer evidence of is not changed by it (``late_superseded``);
    - **repeated**: a batch whose source already sent this sequence number, or (without sequence numbers)
      this stamp with the same content, is skipped (idempotent, counted as ``duplicate_batches``); two
      different frames of one source at one stamp (two cameras without sensor names, a simulator whose
      clock stood still) are both taken.
    """

    def __init__(self, config: Any, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock: bool | None = config.wall_clock
        self._recent: dict[str, collections.deque] = {}

    def decide_base(self, t: float) -> None:
        """Whether stamps are wall time, from the first stamp memory takes (unless configured)."""
        if self.wall_clock is None and math.isfinite(t):
            self.wall_clock = abs(t - self.clock()) <= WALL_CLOCK_WINDOW_S

    def is_repeat(self, source: str, t: float, sequence: int | None, content: int = 0) -> bool:
        """``content``: a fingerprint of the batch (used when it has no sequence number)."""
        recent = self._recent.get(source)
        return recent is not None and _repeat_key(t, sequence, content) in recent

    def check(self, t: float, now: float) -> tuple[str, str] | None:
        """(reason, detail) if a batch stamped ``t`` must be refused, given memory's clock ``now``."""
        cfg = self.config
        self.decide_base(t if not math.isfinite(now) else now)
        if self.wall_clock:
            wall = self.clock()
            if t > wall + cfg.future_tolerance_s:
                return "future_stamp", f"stamp {t:.3f} is {t - wall:.3f} s ahead of the wall clock " \
                                       f"(tolerance {cfg.future_tolerance_s} s)"
        elif math.isfinite(now) and t > now + cfg.max_clock_jump_s:
            return "clock_jump", f"stamp {t:.3f} is {t - now:.0f} s after memory's clock (at most " \
                                 f"{cfg.max_clock_jump_s:.0f} s per batch)"
        if math.isfinite(now) and t < now - cfg.late_tolerance_s:
            return "late", f"stamp {t:.3f} is {now - t:.3f} s behind memory's clock (tolerance " \
                           f"{cfg.late_tolerance_s} s): history is not rewritten"
        return None

    def taken(self, source: str, t: float, sequence: int | None, content: int = 0) -> None:
        """Remember a batch memory took (for :meth:`is_repeat`)."""
        recent = self._recent.get(source)
        if recent is None:
            recent = self._recent[source] = collections.deque(maxlen=RECENT_KEYS)
        recent.append(_repeat_key(t, sequence, content))

    def forget_source(self, source: str) -> None:
        self._recent.pop(source, None)


def _repeat_key(t: float, sequence: int | None, content: int) -> tuple:
    return ("s", sequence) if sequence is not None else ("t", t, content)
