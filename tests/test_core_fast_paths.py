"""The cached/indexed query fast paths agree with the full ranking on randomised histories."""

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
            ranked = memory._ranked(label, None)
            answer = memory.where_is(label)
            assert (answer is None) == (not ranked)
            if ranked:
                assert answer.track_id == ranked[0].track_id
            point = rng.uniform(-4, 4, 3)
            ranked_near = memory._ranked(label, None, near=point)
            answer_near = memory.where_is(label, near=point)
            if ranked_near:
                assert answer_near.track_id == ranked_near[0].track_id
