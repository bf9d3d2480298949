"""Semantic search: objects whose label means what a text says ("cup" finds a Mug), through text
embeddings of the labels memory knows; and objects nearest an embedding (e.g. image features)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robomem.core.belief import Belief
from robomem.core.config import label_to_text
from robomem.core.embedding import TextEmbedder, VectorIndex
from robomem.core.track_store import TrackStore
from robomem.core.tracks import GONE
from robomem.core.types import ObjectInfo


class SemanticSearch:
    """Label and embedding search; label vectors are embedded once, when a query first needs them."""

    def __init__(self, tracks: TrackStore, belief: Belief, embedder: Callable[[], TextEmbedder]) -> None:
        self.tracks = tracks
        self.belief = belief
        self._embedder = embedder
        self._label_vectors: VectorIndex | None = None
        self._label_keys: dict[str, int] = {}

    def _label_index(self) -> tuple[VectorIndex, dict[int, str]]:
        labels = {t.label for t in self.tracks if t.is_live or t.status == GONE}
        missing = sorted(label for label in labels if label not in self._label_keys)
        embedder = self._embedder()
        if self._label_vectors is None:
            self._label_vectors = VectorIndex(embedder.dim)
        if missing:
            vectors = embedder.embed([label_to_text(label) for label in missing])
            for label, vector in zip(missing, vectors, strict=True):
                key = len(self._label_keys)
                self._label_keys[label] = key
                self._label_vectors.add(key, vector)
        return self._label_vectors, {v: k for k, v in self._label_keys.items()}

    def search(self, text: str, k: int = 10, min_similarity: float = 0.5) -> list[tuple[ObjectInfo, float]]:
        index, names = self._label_index()
        query = self._embedder().embed([label_to_text(text)])[0]
        results: list[tuple[ObjectInfo, float]] = []
        for key, similarity in index.search(query, k=min(len(index), 16)):
            if similarity < min_similarity:
                continue
            for track in self.belief.ranked(names[key], None):
                results.append((self.belief.info(track, None), similarity))
        results.sort(key=lambda pair: -pair[1])
        return results[:k]

    def search_by_embedding(self, vector: Any, k: int = 10) -> list[tuple[ObjectInfo, float]]:
        vectors = self.tracks.object_vectors
        if vectors is None:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        return [
            (self.belief.info(self.tracks[key], None), sim)
            for key, sim in vectors.search(query, k)
            if self.belief.believed(self.tracks[key], None)
        ]
