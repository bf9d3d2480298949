"""The ingest pipeline: one observation batch, in order,

1. association (:mod:`robomem.core.association`): detections to tracks, Hungarian, size-aware gates;
2. update (:mod:`robomem.core.update`): matched tracks take their detections;
3. negative evidence (:mod:`robomem.core.evidence`): tracks expected in view but not seen;
4. moved vs new (:mod:`robomem.core.moves`): unmatched detections relocate a missing track or start
   a new one; a missed track may merge a newcomer seen elsewhere;
5. relations (:mod:`robomem.core.relations`): holders of whatever changed, then which newly
   confirmed tracks *appeared*;

then the view and the observations go to the journal.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from robomem.core.association import PositionNoise, associate, gate_half_widths, gate_margins
from robomem.core.config import MemoryConfig
from robomem.core.evidence import NegativeEvidence
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.moves import Moves
from robomem.core.relations import Relations
from robomem.core.track_store import INDEX_SLACK_M, TrackStore
from robomem.core.tracks import CONFIRMED, GONE, TENTATIVE, Track
from robomem.core.types import ChangeEvent, Detection, ObservationBatch, RejectedInput, ViewCone
from robomem.core.update import Updater
from robomem.core.views import ViewLog

SINGLE_RECHECK_S = 5.0  # how long a single sighting waits for a holder to be detected
MAX_UNSUPPORTED = 1024


@dataclass(eq=False)
class IngestPipeline:
    """Runs the ingest steps on one batch; the steps are its collaborators, each usable alone."""

    config: MemoryConfig
    tracks: TrackStore
    journal: Journal
    lifecycle: Lifecycle
    updater: Updater
    evidence: NegativeEvidence
    moves: Moves
    relations: Relations
    views: ViewLog
    noise: PositionNoise
    counters: Counter[str]
    _unsupported: list[Track] = field(default_factory=list, init=False, repr=False)  # single sightings

    def ingest(self, batch: ObservationBatch) -> list[ChangeEvent]:
        """Take one frame of observations; returns the change events it caused. A batch that cannot
        be used at all raises RejectedInput (counted and recorded first)."""
        journal = self.journal
        if len(batch.detections) > self.config.max_detections_per_batch:
            journal.reject(batch.t, "oversized", f"{len(batch.detections)} detections in one batch")
            raise RejectedInput("oversized", f"{len(batch.detections)} detections exceed the limit")
        if isinstance(batch.t, str) or not isinstance(batch.t, (int, float)) or not math.isfinite(batch.t):
            journal.reject(0.0, "non_finite", "batch time is not finite")
            raise RejectedInput("non_finite", "batch time is not finite")
        detections = self._detections(batch)
        # a frame that lost a detection gives no negative evidence: the dropped object was not 'unseen'
        evidence_view = batch.view if len(detections) == len(batch.detections) else None
        t = max(batch.t, journal.now) if math.isfinite(journal.now) else batch.t
        if batch.t < journal.now:
            self.counters["late_batches"] += 1
        journal.now = t
        events_before = journal.events_recorded + 1
        self.counters["batches"] += 1
        self.counters["observations"] += len(detections)
        matched_ids = self._process(t, batch.robot, detections, evidence_view)
        self.relations.update(t)
        self._confirm_supported(t)
        for track in self.lifecycle.take_confirmed():
            track.appeared = self.evidence.appeared(track)
            if track.appeared:
                self.lifecycle.emit(t, track, "appeared", {})
        if batch.view is not None:
            self.views.add(t, batch.view)
            journal.view(t, batch.robot, batch.view)
        for det, track_id in zip(detections, matched_ids, strict=True):
            journal.observation(batch.t, batch.robot, det, track_id)
        return [e for e in journal.stm.events() if e.event_id >= events_before]

    def _confirm_supported(self, t: float) -> None:
        """Believe the single confident sightings that rest on something (a thing floating in the air,
        held by nothing, is more likely a false detection). One not yet supported is checked again for
        SINGLE_RECHECK_S while it stays tentative: its holder may be detected in the next batches."""
        pending = [*self.lifecycle.take_single_checks(), *self._unsupported]
        believed_one = True
        while believed_one:  # a holder believed in this pass may support another (a table, then its apple)
            believed_one = False
            for track in pending:
                if track.status == TENTATIVE and (self.relations.supported(track) or self._sure_fixture(track)):
                    self.lifecycle.confirm(track, t)
                    believed_one = True
            pending = [track for track in pending if track.status == TENTATIVE]
        self._unsupported = [track for track in pending if t - track.first_seen <= SINGLE_RECHECK_S][:MAX_UNSUPPORTED]

    def _sure_fixture(self, track: Track) -> bool:
        """Furniture or a fixture seen once, so confidently that it is believed without a known support."""
        return self.config.is_static(track.label) and track.max_confidence >= self.config.single_static_confidence

    def _detections(self, batch: ObservationBatch) -> list[Detection]:
        """The batch's detections (sound by construction); anything else in the list is counted,
        recorded and dropped."""
        good = [det for det in batch.detections if isinstance(det, Detection)]
        if len(good) < len(batch.detections):
            for det in batch.detections:
                if not isinstance(det, Detection):
                    self.journal.reject(batch.t, "malformed", f"not a Detection: {det!r}"[:300])
        if batch.view is not None and not isinstance(batch.view, ViewCone):
            raise RejectedInput("malformed", f"view is not a ViewCone: {batch.view!r}"[:300])
        return good

    def _process(self, t: float, robot: str, detections: list[Detection], view: ViewCone | None) -> list[int]:
        tracks = self.tracks
        assigned: list[int] = [-1] * len(detections)
        candidates: list[list[Track]] = []
        centers = np.array([d.center for d in detections]).reshape(-1, 3)
        radii = self.association_radii(detections) if detections else np.zeros(0)
        around = None
        if view is not None:  # one index query around the camera serves association and negative evidence
            camera = np.asarray(view.position)
            reach = view.range_m + INDEX_SLACK_M
            if detections:
                reach = max(reach, float(np.max(np.linalg.norm(centers - camera, axis=1) + radii)))
            around = tracks.points.query_radius_points(camera, reach)
        if detections and around is not None:
            ids, points = around
            close = np.linalg.norm(centers[:, None, :] - points[None, :, :], axis=2) <= radii[:, None]
            candidates = [[tracks[i] for i in ids[row].tolist()] for row in close]
        elif detections:
            candidates = [[tracks[i] for i in ids] for ids in tracks.points.query_radius_many(centers, radii)]
        kinds: dict[int, str] = {}
        pairs, unmatched = (
            associate(detections, candidates, self.config, self.noise.margin(), kinds) if detections else ([], [])
        )
        seen: set[int] = set()
        for row, track in [p for p in pairs if p[0] in kinds]:  # furniture seen in part, or opened/closed
            self.updater.furniture(track, detections[row], t, robot, kinds[row])
            assigned[row] = track.track_id
            seen.add(track.track_id)
        ordinary = [(row, track) for row, track in pairs if row not in kinds]
        self.updater.matched([(detections[row], track) for row, track in ordinary], t, robot)
        for row, track in ordinary:
            assigned[row] = track.track_id
            seen.add(track.track_id)
        missed = self.evidence.apply(t, view, seen, around) if view is not None else []
        for row in unmatched:
            det = detections[row]
            track = self.moves.moved_track(det, seen)
            if track is not None:
                self.updater.hit(track, det, t, robot)
                self.counters["relocations"] += 1
            else:
                track = self.lifecycle.create(det, t, robot)
            assigned[row] = track.track_id
            seen.add(track.track_id)
        for track in missed:
            if track.status in (CONFIRMED, GONE) and track.track_id not in seen:
                self.moves.merge_newcomer(track, t)
        return assigned

    def association_radii(self, detections: list[Detection]) -> np.ndarray:
        """How far from each detection a track it could match may be indexed: its gate (see
        :func:`robomem.core.association.gate_half_widths`) around a box up to size_gate_ratio times its own."""
        cfg = self.config
        margins = gate_margins([d.label for d in detections], cfg, self.noise.margin())
        sizes = np.array([d.size for d in detections]) * cfg.size_gate_ratio
        radii = np.linalg.norm(gate_half_widths(sizes / 2.0, margins, cfg), axis=1) + INDEX_SLACK_M
        static_reach = self.tracks.static_reach
        if static_reach > 0:  # furniture seen in part may belong to a much bigger box, or one slid open
            furniture = np.array([cfg.is_static(d.label) for d in detections])
            if furniture.any():
                own = np.linalg.norm(np.array([d.size for d in detections]), axis=1) / 2.0
                wide = own + static_reach * (1.0 + cfg.articulation_reach) + cfg.gate_m + INDEX_SLACK_M
                radii = np.where(furniture, np.maximum(radii, wide), radii)
        return radii
