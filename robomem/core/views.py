"""The log of camera views (which places memory has already looked at, and when) and of recent
sightings, each kept by a retention policy so that memory can run for weeks in bounded RAM:

- views: every view of the last ``view_raw_window_s``; older ones consolidated into cells (position to
  ``view_cell_m``, yaw to ``view_cell_deg``, same field of view and range), each weighted by how many
  views it stands for, so "would earlier looks have seen it?" keeps its answer; at most ``max_view_cells``
  cells (the least recently used go first);
- sightings: every sighting time of the last ``observation_raw_window_s`` per track (past "last seen"
  questions); the store gets the first and last sighting of every run and one every
  ``observation_sparse_s`` within it (:class:`SightingRetention`).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from robomem.core.geometry import in_cones
from robomem.core.types import ViewCone


class _Columns:
    """Growing columns of floats (t, x, y, z, yaw_rad, half_fov_rad, range, weight), appended in place."""

    WIDTH = 8

    def __init__(self) -> None:
        self.data = np.zeros((64, self.WIDTH))
        self.n = 0

    def append(self, row: tuple[float, ...]) -> None:
        if self.n == len(self.data):
            self.data = np.resize(self.data, (2 * len(self.data), self.WIDTH))
        self.data[self.n] = row
        self.n += 1

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def drop_first(self, count: int) -> None:
        keep = self.data[count: self.n].copy()
        self.data = np.zeros((max(64, 2 * len(keep)), self.WIDTH))
        self.data[: len(keep)] = keep
        self.n = len(keep)


class ViewLog:
    """Raw recent views plus consolidated older ones, for asking 'had this place been looked at before t?'."""

    def __init__(self, raw_window_s: float = math.inf, cell_m: float = 0.5, cell_deg: float = 15.0,
                 max_cells: int = 100_000) -> None:
        self.raw_window_s = raw_window_s
        self.cell_m = cell_m
        self.cell_deg = cell_deg
        self.max_cells = max_cells
        self._raw = _Columns()
        self._cells: collections.OrderedDict[tuple, list[float]] = collections.OrderedDict()
        self._cell_arrays: np.ndarray | None = None
        self._total = 0

    @classmethod
    def from_config(cls, config: Any) -> ViewLog:
        return cls(config.view_raw_window_s, config.view_cell_m, config.view_cell_deg, config.max_view_cells)

    def __len__(self) -> int:
        """How many views the log stands for (raw plus those consolidated)."""
        return self._total

    @property
    def raw_views(self) -> int:
        return self._raw.n

    @property
    def cells(self) -> int:
        return len(self._cells)

    def add(self, t: float, view: ViewCone, weight: float = 1.0) -> None:
        x, y, z = view.position
        self._raw.append((t, x, y, z, math.radians(view.yaw_deg), math.radians(view.fov_deg) / 2.0,
                          view.range_m, weight))
        self._total += 1

    def add_many(self, rows: np.ndarray) -> None:
        """Add sound views at once, rows of (t, x, y, z, yaw_deg, fov_deg, range_m) (opening a memory)."""
        if not len(rows):
            return
        block = np.column_stack([rows[:, :4], np.radians(rows[:, 4]), np.radians(rows[:, 5]) / 2.0, rows[:, 6],
                                 np.ones(len(rows))])
        raw = self._raw
        while raw.n + len(block) > len(raw.data):
            raw.data = np.resize(raw.data, (2 * len(raw.data), raw.WIDTH))
        raw.data[raw.n: raw.n + len(block)] = block
        raw.n += len(block)
        self._total += len(block)

    def consolidate(self, now: float) -> None:
        """Fold raw views older than the raw window into their cells."""
        raw = self._raw.view()
        old = int(np.searchsorted(raw[:, 0], now - self.raw_window_s, side="left")) if len(raw) else 0
        if old <= 0:
            return
        if not np.all(np.diff(raw[: old + 1, 0]) >= 0):  # added out of time order: fold by mask
            old = int(np.count_nonzero(raw[:, 0] < now - self.raw_window_s))
            order = np.argsort(raw[:, 0], kind="stable")
            self._raw.data[: self._raw.n] = raw[order]
            raw = self._raw.view()
        step_yaw = math.radians(self.cell_deg)
        for t, x, y, z, yaw, half_fov, rng, weight in raw[:old].tolist():
            key = (round(x / self.cell_m), round(y / self.cell_m), round(z / self.cell_m),
                   round(yaw / step_yaw) % max(1, round(2 * math.pi / step_yaw)), round(half_fov, 3), round(rng, 2))
            cell = self._cells.get(key)
            if cell is None:
                self._cells[key] = [t, x, y, z, yaw, half_fov, rng, weight]
            else:
                cell[0] = min(cell[0], t)  # a cell answers from its first look on
                cell[7] += weight
                self._cells.move_to_end(key)
        while len(self._cells) > self.max_cells:
            self._cells.popitem(last=False)
        self._raw.drop_first(old)
        self._cell_arrays = None

    def _all_rows(self) -> np.ndarray:
        if self._cell_arrays is None:
            self._cell_arrays = (np.array(list(self._cells.values()), dtype=float).reshape(-1, _Columns.WIDTH))
        if not len(self._cell_arrays):
            return self._raw.view()
        if not self._raw.n:
            return self._cell_arrays
        return np.concatenate([self._cell_arrays, self._raw.view()])

    def miss_evidence_before(
        self, point: np.ndarray, before: float, p_detect: Callable[[np.ndarray], np.ndarray]
    ) -> float:
        """-log P(an object at ``point`` went undetected in every earlier view containing it), given the
        detector's chances ``p_detect(range_fractions)``: large means it would almost surely have been seen."""
        rows = self._all_rows()
        if not len(rows):
            return 0.0
        delta = point - rows[:, 1:4]
        inside = (rows[:, 0] < before) & in_cones(delta, rows[:, 4], rows[:, 5], rows[:, 6])
        if not inside.any():
            return 0.0
        chances = p_detect(np.linalg.norm(delta[inside], axis=1) / rows[inside, 6])
        return float(-np.sum(rows[inside, 7] * np.log(np.clip(1.0 - chances, 1e-6, 1.0))))


class ViewPersistence:
    """Which views go to the store: a robot's view when it moved to another cell, or at least every
    ``interval_s`` (a robot standing still writes one view per interval, not one per frame)."""

    def __init__(self, cell_m: float, cell_deg: float, interval_s: float) -> None:
        self.cell_m, self.cell_deg, self.interval_s = cell_m, cell_deg, interval_s
        self._last: dict[str, tuple[tuple, float]] = {}

    def keep(self, robot: str, t: float, view: ViewCone) -> bool:
        x, y, z = view.position
        key = (round(x / self.cell_m), round(y / self.cell_m), round(z / self.cell_m),
               round(view.yaw_deg / self.cell_deg), view.fov_deg, view.range_m)
        last = self._last.get(robot)
        if last is not None and last[0] == key and t - last[1] < self.interval_s:
            return False
        if last is None and len(self._last) >= 4096:
            self._last.clear()
        self._last[robot] = (key, t)
        return True


class SightingRetention:
    """Recent sighting times per track (all of the raw window, in RAM) and which sightings the store keeps:
    the first and the last of every run of sightings (a run ends when the track goes unseen for more than
    ``gap_s``), and within a run one every ``sparse_s``. A past "last seen" is thus exact whenever the
    object was out of sight then, and within ``sparse_s`` while it was in sight, once out of the raw window."""

    def __init__(self, raw_window_s: float, sparse_s: float, gap_s: float = 0.5) -> None:
        self.raw_window_s = raw_window_s
        self.sparse_s = sparse_s
        self.gap_s = gap_s
        self._recent: dict[int, collections.deque[float]] = {}
        self._last: dict[int, float] = {}  # track -> its latest sighting
        self._written: dict[int, float] = {}  # track -> time of its latest sighting handed to the store
        self._held: dict[int, tuple] = {}  # track -> its latest sighting not handed to the store (a row)

    def sighted(self, track_id: int, t: float, row: tuple) -> list[tuple]:
        """Record a sighting; returns the rows to hand to the store now."""
        recent = self._recent.get(track_id)
        if recent is None:
            recent = self._recent[track_id] = collections.deque()
        if not recent or t >= recent[-1]:
            recent.append(t)
        last = self._last.get(track_id)
        gap = last is None or abs(t - last) > self.gap_s
        self._last[track_id] = max(t, last) if last is not None else t
        out = []
        held = self._held.pop(track_id, None)
        if gap and held is not None:
            out.append(held)  # the last sighting of the run that ended
        written = self._written.get(track_id)
        if gap or written is None or t - written >= self.sparse_s:
            out.append(row)
            self._written[track_id] = t
        else:
            self._held[track_id] = row
        return out

    def sightings(self, track_ids: set[int], at: float) -> list[float]:
        """Recent sighting times, at or before ``at``, of these tracks."""
        times = []
        for track_id in track_ids:
            recent = self._recent.get(track_id)
            if recent:
                index = int(np.searchsorted(np.fromiter(recent, dtype=float, count=len(recent)), at, side="right"))
                if index:
                    times.append(recent[index - 1])
        return times

    def sweep(self, now: float) -> list[tuple]:
        """Forget sightings older than the raw window; returns held rows that must now go to the store
        (their run ended: the track was not seen for longer than ``gap_s``)."""
        horizon = now - self.raw_window_s
        for track_id in list(self._recent):
            recent = self._recent[track_id]
            while recent and recent[0] < horizon:
                recent.popleft()
            if not recent:
                del self._recent[track_id]
        out = [self._held.pop(i) for i in [i for i, row in self._held.items() if now - row[0] > self.gap_s]]
        for track_id in [i for i, t in self._last.items() if t < horizon and i not in self._held]:
            self._last.pop(track_id, None)
            self._written.pop(track_id, None)
        return out

    def take_all_held(self) -> list[tuple]:
        """Every held row (memory is closing)."""
        out = list(self._held.values())
        self._held.clear()
        return out

    def forget(self, track_id: int) -> None:
        for table in (self._recent, self._last, self._written, self._held):
            table.pop(track_id, None)
