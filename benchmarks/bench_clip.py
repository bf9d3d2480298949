"""Cost of CLIP image embeddings (robomem.perception.clip) on CPU: ViT-B-32 with random weights
(pretrained=None, saved to a temporary file and loaded like real ones: the cost is the architecture's),
crops of 20-120 px, batches of 1, 4 and 16 (a frame shows a few objects; the appearance worker batches
what is queued), the fastest of 3 runs; and one text query through the text tower.

    .venv/bin/python benchmarks/bench_clip.py [--out benchmarks/results/clip.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "clip.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import open_clip
    import torch

    from robomem.perception.clip import ClipEmbedder

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vit-b-32.pt"
        torch.save(model.state_dict(), weights)
        start = time.perf_counter()
        embedder = ClipEmbedder(weights, "ViT-B-32")
        load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (int(rng.integers(20, 120)), int(rng.integers(20, 120)), 3), dtype=np.uint8)
             for _ in range(16)]
    embedder.embed_images(crops[:2])  # warm-up
    results: dict = {"model": "ViT-B-32", "threads": args.threads, "load_s": round(load_s, 2)}
    for n in (1, 4, 16):
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            embedder.embed_images(crops[:n])
            best = min(best, time.perf_counter() - start)
        results[f"batch_{n}_ms"] = round(best * 1000, 1)
        results[f"batch_{n}_ms_per_crop"] = round(best * 1000 / n, 1)
    embedder.embed_texts(["warm up"])
    start = time.perf_counter()
    embedder.embed_texts(["something to drink from"])
    results["text_query_ms"] = round((time.perf_counter() - start) * 1000, 1)
    results["note"] = "shared 2-core VM (other jobs running); CPU only"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
