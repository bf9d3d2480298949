"""The incremental point index agrees with brute force through inserts, moves, removals and rebuilds."""

import numpy as np

from robomem.core.spatial_index import DynamicPointIndex


def test_radius_and_nearest_match_brute_force():
    rng = np.random.default_rng(7)
    index = DynamicPointIndex(min_rebuild=20, max_buffer=40)
    truth: dict[int, np.ndarray] = {}
    for step in range(1500):
        op = rng.random()
        if op < 0.5 or not truth:
            key = int(rng.integers(0, 300))
            truth[key] = rng.uniform(0, 10, 3)
            index.set(key, truth[key])
        elif op < 0.65:
            key = int(rng.choice(list(truth)))
            truth.pop(key)
            index.remove(key)
        if step % 25 == 0:
            queries = rng.uniform(0, 10, (4, 3))
            radii = rng.uniform(0.2, 2.0, 4)
            got = index.query_radius_many(queries, radii)
            for q, r, found in zip(queries, radii, got, strict=True):
                expected = {k for k, p in truth.items() if np.linalg.norm(p - q) <= r}
                assert sorted(found) == sorted(expected)
            q = queries[0]
            odd = [k for k in truth if k % 2]
            best = index.nearest(q, accept=lambda key: key % 2 == 1)
            if odd:
                assert best == min(odd, key=lambda k: np.linalg.norm(truth[k] - q))
            else:
                assert best is None
    assert len(index) == len(truth)
