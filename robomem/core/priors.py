"""Where a thing of a label is probably kept: receptacle instances of this home, ranked, each with its
score and the reason (``Memory.likely_places``).

Three kinds of evidence, each normalised over the home's receptacles, then mixed (weights below; a kind
with no evidence gives its weight to the others):

- **history** — where *these* things have been: every parent fact (``in``/``on`` a holder) of every
  track of the label, a stay weighted by how recently it ended (half-life ``HISTORY_HALF_LIFE_S``) and
  counted once per stay (frequency). A stay that ended with memory calling the thing gone is weak
  evidence (someone took it from there), unless it was inside closed furniture (nothing can be seen gone
  through a closed door);
- **changes** — for a thing memory has lost or not seen since a time: what memory saw change since then
  (things that moved or appeared onto a holder: someone has been putting things there, and whatever was
  carried away most likely went the same way);
- **prior** — where things of the type are usually kept in AI2-THOR's homes: the receptacle statistics
  (``receptacles.json``: how often each object type was placed on each receptacle type) and the room
  annotations (``placement-annotations.json``: in kitchens / living rooms / bedrooms / bathrooms) that ship
  in the ``procthor`` package, read from the installed package at run time. Without it: no prior.

Pure Python over :class:`~robomem.core.memory.Memory`'s public reads; no ROS.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robomem.core.config import MemoryConfig, normalize_label
from robomem.core.tracks import GONE, MERGED, PARENT, STATUS, Track

HISTORY_HALF_LIFE_S = 2 * 86400.0  # a stay two days ago counts half as much as one that ends now
WEIGHTS = {"history": 0.6, "changes": 0.15, "prior": 0.25}
GONE_FACTOR = 0.25  # a stay that ended with memory calling the thing gone from there
PRIOR_SMOOTHING = 0.1  # pseudo-count added to every receptacle type the statistics cover
UNKNOWN_TYPE_COUNT = 0.25  # pseudo-count of a receptacle type the statistics do not cover (cabinets, drawers)
ROOM_FACTORS = (0.15, 1.0, 1.6)  # annotation 0 (never in such rooms), 1 (may be), 2 (usually)
MAX_K = 50
NOT_PLACES = frozenset({"floor"})  # a floor holds anything: no place to search
ROOM_KEYS = (("kitchen", "inKitchens"), ("living", "inLivingRooms"), ("bed", "inBedrooms"),
             ("bath", "inBathrooms"))


@dataclass(frozen=True)
class LikelyPlace:
    """A receptacle instance where the thing probably is: its track, box centre, room and the score (the
    places of one answer sum to at most 1), the relation a thing would have to it and the reason in words."""

    label: str
    track_id: int
    center: tuple[float, float, float]
    room: str
    score: float
    reason: str
    relation: str = "on"
    evidence: dict[str, float] = field(default_factory=dict, compare=False)
    informed: bool = True  # False: no evidence for it (only a default share or smoothing)

    @property
    def source(self) -> str:
        """The kind of evidence that weighs most for this place: history | changes | prior."""
        share = {name: WEIGHTS[name] * value for name, value in self.evidence.items()}
        return max(share, key=lambda n: (share[n], n)) if share else "prior"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "id": self.track_id, "center": [round(v, 3) for v in self.center],
                "room": self.room, "score": round(self.score, 4), "relation": self.relation, "source": self.source,
                "informed": self.informed,
                "reason": self.reason, "evidence": {k: round(v, 4) for k, v in self.evidence.items()}}


# ---------------------------------------------------------------------------------- AI2-THOR statistics


@dataclass(frozen=True)
class PlacementStatistics:
    """AI2-THOR's placement statistics: ``counts[receptacle type][object type]`` (normalised labels) and
    ``rooms[object type][room key]`` (0, 1 or 2; room keys as in :data:`ROOM_KEYS`)."""

    counts: dict[str, dict[str, float]]
    rooms: dict[str, dict[str, int]]
    source: str = ""

    def type_prior(self, label: str, receptacle_types: set[str]) -> dict[str, float]:
        """P(receptacle type | object type) over ``receptacle_types`` (normalised labels), smoothed."""
        key = normalize_label(label)
        raw = {}
        for rtype in receptacle_types:
            seen = self.counts.get(rtype)
            raw[rtype] = UNKNOWN_TYPE_COUNT if seen is None else seen.get(key, 0.0) + PRIOR_SMOOTHING
        total = sum(raw.values())
        return {r: v / total for r, v in raw.items()} if total > 0 else {}

    def count(self, label: str, receptacle: str) -> float:
        """How often a ``label`` was placed on / in a ``receptacle`` type in the statistics (0 if never or
        not covered)."""
        return float(self.counts.get(normalize_label(receptacle), {}).get(normalize_label(label), 0.0))

    def known(self, label: str) -> bool:
        key = normalize_label(label)
        return any(key in objects for objects in self.counts.values())

    def room_factor(self, label: str, room: str) -> float:
        ratings = self.rooms.get(normalize_label(label))
        name = normalize_label(room)
        if not ratings:
            return 1.0
        for word, annotation in ROOM_KEYS:
            if word in name and ratings.get(annotation) is not None:
                return ROOM_FACTORS[max(0, min(2, int(ratings[annotation])))]
        return 1.0


def procthor_databases() -> Path | None:
    """The ``databases`` folder of the installed ``procthor`` package (not imported), or None."""
    spec = importlib.util.find_spec("procthor")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "databases"
        if (folder / "receptacles.json").is_file():
            return folder
    return None


@functools.lru_cache(maxsize=1)
def placement_statistics() -> PlacementStatistics | None:
    """AI2-THOR's statistics from the installed procthor package; None when it is not installed."""
    folder = procthor_databases()
    if folder is None:
        return None
    raw = json.loads((folder / "receptacles.json").read_text())
    counts: dict[str, dict[str, float]] = {}
    for rtype, objects in raw.items():
        counts[normalize_label(rtype)] = {normalize_label(o): float(v.get("count", 0)) for o, v in objects.items()}
    rooms: dict[str, dict[str, int]] = defaultdict(dict)
    annotations = folder / "placement-annotations.json"
    if annotations.is_file():
        data = json.loads(annotations.read_text())
        for _, key in ROOM_KEYS:
            for otype, rating in (data.get(key) or {}).items():
                if rating is not None:
                    rooms[normalize_label(otype)][key] = int(rating)
    return PlacementStatistics(counts, dict(rooms), str(folder))


# ---------------------------------------------------------------------------------- ranking


def _room_of(rooms: list[Any], default: str, center: Any) -> str:
    for room in rooms:
        if room.contains(center):
            return room.name
    return default


def _stays(track: Track, now: float) -> list[tuple[int, str, float, float]]:
    """(holder id, relation, start, end) of each stay of ``track``: consecutive parent facts on one holder
    (re-estimated, or seen there again with no other holder in between) are one stay."""
    out: list[list[Any]] = []
    for fact in track.history(PARENT).facts:
        if not fact.value:
            continue
        holder, relation = int(fact.value[0]), str(fact.value[1])
        end = now if fact.valid_to is None else fact.valid_to
        if out and out[-1][0] == holder:  # on it still, or again with nothing else in between
            out[-1][3] = end
        else:
            out.append([holder, relation, fact.valid_from, end])
    return [tuple(s) for s in out]  # type: ignore[misc]


def _closed_at(track: Track, t: float) -> bool:
    """Whether memory's latest word on the openable ``track`` at ``t`` was: closed."""
    for key in ("isOpen", "open"):
        history = track.histories.get(f"state:{key}")
        earlier = [f for f in history.facts if f.valid_from <= t] if history is not None else []
        if earlier:
            return not bool(earlier[-1].value)
    return False


def _gone_at(track: Track, t: float) -> bool:
    status = track.history(STATUS).value_at(t + 1e-6)
    return status == GONE


def _normalised(values: dict[int, float]) -> dict[int, float]:
    total = sum(values.values())
    return {k: v / total for k, v in values.items()} if total > 0 else {}


def likely_places(memory: Any, label: str, k: int = 5, since: float | None = None,
                  statistics: PlacementStatistics | None | bool = True) -> list[LikelyPlace]:
    """The ``k`` receptacle instances of this home where a ``label`` most likely is, best first (see the
    module doc). ``since``: the time from which to take memory's changes (default: when a thing of the
    label was last seen, if memory no longer believes one is present). ``statistics``: True for the
    installed AI2-THOR statistics, None/False for none, or a :class:`PlacementStatistics`."""
    if not isinstance(label, str) or not label.strip():
        raise ValueError("likely_places needs a label")
    k = max(0, min(int(k), MAX_K))
    stats = placement_statistics() if statistics is True else (statistics or None)
    cfg: MemoryConfig = memory.config
    key = normalize_label(label)
    rooms = cfg.room_regions()

    def room_of(center: Any) -> str:
        return _room_of(rooms, cfg.default_room, center)

    with memory.lock:
        now = memory.now if math.isfinite(memory.now) else 0.0
        tracks = memory.tracks
        places = {t.track_id: t for t in memory.believed_tracks()
                  if cfg.is_receptacle(t.label) and cfg.is_static(t.label)
                  and normalize_label(t.label) not in NOT_PLACES and normalize_label(t.label) != key}
        if not places or k == 0:
            return []
        own = [t for t in tracks.values()  # a merged track's stays are its survivor's too
               if normalize_label(t.label) == key and t.ever_confirmed and t.status != MERGED]
        # history: where these things have been
        history: dict[int, float] = defaultdict(float)
        stays_on: dict[int, int] = defaultdict(int)
        last_on: dict[int, float] = {}
        for track in own:
            for holder, relation, _start, end in _stays(track, now):
                if holder not in places:
                    continue
                weight = 0.5 ** (max(0.0, now - end) / HISTORY_HALF_LIFE_S)
                if end < now and _gone_at(track, end) and not (relation == "in" and _closed_at(places[holder], end)):
                    weight *= GONE_FACTOR
                history[holder] += weight
                stays_on[holder] += 1
                last_on[holder] = max(last_on.get(holder, -math.inf), end)
        # changes: where things were put since the thing was last seen
        changes: dict[int, float] = defaultdict(float)
        believed = any(t.is_live and t.status != GONE and t.ever_confirmed for t in own)
        if since is None and own and not believed:
            since = max(t.last_seen for t in own)
        if since is not None:
            for change in memory.what_changed(since):  # moved or appeared there since (memory's own verdict)
                other = tracks.get(change.track_id) if change.change in ("appeared", "moved") else None
                parent = other.history(PARENT).value_now() if other is not None else None
                if parent and int(parent[0]) in places:
                    changes[int(parent[0])] += 3.0 if normalize_label(other.label) == key else 1.0
        # prior: where things of this type are usually kept
        prior: dict[int, float] = {}
        if stats is not None and stats.known(label):
            types = {normalize_label(t.label) for t in places.values()}
            by_type = stats.type_prior(label, types)
            n_of = defaultdict(int)
            for t in places.values():
                n_of[normalize_label(t.label)] += 1
            for pid, t in places.items():
                rtype = normalize_label(t.label)
                prior[pid] = by_type.get(rtype, 0.0) / n_of[rtype] * stats.room_factor(label, room_of(t.center))
        parts = {"history": _normalised(history), "changes": _normalised(changes), "prior": _normalised(prior)}
        used = {name: WEIGHTS[name] for name, values in parts.items() if values}
        total_weight = sum(used.values())
        if not total_weight:
            return []
        scored = []
        for pid, t in places.items():
            evidence = {name: parts[name].get(pid, 0.0) for name in used}
            score = sum(used[name] * evidence[name] for name in used) / total_weight
            if score <= 0:
                continue
            relation = "in" if cfg.is_container(t.label) and cfg.is_openable(t.label) else "on"
            reason = _reason(label, t.label, relation, evidence, used, stays_on.get(pid, 0),
                             now - last_on.get(pid, now), stats)
            informed = (evidence.get("history", 0.0) > 0 or evidence.get("changes", 0.0) > 0
                        or (stats is not None and stats.count(label, t.label) > 0))
            scored.append(LikelyPlace(t.label, pid, tuple(float(v) for v in t.center), room_of(t.center),
                                      score, reason, relation, evidence, informed))
    scored.sort(key=lambda p: (-p.score, p.track_id))
    return scored[:k]


def _reason(label: str, place: str, relation: str, evidence: dict[str, float], used: dict[str, float], stays: int,
            age_s: float, stats: PlacementStatistics | None) -> str:
    """The strongest evidence for ``place`` in words."""
    share = {name: used[name] * evidence[name] for name in used}
    best = max(share, key=lambda n: (share[n], n))
    if best == "history":
        ago = "now" if age_s <= 1.0 else f"until {age_s / 3600.0:.1f} h ago"
        return f"a {label} was {relation} this {place} {stays}x ({ago})"
    if best == "changes":
        return f"things were put {relation} this {place} since the {label} was last seen"
    counts = stats.counts.get(normalize_label(place), {}) if stats else {}
    n = int(counts.get(normalize_label(label), 0))
    return f"a {label} is kept {relation} a {place} in {n} AI2-THOR homes' placements"
