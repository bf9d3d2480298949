"""A household scenario shared by the planner tests: someone took a living-room object (book, remote,
keys) to the bed; the task puts it back on the furniture it was on this morning."""

from __future__ import annotations

from robomem.core import Memory, MemoryConfig
from robomem.planner.language import name_of
from robomem.planner.plan import RECEPTACLE_OPENABLE
from robomem_sim.house import House
from robomem_sim.house_runner import HOUSE_CAMERA
from robomem_sim.house_tasks import HouseSetup, start_robot
from robomem_sim.perceive import Eyes, MemoryFeed
from robomem_sim.truth import On, snapshot


def carried_to_bed(house: House, index: int) -> dict:
    """Someone took a living-room object (book, remote, keys) to the bed; the task puts it back on the
    furniture it was on this morning."""
    house.apply_episodes({}, "target")
    morning = snapshot(house)
    living = house.rooms["living_room"].part.object_ids
    thing, holder = next(
        (o, r) for o in living if house.get(o).object_type in ("RemoteControl", "Book", "KeyChain")
        for r in morning.objects[o].receptacles
        if house.get(r).kind != "movable" and house.get(r).object_type not in RECEPTACLE_OPENABLE)
    bed = next(o for o in house.rooms["bedroom"].part.object_ids if house.get(o).object_type == "Bed")
    setup = HouseSetup(index, 2022, (), ((thing, bed),))
    setup.after(house)
    after = snapshot(house)
    assert On(thing, bed).holds(after) and not On(thing, holder).holds(after)
    label, rec = house.get(thing).object_type, house.get(holder).object_type
    near = [round(float(v), 2) for v in house.center(holder)[:2]]
    good = [{"skill": "navigate_to", "object": label}, {"skill": "pick", "object": label},
            {"skill": "navigate_to", "object": rec, "near": near}, {"skill": "place", "object": rec, "near": near}]
    return {"setup": setup, "thing": thing, "holder": holder, "label": label, "rec": rec, "good": good,
            "instruction": f"put the {name_of(label)} on the {name_of(rec)}"}


def remembered(house: House, s: dict, db_path: str = ":memory:") -> Memory:
    """Memory fed by the robot's camera only: it went to the bed and to the holder and looked."""
    s["setup"].after(house)
    memory = Memory(MemoryConfig(db_path=db_path, rooms=house.rooms_config()))
    eyes = Eyes()
    eyes.feeds.append(MemoryFeed(memory))
    robot = start_robot(house, HOUSE_CAMERA)
    robot.on_frame = eyes.see
    for target in (s["thing"], s["holder"]):
        assert robot.navigate_to(target)
        eyes.see(robot.observe())
    house.client.removeBody(robot.body)
    assert memory.where_is(s["label"]) is not None and memory.where_is(s["rec"]) is not None
    return memory
