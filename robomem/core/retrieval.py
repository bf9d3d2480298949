"""Queries over memory: where is / was, last seen, contents, state, count, what changed, spatial,
semantic search, and a token-budgeted text rendering for an LLM planner.

Every query takes an optional time ``at``; it is answered from what memory believed then.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from robomem.core import states
from robomem.core.config import label_to_text, normalize_label
from robomem.core.embedding import VectorIndex
from robomem.core.locking import synchronized
from robomem.core.scene_graph import room_node
from robomem.core.tracks import CONFIRMED, GONE, PARENT, POSE, STATUS, TENTATIVE, Track

if TYPE_CHECKING:
    from robomem.core.memory import Memory



@dataclass
class ObjectInfo:
    """One object as memory believes it at some time."""

    track_id: int
    label: str
    center: np.ndarray
    size: np.ndarray
    status: str
    last_seen: float
    receptacle: str | None = None
    receptacle_id: int | None = None
    relation: str | None = None
    room: str = ""
    state: dict[str, Any] = field(default_factory=dict)  # latest value of each observed state

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.track_id,
            "label": self.label,
            "center": [round(float(v), 4) for v in self.center],
            "size": [round(float(v), 4) for v in self.size],
            "status": self.status,
            "last_seen": self.last_seen,
            "receptacle": self.receptacle,
            "receptacle_id": self.receptacle_id,
            "relation": self.relation,
            "room": self.room,
            "state": dict(self.state),
        }


STRONG_CONFIDENCE = 0.85


def _recency_key(track: Track) -> tuple[bool, float, int, int]:
    """How 'now' queries rank instances (largest first): well-supported ones (seen twice, or once very
    confidently) before a lone sighting that may be a false detection; then the most recently seen,
    the most seen, the oldest."""
    strong = track.hits >= 2 or track.max_confidence >= STRONG_CONFIDENCE
    return (strong, track.last_seen, track.hits, -track.track_id)


def _negated(key: tuple) -> tuple:
    return tuple(-float(v) for v in key)


@dataclass
class GraphNode:
    """A node of the believed scene graph: a room or an object."""

    node_id: str  # "room:<name>" or the track id as text
    kind: str  # room | receptacle | object
    label: str
    track_id: int  # -1 for rooms
    center: np.ndarray
    size: np.ndarray


@dataclass
class GraphEdge:
    """child --relation--> parent, relation in | on (rooms hold their objects "in")."""

    child: str
    parent: str
    relation: str


@dataclass
class Change:
    """A difference between what memory believed at two times."""

    label: str
    change: str
    track_id: int
    detail: dict[str, Any]


class RetrievalMixin:
    """Query methods of :class:`robomem.core.memory.Memory`."""

    # ------------------------------------------------------------------ belief at a time
    def _time(self: Memory, at: float | None) -> float:
        return self.now if at is None else float(at)

    def _is_now(self: Memory, at: float | None) -> bool:
        """Whether a query about time ``at`` is about the present (answered from current estimates)."""
        return at is None or at >= self.now

    def _believed(self: Memory, track: Track, at: float | None) -> bool:
        """Believed present at time ``at`` (now if None). For a past time, a track that was still tentative
        then but confirmed since was there all along: hindsight, not a change of the past."""
        if self._is_now(at):
            return track.status == CONFIRMED
        status = track.history(STATUS).value_at(at)
        return status == CONFIRMED or (status == TENTATIVE and track.ever_confirmed)

    def _label_tracks(self: Memory, label: str, at: float | None) -> list[Track]:
        key = normalize_label(label)
        if self._is_now(at):
            return [self.tracks[i] for i in self.by_label.get(key, ())]
        return [self.tracks[i] for i in self.all_by_label.get(key, ()) if self.tracks[i].first_seen <= at]

    def _ranked(self: Memory, label: str, at: float | None, near: Any = None) -> list[Track]:
        """Believed instances of a label at a time, most likely first."""
        found = [t for t in self._label_tracks(label, at) if self._believed(t, at)]
        now = self._is_now(at)
        if near is not None:
            point = np.asarray(near, dtype=float)
            return sorted(
                found,
                key=lambda t: (t.status != CONFIRMED, float(np.linalg.norm(self._pose_at(t, at)[0] - point)),
                               t.track_id),
            )
        if now:
            return sorted(found, key=lambda t: (t.status != CONFIRMED, _negated(_recency_key(t))))
        def placed_since(track: Track) -> float:
            fact = track.history(POSE).at(at)
            return -math.inf if fact is None else fact.valid_from

        # past times: confirmed then first, a fragment of another instance last (see _inside_own_kind),
        # then the most recently established placement, the most seen
        return sorted(found, key=lambda t: (t.history(STATUS).value_at(at) != CONFIRMED,
                                            self._inside_own_kind(t, at), -placed_since(t), -t.hits))

    def _inside_own_kind(self: Memory, track: Track, at: float | None) -> bool:
        """Held by an instance of its own label (a mug "in" a mug): most likely a part of that object seen
        apart (a sliver through a microwave's door), not another one."""
        parent = self._parent_at(track, at)
        holder = self.tracks.get(parent[0]) if parent else None
        return holder is not None and normalize_label(holder.label) == normalize_label(track.label)

    def _pose_at(self: Memory, track: Track, at: float | None) -> tuple[np.ndarray, np.ndarray]:
        if self._is_now(at):
            return track.center, track.size
        history = track.history(POSE)
        fact = history.at(at)
        if fact is None or fact is history.current:  # the open placement: the running estimate is newest
            return track.center, track.size
        return np.asarray(fact.value[:3]), np.asarray(fact.value[3:])

    @staticmethod
    def _placement_center(track: Track, fact: Any) -> np.ndarray:
        return track.center if fact is track.history(POSE).current else np.asarray(fact.value[:3])

    def _parent_at(self: Memory, track: Track, at: float | None) -> list | None:
        history = track.history(PARENT)
        return history.value_now() if self._is_now(at) else history.value_at(at)

    def _info(self: Memory, track: Track, at: float | None) -> ObjectInfo:
        center, size = self._pose_at(track, at)
        parent = self._parent_at(track, at)
        parent_track = self.tracks.get(parent[0]) if parent else None
        status = track.status if self._is_now(at) else track.history(STATUS).value_at(at)
        return ObjectInfo(
            track_id=track.track_id,
            label=track.label,
            center=center,
            size=size,
            status=status or TENTATIVE,
            last_seen=track.last_seen if self._is_now(at) else self._last_seen_at(track, at),
            receptacle=parent_track.label if parent_track else None,
            receptacle_id=parent_track.track_id if parent_track else None,
            relation=parent[1] if parent else None,
            room=self.graph.room_for(center),
            state=self._states_at(track, at),
        )

    def _states_at(self: Memory, track: Track, at: float | None) -> dict[str, Any]:
        found = {}
        for key in track.state_keys():
            history = track.history(f"state:{key}")
            value = history.value_now() if self._is_now(at) else history.value_at(at)
            if value is not None:
                found[key] = value
        return found

    # ------------------------------------------------------------------ the queries
    @synchronized
    def where_is(self: Memory, label: str, near: Any = None, at: float | None = None) -> ObjectInfo | None:
        """The most likely instance of ``label`` (closest to ``near`` if given); None if unknown or gone."""
        if self._is_now(at):
            fast = self._best_confirmed(label) if near is None else self._nearest_confirmed(label, near)
            if fast is not None:
                return self._info(fast, None)
        ranked = self._ranked(label, at, near)
        return self._info(ranked[0], at) if ranked else None

    def _best_confirmed(self: Memory, label: str) -> Track | None:
        """The confirmed instance seen most recently (cached per label, kept fresh by ingest)."""
        key = normalize_label(label)
        cached = self._latest_confirmed.get(key)
        if cached is not None and self.tracks[cached].status == CONFIRMED:
            return self.tracks[cached]
        confirmed = [self.tracks[i] for i in self.by_label.get(key, ()) if self.tracks[i].status == CONFIRMED]
        if not confirmed:
            return None
        best = max(confirmed, key=_recency_key)
        self._latest_confirmed[key] = best.track_id
        return best

    def _nearest_confirmed(self: Memory, label: str, near: Any) -> Track | None:
        """The confirmed instance closest to ``near``, from the label's own KD-tree."""
        points = self.label_points.get(normalize_label(label))
        if points is None:
            return None
        point = np.asarray(near, dtype=float)
        first = points.nearest(point, accept=lambda i: self.tracks[i].status == CONFIRMED)
        if first is None:
            return None
        # indexed positions may lag the running estimates by a few cm: settle ties on exact centers
        reach = float(np.linalg.norm(self.tracks[first].center - point)) + 0.1
        found = [self.tracks[i] for i in points.query_radius(point, reach) if self.tracks[i].status == CONFIRMED]
        return min(found, key=lambda t: (float(np.linalg.norm(t.center - point)), t.track_id))

    @synchronized
    def where_was(self: Memory, label: str, at: float, near: Any = None) -> ObjectInfo | None:
        """Where memory believed ``label`` was at time ``at``."""
        return self.where_is(label, near=near, at=at)

    @synchronized
    def last_seen(self: Memory, label: str, near: Any = None, at: float | None = None) -> float | None:
        """Time of the latest observation of the object (of any instance unless ``near`` is given)."""
        tracks = [t for t in self._label_tracks(label, at) if t.ever_confirmed]
        if not tracks:
            return None
        if near is not None:
            point = np.asarray(near, dtype=float)
            tracks = [min(tracks, key=lambda t: float(np.linalg.norm(self._pose_at(t, at)[0] - point)))]
        if self._is_now(at):
            return max(t.last_seen for t in tracks)
        times = [self._last_seen_at(t, at) for t in tracks if t.first_seen <= at]
        return max(times, default=None)

    def _last_seen_at(self: Memory, track: Track, at: float) -> float:
        """The track's latest sighting at or before ``at`` (from the observation log)."""
        if track.last_seen <= at:
            return track.last_seen
        ids = {track.track_id, *self._aliases.get(track.track_id, ())}
        times = [row[0] for row in self._pending.observations if row[-1] in ids and row[0] <= at]
        stored = self.store.last_seen(sorted(ids), at)
        if stored is not None:
            times.append(stored)
        return max(times, default=track.first_seen)

    @synchronized
    def count_believed(self: Memory) -> int:
        """How many objects, of any label, memory believes present now."""
        return sum(1 for t in self.tracks.values() if self._believed(t, None))

    @synchronized
    def count(self: Memory, label: str, at: float | None = None) -> int:
        """How many distinct instances of ``label`` memory believes in."""
        return sum(1 for t in self._label_tracks(label, at) if self._believed(t, at))

    @synchronized
    def state(self: Memory, label: str, key: str, near: Any = None, at: float | None = None) -> Any:
        """Latest observed value of ``key`` for the instance (None if never observed)."""
        if self._is_now(at):
            fast = self._best_confirmed(label) if near is None else self._nearest_confirmed(label, near)
            value = None if fast is None else fast.history(f"state:{key}").value_now()
            if value is not None:
                return value
        for track in self._ranked(label, at, near):
            history = track.history(f"state:{key}")
            value = history.value_now() if self._is_now(at) else history.value_at(at)
            if value is not None:
                return value
        return None

    @synchronized
    def contents(
        self: Memory, receptacle: str, at: float | None = None, include_fixtures: bool = False
    ) -> list[ObjectInfo]:
        """Objects believed in/on any instance of the receptacle label (nested containment included)."""
        holders = {t.track_id for t in self._ranked(receptacle, at)}
        if not holders:
            return []
        found: list[Track] = []
        if self._is_now(at):
            ids = set().union(*(self.graph.descendants(h) for h in holders))
            found = [self.tracks[i] for i in ids if self._believed(self.tracks[i], None)]
        else:
            for track in self.tracks.values():
                if track.first_seen > at or not self._believed(track, at):
                    continue
                if holders & set(self._chain_at(track, at)):
                    found.append(track)
        if not include_fixtures:
            found = [t for t in found if not self.config.is_static(t.label)]
        return [self._info(t, at) for t in sorted(found, key=lambda t: t.track_id)]

    def _chain_at(self: Memory, track: Track, at: float) -> list[int]:
        chain: list[int] = []
        node = track
        while True:
            parent = self._parent_at(node, at)
            if not parent or parent[0] in chain or parent[0] not in self.tracks:
                return chain
            chain.append(parent[0])
            node = self.tracks[parent[0]]

    @synchronized
    def what_changed(
        self: Memory, since: float, until: float | None = None, room: str | None = None
    ) -> list[Change]:
        """Differences between what memory believed at ``since`` and at ``until`` (default: now);
        with ``room``, only changes of objects that were, or are, in that room ("what changed in the
        kitchen")."""
        end = self._time(until)
        changes: list[Change] = []
        # only tracks with a fact starting in (since, end] can differ between the two times
        first = bisect.bisect_right(self._fact_times, since)
        last = bisect.bisect_right(self._fact_times, end)
        for track_id in sorted(set(self._fact_subjects[first:last])):
            track = self.tracks[track_id]
            if not (track.ever_confirmed or track.status == TENTATIVE):
                continue
            if room is not None and room not in {self.graph.room_for(self._pose_at(track, when)[0])
                                                 for when in (since, end)}:
                continue
            changes.extend(self._track_changes(track, since, end))
        self.stm.touch(e.event_id for e in self.stm.events() if since < e.t <= end)
        return changes

    def _track_changes(self: Memory, track: Track, since: float, end: float) -> list[Change]:
        status_history = track.history(STATUS)
        before, after = status_history.value_at(since), status_history.value_at(end)
        believed_before = before == CONFIRMED
        believed_after = after == CONFIRMED
        pose = track.history(POSE)
        if self.config.is_static(track.label) and believed_before != believed_after:
            return []  # furniture does not come and go: a late discovery or a flicker of the detector
        if not believed_before and believed_after:
            if before == GONE:  # back where it was: a false 'gone'; elsewhere: it moved
                moved = self._moved_since(track, since, end)
                return [moved] if moved else []
            if before is None and track.appeared:
                return [Change(track.label, "appeared", track.track_id, {})]
            return []  # first confirmed after `since` but already there: a discovery, not a change
        if believed_before and after == GONE:
            return [Change(track.label, "disappeared", track.track_id, {})]
        if not (believed_before and believed_after):
            return []
        found: list[Change] = []
        first, last = pose.at(since), pose.at(end)
        if first is not None and last is not None and first.fact_id != last.fact_id:
            distance = float(np.linalg.norm(self._placement_center(track, first) - self._placement_center(track, last)))
            threshold = self.config.move_threshold_m
            if distance > threshold:
                found.append(Change(track.label, "moved", track.track_id, {"distance_m": round(distance, 3)}))
        cfg = self.config
        kinds: dict[str, str] = {}
        for key in track.state_keys():
            history = track.history(f"state:{key}")
            old, new = history.value_at(since), history.value_at(end)
            kind = states.change_kind(key, old, new, cfg.numeric_state_tolerance, cfg.fraction_change)
            if kind is not None and kind not in kinds.values():  # 'open' and 'openness' tell one story
                kinds[key] = kind
                found.append(Change(track.label, kind, track.track_id, {"key": key, "from": old, "to": new}))
        return found

    def _moved_since(self: Memory, track: Track, since: float, end: float) -> Change | None:
        """A 'moved' change if the placement at ``end`` lies away from the last one before ``since``."""
        pose = track.history(POSE)
        first, last = pose.at(since), pose.at(end)
        if first is None:
            earlier = [f for f in pose.facts if f.valid_from <= since]
            first = earlier[-1] if earlier else None
        if first is not None and last is not None:
            distance = float(np.linalg.norm(self._placement_center(track, first) - self._placement_center(track, last)))
            if distance > self.config.move_threshold_m:
                return Change(track.label, "moved", track.track_id, {"distance_m": round(distance, 3)})
        return None

    @synchronized
    def within_radius(
        self: Memory, center: Any, radius: float, label: str | None = None
    ) -> list[ObjectInfo]:
        """Believed objects whose center lies within ``radius`` metres of ``center`` (nearest first)."""
        point = np.asarray(center, dtype=float)
        key = normalize_label(label) if label else None
        found = []
        for track_id in self.index.query_radius(point, radius + 0.1):
            track = self.tracks[track_id]
            if key and normalize_label(track.label) != key:
                continue
            distance = float(np.linalg.norm(track.center - point))
            if distance <= radius and self._believed(track, None):
                found.append((distance, track))
        return [self._info(t, None) for _, t in sorted(found, key=lambda p: p[0])]

    @synchronized
    def near(self: Memory, label: str, radius: float | None = None, near: Any = None) -> list[ObjectInfo]:
        """Objects *near* the most likely instance of ``label`` (within ``radius``, default the
        configured near radius), closest first, the object itself and its holders excluded."""
        anchor = self.where_is(label, near=near)
        if anchor is None:
            return []
        track = self.tracks[anchor.track_id]
        excluded = {track.track_id, *(n for n in self.graph.ancestors_chain(track.track_id) if isinstance(n, int))}
        found = self.within_radius(track.center, radius if radius is not None else self.config.near_radius_m)
        return [info for info in found if info.track_id not in excluded]

    @synchronized
    def relations(self: Memory, label: str, near: Any = None) -> list[tuple[str, str]]:
        """The scene-graph relations of the most likely instance: ('in'|'on', holder) and ('near', other)."""
        anchor = self.where_is(label, near=near)
        if anchor is None:
            return []
        found = [(anchor.relation, f"{anchor.receptacle}#{anchor.receptacle_id}")] if anchor.receptacle else []
        found += [("near", f"{info.label}#{info.track_id}") for info in self.near(label, near=near)]
        return found

    @synchronized
    def within_box(self: Memory, lower: Any, upper: Any, label: str | None = None) -> list[ObjectInfo]:
        """Believed objects whose center lies in the axis-aligned box [lower, upper]."""
        lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        middle, half_diagonal = (lo + hi) / 2.0, float(np.linalg.norm(hi - lo)) / 2.0
        return [
            info for info in self.within_radius(middle, half_diagonal, label)
            if np.all(info.center >= lo) and np.all(info.center <= hi)
        ]

    @synchronized
    def scene_graph(self: Memory) -> tuple[list[GraphNode], list[GraphEdge]]:
        """The scene graph of what memory believes now: rooms, believed objects, their in/on edges
        (an object whose holder is not believed hangs under its room)."""
        nodes: list[GraphNode] = []
        for room in self.graph.rooms:
            lo, hi = np.array([*room.min_xy, 0.0]), np.array([*room.max_xy, 0.0])
            nodes.append(GraphNode(room_node(room.name), "room", room.name, -1, (lo + hi) / 2, hi - lo))
        nodes.append(GraphNode(room_node(self.graph.default_room), "room", self.graph.default_room, -1,
                               np.zeros(3), np.zeros(3)))
        believed = sorted(i for i, t in self.tracks.items() if t.status == CONFIRMED)
        edges: list[GraphEdge] = []
        for track_id in believed:
            track = self.tracks[track_id]
            kind = "receptacle" if self.config.is_receptacle(track.label) else "object"
            nodes.append(GraphNode(str(track_id), kind, track.label, track_id, track.center.copy(), track.size.copy()))
            parent = track.history(PARENT).value_now()
            if parent and parent[0] in self.tracks and self.tracks[parent[0]].status == CONFIRMED:
                edges.append(GraphEdge(str(track_id), str(parent[0]), parent[1] or "on"))
            else:
                edges.append(GraphEdge(str(track_id), room_node(self.graph.room_for(track.center)), "in"))
        return nodes, edges

    # ------------------------------------------------------------------ semantic search
    def _label_index(self: Memory) -> tuple[VectorIndex, dict[int, str]]:
        labels = {t.label for t in self.tracks.values() if t.is_live or t.status == GONE}
        missing = sorted(label for label in labels if label not in self._label_keys)
        if self._label_vectors is None:
            self._label_vectors = VectorIndex(self.embedder.dim)
        if missing:
            vectors = self.embedder.embed([label_to_text(label) for label in missing])
            for label, vector in zip(missing, vectors, strict=True):
                key = len(self._label_keys)
                self._label_keys[label] = key
                self._label_vectors.add(key, vector)
        return self._label_vectors, {v: k for k, v in self._label_keys.items()}

    @synchronized
    def search(self: Memory, text: str, k: int = 10, min_similarity: float = 0.5) -> list[tuple[ObjectInfo, float]]:
        """Objects whose label means what ``text`` says ("cup" finds a Mug), best first."""
        index, names = self._label_index()
        query = self.embedder.embed([label_to_text(text)])[0]
        results: list[tuple[ObjectInfo, float]] = []
        for key, similarity in index.search(query, k=min(len(index), 16)):
            if similarity < min_similarity:
                continue
            for track in self._ranked(names[key], None):
                results.append((self._info(track, None), similarity))
        results.sort(key=lambda pair: -pair[1])
        return results[:k]

    @synchronized
    def search_by_embedding(self: Memory, vector: Any, k: int = 10) -> list[tuple[ObjectInfo, float]]:
        """Objects whose detection embeddings (e.g. image features) are nearest to ``vector``."""
        if self._object_vectors is None:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        return [
            (self._info(self.tracks[key], None), sim)
            for key, sim in self._object_vectors.search(query, k)
            if self._believed(self.tracks[key], None)
        ]
