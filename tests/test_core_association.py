"""Data association: Hungarian assignment, per-class gates, labels and embeddings."""

import numpy as np
from frames import det, frame, looking

from robomem.core import MemoryConfig
from robomem.core.association import associate
from robomem.core.tracks import Track
from robomem.core.types import make_detection


def _track(track_id: int, label: str, x: float, y: float, size=(0.1, 0.1, 0.1), embedding=None) -> Track:
    return Track(track_id, label, 0.0, 0.0, np.array([x, y, 1.0]), np.array(size), embedding=embedding)


def test_hungarian_resolves_crossing_pairs_greedy_would_get_wrong():
    # Greedy nearest-first would give d0 -> A (0.10) and leave d1 -> B at 0.40 (out of the gate).
    a, b = _track(1, "Mug", 0.0, 0.0), _track(2, "Mug", 0.3, 0.0)
    d0, d1 = det("Mug", 0.1, 0.0), det("Mug", -0.05, 0.0)
    pairs, unmatched = associate([d0, d1], [[a, b], [a, b]], MemoryConfig(gate_m=0.3))
    assert unmatched == []
    assert {(row, tr.track_id) for row, tr in pairs} == {(0, 2), (1, 1)}


def test_gate_and_label_block_matches():
    mug = _track(1, "Mug", 0.0, 0.0)
    far, other_label = det("Mug", 1.0, 0.0), det("Apple", 0.02, 0.0)
    pairs, unmatched = associate([far, other_label], [[mug], [mug]], MemoryConfig())
    assert pairs == []
    assert unmatched == [0, 1]


def test_gate_keeps_stacked_drawers_apart():
    lower, upper = _track(1, "Drawer", 0.0, 0.0, size=(0.5, 0.5, 0.15)), _track(2, "Drawer", 0.0, 0.0)
    upper.size, upper.center = np.array([0.5, 0.5, 0.15]), np.array([0.0, 0.0, 1.25])  # 0.25 m pitch
    seen = make_detection("Drawer", (0.02, 0.0, 1.24), (0.5, 0.5, 0.15), 0.9)
    pairs, _ = associate([seen], [[lower, upper]], MemoryConfig())
    assert [tr.track_id for _, tr in pairs] == [2]
    lower_only = associate([seen], [[lower]], MemoryConfig())
    assert lower_only[0] == [], "0.24 m above a 0.15 m drawer is another drawer"


def test_gate_grows_with_object_size():
    counter = _track(1, "CounterTop", 0.0, 0.0, size=(3.0, 0.6, 0.9))
    shifted = make_detection("CounterTop", (0.8, 0.0, 1.0), (3.0, 0.6, 0.9), 0.9)
    pairs, _ = associate([shifted], [[counter]], MemoryConfig())
    assert [tr.track_id for _, tr in pairs] == [1]
    mug = _track(2, "Mug", 0.0, 0.0)
    pairs, _ = associate([det("Mug", 0.8, 0.0)], [[mug]], MemoryConfig())
    assert pairs == []


def test_embedding_lets_synonyms_match_and_keeps_different_things_apart():
    vec = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    cup_track = _track(1, "Cup", 0.0, 0.0, embedding=vec)
    mug = make_detection("Mug", (0.05, 0.0, 1.0), (0.1, 0.1, 0.1), 0.9, embedding=[0.99, 0.1, 0.0])
    pairs, _ = associate([mug], [[cup_track]], MemoryConfig())
    assert [tr.track_id for _, tr in pairs] == [1]
    unrelated = make_detection("Mug", (0.05, 0.0, 1.0), (0.1, 0.1, 0.1), 0.9, embedding=[0.0, 1.0, 0.0])
    pairs, _ = associate([unrelated], [[cup_track]], MemoryConfig())
    assert pairs == []


def test_repeated_noisy_detections_keep_one_track_and_average(memory):
    rng = np.random.default_rng(0)
    view = looking(0, 0)
    for t in range(20):
        noise = rng.normal(0, 0.03, 2)
        memory.ingest(frame(float(t), view, det("Mug", 2 + noise[0], 0.5 + noise[1])))
    assert memory.count("Mug") == 1
    center = memory.where_is("Mug").center
    assert np.linalg.norm(center[:2] - [2.0, 0.5]) < 0.03
