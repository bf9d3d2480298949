"""The core's collaborators work alone, each built from its explicit dependencies, without a Memory."""

from collections import Counter

import numpy as np

from robomem.core.belief import Belief
from robomem.core.config import MemoryConfig
from robomem.core.journal import Journal
from robomem.core.lifecycle import Lifecycle
from robomem.core.relations import Relations
from robomem.core.scene_graph import SceneGraph
from robomem.core.storage import SQLiteStore
from robomem.core.track_store import TrackStore
from robomem.core.tracks import CONFIRMED, PARENT, holders
from robomem.core.types import make_detection


def _parts(tmp_path=None):
    config = MemoryConfig()
    counters: Counter[str] = Counter()
    tracks, journal, graph = TrackStore(config), Journal(config, counters), SceneGraph()
    lifecycle = Lifecycle(config, tracks, journal, counters)
    return config, tracks, journal, graph, lifecycle


def _confirmed(lifecycle, label, center, size, t):
    track = lifecycle.create(make_detection(label, center, size, 0.95), t, "r1")
    assert lifecycle.take_single_checks() == [track]  # one sighting awaits its support check
    lifecycle.confirm(track, t)  # what the ingest pipeline does once relations say it rests on something
    assert track.status == CONFIRMED
    return track


def test_relations_alone_derive_holders_as_facts():
    config, tracks, journal, graph, lifecycle = _parts()
    relations = Relations(config, tracks, journal, graph)
    table = _confirmed(lifecycle, "DiningTable", (0, 0, 0.4), (1.2, 0.8, 0.8), 1.0)
    bowl = _confirmed(lifecycle, "Bowl", (0.2, 0, 0.85), (0.2, 0.2, 0.1), 1.0)
    apple = _confirmed(lifecycle, "Apple", (0.2, 0, 0.87), (0.08, 0.08, 0.08), 1.0)
    relations.update(1.0)
    assert bowl.history(PARENT).value_now() == [table.track_id, "on"]
    assert apple.history(PARENT).value_now() == [bowl.track_id, "in"]
    assert [(h.track_id, r) for h, r in holders(apple, tracks.tracks)] == [(bowl.track_id, "in"),
                                                                          (table.track_id, "on")]
    assert graph.descendants(table.track_id) == {bowl.track_id, apple.track_id}
    lifecycle.place(apple, np.array([3.0, 3.0, 0.04]), apple.size, 2.0)  # taken away, onto the floor
    relations.update(2.0)
    assert apple.history(PARENT).value_now() is None
    assert apple.history(PARENT).value_at(1.5) == [bowl.track_id, "in"], "the past holder stays a fact"


def test_belief_alone_answers_past_and_present_from_facts():
    config, tracks, journal, graph, lifecycle = _parts()
    mug = _confirmed(lifecycle, "Mug", (1, 0, 1), (0.1, 0.1, 0.1), 10.0)
    journal.now = 10.0
    lifecycle.place(mug, np.array([4.0, 0.0, 1.0]), mug.size, 20.0)
    journal.now = 20.0
    belief = Belief(tracks, journal, SQLiteStore(":memory:"), graph)
    assert belief.pose_at(mug, 15.0)[0].tolist() == [1.0, 0.0, 1.0]
    assert belief.pose_at(mug, None)[0].tolist() == [4.0, 0.0, 1.0]
    assert belief.believed(mug, 5.0) is False, "not yet seen at 5 s"
    assert belief.first("mug", 15.0) is mug


def test_journal_alone_writes_what_it_recorded(tmp_path):
    config, tracks, journal, graph, lifecycle = _parts()
    store = SQLiteStore(tmp_path / "j.sqlite")
    mug = _confirmed(lifecycle, "Mug", (1, 0, 1), (0.1, 0.1, 0.1), 1.0)
    journal.emit(1.0, mug, "appeared", {})
    journal.flush(store, tracks.tracks, {"now": "1.0"})
    store.sync()
    state = store.load()
    assert [row[0] for row in state.tracks] == [mug.track_id]
    assert {f.predicate for f in state.facts} == {"pose", "status"}
    assert journal.stm.events()[-1].change == "appeared"
    assert journal.subjects_between(0.5, 1.0) == [mug.track_id]
    assert journal.subjects_between(1.0, 2.0) == []
    store.close()
