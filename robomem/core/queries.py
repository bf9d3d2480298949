"""Queries over memory: where is / was, last seen, count, state, contents, what changed, spatial
look-ups and the scene graph, each answered from :class:`robomem.core.belief.Belief` at a time ``at``
(now when None)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.core import states
from robomem.core.belief import Belief
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.geometry import boxes_held
from robomem.core.holding import holding_robot
from robomem.core.journal import Journal
from robomem.core.relations import FLOOR_LABEL, on_floor
from robomem.core.scene_graph import SceneGraph, room_node
from robomem.core.temporal import History
from robomem.core.track_store import INDEX_SLACK_M, TrackStore
from robomem.core.tracks import CONFIRMED, GONE, PARENT, POSE, STATUS, TENTATIVE, Track
from robomem.core.types import Change, GraphEdge, GraphNode, ObjectInfo


@dataclass(eq=False)
class Queries:
    """The questions memory answers (the facade :class:`robomem.core.memory.Memory` locks around them)."""

    config: MemoryConfig
    tracks: TrackStore
    belief: Belief
    journal: Journal
    graph: SceneGraph

    def where_is(self, label: str, near: Any = None, at: float | None = None) -> ObjectInfo | None:
        track = self.belief.first(label, at, near)
        return None if track is None else self.belief.info(track, at)

    def last_seen(self, label: str, near: Any = None, at: float | None = None) -> float | None:
        belief = self.belief
        tracks = [t for t in belief.label_tracks(label, at) if t.ever_confirmed]
        if not tracks:
            return None
        if near is not None:
            point = np.asarray(near, dtype=float)
            tracks = [min(tracks, key=lambda t: float(np.linalg.norm(belief.pose_at(t, at)[0] - point)))]
        if belief.is_now(at):
            return max(t.last_seen for t in tracks)
        times = [belief.last_seen_at(t, at) for t in tracks if t.first_seen <= at]
        return max(times, default=None)

    def count_believed(self) -> int:
        return sum(1 for t in self.tracks if self.belief.believed(t, None))

    def believed_now(self) -> list[Track]:
        return [t for t in self.tracks if self.belief.believed(t, None)]

    def count(self, label: str, at: float | None = None) -> int:
        return sum(1 for t in self.belief.label_tracks(label, at) if self.belief.believed(t, at))

    def state(self, label: str, key: str, near: Any = None, at: float | None = None) -> Any:
        for name in dict.fromkeys((states.canonical_key(key), key)):  # files written before keys were canonical
            value = self._state(label, name, near, at)
            if value is not None:
                return value
        return None

    def knows_state_key(self, key: str) -> bool:
        """Whether memory knows what the state key means or has ever observed it on an object."""
        name = states.canonical_key(key)
        return name in states.KNOWN_KEYS or any(f"state:{n}" in t.histories for t in self.tracks for n in (name, key))

    def _state(self, label: str, key: str, near: Any, at: float | None) -> Any:
        belief = self.belief
        if belief.is_now(at):
            fast = (self.tracks.best_confirmed(label) if near is None
                    else self.tracks.nearest_confirmed(label, np.asarray(near, dtype=float)))
            value = None if fast is None else fast.history(f"state:{key}").value_now()
            if value is not None:
                return value
        for track in belief.ranked(label, at, near):
            value = belief.state_at(track, key, at)
            if value is not None:
                return value
        return None

    def contents(self, receptacle: str, at: float | None = None, include_fixtures: bool = False) -> list[ObjectInfo]:
        belief = self.belief
        holder_ids = {t.track_id for t in belief.ranked(receptacle, at)}
        if not holder_ids and normalize_label(receptacle) == normalize_label(FLOOR_LABEL):
            return self._on_the_floor(at, include_fixtures)
        if not holder_ids:
            return []
        found: list[Track] = []
        if belief.is_now(at):
            ids = set().union(*(self.graph.descendants(h) for h in holder_ids))
            ids |= self._held_by_box(holder_ids, None)
            found = [self.tracks[i] for i in ids if belief.believed(self.tracks[i], None)]
        else:
            by_box = self._held_by_box(holder_ids, at)
            for track in self.tracks:
                if track.first_seen > at or not belief.believed(track, at):
                    continue
                if track.track_id in by_box or holder_ids & set(belief.holder_ids_at(track, at)):
                    found.append(track)
        if not include_fixtures:
            found = [t for t in found if not self.config.is_static(t.label)]
        return [belief.info(t, at) for t in sorted(found, key=lambda t: t.track_id)]

    def _held_by_box(self, holder_ids: set[int], at: float | None) -> set[int]:
        """Ids of the tracks that the holders' boxes hold by geometry (:func:`geometry.boxes_held`) at a
        time, beside the one holder each track's parent fact names: a thing on the counter at the sink's
        rim is on both. Never a holder's own holder, nor a thing of the holder's own label."""
        cfg, belief = self.config, self.belief
        found: set[int] = set()
        for holder_id in holder_ids:
            holder = self.tracks[holder_id]
            rec_center, rec_size = belief.pose_at(holder, at)
            above = set(belief.holder_ids_at(holder, at)) | {holder_id}
            radius = self.tracks.reach(holder) + INDEX_SLACK_M + 1.0
            kind = normalize_label(holder.label)  # a second box of one mug holds nothing (relations.best_parent)
            near = [self.tracks[i] for i in self.tracks.points.query_radius(rec_center, radius)
                    if i not in above and not cfg.is_static(self.tracks[i].label)
                    and normalize_label(self.tracks[i].label) != kind]
            if not near:
                continue
            poses = [belief.pose_at(track, at) for track in near]
            held = boxes_held(np.array([c for c, _ in poses]), np.array([s for _, s in poses]), rec_center, rec_size,
                              cfg.support_margin_m, cfg.support_gap_m)
            found.update(track.track_id for track, ok in zip(near, held, strict=True)
                         if ok and belief.believed(track, at))
        return found

    def _on_the_floor(self, at: float | None, include_fixtures: bool) -> list[ObjectInfo]:
        """What stands on the floor, held by nothing else (the floor is no track: see relations.on_floor)."""
        belief = self.belief
        found = []
        for track in self.tracks:
            if (track.first_seen > belief.time(at) or not belief.believed(track, at)
                    or (not include_fixtures and self.config.is_static(track.label))):
                continue
            info = belief.info(track, at)
            if info.receptacle_id is None and info.receptacle == FLOOR_LABEL:
                found.append(info)
        return sorted(found, key=lambda info: info.track_id)

    # ------------------------------------------------------------------ what changed
    def what_changed(self, since: float, until: float | None = None, room: str | None = None) -> list[Change]:
        end = self.belief.time(until)
        changes: list[Change] = []
        for track_id in self.journal.subjects_between(since, end):  # only these can differ
            track = self.tracks[track_id]
            if not (track.ever_confirmed or track.status == TENTATIVE):
                continue
            if room is not None and room not in {self.graph.room_for(self.belief.pose_at(track, when)[0])
                                                 for when in (since, end)}:
                continue
            changes.extend(self._track_changes(track, since, end))
        stm = self.journal.stm
        stm.touch(e.event_id for e in stm.events() if since < e.t <= end)
        return changes

    def _track_changes(self, track: Track, since: float, end: float) -> list[Change]:
        status_history = track.history(STATUS)
        before, after = status_history.value_at(since), status_history.value_at(end)
        believed_before = before == CONFIRMED
        believed_after = after == CONFIRMED
        if self.config.is_static(track.label) and believed_before != believed_after:
            return []  # furniture does not come and go: a late discovery or a flicker of the detector
        if not believed_before and believed_after:
            if before == GONE:  # back where it was: a false 'gone'; elsewhere: it moved
                moved = self._moved(track, since, end, before_since=True)
                return [moved] if moved else []
            if before is None and track.appeared:
                return [Change(track.label, "appeared", track.track_id, {}, _start(status_history, end), None,
                               self._center(track, end))]
            return []  # first confirmed after `since` but already there: a discovery, not a change
        if believed_before and after == GONE:
            return [Change(track.label, "disappeared", track.track_id, {}, _start(status_history, end),
                           self._center(track, since), None)]
        if not (believed_before and believed_after):
            return []
        found: list[Change] = []
        moved = self._moved(track, since, end, before_since=False)
        if moved is not None:
            found.append(moved)
        picked = self._picked_up(track, since, end)
        if picked is not None:
            found.append(picked)
        cfg = self.config
        kinds: dict[str, str] = {}
        for key in track.state_keys():
            history = track.history(f"state:{key}")
            old, new = history.value_at(since), history.value_at(end)
            kind = states.change_kind(key, old, new, cfg.numeric_state_tolerance, cfg.fraction_change)
            if kind is not None and kind not in kinds.values():  # 'open' and 'openness' tell one story
                kinds[key] = kind
                found.append(Change(track.label, kind, track.track_id, {"key": key, "from": old, "to": new},
                                    _start(history, end), self._center(track, since), self._center(track, end)))
        return found

    def _picked_up(self, track: Track, since: float, end: float) -> Change | None:
        """A 'picked_up' change if a robot holds the track at ``end`` and did not at ``since``."""
        history = track.history(PARENT)
        robot = holding_robot(history.value_at(end))
        if robot is None or holding_robot(history.value_at(since)) == robot:
            return None
        return Change(track.label, "picked_up", track.track_id, {"robot": robot}, _start(history, end),
                      self._center(track, since), self._center(track, end))

    def _center(self, track: Track, at: float) -> np.ndarray:
        return self.belief.pose_at(track, at)[0].copy()

    def _moved(self, track: Track, since: float, end: float, before_since: bool) -> Change | None:
        """A 'moved' change if the placement at ``end`` is another one than at ``since``, farther than the
        move threshold (``before_since``: with none at ``since``, the last one that started before it)."""
        pose = track.history(POSE)
        first, last = pose.at(since), pose.at(end)
        if first is None and before_since:
            earlier = [f for f in pose.facts if f.valid_from <= since]
            first = earlier[-1] if earlier else None
        if first is None or last is None or (not before_since and first.fact_id == last.fact_id):
            return None
        start, finish = self.belief.placement_center(track, first), self.belief.placement_center(track, last)
        moved_by = float(np.linalg.norm(start - finish))
        if moved_by <= self.config.move_threshold_m:
            return None
        return Change(track.label, "moved", track.track_id, {"distance_m": round(moved_by, 3)}, last.valid_from,
                      start.copy(), finish.copy())

    # ------------------------------------------------------------------ space and the graph
    def within_radius(self, center: Any, radius: float, label: str | None = None) -> list[ObjectInfo]:
        point = np.asarray(center, dtype=float)
        key = normalize_label(label) if label else None
        found = []
        for track_id in self.tracks.points.query_radius(point, radius + INDEX_SLACK_M):
            track = self.tracks[track_id]
            if key and normalize_label(track.label) != key:
                continue
            distance = float(np.linalg.norm(track.center - point))
            if distance <= radius and self.belief.believed(track, None):
                found.append((distance, track))
        return [self.belief.info(t, None) for _, t in sorted(found, key=lambda p: p[0])]

    def within_box(self, lower: Any, upper: Any, label: str | None = None) -> list[ObjectInfo]:
        lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        middle, half_diagonal = (lo + hi) / 2.0, float(np.linalg.norm(hi - lo)) / 2.0
        return [
            info for info in self.within_radius(middle, half_diagonal, label)
            if np.all(info.center >= lo) and np.all(info.center <= hi)
        ]

    def near(self, label: str, radius: float | None = None, near: Any = None) -> list[ObjectInfo]:
        anchor = self.where_is(label, near=near)
        if anchor is None:
            return []
        track = self.tracks[anchor.track_id]
        excluded = {track.track_id, *(n for n in self.graph.ancestors_chain(track.track_id) if isinstance(n, int))}
        found = self.within_radius(track.center, radius if radius is not None else self.config.near_radius_m)
        return [info for info in found if info.track_id not in excluded]

    def relations(self, label: str, near: Any = None) -> list[tuple[str, str]]:
        anchor = self.where_is(label, near=near)
        if anchor is None:
            return []
        found = [(anchor.relation, f"{anchor.receptacle}#{anchor.receptacle_id}")] if anchor.receptacle else []
        found += [("near", f"{info.label}#{info.track_id}") for info in self.near(label, near=near)]
        return found

    def scene_graph(self) -> tuple[list[GraphNode], list[GraphEdge]]:
        nodes: list[GraphNode] = []
        for room in self.graph.rooms:
            lo, hi = np.array([*room.min_xy, 0.0]), np.array([*room.max_xy, 0.0])
            nodes.append(GraphNode(room_node(room.name), "room", room.name, -1, (lo + hi) / 2, hi - lo))
        nodes.append(GraphNode(room_node(self.graph.default_room), "room", self.graph.default_room, -1,
                               np.zeros(3), np.zeros(3)))
        believed = sorted(t.track_id for t in self.tracks if t.status == CONFIRMED)
        edges: list[GraphEdge] = []
        for track_id in believed:
            track = self.tracks[track_id]
            kind = "receptacle" if self.config.is_receptacle(track.label) else "object"
            nodes.append(GraphNode(str(track_id), kind, track.label, track_id, track.center.copy(), track.size.copy()))
            parent = track.history(PARENT).value_now()
            holder = self.tracks.get(parent[0]) if parent else None
            if holder is not None and holder.status == CONFIRMED:
                edges.append(GraphEdge(str(track_id), str(parent[0]), self._edge_relation(track, holder, parent[1])))
            else:
                floor = on_floor(self.tracks, track.center, track.size)
                edges.append(GraphEdge(str(track_id), room_node(self.graph.room_for(track.center)),
                                       ON_FLOOR if floor else "in"))
        return nodes, edges

    def _edge_relation(self, track: Track, holder: Track, relation: str | None) -> str:
        """The relation a scene-graph edge shows: a piece of furniture in another (a drawer in a dresser,
        a basin in a sink, a shelf in a shelving unit) is a part of it."""
        cfg = self.config
        if relation == "in" and cfg.is_static(track.label) and cfg.is_static(holder.label):
            return PART_OF
        return relation or "on"


PART_OF = "part_of"  # scene-graph edge from a part of a piece of furniture to the piece
ON_FLOOR = "on_floor"  # scene-graph edge from a thing standing on the floor to its room


def _start(history: History, at: float) -> float | None:
    """When the fact that holds at ``at`` began (None if none holds)."""
    fact = history.at(at)
    return None if fact is None else fact.valid_from
