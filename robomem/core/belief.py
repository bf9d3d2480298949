"""Belief at a time: what memory believed at any time ``at`` (now when None), read from the tracks'
fact timelines: whether an instance was present, its box, its holder, its states, when it was last
seen, and how the instances of a label rank. Queries (:mod:`robomem.core.queries`) build on it.

For "now" (``at`` None, or not before memory's latest batch) the running estimates answer; for a
past time, the facts that held then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.core.association import overlap_fraction
from robomem.core.holding import holding_robot
from robomem.core.journal import Journal
from robomem.core.relations import FLOOR_LABEL, on_floor
from robomem.core.scene_graph import SceneGraph
from robomem.core.storage import MemoryStore
from robomem.core.temporal import Fact
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, PARENT, POSE, STATUS, TENTATIVE, Track, holders, recency_key
from robomem.core.types import ObjectInfo

FRAGMENT_OVERLAP = 0.8  # share of a smaller box inside a larger one of its label that makes it a fragment of it

@dataclass(eq=False)
class Belief:
    """Reads what memory believed at a time."""

    tracks: TrackStore
    journal: Journal
    store: MemoryStore
    graph: SceneGraph

    def is_now(self, at: float | None) -> bool:
        """Whether a query about time ``at`` is about the present (answered from current estimates)."""
        return at is None or at >= self.journal.now

    def time(self, at: float | None) -> float:
        return self.journal.now if at is None else float(at)

    def believed(self, track: Track, at: float | None) -> bool:
        """Believed present at time ``at`` (now if None). For a past time, a track that was still tentative
        then but confirmed since was there all along: hindsight, not a change of the past."""
        if self.is_now(at):
            return track.status == CONFIRMED
        status = track.history(STATUS).value_at(at)
        return status == CONFIRMED or (status == TENTATIVE and track.ever_confirmed)

    def label_tracks(self, label: str, at: float | None) -> list[Track]:
        """The label's tracks that may have been present at ``at``."""
        if self.is_now(at):
            return self.tracks.of_label(label)
        return [t for t in self.tracks.ever_of_label(label) if t.first_seen <= at]

    def ranked(self, label: str, at: float | None, near: Any = None) -> list[Track]:
        """Believed instances of a label at a time, most likely first (nearest ``near`` first if given)."""
        found = [t for t in self.label_tracks(label, at) if self.believed(t, at)]
        if near is not None:
            point = np.asarray(near, dtype=float)
            return sorted(
                found,
                key=lambda t: (t.status != CONFIRMED, float(np.linalg.norm(self.pose_at(t, at)[0] - point)),
                               t.track_id),
            )
        if self.is_now(at):
            return sorted(found, key=lambda t: (t.status != CONFIRMED, tuple(-float(v) for v in recency_key(t))))

        def placed_since(track: Track) -> float:
            fact = track.history(POSE).at(at)
            return -math.inf if fact is None else fact.valid_from

        # past times: confirmed then first, a fragment of another instance last (see fragments_of_own_kind),
        # then the most recently established placement, the most seen
        fragments = self.fragments_of_own_kind(found, at)
        return sorted(found, key=lambda t: (t.history(STATUS).value_at(at) != CONFIRMED,
                                            t.track_id in fragments, -placed_since(t), -t.hits))

    def first(self, label: str, at: float | None, near: Any = None) -> Track | None:
        """The most likely instance (see :meth:`ranked`); now, from the store's cached fast paths."""
        if self.is_now(at):
            fast = (self.tracks.best_confirmed(label) if near is None
                    else self.tracks.nearest_confirmed(label, np.asarray(near, dtype=float)))
            if fast is not None:
                return fast
        ranked = self.ranked(label, at, near)
        return ranked[0] if ranked else None

    def fragments_of_own_kind(self, tracks: list[Track], at: float | None) -> set[int]:
        """Ids of the tracks whose box at ``at`` lies mostly (``FRAGMENT_OVERLAP``) within the larger box of
        another of ``tracks``: most likely a part of that object seen apart (a sliver of a mug through a
        microwave's door), not another one. A mug is never held by a mug (relations.best_parent), so
        this is told from geometry, not from the graph."""
        if len(tracks) < 2:
            return set()
        poses = [self.pose_at(t, at) for t in tracks]
        centers = np.array([c for c, _ in poses], dtype=float)
        sizes = np.array([s for _, s in poses], dtype=float)
        volumes = np.prod(sizes, axis=1)
        a, b = np.nonzero(volumes[:, None] < volumes[None, :])  # every (smaller, larger) pair
        overlap = overlap_fraction(centers[a], sizes[a], centers[b], sizes[b], tolerance=0.0)
        return {tracks[i].track_id for i in a[overlap >= FRAGMENT_OVERLAP]}

    def pose_at(self, track: Track, at: float | None) -> tuple[np.ndarray, np.ndarray]:
        """The track's (center, size) at a time."""
        if self.is_now(at):
            return track.center, track.size
        history = track.history(POSE)
        fact = history.at(at)
        if fact is None or fact is history.current:  # the open placement: the running estimate is newest
            return track.center, track.size
        return np.asarray(fact.value[:3]), np.asarray(fact.value[3:])

    @staticmethod
    def placement_center(track: Track, fact: Fact) -> np.ndarray:
        """Where a placement fact put the track (the running estimate for the open placement)."""
        return track.center if fact is track.history(POSE).current else np.asarray(fact.value[:3])

    def parent_at(self, track: Track, at: float | None) -> list | None:
        """[holder id, relation] at a time, or None."""
        history = track.history(PARENT)
        return history.value_now() if self.is_now(at) else history.value_at(at)

    def holder_ids_at(self, track: Track, at: float | None) -> list[int]:
        """Ids of what held the track at a time: its holder, that one's holder, ..."""
        when = None if self.is_now(at) else at
        return [holder.track_id for holder, _ in holders(track, self.tracks.tracks, when)]

    def state_at(self, track: Track, key: str, at: float | None) -> Any:
        history = track.history(f"state:{key}")
        return history.value_now() if self.is_now(at) else history.value_at(at)

    def states_at(self, track: Track, at: float | None) -> dict[str, Any]:
        found = {}
        for key in track.state_keys():
            value = self.state_at(track, key, at)
            if value is not None:
                found[key] = value
        return found

    def last_seen_at(self, track: Track, at: float) -> float:
        """The track's latest sighting at or before ``at`` (from the observation log)."""
        if track.last_seen <= at:
            return track.last_seen
        ids = {track.track_id, *self.tracks.aliases.get(track.track_id, ())}
        times = self.journal.pending_sightings(ids, at)
        stored = self.store.last_seen(sorted(ids), at)
        if stored is not None:
            times.append(stored)
        return max(times, default=track.first_seen)

    def info(self, track: Track, at: float | None) -> ObjectInfo:
        """The track as an answer: box, status, last sighting, holder, room, states at a time."""
        now = self.is_now(at)
        center, size = self.pose_at(track, at)
        parent = self.parent_at(track, at)
        parent_track = self.tracks.get(parent[0]) if parent else None
        status = track.status if now else track.history(STATUS).value_at(at)
        robot = holding_robot(parent)
        floor = parent_track is None and robot is None and on_floor(self.tracks, center, size)
        if robot is not None:  # held by a robot: "robot:r1", relation "held"
            receptacle, relation = parent[0], parent[1]
        else:
            receptacle = parent_track.label if parent_track else (FLOOR_LABEL if floor else None)
            relation = parent[1] if parent_track else ("on" if floor else None)
        return ObjectInfo(
            track_id=track.track_id,
            label=track.label,
            center=center,
            size=size,
            status=status or TENTATIVE,
            last_seen=track.last_seen if now else self.last_seen_at(track, at),
            receptacle=receptacle,
            receptacle_id=parent_track.track_id if parent_track else None,
            relation=relation,
            room=self.graph.room_for(center),
            state=self.states_at(track, at),
        )
