"""CLIP image embeddings per object crop (PyPI ``open-clip-torch``), off the ingest path.

- :class:`ClipEmbedder` loads a CLIP model of a named architecture (``model_name``; an open_clip model
  config, or one added with ``config_path``) with weights from a file (``weights_path``: a state dict
  saved with ``torch.save``). Nothing is downloaded, ever; a missing file, or weights of another shape,
  is a clear error. ``embed_images`` (batched crops) and ``embed_texts`` (CLIP's text tower, for
  searching memory's objects by words: ``memory.search_by_embedding(embedder.embed_texts([...])[0])``)
  give unit vectors of the same space.
- :func:`crop` cuts an object's crop from an RGB image by its instance mask or 2D box (a crop of zero
  size is refused: RejectedInput ``empty_crop``).
- :class:`AppearanceWorker` runs the embedder on a background thread over batches of crops. Perception
  (``Perception(..., appearance=worker)``) never waits for it: a detection gets the embedding its object
  (label and place, 25 cm cells) already has, and an object without one is queued (bounded; a full
  queue drops and counts). So CLIP works only for new objects, and ingest throughput does not depend
  on it; memory keeps a running mean per track (robomem.core.update) in its vector index.

Real semantics need real CLIP weights (e.g. ViT-B-32 from OpenAI or LAION, converted to a state dict);
none ships on PyPI, so tests run the same code on weights created locally (``pretrained=None``). torch is
imported only here: the core, and perception without appearance, work without it.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robomem.core.types import RejectedInput

CELL_M = 0.25  # objects of one label within a cell share their appearance (perception has no tracks)


class ClipEmbedder:
    """A CLIP model with locally stored weights; image and text embeddings as unit float32 vectors."""

    def __init__(self, weights_path: Path | str, model_name: str = "ViT-B-32", config_path: Path | str | None = None,
                 device: str = "cpu") -> None:
        import open_clip
        import torch

        self.torch = torch
        weights_path = Path(weights_path)
        if not weights_path.is_file():
            raise FileNotFoundError(f"no CLIP weights at {weights_path} (robomem never downloads weights: "
                                    "save a state dict there, see robomem.perception.clip)")
        if config_path is not None:
            open_clip.add_model_config(str(config_path))
        if model_name not in open_clip.list_models():
            raise ValueError(f"unknown CLIP model {model_name!r} (give config_path for a custom one)")
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None, device=device)
        try:
            state = torch.load(weights_path, map_location=device, weights_only=True)
        except Exception as error:  # noqa: BLE001 (torch raises assorted errors on a file that is not a state dict)
            raise ValueError(f"{weights_path} is not a torch state dict: {error}") from error
        if not isinstance(state, dict):
            raise ValueError(f"{weights_path} holds a {type(state).__name__}, not a state dict")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
            raise ValueError(f"weights in {weights_path} do not fit CLIP {model_name}: {first}") from error
        model.eval()
        self.model, self.preprocess, self.device = model, preprocess, device
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else None

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit embeddings of RGB crops (H x W x 3, uint8)."""
        from PIL import Image

        if not images:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        batch = self.torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(i))) for i in images])
        with self.torch.no_grad():
            features = self.model.encode_image(batch.to(self.device))
        return _unit(features.cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) unit embeddings of texts (CLIP's text tower), comparable to image embeddings."""
        with self.torch.no_grad():
            features = self.model.encode_text(self.tokenizer(list(texts)).to(self.device))
        return _unit(features.cpu().numpy())


def _unit(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def crop(rgb: np.ndarray, mask: np.ndarray | None = None, box: Sequence[float] | None = None,
         pad_px: int = 4) -> np.ndarray:
    """The crop of an object: the bounding rectangle of its mask (or the 2D box ``x0, y0, x1, y1``),
    ``pad_px`` wider, clipped to the image. RejectedInput ``empty_crop`` if nothing is left."""
    image = np.asarray(rgb)
    if image.ndim != 3 or image.shape[2] < 3:
        raise RejectedInput("bad_image", f"an RGB image is H x W x 3, got shape {image.shape}")
    height, width = image.shape[:2]
    if mask is not None:
        rows, cols = np.nonzero(np.asarray(mask))
        if rows.size == 0:
            raise RejectedInput("empty_crop", "the mask selects no pixel")
        x0, y0, x1, y1 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    elif box is not None:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box[:4])
    else:
        raise RejectedInput("malformed", "a crop needs a mask or a box")
    x0, y0 = max(0, x0 - pad_px), max(0, y0 - pad_px)
    x1, y1 = min(width, x1 + pad_px), min(height, y1 + pad_px)
    if x1 <= x0 or y1 <= y0:
        raise RejectedInput("empty_crop", f"the crop ({x0}, {y0})-({x1}, {y1}) has no pixel inside the image")
    return image[y0:y1, x0:x1, :3]


def appearance_key(label: str, center: Sequence[float]) -> tuple[str, int, int, int]:
    """Which object a detection is, for its appearance: its label and its 25 cm cell."""
    return (label, *(int(np.floor(float(v) / CELL_M)) for v in center[:3]))


class AppearanceWorker:
    """Embeds queued crops in batches on a background thread; keeps the latest embedding per key (an
    LRU of ``max_entries``). ``counters``: ``queued``, ``embedded``, ``batches``, ``dropped.queue_full``,
    ``errors``."""

    def __init__(self, embedder: Any, batch_size: int = 16, max_queue: int = 256, max_entries: int = 4096) -> None:
        self.embedder = embedder
        self.batch_size = batch_size
        self.max_entries = max_entries
        self.counters: dict[str, int] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._embeddings: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._pending: set[Hashable] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="clip-appearance", daemon=True)
        self._thread.start()

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def latest(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            found = self._embeddings.get(key)
            if found is not None:
                self._embeddings.move_to_end(key)
            return found

    def submit(self, key: Hashable, image: np.ndarray) -> bool:
        """Queue a crop for ``key`` unless one is queued or done already; False when the queue is full."""
        with self._lock:
            if key in self._pending or key in self._embeddings:
                return True
            try:
                self._queue.put_nowait((key, image))
            except queue.Full:
                self._count("dropped.queue_full")
                return False
            self._pending.add(key)
            self._count("queued")
            return True

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued crop is embedded (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        self._stop = True
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stop = True
                    break
                batch.append(item)
            try:
                vectors = self.embedder.embed_images([image for _, image in batch])
            except Exception:  # noqa: BLE001 (a bad crop or a model error must not end the worker)
                vectors = None
                self._count("errors")
            with self._idle:
                for index, (key, _) in enumerate(batch):
                    self._pending.discard(key)
                    if vectors is not None:
                        self._embeddings[key] = vectors[index]
                        self._embeddings.move_to_end(key)
                while len(self._embeddings) > self.max_entries:
                    self._embeddings.popitem(last=False)
                if vectors is not None:
                    self._count("embedded", len(batch))
                    self._count("batches")
                self._idle.notify_all()
