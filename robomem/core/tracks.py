"""A tracked object instance: running estimates plus its fact timelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robomem.core.temporal import History

TENTATIVE = "tentative"  # seen, not yet believed (could be a false detection)
CONFIRMED = "confirmed"  # believed present
GONE = "gone"  # was believed present, now believed absent from where it was
REJECTED = "rejected"  # a tentative track that evidence dismissed (false detection)
MERGED = "merged"  # found to be another track's object, seen after it moved

LIVE_STATUSES = (TENTATIVE, CONFIRMED)
POSE, PARENT, STATUS = "pose", "parent", "status"


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
    def extent(self) -> float:
        """Largest horizontal side of the box."""
        return float(max(self.size[0], self.size[1]))

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def state_keys(self) -> list[str]:
        return [p[6:] for p in self.histories if p.startswith("state:")]

    def scalar_state(self) -> dict[str, Any]:
        """Everything but the histories, as JSON-ready values (for storage)."""
        return {
            "label": self.label,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "center": self.center.tolist(),
            "size": self.size.tolist(),
            "hits": self.hits,
            "placement_hits": self.placement_hits,
            "log_odds": self.log_odds,
            "max_confidence": self.max_confidence,
            "misses_since_hit": self.misses_since_hit,
            "last_miss": self.last_miss,
            "status": self.status,
            "ever_confirmed": self.ever_confirmed,
            "appeared": self.appeared,
            "robot": self.robot,
            "merged_into": self.merged_into,
            "embedding": None if self.embedding is None else self.embedding.tolist(),
        }

    @classmethod
    def from_scalar_state(cls, track_id: int, state: dict[str, Any]) -> Track:
        values = dict(state)
        values["center"] = np.asarray(values["center"], dtype=float)
        values["size"] = np.asarray(values["size"], dtype=float)
        emb = values.get("embedding")
        values["embedding"] = None if emb is None else np.asarray(emb, dtype=np.float32)
        return cls(track_id=track_id, **values)
