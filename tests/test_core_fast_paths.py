"""The cached/indexed query fast paths (latest confirmed per label, per-label KD-trees) give the instance
seen last and the one nearest a point, checked against every believed instance on randomised histories."""

import numpy as np
from frames import det, frame, looking


def test_where_is_fast_paths_match_full_ranking(memory):
    rng = np.random.default_rng(3)
    labels = ["Mug", "Apple", "Book"]
    places = rng.uniform(-4, 4, size=(12, 2))
    for t in range(120):
        view = looking(0, 0, yaw=float(rng.uniform(-180, 180)), fov=90)
        present = [
            det(labels[i % 3], *places[i]) for i in range(12)
            if rng.random() < 0.7 and abs(np.degrees(np.arctan2(places[i][1], places[i][0])) - view.yaw_deg) % 360 < 45
        ]
        if t % 30 == 29:  # move a few objects now and then
            places[rng.integers(0, 12, 3)] = rng.uniform(-4, 4, size=(3, 2))
        memory.ingest(frame(float(t), view, *present))
        for label in labels:
            believed = memory.within_radius((0.0, 0.0, 1.0), 50.0, label)  # every believed instance
            answer = memory.where_is(label)
            assert (answer is None) == (not believed)
            if believed:  # all detections are confident: the instance seen last is the answer
                assert answer.last_seen == max(info.last_seen for info in believed)
            point = rng.uniform(-4, 4, 3)
            answer_near = memory.where_is(label, near=point)
            if believed:
                closest = min(float(np.linalg.norm(info.center - point)) for info in believed)
                assert float(np.linalg.norm(answer_near.center - point)) == closest
