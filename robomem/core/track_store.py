"""Every object instance memory tracks, with the indexes ingest and queries find them by: by label,
by position (all tracks, receptacles, per label), by embedding, and the aliases of merged tracks.

The store keeps its indexes in step with the tracks (:meth:`TrackStore.reindex`); it records no facts
and knows nothing of time: :mod:`robomem.core.lifecycle` changes tracks, this module only finds them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

import numpy as np

from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.embedding import VectorIndex
from robomem.core.geometry import distance
from robomem.core.spatial_index import DynamicPointIndex
from robomem.core.tracks import CONFIRMED, GONE, MERGED, REJECTED, TENTATIVE, Track, recency_key
from robomem.core.types import NUMBER_TYPES

INDEX_SLACK_M = 0.1  # indexed positions lag the estimates by at most half of this
_TRACK_FIELDS = 23  # columns of a stored track row (TRACK_COLUMNS)
_KNOWN_STATUSES = (TENTATIVE, CONFIRMED, GONE, REJECTED, MERGED)


def unsound_track_row(row: tuple, extent_m: float, max_size_m: float) -> str | None:
    """Why a stored track row cannot be loaded (non-finite or out-of-bounds box or times, bad label or
    status, written by an older robomem or by hand), or None when it is sound."""
    if len(row) != _TRACK_FIELDS:
        return "malformed"
    label, status, first_seen, last_seen = row[1], row[2], row[3], row[4]
    if not isinstance(label, str) or not label.strip() or len(label) > 128 or status not in _KNOWN_STATUSES:
        return "bad_label"
    numbers = (first_seen, last_seen, *row[12:18], row[7], row[10])
    if not NUMBER_TYPES.issuperset(map(type, numbers)) or not all(map(math.isfinite, numbers)):
        return "non_finite"
    if max(map(abs, row[12:15])) > extent_m or min(row[15:18]) < 0.0 or max(row[15:18]) > max_size_m:
        return "out_of_bounds"
    return None



class TrackStore:
    """Tracks by id, and the label, spatial and embedding indexes over them."""

    def __init__(self, config: MemoryConfig) -> None:
        self.config = config
        self.tracks: dict[int, Track] = {}
        self.by_label: dict[str, set[int]] = defaultdict(set)  # tracks that may be present (live or gone)
        self.all_by_label: dict[str, list[int]] = defaultdict(list)  # every track ever, for past times
        self.missing_by_label: dict[str, set[int]] = defaultdict(set)  # once-confirmed, missed since seen
        self.newest_first_seen: dict[str, float] = {}  # per label
        self.aliases: dict[int, list[int]] = defaultdict(list)  # track -> tracks merged into it
        self.points = DynamicPointIndex()  # every indexed track
        self.receptacle_points = DynamicPointIndex(min_rebuild=32)  # live receptacles
        self._loading = False  # restore_many: indexes rebuilt once at the end
        self.label_points: dict[str, DynamicPointIndex] = defaultdict(self._label_index)
        self.receptacle_reach = 0.0  # the largest reach() of any receptacle
        self.static_reach = 0.0  # half the largest 3D diagonal of any furniture track (partial-view gates)
        self.object_vectors: VectorIndex | None = None  # detection embeddings of present tracks
        self._indexed_at: dict[int, np.ndarray] = {}
        self._latest_confirmed: dict[str, int] = {}  # per label: the confirmed instance ranked first now
        self._furniture_bottoms: dict[int, float] = {}  # furniture seen more than once: where it stands
        self._floor: float | None = None
        self._next_id = 1
        self._dismissed: list[tuple[float, int]] = []  # (when, track id) of dismissed tracks, to forget later
        self._tentative: set[int] = set()  # ids of tentative tracks (the retention sweep looks at these only)

    def _label_index(self) -> DynamicPointIndex:
        index = DynamicPointIndex(min_rebuild=32)
        index.deferred = self._loading
        return index

    def __getitem__(self, track_id: int) -> Track:
        return self.tracks[track_id]

    def __contains__(self, track_id: int) -> bool:
        return track_id in self.tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks.values())

    def get(self, track_id: int | None) -> Track | None:
        return None if track_id is None else self.tracks.get(track_id)

    def next_id(self) -> int:
        track_id = self._next_id
        self._next_id += 1
        return track_id

    def add(self, track: Track) -> None:
        """A track new to memory (created by ingest, or loaded from storage)."""
        self.tracks[track.track_id] = track
        self._next_id = max(self._next_id, track.track_id + 1)
        key = normalize_label(track.label)
        self.all_by_label[key].append(track.track_id)
        self.newest_first_seen[key] = max(self.newest_first_seen.get(key, -math.inf), track.first_seen)
        if track.merged_into is not None:
            self.aliases[track.merged_into].append(track.track_id)

    FLOOR_SUPPORTERS = 3  # pieces of furniture standing at one level before it is taken for the floor

    def floor_z(self) -> float | None:
        """Height of the floor: configured, else the lowest level on which several pieces of furniture
        seen more than once stand (their bottoms within floor_tolerance_m); None until then."""
        if self.config.floor_z is not None:
            return self.config.floor_z
        if self._floor is None and len(self._furniture_bottoms) >= self.FLOOR_SUPPORTERS:
            bottoms = np.sort(np.fromiter(self._furniture_bottoms.values(), dtype=float))
            level = np.searchsorted(bottoms, bottoms + self.config.floor_tolerance_m, side="right")
            standing = np.flatnonzero(level - np.arange(len(bottoms)) >= self.FLOOR_SUPPORTERS)
            if len(standing):
                self._floor = float(np.median(bottoms[standing[0]:level[standing[0]]]))
        return self._floor

    def include(self, track: Track) -> None:
        """The track may be present (live, or gone but findable): it joins its label's set."""
        self.by_label[normalize_label(track.label)].add(track.track_id)

    def of_label(self, label: str) -> list[Track]:
        """Tracks of the label that may be present now (live or gone)."""
        return [self.tracks[i] for i in self.by_label.get(normalize_label(label), ())]

    def ever_of_label(self, label: str) -> list[Track]:
        """Every track the label ever had, in creation order."""
        return [self.tracks[i] for i in self.all_by_label.get(normalize_label(label), ())]

    def reach(self, track: Track) -> float:
        """How far from its center a receptacle's box (plus margins) extends: half its 3D diagonal."""
        return float(np.linalg.norm(track.size)) / 2.0 + self.config.support_margin_m + self.config.support_gap_m

    # ------------------------------------------------------------------ keeping indexes in step
    def reindex(self, track: Track) -> None:
        """Keep the spatial indexes in step with the track (positions may lag by half the slack)."""
        if track.status == MERGED:
            return
        indexed = self._indexed_at.get(track.track_id)
        moved = indexed is None or distance(indexed, track.center) > INDEX_SLACK_M / 2
        if moved:
            self.points.set(track.track_id, track.center)
            self.label_points[normalize_label(track.label)].set(track.track_id, track.center)
            self._indexed_at[track.track_id] = track.center.copy()
        if self.config.is_static(track.label):
            half = float(np.linalg.norm(track.size)) / 2.0
            self.static_reach = max(self.static_reach, min(half, self.config.max_gate_m))
            if track.status == CONFIRMED and track.hits >= 2:
                self._furniture_bottoms[track.track_id] = float(track.center[2] - track.size[2] / 2.0)
                self._floor = None
            elif self._furniture_bottoms.pop(track.track_id, None) is not None:
                self._floor = None
        if self.config.is_receptacle(track.label):
            if not track.is_live:
                self.receptacle_points.remove(track.track_id)
            elif moved or track.track_id not in self.receptacle_points:
                self.receptacle_points.set(track.track_id, track.center)
                self.receptacle_reach = max(self.receptacle_reach, self.reach(track))

    def drop(self, track: Track, keep_position: bool = False) -> None:
        """Take a track out of the indexes of present things (``keep_position``: a later detection
        there may still find it)."""
        key = normalize_label(track.label)
        if not keep_position:
            self.points.remove(track.track_id)
            self.label_points[key].remove(track.track_id)
            self._indexed_at.pop(track.track_id, None)
        self.receptacle_points.remove(track.track_id)
        self.by_label[key].discard(track.track_id)
        self.missing_by_label[key].discard(track.track_id)
        if self.object_vectors is not None:
            self.object_vectors.remove(track.track_id)

    def embedding_dim(self) -> int | None:
        """The length every embedding must have (fixed by the first one memory indexed), None before."""
        return None if self.object_vectors is None else self.object_vectors.dim

    # ------------------------------------------------------------------ lifelong: forgetting dismissed tracks
    def dismissed(self, track: Track, t: float) -> None:
        """A tentative track was dismissed at ``t`` (a false detection): forgotten later unless revived."""
        self._dismissed.append((t, track.track_id))

    def forgettable(self, before: float) -> list[Track]:
        """Dismissed tracks, never believed, not revived since, dismissed before ``before``."""
        found, keep = [], []
        for when, track_id in self._dismissed:
            track = self.tracks.get(track_id)
            if track is None or track.status != REJECTED or track.ever_confirmed:
                continue  # forgotten already, or revived (dismissed again, it is listed again)
            status = track.history("status").current
            since = when if status is None else status.valid_from
            if since < before:
                found.append(track)
            else:
                keep.append((when, track_id))
        self._dismissed = keep
        return found

    def tentative_unseen_since(self, before: float) -> list[Track]:
        """Tentative tracks last seen before ``before`` (only the tentative ones are looked at)."""
        tentative = self._tentative
        for track_id in [i for i in tentative if i not in self.tracks or self.tracks[i].status != TENTATIVE]:
            tentative.discard(track_id)
        return [self.tracks[i] for i in sorted(tentative) if self.tracks[i].last_seen < before]

    def note_status(self, track: Track) -> None:
        """The track's status changed (the set of tentative tracks follows it)."""
        if track.status == TENTATIVE:
            self._tentative.add(track.track_id)
        else:
            self._tentative.discard(track.track_id)

    def forget(self, track: Track) -> None:
        """Take a track out of memory altogether: every index, the label lists, the caches."""
        track_id, key = track.track_id, normalize_label(track.label)
        self.drop(track)
        self.tracks.pop(track_id, None)
        ever = self.all_by_label.get(key)
        if ever is not None:
            ever[:] = [i for i in ever if i != track_id]
            if not ever:
                del self.all_by_label[key]
        for index in (self.by_label, self.missing_by_label):
            if key in index and not index[key]:
                del index[key]
        points = self.label_points.get(key)
        if points is not None and not len(points):
            del self.label_points[key]
        self.aliases.pop(track_id, None)
        self._furniture_bottoms.pop(track_id, None)
        if self._latest_confirmed.get(key) == track_id:
            del self._latest_confirmed[key]

    def index_vector(self, track: Track) -> None:
        """Index the track's embedding (the first embedding's length fixes the index's)."""
        if track.embedding is None:
            return
        if self.object_vectors is None:
            self.object_vectors = VectorIndex(dim=int(track.embedding.shape[0]))
        if track.embedding.shape[0] == self.object_vectors.dim:
            self.object_vectors.add(track.track_id, track.embedding)

    def mark_missing(self, track: Track, missing: bool) -> None:
        """Whether a once-confirmed track has been missed since it was last seen."""
        key = normalize_label(track.label)
        if missing:
            self.missing_by_label[key].add(track.track_id)
        else:
            self.missing_by_label[key].discard(track.track_id)

    def restore_many(self, tracks: list[Track]) -> None:
        """Add and index tracks loaded from storage, each KD-tree built once at the end (not every few
        hundred points as ingest does)."""
        indexes = (self.points, self.receptacle_points, *self.label_points.values())
        self._loading = True
        for index in indexes:
            index.deferred = True
        try:
            for track in tracks:
                self.add(track)
                self.restore(track)
        finally:
            self._loading = False
            for index in (self.points, self.receptacle_points, *self.label_points.values()):
                index.settle()

    def restore(self, track: Track) -> None:
        """Index a track loaded from storage (after :meth:`add`)."""
        key = normalize_label(track.label)
        self.note_status(track)
        if track.ever_confirmed and (track.status == GONE or track.misses_since_hit > 0):
            self.missing_by_label[key].add(track.track_id)
        if track.status in (TENTATIVE, CONFIRMED, GONE):
            self.by_label[key].add(track.track_id)
            self.index_vector(track)
        self.reindex(track)

    # ------------------------------------------------------------------ the confirmed instance ranked first
    def note_latest(self, track: Track) -> None:
        """Keep the per-label 'most recently seen confirmed instance' cache fresh."""
        if track.status != CONFIRMED:
            return
        key = normalize_label(track.label)
        current = self._latest_confirmed.get(key)
        if current == track.track_id:
            return
        other = self.tracks.get(current) if current is not None else None
        if other is None or other.status != CONFIRMED or recency_key(other) <= recency_key(track):
            self._latest_confirmed[key] = track.track_id

    def forget_latest(self, track: Track) -> None:
        """The track is no longer confirmed: it leaves the cache."""
        key = normalize_label(track.label)
        if self._latest_confirmed.get(key) == track.track_id:
            del self._latest_confirmed[key]

    def best_confirmed(self, label: str) -> Track | None:
        """The confirmed instance seen most recently (cached per label, kept fresh by ingest)."""
        key = normalize_label(label)
        cached = self._latest_confirmed.get(key)
        if cached is not None and self.tracks[cached].status == CONFIRMED:
            return self.tracks[cached]
        confirmed = [self.tracks[i] for i in self.by_label.get(key, ()) if self.tracks[i].status == CONFIRMED]
        if not confirmed:
            return None
        best = max(confirmed, key=recency_key)
        self._latest_confirmed[key] = best.track_id
        return best

    def nearest_confirmed(self, label: str, near: np.ndarray) -> Track | None:
        """The confirmed instance closest to ``near``, from the label's own KD-tree."""
        points = self.label_points.get(normalize_label(label))
        if points is None:
            return None
        first = points.nearest(near, accept=lambda i: self.tracks[i].status == CONFIRMED)
        if first is None:
            return None
        # indexed positions may lag the running estimates by a few cm: settle ties on exact centers
        reach = float(np.linalg.norm(self.tracks[first].center - near)) + 0.1
        found = [self.tracks[i] for i in points.query_radius(near, reach) if self.tracks[i].status == CONFIRMED]
        return min(found, key=lambda t: (float(np.linalg.norm(t.center - near)), t.track_id))
