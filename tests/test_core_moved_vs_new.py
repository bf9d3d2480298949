"""Telling a moved object from a new instance, and negative evidence."""

from frames import det, frame, looking

from robomem.core.tracks import CONFIRMED, GONE, REJECTED


def _see(memory, t0, view, *dets, times=3):
    for i in range(times):
        memory.ingest(frame(t0 + i, view, *dets))


def test_old_place_seen_empty_then_elsewhere_is_a_move(memory):
    kitchen, table = looking(0, 0, yaw=0), looking(0, 0, yaw=180)
    _see(memory, 0, kitchen, det("Apple", 2, 0))
    _see(memory, 10, kitchen)  # looked where the apple was: nothing
    _see(memory, 20, table, det("Apple", -2, 0))
    assert memory.count("Apple") == 1
    assert abs(memory.where_is("Apple").center[0] + 2) < 0.05
    changes = {(c.label, c.change) for c in memory.what_changed(since=5)}
    assert changes == {("Apple", "moved")}


def test_seen_elsewhere_first_then_old_place_empty_is_merged_into_a_move(memory):
    kitchen, table = looking(0, 0, yaw=0), looking(0, 0, yaw=180)
    _see(memory, 0, kitchen, det("Apple", 2, 0))
    _see(memory, 10, table, det("Apple", -2, 0))  # old place not in view: could be a second apple
    assert memory.count("Apple") == 2
    _see(memory, 20, kitchen, times=1)  # now the old place is seen empty
    assert memory.count("Apple") == 1
    assert abs(memory.where_is("Apple").center[0] + 2) < 0.05
    assert [(c.label, c.change) for c in memory.what_changed(since=5)] == [("Apple", "moved")]


def test_two_present_at_once_are_two(memory):
    wide = looking(0, 0, yaw=90, fov=360)
    _see(memory, 0, wide, det("Apple", 2, 0))
    _see(memory, 10, wide, det("Apple", 2, 0), det("Apple", -2, 0))
    assert memory.count("Apple") == 2
    assert memory.what_changed(since=5) == [] or all(c.change == "appeared" for c in memory.what_changed(since=5))


def test_one_detector_miss_does_not_merge_a_real_second_instance(memory):
    left, right = looking(0, 0, yaw=0), looking(0, 0, yaw=180)
    _see(memory, 0, left, det("Chair", 2, 0), det("Chair", 2, 1.5))  # two chairs: multi-instance label
    _see(memory, 10, right, det("Chair", -2, 0))  # a third chair first seen now
    memory.ingest(frame(20, left, det("Chair", 2, 1.5)))  # detector missed the chair at (2, 0) once
    assert memory.count("Chair") == 3


def test_negative_evidence_marks_gone_and_respects_the_cone(memory):
    view = looking(0, 0, yaw=0, fov=90)
    _see(memory, 0, view, det("Mug", 2, 0), det("Book", -2, 0))  # book seen with a 360 view below
    memory.ingest(frame(3, looking(0, 0, yaw=180), det("Book", -2, 0)))
    for t in range(10, 20):
        memory.ingest(frame(t, view))  # mug's place in view, empty; book behind the camera
    mug = [tr for tr in memory.tracks.values() if tr.label == "Mug"][0]
    book = [tr for tr in memory.tracks.values() if tr.label == "Book"][0]
    assert mug.status == GONE
    assert book.status == CONFIRMED
    assert memory.where_is("Mug") is None
    assert ("Mug", "disappeared") in {(c.label, c.change) for c in memory.what_changed(since=5)}


def test_one_miss_is_weak_evidence(memory):
    view = looking(0, 0)
    _see(memory, 0, view, det("Mug", 2, 0), times=4)
    memory.ingest(frame(10, view))
    assert memory.where_is("Mug") is not None


def test_closed_fridge_hides_its_contents_open_fridge_does_not(memory):
    view = looking(0, 0)
    fridge_open = det("Fridge", 2, 0, 0.9, open=True)
    _see(memory, 0, view, fridge_open, det("Apple", 2, 0, 0.9))
    assert memory.where_is("Apple").receptacle == "Fridge"
    _see(memory, 10, view, det("Fridge", 2, 0, 0.9, open=False), times=5)
    assert memory.where_is("Apple") is not None, "closed fridge: not seeing the apple is no evidence"
    _see(memory, 20, view, det("Fridge", 2, 0, 0.9, open=True), times=10)
    assert memory.where_is("Apple") is None, "open fridge, apple not seen: it is gone"
    kinds = [c.change for c in memory.what_changed(since=5, until=15)]
    assert kinds == ["closed"]


def test_false_detection_is_dismissed_when_its_place_is_seen_empty(memory):
    view = looking(0, 0)
    memory.ingest(frame(0, view, det("Apple", 2, 0, confidence=0.5)))
    assert memory.count("Apple") == 0, "one low-confidence detection is not yet belief"
    _see(memory, 1, view, times=6)  # a tiny apple 2 m away is often missed: each miss is weak evidence
    track = next(iter(memory.tracks.values()))
    assert track.status == REJECTED
    assert memory.where_is("Apple") is None
    assert memory.what_changed(since=-1) == []


def test_appeared_only_where_memory_had_looked_before(memory):
    view = looking(0, 0)
    _see(memory, 0, view, det("Mug", 2, 0), times=8)  # 8 looks: a tiny apple there would have been seen
    _see(memory, 10, view, det("Mug", 2, 0), det("Apple", 2.5, 1.0))
    _see(memory, 15, view, det("Mug", 2, 0), det("Egg", 2.5, -1.5), det("Fridge", 2.5, -1.5, open=True))
    behind = looking(0, 0, yaw=180)
    _see(memory, 20, behind, det("Book", -2, 0))  # never looked there before: a discovery
    changes = {(c.label, c.change) for c in memory.what_changed(since=5)}
    # the egg was inside the fridge (hidden before); the fridge is furniture, found late, not new
    assert changes == {("Apple", "appeared")}


def _kitchen_with_apple(memory):
    scene = (det("CounterTop", 2.0, 0.0, 0.45), det("Fridge", 2.5, 1.5, 0.9, isOpen=False))
    _see(memory, 0, looking(0, 0), *scene, det("Apple", 2.0, 0.1, 0.95))
    return scene


def test_a_weak_sighting_does_not_move_a_believed_object_into_a_closed_fridge(memory):
    """A low-confidence Apple inside the closed fridge while the real one is missed once: no move (a
    belief carried there could never be refuted: nothing sees into a closed fridge)."""
    scene = _kitchen_with_apple(memory)
    memory.ingest(frame(10, looking(0, 0), *scene, det("Apple", 2.5, 1.5, 1.0, confidence=0.45)))
    assert memory.counters["relocations"] == 0
    assert memory.count("Apple") == 1 and abs(memory.where_is("Apple").center[1] - 0.1) < 0.05
    for t in range(11, 20):  # the apple is on the counter all along
        memory.ingest(frame(t, looking(0, 0), *scene, det("Apple", 2.0, 0.1, 0.95)))
    assert memory.count("Apple") == 1 and abs(memory.where_is("Apple").center[1] - 0.1) < 0.05


def test_a_weak_newcomer_is_not_merged_into_a_missed_object(memory):
    counter, fridge = _kitchen_with_apple(memory)
    memory.ingest(frame(10, looking(0, 0, yaw=31, fov=20), fridge,  # the fridge alone in view ...
                        det("Apple", 2.5, 1.5, 1.0, confidence=0.45)))  # ... and a weak Apple in it
    memory.ingest(frame(11, looking(0, 0, yaw=0, fov=20), counter))  # the real one missed once
    assert memory.counters["merges"] == 0
    assert memory.count("Apple") == 1 and abs(memory.where_is("Apple").center[1] - 0.1) < 0.05


def test_a_confident_sighting_elsewhere_still_moves_a_missed_object(memory):
    scene = _kitchen_with_apple(memory)
    _see(memory, 10, looking(0, 0), *scene)  # the counter seen without the apple
    memory.ingest(frame(20, looking(0, 0, yaw=180), det("DiningTable", -2.0, 0.0, 0.4),
                        det("Apple", -2.0, 0.0, 0.85, confidence=0.9)))
    assert memory.count("Apple") == 1 and abs(memory.where_is("Apple").center[0] + 2.0) < 0.05
    assert [(c.label, c.change) for c in memory.what_changed(since=5) if c.label == "Apple"] == [("Apple", "moved")]
