"""CLIP image embeddings (robomem.perception.clip) on crops of the simulator's camera, with weights
created here (a small CLIP of open_clip's architecture, pretrained=None, saved and loaded from a file):
loading checks, crops, the appearance worker off the ingest path, embeddings in memory, and the core
importable without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip", reason="open-clip-torch is not installed (requirements-clip.txt)")
torch = pytest.importorskip("torch")
pb = pytest.importorskip("pybullet")

from pybullet_scene import OBJECTS, build_scene, render  # noqa: E402

from robomem.core import Memory, MemoryConfig  # noqa: E402
from robomem.core.types import RejectedInput  # noqa: E402
from robomem.perception import Frame, Perception, PerceptionParams, make_camera_pose  # noqa: E402
from robomem.perception.clip import AppearanceWorker, ClipEmbedder, crop  # noqa: E402

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


def _weights(folder, name: str, config: dict, seed: int = 0):
    """A CLIP of ``config`` with random weights (pretrained=None), saved as a state dict."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(str(path))
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    torch.save(model.state_dict(), folder / f"{name}.pt")
    return path, folder / f"{name}.pt", model.eval(), preprocess


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    config, weights, model, preprocess = _weights(folder, "robomem-tiny-clip", TINY)
    return {"folder": folder, "config": config, "weights": weights, "model": model, "preprocess": preprocess,
            "embedder": ClipEmbedder(weights, "robomem-tiny-clip", config)}


@pytest.fixture(scope="module")
def views():
    scene = build_scene()
    labels = {scene.bodies[name].body_id: name for name in OBJECTS}
    try:
        frames = []
        for t, eye in ((1.0, np.array([-0.3, -0.25, 1.3])), (2.0, np.array([-0.2, 0.3, 1.3]))):
            r = render(scene, 320, 240, eye=eye, target=np.array([2.0, 0.1, 0.6]))
            _, _, rgb, _, _ = pb.getCameraImage(320, 240, r.view_matrix, r.projection, renderer=pb.ER_TINY_RENDERER,
                                               physicsClientId=scene.client)
            rgb = np.asarray(rgb, dtype=np.uint8).reshape(240, 320, 4)[..., :3]
            frames.append(Frame(t, "r1", r.depth_m, r.intrinsics, make_camera_pose(r.position, r.quaternion),
                                mask=r.seg, labels=labels, rgb=rgb))
    finally:
        pb.disconnect(scene.client)
    return frames


def test_weights_load_from_the_file_and_embed_crops(tiny, views):
    frame = views[0]
    mug = next(i for i, label in frame.labels.items() if label == "Mug")
    image = crop(frame.rgb, mask=frame.mask == mug)
    assert 8 < image.shape[0] < 60 and image.shape[2] == 3  # the mug, a few pixels around it
    vectors = tiny["embedder"].embed_images([image, image])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the file's weights, not fresh random ones: the embedding is the saved model's own
    from PIL import Image

    with torch.no_grad():
        own = tiny["model"].encode_image(tiny["preprocess"](Image.fromarray(image))[None]).numpy()[0]
    np.testing.assert_allclose(vectors[0], own / np.linalg.norm(own), atol=1e-5)
    text = tiny["embedder"].embed_texts(["something to drink from", "a mug"])
    assert text.shape == (2, 32) and not np.allclose(text[0], text[1])


def test_missing_foreign_and_misshapen_weights_are_refused(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ClipEmbedder(tmp_path / "none.pt", "robomem-tiny-clip", tiny["config"])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a state dict" * 10)
    with pytest.raises(ValueError, match="not a torch state dict"):
        ClipEmbedder(garbage, "robomem-tiny-clip", tiny["config"])
    _, other, _, _ = _weights(tmp_path, "robomem-tiny-clip-16", {**TINY, "embed_dim": 16})
    with pytest.raises(ValueError, match="do not fit CLIP robomem-tiny-clip: size mismatch"):
        ClipEmbedder(other, "robomem-tiny-clip", tiny["config"])
    with pytest.raises(ValueError, match="unknown CLIP model"):
        ClipEmbedder(tiny["weights"], "no-such-model")


def test_crops_of_zero_size_are_refused(views):
    rgb = views[0].rgb
    for bad in (dict(mask=np.zeros(rgb.shape[:2], dtype=bool)), dict(box=(400, 10, 500, 20), pad_px=0),
                dict(box=(30, 30, 30, 60), pad_px=0)):
        with pytest.raises(RejectedInput) as error:
            crop(rgb, **bad)
        assert error.value.reason == "empty_crop"


class _Gated:
    """The real embedder behind a gate: embeds only once the test opens it."""

    def __init__(self, embedder) -> None:
        self.embedder, self.gate = embedder, threading.Event()

    def embed_images(self, images):
        assert self.gate.wait(30)
        return self.embedder.embed_images(images)


def test_perception_never_waits_for_clip_and_memory_keeps_the_embeddings(tiny, views):
    gated = _Gated(tiny["embedder"])
    worker = AppearanceWorker(gated, batch_size=8)
    perception = Perception(PerceptionParams(max_range_m=5.0), appearance=worker)
    memory = Memory(MemoryConfig(db_path=":memory:"))
    try:
        first = perception.observe(views[0])  # CLIP is blocked: the frame goes through without embeddings
        assert first.detections and all(d.embedding is None for d in first.detections)
        assert worker.counters["queued"] == len(first.detections)
        memory.ingest(first)
        gated.gate.set()
        assert worker.wait_idle(30)
        # batched: the crops queued while CLIP was busy went in one batch (the first may have gone alone)
        assert worker.counters["embedded"] == len(first.detections) and worker.counters["batches"] in (1, 2)
        again = perception.observe(Frame(**{**views[0].__dict__, "t": 1.5}))
        assert all(d.embedding is not None and d.embedding.shape == (32,) for d in again.detections)
        memory.ingest(again)
        mug = next(t for t in memory.tracks.values() if t.label == "Mug")
        assert mug.embedding is not None
        # search from text through CLIP's text tower: the objects nearest the query, by cosine
        query = tiny["embedder"].embed_texts(["something to drink from"])[0]
        found = memory.search_by_embedding(query, k=3)
        tracks = [t for t in memory.tracks.values() if t.embedding is not None and t.status == "confirmed"]
        cosine = {t.track_id: float(t.embedding @ query / np.linalg.norm(t.embedding)) for t in tracks}
        assert found and found[0][0].track_id == max(cosine, key=cosine.get)
    finally:
        worker.close()
        memory.close()


def test_the_core_and_perception_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['open_clip'] = None\n"
            "import robomem.core, robomem.perception\n"
            "from robomem.perception import Perception\n"
            "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
