"""Perception backends on the same PyBullet renders: the numpy pipeline (robomem.perception.objects)
against the open3d one (robomem.perception.open3d_objects), instance masks, at 320x240 and 640x480.

The scene is tests/pybullet_scene.py's room (a table with a mug and a book, a box on the floor, wall,
floor), seen from eight eyes around it. For every object a backend reports, against the true box:
- centre error (3D, cm) and top error (cm; a camera sees only an object's near side, so the centre
  along the view direction is biased towards it, the top is not),
- size error (the largest per-axis |size - true size|, cm),
and per frame the milliseconds the backend took (median of the frames, each run ``--repeats`` times).

    .venv/bin/python benchmarks/bench_perception.py [--out benchmarks/results/perception.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pybullet as pb  # noqa: E402
from pybullet_scene import OBJECTS, build_scene, render  # noqa: E402

from robomem.perception import PerceptionParams, make_camera_pose, observations_from_segmentation  # noqa: E402

TARGET = np.array([1.9, 0.0, 0.5])
RESOLUTIONS = ((320, 240), (640, 480))


def eyes() -> list[np.ndarray]:
    """Eight camera positions on the open side of the room (the wall is at x = 3.6), 1.1-1.5 m high."""
    out = []
    for k, angle in enumerate(np.radians(np.linspace(120, 240, 8))):
        radius = 1.8 + 0.3 * (k % 2)
        height = 1.1 + 0.4 * (k % 3 == 0)
        out.append(np.array([TARGET[0] + radius * np.cos(angle), TARGET[1] + radius * np.sin(angle), height]))
    return out


def run(repeats: int) -> dict:
    from robomem.perception import open3d_objects

    scene = build_scene()
    labels = {scene.bodies[name].body_id: name for name in OBJECTS}
    backends = {"numpy": (observations_from_segmentation, PerceptionParams()),
                "open3d": (open3d_objects.observations_from_segmentation, PerceptionParams(backend="open3d"))}
    results: dict = {}
    try:
        for width, height in RESOLUTIONS:
            frames = [render(scene, width, height, eye=eye, target=TARGET) for eye in eyes()]
            for name, (extract, params) in backends.items():
                times, centre, top, size, found, missed = [], [], [], [], 0, 0
                for r in frames:
                    pose = make_camera_pose(r.position, r.quaternion)
                    visible = {labels[i] for i in np.unique(r.seg)
                               if i in labels and (r.seg == i).sum() >= params.min_pixels}
                    best = float("inf")
                    for _ in range(repeats):
                        start = time.perf_counter()
                        detections = extract(r.depth_m, r.intrinsics, pose, r.seg, labels, params=params)
                        best = min(best, time.perf_counter() - start)
                    times.append(best * 1000)
                    seen = {d.label: d for d in detections}
                    missed += len(visible - set(seen))
                    for label, det in seen.items():
                        body = scene.bodies[label]
                        found += 1
                        centre.append(float(np.linalg.norm(det.center - body.center)) * 100)
                        top_error = det.center[2] + det.size[2] / 2 - body.center[2] - body.size[2] / 2
                        top.append(abs(float(top_error)) * 100)
                        size.append(float(np.max(np.abs(det.size - body.size))) * 100)
                results[f"{name}_{width}x{height}"] = {
                    "frames": len(frames), "objects_found": found, "objects_missed": missed,
                    "ms_per_frame_median": round(float(np.median(times)), 2),
                    "centre_err_cm_median": round(float(np.median(centre)), 2),
                    "centre_err_cm_p90": round(float(np.percentile(centre, 90)), 2),
                    "top_err_cm_median": round(float(np.median(top)), 2),
                    "size_err_cm_median": round(float(np.median(size)), 2),
                    "size_err_cm_p90": round(float(np.percentile(size, 90)), 2),
                }
    finally:
        pb.disconnect(scene.client)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "perception.json")
    parser.add_argument("--repeats", type=int, default=3, help="runs per frame (the fastest is timed)")
    args = parser.parse_args()
    import open3d

    results = run(args.repeats)
    report = {"benchmark": "perception backends on PyBullet renders (instance masks)", "results": results,
              "open3d": open3d.__version__, "numpy": np.__version__,
              "machine": platform.processor() or platform.machine(),
              "note": "shared 2-core VM; times are the fastest of --repeats runs per frame, median over frames"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for key, row in results.items():
        print(f"{key:18s} {row['ms_per_frame_median']:7.1f} ms/frame  centre {row['centre_err_cm_median']:.1f} cm "
              f"(p90 {row['centre_err_cm_p90']:.1f})  top {row['top_err_cm_median']:.1f} cm  size "
              f"{row['size_err_cm_median']:.1f} cm (p90 {row['size_err_cm_p90']:.1f})  found {row['objects_found']}, "
              f"missed {row['objects_missed']}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
