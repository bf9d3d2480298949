"""Relations beyond in/on: things that hang from holders, things on the floor, things held by several
overlapping receptacle boxes, and furniture believed on one sighting only where it can stand."""

from __future__ import annotations

import numpy as np
from frames import frame, looking

from robomem.core import Memory, MemoryConfig
from robomem.core.geometry import boxes_held, hangs_from, rests_on_floor
from robomem.core.types import make_detection

# Three pieces of furniture standing on a floor at z = 0: memory learns the floor from them.
FURNITURE = [
    make_detection("Sofa", (3.0, 1.5, 0.4), (2.0, 0.9, 0.8), 0.95),
    make_detection("SideTable", (3.0, -1.0, 0.3), (0.5, 0.5, 0.6), 0.95),
    make_detection("Dresser", (3.0, -2.5, 0.5), (0.6, 1.0, 1.0), 0.95),
]


def _seen(memory: Memory, *detections, times=(1.0, 2.0, 3.0)) -> None:
    for t in times:
        memory.ingest(frame(t, looking(0.0, 0.0, fov=170.0, rng=6.0), *FURNITURE, *detections))


def test_geometry_of_hanging_floor_and_shared_holding() -> None:
    rail_c, rail_s = np.array([0.0, 0.0, 1.40]), np.array([0.66, 0.04, 0.05])
    towel_s = np.array([0.50, 0.04, 0.60])
    assert hangs_from(np.array([0.02, 0.0, 1.12]), towel_s, rail_c, rail_s, 0.08)  # top at the rail
    assert not hangs_from(np.array([0.02, 0.0, 0.60]), towel_s, rail_c, rail_s, 0.08)  # a metre below it
    assert not hangs_from(np.array([0.60, 0.0, 1.12]), towel_s, rail_c, rail_s, 0.08)  # beside, not under
    assert rests_on_floor(np.array([0, 0, 0.2]), np.array([0.3, 0.3, 0.4]), 0.0, 0.15)
    assert not rests_on_floor(np.array([0, 0, 0.6]), np.array([0.3, 0.3, 0.4]), 0.0, 0.15)
    assert not rests_on_floor(np.array([0, 0, 0.2]), np.array([0.3, 0.3, 0.4]), None, 0.15)  # floor unknown
    sink_c, sink_s = np.array([0.0, 0.0, 0.85]), np.array([0.9, 0.6, 0.14])  # a sink's box around its basin
    sponge_c, sponge_s = np.array([0.35, 0.2, 0.935]), np.array([0.1, 0.15, 0.03])  # on the counter at the rim
    held = boxes_held(np.array([sponge_c, sponge_c + [0.6, 0.0, 0.0]]), np.array([sponge_s, sponge_s]), sink_c, sink_s,
                      0.02, 0.12)
    assert held.tolist() == [True, False]  # on the rim, held; 60 cm beside it, not


def test_a_towel_hangs_from_its_holder_and_is_its_content() -> None:
    memory = Memory(MemoryConfig())
    holder = make_detection("TowelHolder", (2.0, 0.0, 1.40), (0.66, 0.04, 0.05), 0.95)
    towel = make_detection("Towel", (2.0, 0.02, 1.12), (0.5, 0.04, 0.6), 0.95)
    _seen(memory, holder, towel)
    info = memory.where_is("Towel")
    assert info is not None and info.receptacle == "TowelHolder" and info.relation == "hanging"
    assert [i.label for i in memory.contents("TowelHolder")] == ["Towel"]


def test_what_stands_on_the_floor_is_on_the_floor_and_what_floats_is_not() -> None:
    memory = Memory(MemoryConfig())
    basket = make_detection("Basket", (1.5, 0.5, 0.18), (0.4, 0.4, 0.35), 0.95)
    boots = make_detection("Boots", (1.5, -0.5, 0.1), (0.3, 0.2, 0.2), 0.95)
    vase = make_detection("Vase", (3.0, -1.0, 0.72), (0.15, 0.15, 0.24), 0.95)  # on the side table
    _seen(memory, basket, boots, vase)
    assert memory.floor_height() is not None and abs(memory.floor_height()) < 0.02
    assert memory.where_is("Boots").receptacle == "Floor"
    assert memory.where_is("Vase").receptacle == "SideTable"
    assert memory.where_is("Sofa").receptacle == "Floor"  # furniture stands on it too
    on_floor = sorted(i.label for i in memory.contents("Floor"))
    assert on_floor == ["Basket", "Boots"]  # objects, not the furniture; not the vase on the table
    assert sorted(i.label for i in memory.contents("Floor", at=2.5)) == on_floor  # and at a past time


def test_a_thing_at_the_sinks_rim_is_in_the_contents_of_the_sink_and_the_counter() -> None:
    memory = Memory(MemoryConfig())
    counter = make_detection("CounterTop", (2.0, 0.0, 0.91), (2.4, 0.7, 0.02), 0.95)
    sink = make_detection("Sink", (2.0, 0.0, 0.84), (0.9, 0.6, 0.14), 0.95)
    basin = make_detection("SinkBasin", (2.0, 0.0, 0.80), (0.4, 0.4, 0.12), 0.95)
    sponge = make_detection("DishSponge", (2.35, 0.2, 0.935), (0.1, 0.15, 0.03), 0.95)
    fork = make_detection("Fork", (2.0, 0.0, 0.78), (0.2, 0.03, 0.02), 0.95)
    mug = make_detection("Mug", (1.0, 0.1, 0.97), (0.1, 0.1, 0.1), 0.95)  # on the counter, away from the sink
    _seen(memory, counter, sink, basin, sponge, fork, mug)
    assert memory.where_is("Fork").receptacle == "SinkBasin"  # the most specific holder
    assert sorted(i.label for i in memory.contents("Sink")) == ["DishSponge", "Fork"]
    assert sorted(i.label for i in memory.contents("CounterTop")) == ["DishSponge", "Mug"]
    assert [i.label for i in memory.contents("SinkBasin")] == ["Fork"]


def test_furniture_seen_once_floating_in_the_air_is_not_believed() -> None:
    memory = Memory(MemoryConfig())
    _seen(memory)
    view = looking(0.0, 0.0, fov=170.0, rng=6.0)
    ghost = make_detection("Drawer", (2.0, 0.5, 1.3), (0.4, 0.5, 0.15), 0.8)  # no cabinet, no floor under it
    memory.ingest(frame(4.0, view, *FURNITURE, ghost))
    memory.ingest(frame(11.0, view, *FURNITURE))  # past the wait for a holder to show up
    assert memory.count("Drawer") == 0
    tv = make_detection("Television", (2.0, -1.0, 1.5), (1.0, 0.08, 0.6), 0.97)  # on a wall: sure enough
    memory.ingest(frame(12.0, view, *FURNITURE, tv))
    assert memory.count("Television") == 1
    drawer = make_detection("Drawer", (3.0, -2.5, 0.8), (0.5, 0.9, 0.2), 0.8)  # in the dresser memory knows
    memory.ingest(frame(13.0, view, *FURNITURE, drawer))
    assert memory.count("Drawer") == 1


def test_the_scene_graph_and_the_planner_context_show_hanging_floor_and_parts() -> None:
    from robomem.core.render import render_context

    memory = Memory(MemoryConfig())
    holder = make_detection("TowelHolder", (2.0, 0.0, 1.40), (0.66, 0.04, 0.05), 0.95)
    towel = make_detection("Towel", (2.0, 0.02, 1.12), (0.5, 0.04, 0.6), 0.95)
    boots = make_detection("Boots", (1.5, -0.5, 0.1), (0.3, 0.2, 0.2), 0.95)
    drawer = make_detection("Drawer", (3.0, -2.5, 0.8), (0.5, 0.9, 0.2), 0.95)  # in the dresser
    _seen(memory, holder, towel, boots, drawer)
    nodes, edges = memory.scene_graph()
    label = {n.node_id: n.label for n in nodes}
    relations = {(label[e.child], label.get(e.parent, e.parent), e.relation) for e in edges}
    assert ("Towel", "TowelHolder", "hanging") in relations
    assert ("Drawer", "Dresser", "part_of") in relations
    assert any(child == "Boots" and relation == "on_floor" for child, _, relation in relations)
    text = render_context(memory, "towel boots", token_budget=400)
    assert "Towel" in text and "hanging from TowelHolder" in text
    assert any("Boots" in line and "on the floor" in line for line in text.splitlines())


def test_a_sponge_sunk_into_the_counters_thin_box_by_noise_is_on_the_counter_not_the_drawer_below() -> None:
    memory = Memory(MemoryConfig())
    counter = make_detection("CounterTop", (5.6, -0.26, 0.95), (2.5, 0.75, 0.02), 0.95)
    drawer = make_detection("Drawer", (4.63, -0.52, 0.79), (0.63, 0.25, 0.15), 0.95)  # its top 6 cm lower
    sponge = make_detection("DishSponge", (4.59, -0.51, 0.945), (0.16, 0.15, 0.03), 0.95)  # centre in the slab
    _seen(memory, counter, drawer, sponge)
    assert memory.where_is("DishSponge").receptacle == "CounterTop"


def test_partial_views_in_the_episode_generator_cut_one_axis_of_the_box() -> None:
    from robomem.eval.simulate import _part_of_box

    rng = np.random.default_rng(3)
    center, size = np.array([1.0, 2.0, 3.0]), np.array([0.4, 0.6, 0.8])
    for _ in range(50):
        part_c, part_s = _part_of_box(center, size, rng)
        cut = np.flatnonzero(~np.isclose(part_s, size))
        assert len(cut) == 1 and 0.4 * size[cut[0]] <= part_s[cut[0]] <= 0.9 * size[cut[0]]
        lo, hi = part_c - part_s / 2, part_c + part_s / 2
        assert np.all(lo >= center - size / 2 - 1e-9) and np.all(hi <= center + size / 2 + 1e-9)  # inside the box


def test_a_second_box_of_one_mug_is_not_what_holds_it() -> None:
    """Two tracks of one mug on the side table (a second, larger box around the first): neither is the
    other's holder; both stand on the side table."""
    memory = Memory(MemoryConfig())
    mug = make_detection("Mug", (3.0, -1.0, 0.66), (0.10, 0.10, 0.12), 0.95)
    double = make_detection("Mug", (3.0, -1.0, 0.67), (0.30, 0.30, 0.14), 0.95)
    _seen(memory, mug, double)
    mugs = [t for t in memory.believed_tracks() if t.label == "Mug"]
    assert len(mugs) == 2
    for track in mugs:
        info = memory.where_is("Mug", near=track.center)
        assert info.track_id == track.track_id and info.receptacle == "SideTable" and info.relation == "on"
    assert memory.contents("Mug") == []


def test_a_remote_on_the_low_shelf_of_a_side_table_is_on_the_shelf_not_the_table() -> None:
    """A side table and its shelf: two boxes of about one size (the shelf's a little larger). The remote lies
    inside both, low: it is on the level under it, the shelf (the smaller box is the table)."""
    memory = Memory(MemoryConfig())
    table = make_detection("SideTable", (1.0, -2.5, 0.36), (0.65, 1.02, 0.72), 0.95)
    shelf = make_detection("Shelf", (1.0, -2.5, 0.47), (0.66, 0.99, 0.74), 0.95)
    remote = make_detection("RemoteControl", (1.1, -2.7, 0.25), (0.2, 0.05, 0.02), 0.95)
    _seen(memory, table, shelf, remote)
    assert memory.where_is("RemoteControl").receptacle == "Shelf"
    assert "RemoteControl" in [i.label for i in memory.contents("Shelf")]
