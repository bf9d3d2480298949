"""The ingest pipeline: one observation batch, in order,

1. association (:mod:`robomem.core.association`): detections to tracks, Hungarian, size-aware gates;
2. update (:mod:`robomem.core.update`): matched tracks take their detections;
3. negative evidence (:mod:`robomem.core.evidence`): tracks expected in view but not seen;
4. moved vs new (:mod:`robomem.core.moves`): unmatched detections relocate a missing track or start
   a new one; a missed track may merge a newcomer seen elsewhere;
5. relations (:mod:`robomem.core.relations`): holders of whatever changed, then which newly
   confirmed tracks *appeared*;

then the view and the observations go to the journal.

Before step 1 the batch is checked: its size, its stamp (:class:`robomem.core.temporal.StampPolicy`:
future, late and repeated batches), its source (the allowlist and trust levels of
:mod:`robomem.core.trust`), and every detection and the view against memory's physical bounds (map
extent, largest furniture and object, embedding length). Implausible reports are held in quarantine
instead of steps 4-5. Every so many batches a retention sweep (see :meth:`IngestPipeline.sweep`) keeps
RAM bounded: tentative tracks unseen for long are dismissed, dismissed ones forgotten, old views
consolidated, old sightings written sparsely.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from robomem.core.association import PositionNoise, associate, gate_half_widths, gate_margins
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.evidence import NegativeEvidence
from robomem.core.geometry import in_view
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.moves import Moves
from robomem.core.relations import Relations
from robomem.core.scene_graph import SceneGraph
from robomem.core.temporal import StampPolicy
from robomem.core.track_store import INDEX_SLACK_M, TrackStore
from robomem.core.tracks import CONFIRMED, GONE, STATUS, TENTATIVE, Track
from robomem.core.trust import (
    BURST_NEW_OBJECTS,
    BURST_SAME_LABEL,
    LARGER_THAN_ROOM,
    OUTVOTED,
    TELEPORT,
    UNTRUSTED,
    Quarantine,
    source_name,
)
from robomem.core.types import (
    MAX_LABEL_CHARS,
    ChangeEvent,
    Detection,
    ObservationBatch,
    RejectedInput,
    ViewCone,
    checked_time,
)
from robomem.core.update import Updater
from robomem.core.views import ViewLog

TELEPORT_MIN_SIZE_M = 0.5  # furniture this big is hard to miss: one seen elsewhere while it is in view "teleports"
SINGLE_RECHECK_S = 60.0  # how long a single sighting waits for a holder to be detected
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
    quarantine: Quarantine
    graph: SceneGraph
    stamps: StampPolicy
    _unsupported: list[Track] = field(default_factory=list, init=False, repr=False)  # single sightings
    _since_sweep: int = field(default=0, init=False, repr=False)

    def ingest(self, batch: ObservationBatch, as_history: bool = False) -> list[ChangeEvent]:
        """Take one frame of observations; returns the change events it caused. A batch that cannot
        be used at all raises RejectedInput (counted and recorded first); a repeated batch changes
        nothing (counted as ``duplicate_batches``). ``as_history`` (another fleet node's batch): one
        behind memory's clock, by any amount, is taken as history (see :meth:`_process`), never refused."""
        journal = self.journal
        try:
            if not isinstance(batch, ObservationBatch) or not isinstance(batch.detections, list):
                raise RejectedInput("malformed", f"not an ObservationBatch with a list of detections: {batch!r}"[:300])
            if len(batch.detections) > self.config.max_detections_per_batch:
                raise RejectedInput("oversized", f"{len(batch.detections)} detections exceed the limit")
            t = checked_time(batch.t, "batch time")
            source = self._checked_source(batch)
            content = _fingerprint(batch) if batch.sequence is None else 0
            if self.stamps.is_repeat(source, t, batch.sequence, content):
                self.counters["duplicate_batches"] += 1
                return []
            refusal = self.stamps.check(t, journal.now)
            if refusal is not None and not (as_history and refusal[0] == "late"):
                raise RejectedInput(*refusal)
        except RejectedInput as error:
            stamp = batch.t if isinstance(batch, ObservationBatch) else 0.0
            journal.reject(stamp if isinstance(stamp, (int, float)) else 0.0, error.reason, error.detail)
            raise
        detections = self._detections(batch, t)
        view = self._checked_view(batch.view, t)
        # a frame that lost a detection gives no negative evidence: the dropped object was not 'unseen'
        evidence_view = view if len(detections) == len(batch.detections) else None
        history = as_history and math.isfinite(journal.now) and t < journal.now
        if history:
            self.counters["late_as_history"] += 1  # newest evidence wins per object; sightings at their stamp
        elif math.isfinite(journal.now) and t < journal.now:
            self.counters["late_within_tolerance"] += 1  # taken as of memory's clock, logged at its own stamp
        now = max(t, journal.now) if math.isfinite(journal.now) else t
        journal.now = now
        self.stamps.taken(source, t, batch.sequence, content)
        self.quarantine.batch_taken(source, t, batch.sequence)
        events_before = journal.events_recorded + 1
        self.counters["batches"] += 1
        self.counters["observations"] += len(detections)
        if not self.quarantine.trusted(batch.robot, batch.sensor):  # heard, never believed
            self.counters["batches_untrusted"] += 1
            for det in detections:
                self.quarantine.hold(now, source, det, UNTRUSTED)
            self._maybe_sweep(now)
            return []
        detections, held = self._larger_than_room(now, source, detections)
        if held:
            evidence_view = None
        matched_ids = self._process(now, batch.robot, detections, evidence_view, view, source, t if history else None)
        self.relations.update(now)
        self._confirm_supported(now)
        for track in self.lifecycle.take_confirmed():
            track.appeared = self.evidence.appeared(track)
            if track.appeared:
                self.lifecycle.emit(now, track, "appeared", {})
        if view is not None:
            self.views.add(t if history else now, view)
            journal.view(t, batch.robot, view)
        taken = []
        for det, track_id in zip(detections, matched_ids, strict=True):
            if track_id >= 0:  # a held report reaches no track, no index and not the file
                journal.observation(t, batch.robot, det, track_id)
                self.quarantine.seen(track_id, source, now)
                taken.append(det)
        self.quarantine.confirm(taken)
        self._maybe_sweep(now)
        return journal.stm.events_since(events_before) if journal.events_recorded >= events_before else []

    # ------------------------------------------------------------------ checks before the steps
    def _checked_source(self, batch: ObservationBatch) -> str:
        """The batch's source (robot id, or robot/sensor): plain text, allowed, with room for it."""
        for value, what in ((batch.robot, "robot id"), (batch.sensor, "sensor")):
            if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS or not value.isprintable():
                raise RejectedInput("bad_source", f"{what} must be printable text of at most {MAX_LABEL_CHARS} "
                                                  f"characters, got {value!r}"[:300])
        if batch.sequence is not None and (isinstance(batch.sequence, bool) or not isinstance(batch.sequence, int)):
            raise RejectedInput("malformed", f"sequence must be an int, got {batch.sequence!r}"[:300])
        source = source_name(batch.robot, batch.sensor)
        if not self.quarantine.allowed(batch.robot, batch.sensor):
            raise RejectedInput("unknown_source", f"source {source!r} is not in the allowlist")
        if not self.quarantine.room_for_source(source):
            raise RejectedInput("too_many_sources", f"memory already hears {self.config.max_sources} sources")
        return source

    def _checked_view(self, view: object, t: float) -> ViewCone | None:
        if view is None:
            return None
        if not isinstance(view, ViewCone):
            self.journal.reject(t, "malformed", f"view is not a ViewCone: {view!r}"[:300])
            return None
        if np.any(np.abs(np.asarray(view.position)) > self.config.map_extent_m):
            self.journal.reject(t, "out_of_bounds", f"view at {list(view.position)} beyond the map extent")
            return None
        return view

    def _larger_than_room(self, t: float, source: str, detections: list[Detection]) -> tuple[list[Detection], bool]:
        """Detections whose box is larger than the room its center is in are held (rooms configured)."""
        rooms = self.graph.rooms
        if not rooms or not detections:
            return detections, False
        kept, held = [], False
        for det in detections:
            room = next((r for r in rooms if r.contains(det.center)), None)
            if room is not None:
                width, depth = room.max_xy[0] - room.min_xy[0], room.max_xy[1] - room.min_xy[1]
                if det.size[0] > 1.05 * width + 0.2 or det.size[1] > 1.05 * depth + 0.2:
                    self.quarantine.hold(t, source, det, LARGER_THAN_ROOM)
                    held = True
                    continue
            kept.append(det)
        return kept, held

    # ------------------------------------------------------------------ retention
    def _maybe_sweep(self, now: float) -> None:
        self._since_sweep += 1
        if self._since_sweep >= self.config.retention_sweep_batches:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Retention: dismiss tentative tracks unseen for ``tentative_expiry_s``; forget dismissed ones
        (never believed) ``rejected_forget_s`` after; consolidate old views; write held sightings; expire
        quarantine."""
        self._since_sweep = 0
        cfg = self.config
        for track in self.tracks.tentative_unseen_since(now - cfg.tentative_expiry_s):
            self.evidence.dismiss(track, now, "expired_tracks")
        forgotten: dict[int, int] = {}
        for track in self.tracks.forgettable(now - cfg.rejected_forget_s):
            if track.track_id in self.graph.graph and self.graph.graph.out_degree(track.track_id):
                self.tracks.dismissed(track, now)  # something still hangs under it: later
                continue
            self.graph.remove(track.track_id)
            self.tracks.forget(track)
            self.quarantine.forget_track(track.track_id)
            forgotten[track.track_id] = sum(len(history) for history in track.histories.values())
        self.counters["forgotten_tracks"] += len(forgotten)
        self.journal.sweep(now, forgotten)
        self.views.consolidate(now)
        self.quarantine.expire(now)

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

    def _detections(self, batch: ObservationBatch, t: float) -> list[Detection]:
        """The batch's detections (sound by construction) within memory's bounds: the map extent, the
        largest furniture (static labels) or object, the embedding length memory uses. Anything else is
        counted, recorded and dropped."""
        cfg = self.config
        dim = self.tracks.embedding_dim()
        good = []
        for det in batch.detections:
            reason = None
            if not isinstance(det, Detection):
                reason, detail = "malformed", f"not a Detection: {det!r}"
            elif np.any(np.abs(det.center) > cfg.map_extent_m):
                reason, detail = "out_of_bounds", f"{det.label} at {det.center.tolist()} beyond the map extent"
            elif float(np.max(det.size)) > (cfg.max_furniture_size_m if cfg.is_static(det.label)
                                            else cfg.max_object_size_m):
                reason, detail = "bad_size", f"{det.label} of size {det.size.tolist()} is larger than any"
            elif det.embedding is not None and dim is not None and det.embedding.shape[0] != dim:
                reason, detail = "bad_embedding", f"embedding of {det.embedding.shape[0]} values, memory uses {dim}"
            if reason is not None:
                self.journal.reject(t, reason, detail[:300])
                continue
            if det.embedding is not None and dim is None:
                dim = det.embedding.shape[0]  # the batch's first embedding fixes the length
            good.append(det)
        return good

    def _process(self, t: float, robot: str, detections: list[Detection], view: ViewCone | None,
                 camera_view: ViewCone | None = None, source: str | None = None,
                 stamp: float | None = None) -> list[int]:
        """The steps on one batch at memory's time ``t``. ``stamp`` (a history batch's own, older stamp):
        a track memory has newer evidence of (seen at or after ``stamp``; made gone since, for a sighting
        in place) is neither updated nor missed by it (the sighting is still logged); a new or moved
        object where later views would have seen it is not taken; the tracks it does update or create
        keep ``stamp`` as their last sighting."""
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
        superseded: set[int] = set()  # history: tracks what memory saw later stands for
        if stamp is not None:
            kept = []
            for row, track in pairs:
                if _newer_evidence(track, stamp):
                    assigned[row] = track.track_id
                    seen.add(track.track_id)
                    superseded.add(track.track_id)
                else:
                    kept.append((row, track))
            pairs = kept
        for row, track in [p for p in pairs if p[0] in kinds]:  # furniture seen in part, or opened/closed
            self.updater.furniture(track, detections[row], t, robot, kinds[row])
            assigned[row] = track.track_id
            seen.add(track.track_id)
        ordinary = [(row, track) for row, track in pairs if row not in kinds]
        self.updater.matched([(detections[row], track) for row, track in ordinary], t, robot)
        for row, track in ordinary:
            assigned[row] = track.track_id
            seen.add(track.track_id)
        exempt = set() if stamp is None or around is None else {
            i for i in around[0].tolist() if _newer_evidence(tracks[i], stamp)}
        missed = self.evidence.apply(t, view, seen, around, exempt) if view is not None else []
        source = robot if source is None else source
        held = self._implausible(t, detections, unmatched, seen, camera_view)
        for row in unmatched:
            det = detections[row]
            if row in held:
                self.quarantine.hold(t, source, det, held[row])
                continue
            if stamp is not None and self._looked_since(det, stamp):
                self.counters["late_superseded"] += 1  # memory looked there since and saw nothing
                continue
            track = self.moves.moved_track(det, seen)
            if track is not None and stamp is not None and track.last_seen >= stamp:
                assigned[row] = track.track_id  # seen since: this sighting elsewhere is history
                seen.add(track.track_id)
                superseded.add(track.track_id)
                continue
            if track is not None and self.quarantine.outvoted(track.track_id, source, t):
                self.quarantine.hold(t, source, det, OUTVOTED)  # others saw it in place just now
                continue
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
        if stamp is not None:  # updated or created by this batch: last seen at its own stamp
            self.counters["late_superseded"] += len(superseded)
            for track_id in {i for i in assigned if i >= 0} - superseded:
                track = tracks[track_id]
                track.last_seen = stamp
                track.first_seen = min(track.first_seen, stamp)
                tracks.forget_latest(track)  # "most recently seen" is ranked again from the stamps
        return assigned

    def _implausible(self, t: float, detections: list[Detection], unmatched: list[int], seen: set[int],
                     camera_view: ViewCone | None) -> dict[int, str]:
        """Unmatched detections of this batch to hold, with the reason: a burst of new objects of one
        label, or of new objects where earlier views would have seen them; furniture that teleports."""
        cfg = self.config
        held: dict[int, str] = {}
        if not unmatched:
            return held
        if camera_view is not None and self.quarantine.held():  # held reports detected again by a camera look
            released = {row for row in unmatched if self.quarantine.release(detections[row], True)}
            unmatched = [row for row in unmatched if row not in released]
        by_label: dict[str, list[int]] = {}
        for row in unmatched:
            if not cfg.is_static(detections[row].label):
                by_label.setdefault(normalize_label(detections[row].label), []).append(row)
        for rows in by_label.values():
            if len(rows) > cfg.max_new_same_label:
                held.update(dict.fromkeys(rows, BURST_SAME_LABEL))
        rest = [row for row in unmatched if row not in held]
        if len(rest) > cfg.max_new_seen_places and len(self.views):
            detector = self.evidence.detector
            looked_at = [
                row for row in rest
                if self.views.miss_evidence_before(
                    detections[row].center, t,
                    lambda fractions, size=detections[row].size: detector.probabilities(fractions, size),
                ) >= cfg.appeared_min_evidence
            ]
            if len(looked_at) > cfg.max_new_seen_places:
                held.update(dict.fromkeys(looked_at, BURST_NEW_OBJECTS))
        if camera_view is not None:
            for row in unmatched:
                det = detections[row]
                if row in held or not cfg.is_static(det.label) or float(np.max(det.size)) < TELEPORT_MIN_SIZE_M:
                    continue
                known = [tr for tr in self.tracks.of_label(det.label) if tr.status == CONFIRMED]
                if not known or any(tr.track_id in seen or tr.hits < 3 for tr in known):
                    continue
                centers = np.array([tr.center for tr in known])
                halves = (np.array([tr.size for tr in known]) + det.size) / 2.0
                gaps = np.linalg.norm(np.maximum(np.abs(centers - det.center) - halves, 0.0), axis=1)
                near = np.linalg.norm(centers - np.asarray(camera_view.position), axis=1) <= 0.6 * camera_view.range_m
                if np.min(gaps) > cfg.teleport_min_m and bool(np.all(in_view(centers, camera_view) & near)):
                    held[row] = TELEPORT  # the one we know should be in view, undetected; "it" is elsewhere
        return held

    def _looked_since(self, det: Detection, stamp: float) -> bool:
        """Whether views after ``stamp`` would almost surely have shown ``det`` (newer evidence against it)."""
        def chances(fractions: np.ndarray) -> np.ndarray:
            return self.evidence.detector.probabilities(fractions, det.size)

        since = self.views.miss_evidence_before(det.center, math.inf, chances) - \
            self.views.miss_evidence_before(det.center, math.nextafter(stamp, math.inf), chances)
        return since >= self.config.appeared_min_evidence

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


def _newer_evidence(track: Track, stamp: float) -> bool:
    """Whether memory saw the track at or after ``stamp``, or made it gone since (looked at its place
    and did not see it: newer than a sighting there; a sighting elsewhere is a move, see :meth:`_process`)."""
    if track.last_seen >= stamp:
        return True
    status = track.history(STATUS).current
    return track.status == GONE and status is not None and status.valid_from >= stamp


def _fingerprint(batch: ObservationBatch) -> int:
    """What a frame showed (its view and detections), to tell a replayed frame from another one at the
    same stamp."""
    try:
        view = batch.view
        seen = None if view is None else (tuple(float(v) for v in view.position), float(view.yaw_deg))
        return hash((seen, tuple((d.label, tuple(float(v) for v in d.center)) for d in batch.detections)))
    except (AttributeError, TypeError, ValueError):
        return 0
