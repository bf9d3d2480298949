"""Containment relations derived from geometry: what holds each object (in / on / hanging from), kept
as parent facts and mirrored in the scene graph. What rests at floor height on nothing else is on the
floor (see :func:`on_floor`): derived at answer time, since the floor is no track."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.geometry import (
    bottom_gap,
    box_volume,
    can_carry,
    fits_in,
    hangs_from,
    rests_on_floor,
    support_relation,
)
from robomem.core.holding import held_by
from robomem.core.journal import Journal
from robomem.core.scene_graph import SceneGraph
from robomem.core.track_store import INDEX_SLACK_M, TrackStore
from robomem.core.tracks import CONFIRMED, PARENT, Track

_HELD_OBJECT_REACH_M = 1.0  # the farthest a held object's center lies outside its receptacle's box
SUPPORT_SLACK_M = 0.1  # how far outside an openable's footprint a thing may still be held by it
HANGING = "hanging"  # the relation of a thing to the holder it hangs from
SAME_BOX_VOLUME = 1.25  # holder boxes within this volume ratio may be one furniture and its part (_level_of)
FLOOR_LABEL = "Floor"  # what memory names as the holder of a thing standing on the floor


def on_floor(tracks: TrackStore, center: np.ndarray, size: np.ndarray) -> bool:
    """Whether a box held by nothing stands on the floor (False while memory knows no floor)."""
    return rests_on_floor(center, size, tracks.floor_z(), tracks.config.floor_tolerance_m)


@dataclass(eq=False)
class Relations:
    """Parent receptacles of tracks, re-derived for tracks whose geometry or status changed."""

    config: MemoryConfig
    tracks: TrackStore
    journal: Journal
    graph: SceneGraph

    def update(self, t: float) -> None:
        """Re-derive the holder of every track the journal says changed (and of what lies near a
        changed receptacle)."""
        dirty = self.journal.take_relation_changes()
        if not dirty:
            return
        for track_id in list(dirty):
            track = self.tracks[track_id]
            if self.config.is_receptacle(track.label):
                dirty.update(self.tracks.points.query_radius(track.center,
                                                             self.tracks.reach(track) + _HELD_OBJECT_REACH_M))
        for track_id in dirty:  # nodes first, so that edges never point at a node not yet there
            track = self.tracks[track_id]
            if track.is_live:
                self.add_node(track)
            else:
                self.graph.remove(track_id)
        for track_id in dirty:
            track = self.tracks[track_id]
            if track.is_live and held_by(track) is not None:  # held by a robot: its report, not geometry
                self.graph.set_parent(track_id, None)
                continue
            parent = self.best_parent(track) if track.is_live else None
            if track.history(PARENT).value_now() != parent:
                if parent is None:
                    self.journal.close_fact(track, PARENT, t)
                else:
                    self.journal.record_fact(track, PARENT, parent, t)
            if track.is_live:
                self.graph.set_parent(track_id, parent)

    def supported(self, track: Track) -> bool:
        """Whether the track rests on or in a receptacle or stands on the floor (see TrackStore.floor_z);
        True while memory knows no floor (no furniture yet): support cannot be judged then."""
        parent = track.history(PARENT).value_now()
        return self._believed(parent) or self.box_supported(track.center, track.size)

    def box_supported(self, center: np.ndarray, size: np.ndarray) -> bool:
        """:meth:`supported` for a box no track has yet (a detection). Only believed holders count: a
        false detection is no support for another."""
        if self._on_floor_or_unknown(center, size):
            return True
        probe = Track(track_id=-1, label="", first_seen=0.0, last_seen=0.0, center=center, size=size)
        return self._believed(self.best_parent(probe)) or self._beside_openable(center, size)

    def _believed(self, parent: list | None) -> bool:
        return parent is not None and parent[0] in self.tracks and self.tracks[parent[0]].status == CONFIRMED

    def _beside_openable(self, center: np.ndarray, size: np.ndarray) -> bool:
        """Whether the box is in or on an openable receptacle whose footprint is grown by
        SUPPORT_SLACK_M: memory's box of a drawer or cabinet may be the closed one while it is open."""
        cfg, tracks = self.config, self.tracks
        grow = np.array([2.0 * SUPPORT_SLACK_M, 2.0 * SUPPORT_SLACK_M, 0.0])
        radius = tracks.receptacle_reach + float(np.linalg.norm(size)) / 2.0 + INDEX_SLACK_M + SUPPORT_SLACK_M
        return any(
            cfg.is_openable(tracks[i].label) and tracks[i].status == CONFIRMED
            and support_relation(center, size, tracks[i].center, tracks[i].size + grow, cfg.support_margin_m,
                                 cfg.support_gap_m) is not None
            for i in tracks.receptacle_points.query_radius(center, radius)
        )

    def _on_floor_or_unknown(self, center: np.ndarray, size: np.ndarray) -> bool:
        return self.tracks.floor_z() is None or on_floor(self.tracks, center, size)

    def add_node(self, track: Track) -> None:
        """Put (or refresh) a live track in the scene graph."""
        self.graph.upsert(track.track_id, track.label, track.center, track.size, self.config.is_receptacle(track.label))

    def _inside_any(self, part: Track, holders: list[Track]) -> bool:
        """Whether ``part``'s center lies in the box of a bigger one of ``holders``."""
        volume = box_volume(part.size)
        return any(
            holder.track_id != part.track_id and box_volume(holder.size) > volume
            and support_relation(part.center, part.size, holder.center, holder.size, 0.0, 0.0) == "in"
            for holder in holders
        )

    def _rests_on_top(self, track: Track, surface: Track) -> bool:
        """Whether the track's bottom is at the surface's top (within the support gap)."""
        gap = bottom_gap(track.center, track.size, surface.center, surface.size)
        return abs(float(gap)) <= self.config.support_gap_m

    def best_parent(self, track: Track) -> list | None:
        """What holds the track, as [id, relation]. In order of preference: the *container* its center
        lies in (a mug in a cabinet; of several, see ``_level_of``) unless it is bigger than the surface
        the object rests on and does not stand on it (an apple in a bowl on a table: bowl); the highest
        surface its bottom rests *on*; then the nearest hanging holder it hangs from (a towel from its
        rail); and last the other receptacle box its center lies in (a laptop sunk into a sofa's box).
        Never a thing of its own label: a second box of one mug is memory's double of it, not what holds
        it."""
        cfg = self.config
        tracks = self.tracks
        own_volume = box_volume(track.size)
        containers: list[tuple[float, int]] = []
        others: list[tuple[float, int]] = []
        supports: list[tuple[float, float, int]] = []
        hanging: list[tuple[float, int]] = []
        radius = tracks.receptacle_reach + float(np.linalg.norm(track.size)) / 2.0 + INDEX_SLACK_M
        own_label = normalize_label(track.label)
        for rec_id in tracks.receptacle_points.query_radius(track.center, radius):
            if rec_id == track.track_id:
                continue
            rec = tracks[rec_id]
            if normalize_label(rec.label) == own_label:
                continue  # a mug "in" a mug is memory's double of it, not its holder
            relation = support_relation(track.center, track.size, rec.center, rec.size,
                                        cfg.support_margin_m, cfg.support_gap_m)
            volume = box_volume(rec.size)
            if relation == "in" and not cfg.is_container(rec.label) and self._rests_on_top(track, rec):
                relation = "on"  # sunk into a surface's thin box by noise: it lies on the surface
            if relation == "in" and volume > own_volume and fits_in(track.size, rec.size):
                (containers if cfg.is_container(rec.label) else others).append((volume, rec_id))
            elif relation == "on" and can_carry(track.size, rec.size):
                supports.append((float(rec.center[2] + rec.size[2] / 2.0), volume, rec_id))
            elif cfg.is_hanging_holder(rec.label) and hangs_from(track.center, track.size, rec.center, rec.size,
                                                                 cfg.hang_margin_m):
                hanging.append((float(np.linalg.norm(track.center - rec.center)), rec_id))
        # a drawer's top is no table top: drop supports lying inside another, bigger holder candidate
        holders = [tracks[rec_id] for _, rec_id in containers] + [tracks[r] for _, _, r in supports]
        supports = [s for s in supports if not self._inside_any(tracks[s[2]], holders)]
        support = max(supports, key=lambda s: (s[0], -s[1]), default=None)
        container = self._level_of(track, containers)
        if container is not None:
            box = tracks[container[1]]
            # a surface seen only as its top plane has next to no volume: a drawer (or other openable)
            # standing on it holds the object all the same (a fork in a drawer slid out over a shelf)
            plane = support is not None and float(tracks[support[2]].size[2]) <= 2.0 * cfg.support_margin_m
            stands_on = (plane and cfg.is_openable(box.label)
                         and box.center[2] - box.size[2] / 2.0 >= support[0] - cfg.support_margin_m)
            if support is None or container[0] < support[1] or stands_on:
                return [container[1], "in"]
        if support is not None:
            return [support[2], "on"]
        if hanging:
            return [min(hanging)[1], HANGING]
        other = self._level_of(track, others)
        return None if other is None else [other[1], "in"]

    def _level_of(self, track: Track, boxes: list[tuple[float, int]]) -> tuple[float, int] | None:
        """Of the (volume, id) boxes a thing lies inside, the one that holds it: the smallest (the sink's
        basin, not the sink), unless boxes of about its size are two views of one piece of furniture and
        its part (a side table and its shelf): then the one whose floor is highest under the thing's
        bottom, the level it is on."""
        if not boxes:
            return None
        smallest = min(boxes)
        alike = [b for b in boxes if b[0] <= SAME_BOX_VOLUME * smallest[0]]
        bottom = float(track.center[2] - track.size[2] / 2.0) + self.config.support_gap_m

        def floor(box: tuple[float, int]) -> float:
            rec = self.tracks[box[1]]
            return float(rec.center[2] - rec.size[2] / 2.0)

        under = [b for b in alike if floor(b) <= bottom]
        return max(under, key=lambda b: (floor(b), -b[0], -b[1])) if under else smallest
