"""The memory facade: ingest observation batches, keep beliefs and their history, answer queries.

Per frame: associate detections to tracks (Hungarian, size-aware gates) → update matched tracks →
apply negative evidence to tracks expected in view but not seen → relocate or create tracks for
the unmatched detections (moved vs new) → re-derive containment relations → log the view.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from robomem.core import states
from robomem.core.association import ARTICULATED, PARTIAL, associate, overlap_fraction, track_open
from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.detector import DetectorModel
from robomem.core.embedding import TextEmbedder, VectorIndex
from robomem.core.experience import ExperienceMemory
from robomem.core.geometry import distance, in_view
from robomem.core.locking import synchronized
from robomem.core.moves import MovesMixin
from robomem.core.relations import INDEX_SLACK_M, RelationsMixin
from robomem.core.retrieval import RetrievalMixin, _recency_key
from robomem.core.scene_graph import SceneGraph
from robomem.core.short_term import ShortTermMemory, make_policy
from robomem.core.spatial_index import DynamicPointIndex
from robomem.core.storage import MemoryStore, SQLiteStore, WriteBatch
from robomem.core.temporal import Fact, FactIds
from robomem.core.tracks import CONFIRMED, GONE, MERGED, PARENT, POSE, REJECTED, STATUS, TENTATIVE, Track
from robomem.core.types import (
    MAX_OBJECT_SIZE_M,
    ChangeEvent,
    Detection,
    ObservationBatch,
    RejectedInput,
    ViewCone,
    check_detection,
)
from robomem.core.views import ViewLog

_NOISE_LEARNING_RATE = 0.01  # exponential average over roughly the last hundred settled sightings


class Memory(MovesMixin, RelationsMixin, RetrievalMixin):
    """Long-term spatio-temporal scene graph + short-term change buffer, persisted in a store."""

    def __init__(
        self,
        config: MemoryConfig | None = None,
        store: MemoryStore | None = None,
        embedder: TextEmbedder | None = None,
    ) -> None:
        self.config = config or MemoryConfig()
        self._lock = threading.RLock()  # every public method holds it: safe to share between threads
        self.store = store or SQLiteStore(self.config.db_path)
        self._embedder = embedder
        self.tracks: dict[int, Track] = {}
        self.by_label: dict[str, set[int]] = defaultdict(set)  # tracks that may be present (live or gone)
        self.all_by_label: dict[str, list[int]] = defaultdict(list)  # every track ever, for past times
        self._missing_by_label: dict[str, set[int]] = defaultdict(set)  # once-confirmed, missed since seen
        self._fact_times: list[float] = []  # start time of every fact, in order (time never goes back)
        self._fact_subjects: list[int] = []
        self.index = DynamicPointIndex()
        self.receptacle_index = DynamicPointIndex(min_rebuild=32)
        self.label_points: dict[str, DynamicPointIndex] = defaultdict(lambda: DynamicPointIndex(min_rebuild=32))
        self.receptacle_reach = 0.0
        self.static_reach = 0.0  # half the largest 3D diagonal of any furniture track (partial-view gates)
        self.graph = SceneGraph(self.config.room_regions(), self.config.default_room)
        self.views = ViewLog()
        self.detector = DetectorModel(self.config)
        self._residual_var = np.full(3, self.config.position_noise_m**2)  # per axis, learned online
        self.counters: Counter[str] = Counter()
        self.stm = ShortTermMemory(self.config.stm_capacity, make_policy(self.config.stm_policy), self._consolidate)
        self.now = -math.inf
        self._fact_ids = FactIds()
        self._next_track_id = 1
        self._next_event_id = 1
        self._pending = WriteBatch()
        self._dirty_tracks: set[int] = set()
        self._dirty_relations: set[int] = set()
        self._dirty_poses: set[int] = set()
        self._indexed_at: dict[int, np.ndarray] = {}
        self._aliases: dict[int, list[int]] = defaultdict(list)
        self._label_vectors: VectorIndex | None = None
        self._label_keys: dict[str, int] = {}
        self._object_vectors: VectorIndex | None = None
        self._batches_since_flush = 0
        self._last_flush = time.monotonic()
        self._newest_first_seen: dict[str, float] = {}
        self._latest_confirmed: dict[str, int] = {}
        self._appear_checks: list[Track] = []
        self._load()
        self.experience = ExperienceMemory(self)  # past task runs, for few-shot planner prompts

    # ------------------------------------------------------------------ ingest
    @synchronized
    def ingest(self, batch: ObservationBatch) -> list[ChangeEvent]:
        """Take one frame of observations; returns the change events it caused."""
        if len(batch.detections) > self.config.max_detections_per_batch:
            self._reject(batch.t, "oversized", f"{len(batch.detections)} detections in one batch")
            raise RejectedInput("oversized", f"{len(batch.detections)} detections exceed the limit")
        if not math.isfinite(batch.t):
            self._reject(0.0, "non_finite", "batch time is not finite")
            raise RejectedInput("non_finite", "batch time is not finite")
        detections, view = self._checked(batch)
        t = max(batch.t, self.now) if math.isfinite(self.now) else batch.t
        if batch.t < self.now:
            self.counters["late_batches"] += 1
        self.now = t
        events_before = self._next_event_id
        self.counters["batches"] += 1
        self.counters["observations"] += len(detections)
        matched_ids = self._process(t, batch.robot, detections, view)
        self._update_relations(t)
        for track in self._appear_checks:
            track.appeared = not self.config.is_static(track.label) and self._appeared_in_watched_place(track)
            if track.appeared:
                self._emit(t, track, "appeared", {})
        self._appear_checks.clear()
        if batch.view is not None:
            self.views.add(t, batch.view)
            v = batch.view
            self._pending.views.append((t, batch.robot, *v.position, v.yaw_deg, v.fov_deg, v.range_m))
        for det, track_id in zip(detections, matched_ids, strict=True):
            c, s = det.center, det.size
            state = None if not det.state else _json_state(det.state)
            self._pending.observations.append(
                (batch.t, batch.robot, det.label, *map(float, c), *map(float, s), det.confidence, state, track_id)
            )
        self._batches_since_flush += 1
        if (
            self._batches_since_flush >= self.config.flush_every_batches
            or time.monotonic() - self._last_flush >= self.config.flush_interval_s
        ):
            self.flush()
        return [e for e in self.stm.events() if e.event_id >= events_before]

    def _checked(self, batch: ObservationBatch) -> tuple[list[Detection], ViewCone | None]:
        """The batch's valid detections (bad ones are counted, recorded and dropped) and its view; a frame
        that lost a detection gives no negative evidence, since the dropped object was not 'unseen'."""
        good = list(batch.detections) if _all_sound(batch.detections) else []
        if not good:
            for det in batch.detections:  # the slow path names what is wrong with each bad detection
                try:
                    check_detection(det)
                except RejectedInput as error:
                    self._reject(batch.t, error.reason, error.detail)
                    continue
                det.center, det.size = np.asarray(det.center, dtype=float), np.asarray(det.size, dtype=float)
                good.append(det)
        view = batch.view
        if view is not None and not _valid_view(view):
            self._reject(batch.t, "bad_view", f"{view!r}"[:300])
            view = None
        return good, view if len(good) == len(batch.detections) else None

    def _process(
        self, t: float, robot: str, detections: list[Detection], view: ViewCone | None
    ) -> list[int]:
        cfg = self.config
        assigned: list[int] = [-1] * len(detections)
        candidates: list[list[Track]] = []
        centers = np.array([d.center for d in detections]).reshape(-1, 3)
        radii = self._association_radii(detections) if detections else np.zeros(0)
        around = None
        if view is not None:  # one index query around the camera serves association and negative evidence
            camera = np.asarray(view.position)
            reach = view.range_m + INDEX_SLACK_M
            if detections:
                reach = max(reach, float(np.max(np.linalg.norm(centers - camera, axis=1) + radii)))
            around = self.index.query_radius_points(camera, reach)
        if detections and around is not None:
            ids, points = around
            close = np.linalg.norm(centers[:, None, :] - points[None, :, :], axis=2) <= radii[:, None]
            candidates = [[self.tracks[i] for i in ids[row].tolist()] for row in close]
        elif detections:
            candidates = [[self.tracks[i] for i in ids] for ids in self.index.query_radius_many(centers, radii)]
        kinds: dict[int, str] = {}
        pairs, unmatched = (
            associate(detections, candidates, cfg, self.noise_margin(), kinds) if detections else ([], [])
        )
        seen: set[int] = set()
        for row, track in [p for p in pairs if p[0] in kinds]:  # furniture seen in part, or opened/closed
            self._hit_furniture(track, detections[row], t, robot, kinds[row])
            assigned[row] = track.track_id
            seen.add(track.track_id)
        pairs = [p for p in pairs if p[0] not in kinds]
        if pairs:
            # the running means of all matched tracks in one vectorised step
            rows = [row for row, _ in pairs]
            matched = [track for _, track in pairs]
            det_c, det_s = centers[rows], np.array([detections[row].size for row in rows])
            trk_c, trk_s = np.array([tr.center for tr in matched]), np.array([tr.size for tr in matched])
            weights = 1.0 / np.minimum(np.array([tr.placement_hits for tr in matched]) + 1.0, 20.0)[:, None]
            moved_by = np.linalg.norm(det_c - trk_c, axis=1)
            new_c, new_s = trk_c + weights * (det_c - trk_c), trk_s + weights * (det_s - trk_s)
            for k, (row, track) in enumerate(pairs):
                self._hit(track, detections[row], t, robot, refined=(float(moved_by[k]), new_c[k], new_s[k]))
                assigned[row] = track.track_id
                seen.add(track.track_id)
        missed = self._negative_evidence(t, view, seen, around) if view is not None else []
        for row in unmatched:
            det = detections[row]
            track = self._find_moved_track(det, seen)
            if track is not None:
                self._hit(track, det, t, robot)
                self.counters["relocations"] += 1
            else:
                track = self._new_track(det, t, robot)
            assigned[row] = track.track_id
            seen.add(track.track_id)
        for track in missed:
            if track.status in (CONFIRMED, GONE) and track.track_id not in seen:
                self._merge_newcomer(track, t)
        return assigned

    # ------------------------------------------------------------------ evidence
    def _hit_furniture(self, track: Track, det: Detection, t: float, robot: str, kind: str) -> None:
        """A partial view grows the track's box to hold both boxes; an opened or closed piece of furniture
        takes the detected box (a drawer's contents slide with it). Neither is a move."""
        old_center = track.center.copy()
        if kind == PARTIAL:
            center, size = _union_box(track.center, track.size, det.center, det.size)
        else:
            center, size = det.center.copy(), det.size.copy()
        self._hit(track, det, t, robot, refined=(0.0, center, size), learn_noise=False)
        self._dirty_relations.add(track.track_id)
        if kind == PARTIAL:
            self._absorb_duplicates(track, t)
        if kind == ARTICULATED and _slid(track.size, det.size, self.config.size_gate_ratio):
            self._carry_contents(track, center - old_center, t)

    def _absorb_duplicates(self, track: Track, t: float) -> None:
        """Other live tracks of the label whose boxes now mostly overlap the grown box were parts of it."""
        cfg = self.config
        key = normalize_label(track.label)
        reach = float(np.linalg.norm(track.size)) / 2.0 + self.static_reach + INDEX_SLACK_M
        for other_id in self.label_points[key].query_radius(track.center, reach):
            other = self.tracks[other_id]
            if other_id == track.track_id or not other.is_live:
                continue
            overlap = overlap_fraction(track.center, track.size, other.center, other.size, cfg.partial_tolerance_m)
            if overlap < cfg.partial_overlap_min:
                continue
            track.center, track.size = _union_box(track.center, track.size, other.center, other.size)
            track.hits += other.hits
            track.log_odds = max(track.log_odds, other.log_odds)
            track.max_confidence = max(track.max_confidence, other.max_confidence)
            self._dirty_relations.update(self.graph.descendants(other_id) if other_id in self.graph.graph else ())
            other.merged_into = track.track_id
            self._set_status(other, MERGED, t)
            self._drop_from_indexes(other)
            self._aliases[track.track_id].append(other_id)
            self.counters["furniture_merges"] += 1
        self._refine_pose_fact(track)
        self._reindex(track)

    def _carry_contents(self, holder: Track, shift: np.ndarray, t: float) -> None:
        """Objects memory has *in* ``holder`` move with it (a drawer slid open or shut)."""
        if holder.track_id not in self.graph.graph:
            return
        for child_id in list(self.graph.descendants(holder.track_id)):
            child = self.tracks[child_id]
            parent = child.history(PARENT).value_now()
            if not child.is_live or not parent or parent[0] != holder.track_id or parent[1] != "in":
                continue
            self._new_placement(child, child.center + shift, child.size, t)
            self._reindex(child)
            self.counters["carried"] += 1

    def _hit(
        self,
        track: Track,
        det: Detection,
        t: float,
        robot: str,
        refined: tuple[float, np.ndarray, np.ndarray] | None = None,
        learn_noise: bool = True,
    ) -> None:
        """A detection of ``track``: matched in place, with ``refined`` = (displacement, new mean center,
        new mean size) computed for the whole frame at once; or, without it, found after a move.
        ``learn_noise`` False: the detection's offset says nothing about position noise."""
        cfg = self.config
        relocate = refined is None
        displacement = distance(det.center, track.center) if relocate else refined[0]
        threshold = cfg.static_move_threshold_m if cfg.is_static(track.label) else cfg.move_threshold_m
        was_gone = track.status == GONE
        if track.status == REJECTED:  # dismissed too early: seen again where it was
            track.log_odds = max(track.log_odds, 0.0)
            self._set_status(track, TENTATIVE, t)
            self.by_label[normalize_label(track.label)].add(track.track_id)
            self.counters["revived_tracks"] += 1
        if relocate or displacement > threshold:
            self._new_placement(track, det.center, det.size, t)
            if track.ever_confirmed:
                self._emit(t, track, "moved", {"distance_m": round(displacement, 3)})
        else:
            if learn_noise and track.placement_hits >= 3:  # a settled estimate: learn how noisy detected positions are
                residual = det.center - track.center
                self._residual_var += _NOISE_LEARNING_RATE * (residual * residual - self._residual_var)
            track.center, track.size = refined[1].copy(), refined[2].copy()
            track.placement_hits += 1
            self._refine_pose_fact(track)
        track.hits += 1
        track.last_seen = t
        track.robot = robot or track.robot
        track.misses_since_hit = 0
        track.miss_evidence = 0.0
        if track.track_id in self._missing_by_label[normalize_label(track.label)] and track.status != GONE:
            self._missing_by_label[normalize_label(track.label)].discard(track.track_id)
        track.max_confidence = max(track.max_confidence, det.confidence)
        track.log_odds = min(cfg.log_odds_max, track.log_odds + cfg.hit_base + cfg.hit_confidence_gain * det.confidence)
        if det.embedding is not None:
            track.embedding = det.embedding if track.embedding is None else _unit(track.embedding + det.embedding)
            self._index_object_vector(track)
        self._observe_states(track, det.state, t)
        if was_gone:
            self._set_status(track, CONFIRMED, t)
            if not relocate:
                self._emit(t, track, "appeared", {"reappeared": True})
        else:
            self._maybe_confirm(track, t)
        self._note_latest(track)
        self._reindex(track)

    def _note_latest(self, track: Track) -> None:
        """Keep the per-label 'most recently seen confirmed instance' cache fresh."""
        if track.status != CONFIRMED:
            return
        key = normalize_label(track.label)
        current = self._latest_confirmed.get(key)
        if current == track.track_id:
            return
        other = self.tracks.get(current) if current is not None else None
        if other is None or other.status != CONFIRMED or _recency_key(other) <= _recency_key(track):
            self._latest_confirmed[key] = track.track_id

    def _maybe_confirm(self, track: Track, t: float) -> None:
        """Believe a track after repeated sightings, or after one confident enough detection."""
        cfg = self.config
        if track.status != TENTATIVE:
            return
        repeated = track.log_odds >= cfg.confirm_log_odds and track.hits >= cfg.confirm_min_hits
        if not repeated and track.max_confidence < cfg.confirm_single_confidence:
            return
        self._set_status(track, CONFIRMED, t)
        self._appear_checks.append(track)  # decided once this frame's containment is known

    def _appeared_in_watched_place(self, track: Track) -> bool:
        """New where earlier views would almost surely have shown it (not inside an openable container,
        which may have been closed then): a change in the world, not just a discovery."""
        parent = track.history(PARENT).value_now()
        if parent and parent[1] == "in" and self.config.is_openable(self.tracks[parent[0]].label):
            return False
        cfg = self.config
        evidence = self.views.miss_evidence_before(
            track.center, track.first_seen, lambda fractions: self.detector.probabilities(fractions, track.size)
        )
        return evidence >= cfg.appeared_min_evidence

    def noise_margin(self) -> np.ndarray:
        """Per-axis gate margin from the position noise measured so far (gate_sigmas standard deviations)."""
        return self.config.gate_sigmas * np.sqrt(self._residual_var)

    def _association_radii(self, detections: list[Detection]) -> np.ndarray:
        """How far from each detection a track it could match may be indexed (see MemoryConfig.gate_for):
        a matching track's box may be up to size_gate_ratio times the detection's."""
        cfg = self.config
        margins = np.array([cfg.class_gates.get(normalize_label(d.label), cfg.gate_m) for d in detections])
        margins = np.maximum(margins[:, None], self.noise_margin()[None, :])
        sizes = np.array([d.size for d in detections]) * cfg.size_gate_ratio
        reach = 0.5 * sizes * (1.0 + cfg.gate_size_fraction) + margins
        radii = np.linalg.norm(np.minimum(reach, cfg.max_gate_m), axis=1) + INDEX_SLACK_M
        if self.static_reach > 0:  # furniture seen in part may belong to a much bigger box, or one slid open
            furniture = np.array([cfg.is_static(d.label) for d in detections])
            if furniture.any():
                own = np.linalg.norm(np.array([d.size for d in detections]), axis=1) / 2.0
                wide = own + self.static_reach * (1.0 + cfg.articulation_reach) + cfg.gate_m + INDEX_SLACK_M
                radii = np.where(furniture, np.maximum(radii, wide), radii)
        return radii

    def _negative_evidence(
        self, t: float, view: ViewCone, seen: set[int], around: tuple[np.ndarray, np.ndarray]
    ) -> list[Track]:
        """Tracks memory expected in this view (not hidden in a closed receptacle) that were not seen."""
        camera = np.asarray(view.position)
        ids, points = around
        if not len(ids):
            return []
        expected = [self.tracks[i] for i in ids[in_view(points, view)].tolist()]  # indexed positions: a few cm off
        expected = [track for track in expected if track.is_live and not self._hidden(track)]
        if not expected:
            return []
        centers = np.array([track.center for track in expected])
        shapes = self.detector.shapes(
            np.linalg.norm(centers - camera, axis=1) / view.range_m, np.array([track.size for track in expected])
        )
        detected = np.array([track.track_id in seen for track in expected])
        confirmed = np.array([track.status == CONFIRMED for track in expected])
        self.detector.record(shapes[confirmed], detected[confirmed])  # calibrate on believed objects only
        missed = []
        p_max = self.detector.p_max
        for k in np.flatnonzero(~detected):
            self._miss(expected[k], t, p_max * float(shapes[k]))
            missed.append(expected[k])
        return missed

    def _miss(self, track: Track, t: float, p_detect: float) -> None:
        cfg = self.config
        # a miss is log(1 - p_detect) of evidence: strong for a big near object, weak for a far tiny one
        surprise = -math.log(max(1.0 - p_detect, 0.05))
        track.log_odds = max(cfg.log_odds_min, track.log_odds - cfg.miss_weight * surprise)
        track.miss_evidence += surprise
        track.misses_since_hit += 1
        track.last_miss = t
        if track.ever_confirmed:
            self._missing_by_label[normalize_label(track.label)].add(track.track_id)
        self.counters["misses"] += 1
        self._dirty_tracks.add(track.track_id)
        if track.status == TENTATIVE and track.log_odds <= cfg.gone_log_odds:
            self._set_status(track, REJECTED, t)
            self._drop_from_indexes(track, keep_position=True)  # a later detection there revives it
            self.counters["rejected_tracks"] += 1
        elif track.status == CONFIRMED and track.miss_evidence >= cfg.gone_threshold(t - track.last_seen) * (
            cfg.static_gone_factor if cfg.is_static(track.label) else 1.0
        ):
            # misses a present object would rarely produce, weighed against how likely it is that
            # something changed since it was last seen: it is gone
            self._set_status(track, GONE, t)
            self._emit(t, track, "disappeared", {})

    def _hidden(self, track: Track) -> bool:
        """Inside a receptacle that is closed, or openable with its state unknown."""
        if PARENT not in track.histories:
            return False
        node = track
        for _ in range(8):
            parent = node.history(PARENT).value_now()
            if not parent:
                return False
            parent_track = self.tracks.get(parent[0])
            if parent_track is None:
                return False
            openable_in = parent[1] == "in" and self.config.is_openable(parent_track.label)
            if openable_in and track_open(parent_track) is not True:
                return True
            node = parent_track
        return False

    # ------------------------------------------------------------------ tracks and facts
    def _new_track(self, det: Detection, t: float, robot: str) -> Track:
        cfg = self.config
        track = Track(
            track_id=self._next_track_id,
            label=det.label,
            first_seen=t,
            last_seen=t,
            center=det.center.copy(),
            size=det.size.copy(),
            log_odds=cfg.hit_base + cfg.hit_confidence_gain * det.confidence,
            max_confidence=det.confidence,
            robot=robot,
            embedding=det.embedding,
        )
        self._next_track_id += 1
        self.tracks[track.track_id] = track
        key = normalize_label(track.label)
        self.by_label[key].add(track.track_id)
        self.all_by_label[key].append(track.track_id)
        self._newest_first_seen[key] = max(self._newest_first_seen.get(key, -math.inf), t)
        self._new_placement(track, track.center, track.size, t)
        self._set_status(track, TENTATIVE, t)
        self._observe_states(track, det.state, t)
        if det.embedding is not None:
            self._index_object_vector(track)
        self.counters["tracks_created"] += 1
        self._maybe_confirm(track, t)
        self._reindex(track)
        return track

    def _fact(self, track: Track, predicate: str, value: Any, t: float) -> Fact:
        fact = Fact(self._fact_ids.next(), track.track_id, predicate, value, t)
        self._fact_times.append(t)
        self._fact_subjects.append(track.track_id)
        closed = track.history(predicate).replace(fact, t)
        if closed is not None:
            self._pending.facts[closed.fact_id] = closed
        self._pending.facts[fact.fact_id] = fact
        self._dirty_tracks.add(track.track_id)
        return fact

    def _new_placement(self, track: Track, center: np.ndarray, size: np.ndarray, t: float) -> None:
        current = track.history(POSE).current
        if current is not None:
            current.value = _pose_value(track)  # the final estimate of the placement being closed
        track.center = np.array(center, dtype=float)
        track.size = np.array(size, dtype=float)
        track.placement_hits = 1
        self._fact(track, POSE, _pose_value(track), t)
        self._dirty_relations.add(track.track_id)

    def _refine_pose_fact(self, track: Track) -> None:
        """The open placement's estimate improved. The track row carries it; the fact row gets the
        final value when the placement closes (or the memory is closed)."""
        self._dirty_poses.add(track.track_id)
        self._dirty_tracks.add(track.track_id)

    def _set_status(self, track: Track, status: str, t: float) -> None:
        if track.status == status and len(track.history(STATUS)):
            return
        track.status = status
        track.ever_confirmed = track.ever_confirmed or status == CONFIRMED
        if status == CONFIRMED:
            self._note_latest(track)
        elif self._latest_confirmed.get(normalize_label(track.label)) == track.track_id:
            del self._latest_confirmed[normalize_label(track.label)]
        self._fact(track, STATUS, status, t)
        self._dirty_relations.add(track.track_id)

    def _observe_states(self, track: Track, state: dict[str, Any], t: float) -> None:
        cfg = self.config
        for key, value in state.items():
            history = track.history(f"state:{key}")
            previous = history.value_now()
            if not states.differs(previous, value, cfg.numeric_state_tolerance):
                continue
            self._fact(track, f"state:{key}", value, t)
            if not track.ever_confirmed:
                continue
            change = states.change_kind(key, previous, value, cfg.numeric_state_tolerance, cfg.fraction_change)
            if change is not None:
                self._emit(t, track, change, {"key": key, "from": previous, "to": value})

    def _emit(self, t: float, track: Track, change: str, detail: dict[str, Any]) -> None:
        """Record a change event; ``detail["at"]`` is where memory had the object when it noticed."""
        detail = {**detail, "at": [round(float(v), 3) for v in track.center]}
        event = ChangeEvent(t, track.track_id, track.label, change, detail, self._next_event_id)
        self._next_event_id += 1
        self.stm.add(event)
        self.counters[f"events.{change}"] += 1

    def _consolidate(self, events: list[ChangeEvent]) -> None:
        self._pending.events.extend(events)

    # ------------------------------------------------------------------ indexes and relations
    def _reindex(self, track: Track) -> None:
        """Keep the spatial indexes in step with the track (positions may lag by half the slack)."""
        self._dirty_tracks.add(track.track_id)
        if track.status == MERGED:
            return
        indexed = self._indexed_at.get(track.track_id)
        moved = indexed is None or distance(indexed, track.center) > INDEX_SLACK_M / 2
        if moved:
            self.index.set(track.track_id, track.center)
            self.label_points[normalize_label(track.label)].set(track.track_id, track.center)
            self._indexed_at[track.track_id] = track.center.copy()
        if self.config.is_static(track.label):
            half = float(np.linalg.norm(track.size)) / 2.0
            self.static_reach = max(self.static_reach, min(half, self.config.max_gate_m))
        if self.config.is_receptacle(track.label):
            if not track.is_live:
                self.receptacle_index.remove(track.track_id)
            elif moved or track.track_id not in self.receptacle_index:
                self.receptacle_index.set(track.track_id, track.center)
                self.receptacle_reach = max(self.receptacle_reach, self._reach(track))

    def _drop_from_indexes(self, track: Track, keep_position: bool = False) -> None:
        if not keep_position:
            self.index.remove(track.track_id)
            self.label_points[normalize_label(track.label)].remove(track.track_id)
            self._indexed_at.pop(track.track_id, None)
        self.receptacle_index.remove(track.track_id)
        self.by_label[normalize_label(track.label)].discard(track.track_id)
        self._missing_by_label[normalize_label(track.label)].discard(track.track_id)
        if self._object_vectors is not None:
            self._object_vectors.remove(track.track_id)
        self._dirty_relations.add(track.track_id)

    def _index_object_vector(self, track: Track) -> None:
        if track.embedding is None:
            return
        if self._object_vectors is None:
            self._object_vectors = VectorIndex(dim=int(track.embedding.shape[0]))
        if track.embedding.shape[0] == self._object_vectors.dim:
            self._object_vectors.add(track.track_id, track.embedding)

    # ------------------------------------------------------------------ bad input, persistence
    def _reject(self, t: float, reason: str, detail: str) -> None:
        self.counters[f"rejected.{reason}"] += 1
        self._pending.rejects.append((t, reason, detail[:500]))

    @synchronized
    def record_rejection(self, error: RejectedInput, t: float = 0.0) -> None:
        """Count and persist input refused before it reached :meth:`ingest` (adapters call this)."""
        self._reject(t, error.reason, error.detail)

    @synchronized
    def flush(self, sync: bool = False) -> None:
        """Hand everything pending to the store as one transaction; ``sync`` waits until it is durable."""
        self.stm.consolidate()
        for track_id in self._dirty_tracks:
            self._pending.tracks[track_id] = self.tracks[track_id].to_row()
        self._dirty_tracks.clear()
        self._pending.meta["now"] = repr(self.now)
        self._pending.meta["detector"] = f"{self.detector.hits!r} {self.detector.expected!r}"
        self._pending.meta["position_noise_var"] = " ".join(repr(float(v)) for v in self._residual_var)
        self.store.write(self._pending)
        self._pending = WriteBatch()
        self._batches_since_flush = 0
        self._last_flush = time.monotonic()
        if sync:
            self.store.sync()

    def _write_open_placements(self) -> None:
        for track_id in self._dirty_poses:
            track = self.tracks[track_id]
            fact = track.history(POSE).current
            if fact is not None:
                fact.value = _pose_value(track)
                self._pending.facts[fact.fact_id] = fact
        self._dirty_poses.clear()

    @synchronized
    def close(self) -> None:
        self._write_open_placements()
        self.flush()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> None:
        state = self.store.load()
        if not state.tracks and not state.facts:
            return
        for row in state.tracks:
            track = Track.from_row(row)
            self.tracks[track.track_id] = track
        for fact in state.facts:
            self.tracks[fact.subject].history(fact.predicate).append(fact)
            self._fact_times.append(fact.valid_from)
            self._fact_subjects.append(fact.subject)
        max_fact = max((f.fact_id for f in state.facts), default=0)
        self._fact_ids = FactIds(max_fact + 1)
        self._next_track_id = max(self.tracks, default=0) + 1
        self._next_event_id = max((e.event_id for e in state.events), default=0) + 1
        self.now = float(state.meta.get("now", "-inf"))
        if "position_noise_var" in state.meta:
            self._residual_var = np.array([float(v) for v in state.meta["position_noise_var"].split()])
        if "detector" in state.meta:
            hits, expected = (float(v) for v in state.meta["detector"].split())
            self.detector = DetectorModel(self.config, hits, expected)
        for t, _robot, x, y, z, yaw, fov, rng in state.views:
            self.views.add(t, ViewCone((x, y, z), yaw, fov, rng))
        for track in self.tracks.values():
            if track.merged_into is not None:
                self._aliases[track.merged_into].append(track.track_id)
            key = normalize_label(track.label)
            self.all_by_label[key].append(track.track_id)
            self._newest_first_seen[key] = max(self._newest_first_seen.get(key, -math.inf), track.first_seen)
            if track.ever_confirmed and (track.status == GONE or track.misses_since_hit > 0):
                self._missing_by_label[key].add(track.track_id)
            if track.status in (TENTATIVE, CONFIRMED, GONE):
                self.by_label[key].add(track.track_id)
                self._index_object_vector(track)
            self._reindex(track)
            if track.is_live:
                self._graph_node(track)
        for track in self.tracks.values():  # edges once every node is there
            if track.is_live:
                self.graph.set_parent(track.track_id, track.history(PARENT).value_now())
        for event in state.events[-self.stm.capacity :]:
            self.stm.add(event)
        self.stm.mark_consolidated()
        self.counters.update({f"rejected.{k}": v for k, v in state.reject_counts.items()})
        self._dirty_tracks.clear()

    @property
    def events_recorded(self) -> int:
        """How many change events memory has recorded (all kept in long-term storage)."""
        return self._next_event_id - 1

    # ------------------------------------------------------------------ text embeddings
    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from robomem.core.embedding import MiniLMEmbedder

            self._embedder = MiniLMEmbedder(self.config.embedding_model_path, self.config.embedding_tokenizer_path)
        return self._embedder


def _union_box(
    center_a: np.ndarray, size_a: np.ndarray, center_b: np.ndarray, size_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Center and size of the smallest axis-aligned box holding both boxes."""
    lo = np.minimum(center_a - size_a / 2.0, center_b - size_b / 2.0)
    hi = np.maximum(center_a + size_a / 2.0, center_b + size_b / 2.0)
    return (lo + hi) / 2.0, hi - lo


def _slid(before: np.ndarray, after: np.ndarray, ratio: float) -> bool:
    """Whether a box kept its shape (a drawer slid) rather than changed it (a door swung open)."""
    floor = 0.05
    return bool(np.all(np.abs(np.log(np.maximum(after, floor) / np.maximum(before, floor))) <= np.log(ratio)))


def _valid_view(view: ViewCone) -> bool:
    values = [*view.position, view.yaw_deg, view.fov_deg, view.range_m]
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    return finite and view.range_m > 0 and view.fov_deg > 0


def _all_sound(detections: list[Detection]) -> bool:
    """Vectorised check that every detection is well-formed (the common case, so it must be cheap)."""
    if not detections:
        return True
    try:
        centers = np.array([d.center for d in detections], dtype=float)
        sizes = np.array([d.size for d in detections], dtype=float)
        confidences = np.array([d.confidence for d in detections], dtype=float)
    except (TypeError, ValueError):
        return False
    return (
        centers.shape == sizes.shape == (len(detections), 3)
        and all(isinstance(d.center, np.ndarray) and isinstance(d.size, np.ndarray) for d in detections)
        and bool(np.all(np.isfinite(centers)) and np.all(np.isfinite(sizes)) and np.all(sizes >= 0))
        and bool(np.all(sizes <= MAX_OBJECT_SIZE_M) and np.all((confidences >= 0) & (confidences <= 1)))
        and all(isinstance(d.label, str) and d.label.strip() for d in detections)
        and all(d.embedding is None or np.all(np.isfinite(d.embedding)) for d in detections)
    )


def _pose_value(track: Track) -> list[float]:
    return [round(float(v), 4) for v in (*track.center, *track.size)]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _json_state(state: dict[str, Any]) -> str:
    import json

    return json.dumps(state, sort_keys=True)
