"""A tracked object instance: running estimates plus its fact timelines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from robomem.core.temporal import History

TENTATIVE = "tentative"  # seen, not yet believed (could be a false detection)
CONFIRMED = "confirmed"  # believed present
GONE = "gone"  # was believed present, now believed absent from where it was
REJECTED = "rejected"  # a tentative track that evidence dismissed (false detection)
MERGED = "merged"  # found to be another track's object, seen after it moved

LIVE_STATUSES = (TENTATIVE, CONFIRMED)
POSE, PARENT, STATUS = "pose", "parent", "status"
STRONG_CONFIDENCE = 0.85  # one detection this confident is as good as two sightings when ranking


@dataclass
class Track:
    """One object instance memory tracks. Histories hold what memory believed at each time."""

    track_id: int
    label: str
    first_seen: float
    last_seen: float
    center: np.ndarray
    size: np.ndarray
    hits: int = 1
    placement_hits: int = 1
    log_odds: float = 0.0
    max_confidence: float = 0.0
    misses_since_hit: int = 0
    miss_evidence: float = 0.0  # -log P(all misses since the last sighting | still there)
    last_miss: float | None = None
    status: str = TENTATIVE
    ever_confirmed: bool = False
    appeared: bool = False  # first seen where earlier views had shown nothing
    robot: str = ""
    merged_into: int | None = None
    embedding: np.ndarray | None = None
    histories: dict[str, History] = field(default_factory=dict)

    def history(self, predicate: str) -> History:
        found = self.histories.get(predicate)
        if found is None:
            found = self.histories[predicate] = History()
        return found

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def state_keys(self) -> list[str]:
        return [p[6:] for p in self.histories if p.startswith("state:")]

    def to_row(self) -> tuple:
        """The current state as a storage row (see ``TRACK_COLUMNS``); histories are stored as facts."""
        return (
            self.track_id, self.label, self.status, self.first_seen, self.last_seen, self.hits,
            self.placement_hits, self.log_odds, self.max_confidence, self.misses_since_hit, self.miss_evidence,
            self.last_miss, *self.center.tolist(), *self.size.tolist(), int(self.ever_confirmed),
            int(self.appeared), self.robot, self.merged_into,
            None if self.embedding is None else np.asarray(self.embedding, dtype=np.float32).tobytes(),
        )

    @classmethod
    def from_row(cls, row: tuple) -> Track:
        (track_id, label, status, first_seen, last_seen, hits, placement_hits, log_odds, max_confidence,
         misses_since_hit, miss_evidence, last_miss, cx, cy, cz, sx, sy, sz, ever_confirmed, appeared, robot,
         merged_into, embedding) = row
        return cls(
            track_id=track_id, label=label, status=status, first_seen=first_seen, last_seen=last_seen,
            hits=hits, placement_hits=placement_hits, log_odds=log_odds, max_confidence=max_confidence,
            misses_since_hit=misses_since_hit, miss_evidence=miss_evidence, last_miss=last_miss,
            center=np.array([cx, cy, cz]), size=np.array([sx, sy, sz]), ever_confirmed=bool(ever_confirmed),
            appeared=bool(appeared), robot=robot, merged_into=merged_into,
            embedding=None if embedding is None else np.frombuffer(embedding, dtype=np.float32).copy(),
        )


def recency_key(track: Track) -> tuple[bool, float, int, int]:
    """How 'now' queries rank instances (largest first): well-supported ones (seen twice, or once very
    confidently) before a lone sighting that may be a false detection; then the most recently seen,
    the most seen, the oldest."""
    strong = track.hits >= 2 or track.max_confidence >= STRONG_CONFIDENCE
    return (strong, track.last_seen, track.hits, -track.track_id)


def holders(track: Track, tracks: Mapping[int, Track], at: float | None = None) -> Iterator[tuple[Track, str]]:
    """(holder, relation) pairs up the chain of what holds ``track`` (now, or at time ``at``): its
    receptacle, that one's receptacle, ...; stops at a holder memory does not know or has named already."""
    visited: set[int] = set()
    node = track
    while True:
        history = node.history(PARENT)
        parent = history.value_now() if at is None else history.value_at(at)
        if not parent or parent[0] in visited or parent[0] not in tracks:
            return
        visited.add(parent[0])
        node = tracks[parent[0]]
        yield node, parent[1]


TRACK_COLUMNS = (
    "track_id INTEGER PRIMARY KEY, label TEXT NOT NULL, status TEXT NOT NULL, first_seen REAL, last_seen REAL, "
    "hits INTEGER, placement_hits INTEGER, log_odds REAL, max_confidence REAL, misses_since_hit INTEGER, "
    "miss_evidence REAL, last_miss REAL, cx REAL, cy REAL, cz REAL, sx REAL, sy REAL, sz REAL, ever_confirmed INTEGER, "
    "appeared INTEGER, robot TEXT, merged_into INTEGER, embedding BLOB"
)
