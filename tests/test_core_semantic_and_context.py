"""Semantic search with the real offline MiniLM model, and the token-budgeted planner context."""

import numpy as np
import pytest
from frames import det, frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.embedding import MiniLMEmbedder, VectorIndex
from robomem.core.render import estimate_tokens, render_context


@pytest.fixture(scope="module")
def embedder(text_model: MiniLMEmbedder) -> MiniLMEmbedder:
    return text_model


def test_model_gives_unit_vectors_that_rank_meaning(embedder):
    vectors = embedder.embed(["cup", "mug", "refrigerator", "sofa"])
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cup, mug, fridge, sofa = vectors
    assert cup @ mug > cup @ fridge and cup @ mug > cup @ sofa


def test_vector_index_finds_updates_and_forgets():
    index = VectorIndex(dim=3, capacity=2)
    index.add(1, np.array([1, 0, 0], dtype=np.float32))
    index.add(2, np.array([0, 1, 0], dtype=np.float32))
    index.add(3, np.array([0, 0, 1], dtype=np.float32))  # beyond the initial capacity: resizes
    assert index.search(np.array([0.9, 0.1, 0]), k=1)[0][0] == 1
    index.remove(1)
    assert index.search(np.array([0.9, 0.1, 0]), k=1)[0][0] == 2
    index.add(1, np.array([0, 0.2, 1], dtype=np.float32))  # back, with a new vector
    assert index.search(np.array([0, 0, 1]), k=2)[0][0] in (1, 3)
    assert len(index) == 3


def test_search_cup_finds_a_mug(tmp_path, embedder):
    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite")), embedder=embedder)
    view = looking(0, 0, fov=360)
    for t in range(3):
        memory.ingest(frame(t, view, det("Mug", 2, 0), det("Fridge", -2, 0), det("Sofa", 0, 3),
                            det("RemoteControl", 0, -3)))
    labels = [info.label for info, _ in memory.search("cup")]
    assert labels[0] == "Mug"
    assert "Sofa" not in labels
    assert memory.search("tv remote")[0][0].label == "RemoteControl"
    assert memory.search("couch")[0][0].label == "Sofa"


def test_context_stays_within_budget_and_leads_with_what_was_asked(tmp_path, embedder):
    memory = Memory(MemoryConfig(db_path=str(tmp_path / "m.sqlite")), embedder=embedder)
    view = looking(0, 0, fov=360)
    clutter = [det("Book", 3 + 0.3 * i, -3) for i in range(25)]
    for t in range(3):
        memory.ingest(frame(t, view, det("CounterTop", 2, 0, 0.45), det("Apple", 2, 0, 0.95), *clutter))
    for budget in (60, 150, 1000):
        text = render_context(memory, "where is the apple", token_budget=budget)
        assert estimate_tokens(text) <= budget
    small = render_context(memory, "apple", token_budget=80)
    assert "Apple#" in small and "on CounterTop#" in small
    assert small.count("Book#") < 25
    big = render_context(memory, "apple", token_budget=2000)
    assert big.count("Book#") == 25
