"""Furniture seen in part, drawers that slide open, and what was on furniture at a past time."""

from __future__ import annotations

import numpy as np
from frames import frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.association import boxes_intersect, overlap_fraction
from robomem.core.types import make_detection


def _box(label: str, lo: tuple[float, float, float], hi: tuple[float, float, float], **state) -> object:
    lo_, hi_ = np.array(lo), np.array(hi)
    return make_detection(label, (lo_ + hi_) / 2.0, hi_ - lo_, 0.95, state or None)


def test_overlap_fraction_counts_a_face_inside_a_box_and_not_a_stacked_neighbour() -> None:
    bed_c, bed_s = np.array([0.0, 0.0, 0.3]), np.array([2.0, 1.6, 0.6])
    top = overlap_fraction(np.array([0.3, 0.0, 0.6]), np.array([1.0, 1.2, 0.0]), bed_c, bed_s, 0.1)
    assert top == 1.0  # the top surface seen edge-on lies in the bed's box
    drawer_c, drawer_s = np.array([0.0, 0.0, 0.3]), np.array([0.5, 0.4, 0.15])
    above = overlap_fraction(drawer_c + [0.0, 0.0, 0.15], drawer_s, drawer_c, drawer_s, 0.1)
    assert above < 0.5  # the drawer stacked on top touches it: another drawer


def test_partial_views_of_a_sofa_make_one_track_holding_the_whole_box() -> None:
    memory = Memory(MemoryConfig())
    views = [  # left end, right end, then the seat seen from above: centers 1 m apart, sizes 2x apart
        _box("Sofa", (0.0, 2.0, 0.0), (1.0, 2.9, 0.9)),
        _box("Sofa", (1.2, 2.0, 0.0), (2.2, 2.9, 0.9)),
        _box("Sofa", (0.2, 2.1, 0.45), (2.0, 2.8, 0.45)),
        _box("Sofa", (0.6, 2.0, 0.0), (1.6, 2.9, 0.9)),
    ]
    for k, sofa in enumerate(views):
        memory.ingest(frame(float(k + 1), looking(1.1, 0.0, yaw=90.0), sofa))
    assert memory.count("Sofa") == 1
    sofa = memory.where_is("Sofa")
    assert sofa is not None and sofa.size[0] > 1.9 and abs(sofa.center[0] - 1.1) < 0.1
    assert not [e for e in memory.stm.events() if e.change in ("moved", "disappeared")]


def test_two_chairs_side_by_side_stay_two() -> None:
    memory = Memory(MemoryConfig())
    for t in (1.0, 2.0, 3.0):
        memory.ingest(frame(t, looking(0.5, -2.0, yaw=90.0),
                            _box("Chair", (0.0, 0.0, 0.0), (0.5, 0.5, 0.9)),
                            _box("Chair", (0.65, 0.0, 0.0), (1.15, 0.5, 0.9))))
    assert memory.count("Chair") == 2


def test_an_opening_drawer_stays_one_drawer_and_its_contents_slide_with_it() -> None:
    memory = Memory(MemoryConfig())
    view = looking(0.2, -2.5, yaw=90.0)
    closed = _box("Drawer", (0.0, 0.0, 0.5), (0.5, 0.45, 0.65), isOpen=False)
    opened = _box("Drawer", (0.0, -0.42, 0.5), (0.5, 0.03, 0.65), isOpen=True)  # slid 0.42 m out
    key = make_detection("KeyChain", (0.25, -0.2, 0.55), (0.06, 0.04, 0.02), 0.95)
    for t in (1.0, 2.0):
        memory.ingest(frame(t, view, closed))
    for t in (3.0, 4.0):
        memory.ingest(frame(t, view, opened, key))
    assert memory.count("Drawer") == 1
    assert memory.state("Drawer", "isOpen") is True
    inside = memory.where_is("KeyChain")
    assert inside is not None and (inside.receptacle, inside.relation) == ("Drawer", "in")
    for t in (5.0, 6.0, 7.0, 8.0, 9.0, 10.0):  # shut again: the key is hidden inside, not gone
        memory.ingest(frame(t, view, closed))
    assert memory.count("Drawer") == 1
    assert memory.state("Drawer", "isOpen") is False
    drawer = memory.where_is("Drawer")
    assert drawer is not None and abs(drawer.center[1] - 0.225) < 0.02  # back in its closed box
    key_now = memory.where_is("KeyChain")
    assert key_now is not None and (key_now.receptacle, key_now.relation) == ("Drawer", "in")
    assert abs(key_now.center[1] - 0.22) < 0.05  # slid in with the drawer
    assert not [e for e in memory.stm.events() if e.change in ("moved", "disappeared", "appeared")]


def test_past_contents_of_a_sofa_seen_in_parts() -> None:
    memory = Memory(MemoryConfig())
    view = looking(1.1, 0.0, yaw=90.0)
    remote = make_detection("RemoteControl", (1.8, 2.5, 0.47), (0.15, 0.05, 0.03), 0.95)
    parts = [_box("Sofa", (0.0, 2.0, 0.0), (1.0, 2.9, 0.45)), _box("Sofa", (1.2, 2.0, 0.0), (2.2, 2.9, 0.45)),
             _box("Sofa", (0.0, 2.0, 0.0), (2.2, 2.9, 0.45))]
    for k, part in enumerate(parts):
        memory.ingest(frame(float(k + 1), view, part, remote))
    morning = memory.now
    for t in range(10, 20):  # the remote is taken away; the sofa is seen in part
        memory.ingest(frame(float(t), view, parts[t % 2]))
    assert memory.contents("Sofa") == []
    past = memory.contents("Sofa", at=morning)
    assert [info.label for info in past] == ["RemoteControl"]
    was = memory.where_is("RemoteControl", at=morning)
    assert was is not None and (was.receptacle, was.relation) == ("Sofa", "on")
    assert memory.count("Sofa") == 1


def test_a_closed_cabinet_next_to_an_open_one_is_another_cabinet() -> None:
    """An opened/closed pairing needs the boxes to overlap (a door swings about its cabinet, a drawer
    slides by less than its depth): a closed cabinet 0.67 m beside one memory has open is not that one
    closed, and what is in the open one stays where it is."""
    memory = Memory(MemoryConfig())
    opened = _box("Cabinet", (0.0, 0.0, 0.0), (0.6, 0.55, 0.8), isOpen=True)
    knife = make_detection("ButterKnife", (0.3, 0.3, 0.45), (0.2, 0.03, 0.02), 0.95)
    neighbour = _box("Cabinet", (0.67, 0.0, 0.0), (1.27, 0.55, 0.8), isOpen=False)
    for t in (1.0, 2.0):
        memory.ingest(frame(t, looking(0.3, -2.0, yaw=90.0, fov=30.0), opened, knife))
    for t in (3.0, 4.0):  # only the neighbour in view (the open one is out of the narrow view)
        memory.ingest(frame(t, looking(1.6, -1.2, yaw=90.0, fov=30.0), neighbour))
    assert memory.count("Cabinet") == 2
    assert memory.state("Cabinet", "isOpen", near=(0.3, 0.27, 0.4)) is True
    cabinet = memory.where_is("Cabinet", near=(0.3, 0.27, 0.4))
    assert cabinet is not None and abs(cabinet.center[0] - 0.3) < 0.05
    inside = memory.where_is("ButterKnife")
    assert inside is not None and abs(inside.center[0] - 0.3) < 0.05
    assert not [e for e in memory.stm.events() if e.change in ("moved", "disappeared")]


def test_boxes_intersect_needs_a_shared_volume() -> None:
    c, s = np.array([[0.0, 0.0, 0.4]]), np.array([[0.6, 0.55, 0.8]])
    assert boxes_intersect(c + [0.5, 0.0, 0.0], s, c, s)[0]  # a door swung half a width out
    assert not boxes_intersect(c + [0.6, 0.0, 0.0], s, c, s)[0]  # the neighbour touching it
    assert not boxes_intersect(c + [0.67, 0.0, 0.0], s, c, s)[0]
    assert boxes_intersect(c + [0.1, 0.0, 0.0], s * [1, 0, 1], c, s)[0]  # a face seen edge-on, inside


def test_a_drawer_slid_out_over_a_shelf_seen_as_a_plane_holds_its_fork() -> None:
    """The drawer (a container) stands on the shelf's top: what is inside it is in the drawer, even
    though the shelf, seen only as its top plane, has less volume than the drawer."""
    memory = Memory(MemoryConfig())
    view = looking(0.2, -2.0, yaw=90.0)
    shelf = _box("Shelf", (-0.05, -0.2, 0.78), (0.4, 0.25, 0.784))
    drawer = _box("Drawer", (0.0, -0.15, 0.796), (0.25, 0.2, 0.88), isOpen=True)
    fork = make_detection("Fork", (0.12, 0.02, 0.807), (0.11, 0.16, 0.001), 0.95)
    for t in (1.0, 2.0, 3.0):
        memory.ingest(frame(t, view, shelf, drawer, fork))
    info = memory.where_is("Fork")
    assert info is not None and (info.receptacle, info.relation) == ("Drawer", "in")
