"""A multi-room home from real iTHOR rooms of one index (kitchen FloorPlanK, living room 200+K,
bedroom 300+K, bathroom 400+K) on one shared floor.

The rooms line a hallway (running along map x, rooms on both sides and at its ends): each room
keeps its own frame's orientation, is translated so that the wall holding its doorway faces the
hallway, and gets walls all round with a 1 m doorway where its floor is free on the inside. The
hallway has walls where no room borders it. Every room's RoomR episode is applied independently
(:meth:`House.apply_episodes`). Room regions (name + xy box, map frame) feed ``MemoryConfig.rooms``
(:meth:`House.rooms_config`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robomem.thor.scene import floor_height, load_scene_metadata
from robomem_sim.navigation import NavGrid
from robomem_sim.scene import WALL_THICK_M, Doorway, RoomPart, Scene

ROOM_TYPES = (("kitchen", 0), ("living_room", 200), ("bedroom", 300), ("bathroom", 400))
TRAIN_INDICES = tuple(range(1, 21))  # RoomR train rooms (rooms 26-30 are held out: never built here)
VAL_INDICES = (21, 22, 23, 24, 25)  # RoomR val rooms
HOUSE_INDICES = TRAIN_INDICES + VAL_INDICES
HALL_WIDTH_M = 1.4
DOOR_WIDTH_M = 1.0
DOOR_DEPTH_M = 0.5  # the floor this far inside a doorway must be free of furniture
DOOR_MARGIN_M = 0.15  # a doorway stays this far from the room's corners
#: Things on a wall that a doorway may replace (they are taken out of the scene where it goes).
WALL_DECOR = frozenset({"LightSwitch", "Painting", "Mirror", "Poster"})


@dataclass(frozen=True)
class DoorOption:
    """Where a room can have its doorway: wall side, position along the wall (room frame), free run."""

    side: str  # "-y" (doorway in the wall at the room's low y), "+y", "-x" or "+x"
    pos: float  # along the wall
    run_m: float


@functools.lru_cache(maxsize=32)
def door_options(scene: str) -> tuple[np.ndarray, np.ndarray, tuple[DoorOption, ...]]:
    """The room's footprint (lo, hi; its own map frame) and the best doorway position on each wall
    (where a 1 m doorway opens onto free floor reachable from the room's largest free area), from
    the room's own navigation grid."""
    with Scene(scene, walls=False) as room:
        grid = NavGrid(room, None, ignore=WALL_DECOR)
        lo, hi = room.floor_lo.copy(), room.floor_hi.copy()
    cells = grid.centers()
    on_floor = (cells[0] > lo[0]) & (cells[0] < hi[0]) & (cells[1] > lo[1]) & (cells[1] < hi[1])
    obstacle = (grid.clearance <= 1e-9) & on_floor
    out = []
    for side in ("-y", "+y", "-x", "+x"):
        axis = "xy".index(side[1])
        along = 1 - axis
        wall = lo[axis] if side[0] == "-" else hi[axis]
        off = np.abs(cells[axis] - wall)
        depth, inner = off <= DOOR_DEPTH_M, np.abs(off - 0.3) <= grid.cell / 2 + 1e-6
        ok = []
        for pos in np.arange(lo[along] + DOOR_MARGIN_M + DOOR_WIDTH_M / 2,
                             hi[along] - DOOR_MARGIN_M - DOOR_WIDTH_M / 2, grid.cell):
            d = np.abs(cells[along] - pos)
            if not obstacle[(d <= DOOR_WIDTH_M / 2) & depth].any() and grid.free[inner & (d <= grid.cell)].any():
                ok.append(float(pos))
        runs, start = [], 0  # the middle of the longest run of good positions
        for k in range(1, len(ok) + 1):
            if k == len(ok) or ok[k] - ok[k - 1] > 1.5 * grid.cell:
                runs.append((ok[k - 1] - ok[start], (ok[start] + ok[k - 1]) / 2))
                start = k
        if runs:
            run, pos = max(runs)
            out.append(DoorOption(side, pos, run))
    return lo, hi, tuple(out)


@dataclass
class HouseRoom:
    """A room of the house: its kind, iTHOR scene, built part and doorway (map frame)."""

    name: str  # kitchen | living_room | bedroom | bathroom
    scene: str
    part: RoomPart
    door: Doorway

    @property
    def lo(self) -> np.ndarray:
        return self.part.floor_lo

    @property
    def hi(self) -> np.ndarray:
        return self.part.floor_hi

    def contains(self, xy: Any) -> bool:
        p = np.asarray(xy, float)[:2]
        return bool(np.all(p >= self.lo) and np.all(p <= self.hi))


class House(Scene):
    """iTHOR rooms of one index along a hallway (see module doc). ``start_xy``: the robot's place
    at the start of every task (middle of the hallway)."""

    def __init__(self, index: int, room_types: tuple[tuple[str, int], ...] = ROOM_TYPES) -> None:
        super().__init__(f"House{index}", rooms=False)
        self.index = index
        self.rooms: dict[str, HouseRoom] = {}
        plan, length = self._layout([(name, f"FloorPlan{base + index}") for name, base in room_types])
        t = WALL_THICK_M
        self.hall_lo, self.hall_hi = np.array([0.0, 0.0]), np.array([length, HALL_WIDTH_M])
        hall_gaps: list[Doorway] = []
        for p in plan:
            meta = load_scene_metadata(p["scene"])
            offset = np.array([*(p["lo"] - p["raw_lo"]), -floor_height(meta)])
            option: DoorOption = p["door"]
            axis = "xy".index(option.side[1])
            door_at = float(option.pos + offset[1 - axis])
            door: Doorway = (option.side, door_at, DOOR_WIDTH_M)
            part = self.add_room(p["scene"], offset, walls=True, doorways=[door])
            self._clear_doorway(part, door)
            room = HouseRoom(p["name"], p["scene"], part, door)
            self.rooms[p["name"]] = room
            facing = ("+" if option.side[0] == "-" else "-") + option.side[1]  # the hallway's wall
            hall_wall = self.hall_hi[axis] if facing[0] == "+" else self.hall_lo[axis] - t
            sill_lo, sill_hi = np.zeros(2), np.zeros(2)
            sill_lo[axis], sill_hi[axis] = hall_wall, hall_wall + t
            sill_lo[1 - axis], sill_hi[1 - axis] = door_at - DOOR_WIDTH_M / 2, door_at + DOOR_WIDTH_M / 2
            self.add_floor(sill_lo, sill_hi)
            if axis == 1:  # a room along the hallway: its own wall closes the hallway's side there
                hall_gaps.append((facing, float(room.lo[0] + room.hi[0]) / 2, float(room.hi[0] - room.lo[0] + 2 * t)))
            else:  # a room at an end of the hallway: the hallway's end wall has the doorway
                hall_gaps.append((facing, door_at, DOOR_WIDTH_M))
        self.add_floor(self.hall_lo, self.hall_hi)
        self.structure += self.wall_bodies(self.hall_lo, self.hall_hi, hall_gaps)
        self.start_xy = (float(length) / 2, HALL_WIDTH_M / 2)

    def _clear_doorway(self, part: RoomPart, door: Doorway) -> None:
        """Take wall decor out of the doorway's opening."""
        side, at, width = door
        axis = "xy".index(side[1])
        wall = part.floor_lo[axis] if side[0] == "-" else part.floor_hi[axis]
        for oid in part.object_ids:
            obj = self.objects[oid]
            if obj.object_type not in WALL_DECOR:
                continue
            lo, hi = self.box(oid)
            near = lo[axis] <= wall + DOOR_DEPTH_M and hi[axis] >= wall - DOOR_DEPTH_M
            if near and lo[1 - axis] <= at + width / 2 and hi[1 - axis] >= at - width / 2:
                self.remove(oid)

    @staticmethod
    def _layout(rooms: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], float]:
        """Where each room goes: along the hallway's sides (doorway in its -y or +y wall, rooms side by
        side from x = 0) or at one of its ends (doorway in its -x or +x wall, centred on the hallway),
        whichever lengthens the hallway least; returns the placements and the hallway's length."""
        t = WALL_THICK_M
        chosen: list[tuple[str, str, np.ndarray, np.ndarray, DoorOption]] = []
        ends = {"-y": 0.0, "+y": 0.0}  # next free x on the hallway's low / high side
        used_ends: set[str] = set()
        for name, scene in rooms:
            raw_lo, raw_hi, options = door_options(scene)
            size = raw_hi - raw_lo

            def cost(o: DoorOption, size: np.ndarray = size) -> tuple[float, float]:
                if o.side[1] == "x":
                    return (0.5 if o.side not in used_ends else np.inf, -o.run_m)
                hall_side = "+y" if o.side == "-y" else "-y"
                grow = ends[hall_side] + (2 * t if ends[hall_side] else 0.0) + size[0] - max(ends.values())
                return (max(grow, 0.0), -o.run_m)

            best = min(options, key=cost, default=None)
            if best is None or not np.isfinite(cost(best)[0]):
                raise ValueError(f"{scene}: no wall with room for a doorway")
            if best.side[1] == "x":
                used_ends.add(best.side)
            else:
                hall_side = "+y" if best.side == "-y" else "-y"
                ends[hall_side] += (2 * t if ends[hall_side] else 0.0) + size[0]
            chosen.append((name, scene, raw_lo, size, best))
        length = max(max(ends.values()), 2.0)
        fill = {"-y": 0.0, "+y": 0.0}
        placed = []
        for name, scene, raw_lo, size, door in chosen:
            if door.side[1] == "y":
                hall_side = "+y" if door.side == "-y" else "-y"
                x0 = fill[hall_side] + (2 * t if fill[hall_side] else 0.0)
                fill[hall_side] = x0 + size[0]
                y0 = HALL_WIDTH_M + t if hall_side == "+y" else -t - size[1]
            else:  # doorway centred on the hallway's axis
                y0 = HALL_WIDTH_M / 2 - (door.pos - raw_lo[1])
                x0 = length + t if door.side == "-x" else -t - size[0]
            placed.append({"name": name, "scene": scene, "raw_lo": raw_lo, "size": size,
                           "lo": np.array([x0, y0]), "door": door})
        return placed, length

    # ------------------------------------------------------------------ regions and episodes

    def rooms_config(self) -> list[dict[str, Any]]:
        """Room regions for ``MemoryConfig.rooms``: each room's floor and the hallway (map frame)."""
        out = [{"name": r.name, "min": [float(v) for v in r.lo], "max": [float(v) for v in r.hi]}
               for r in self.rooms.values()]
        out.append({"name": "hallway", "min": [float(v) for v in self.hall_lo],
                    "max": [float(v) for v in self.hall_hi]})
        return out

    def room_at(self, xy: Any) -> str | None:
        """The room (kitchen, ..., hallway) whose floor holds the point, or None."""
        for room in self.rooms.values():
            if room.contains(xy):
                return room.name
        p = np.asarray(xy, float)[:2]
        return "hallway" if np.all(p >= self.hall_lo) and np.all(p <= self.hall_hi) else None

    def room_scene(self, name: str) -> str:
        return self.rooms[name].scene

    def apply_episodes(self, episodes: Mapping[str, dict[str, Any] | None], which: str = "target") -> None:
        """Apply each room's RoomR episode (keyed by room name or iTHOR scene) in the ``which``
        arrangement; rooms not listed get their plain metadata arrangement."""
        for room in self.rooms.values():
            ep = episodes.get(room.name, episodes.get(room.scene))
            self.apply_episode(ep, which, room=room.scene)
        self.held.clear()


def split_of(index: int) -> str:
    """The RoomR split of a room index: train (1-20) or val (21-25); the held-out 26-30 are refused."""
    if index in TRAIN_INDICES:
        return "train"
    if index in VAL_INDICES:
        return "val"
    raise ValueError(f"no house of room index {index}: RoomR has train rooms 1-20 and val rooms 21-25 here "
                     "(26-30 are held out)")


@functools.lru_cache(maxsize=64)
def house_room_types(index: int) -> tuple[tuple[str, int], ...]:
    """The room types a house of ``index`` gets: all four, less any room with no wall free for a doorway."""
    split_of(index)
    kept = list(ROOM_TYPES)
    for _ in ROOM_TYPES:
        plan = [(name, f"FloorPlan{base + index}") for name, base in kept]
        try:
            House._layout(plan)
            return tuple(kept)
        except ValueError as exc:
            bad = [rt for rt, (_, scene) in zip(kept, plan, strict=True) if str(exc).startswith(f"{scene}:")]
            if not bad or len(kept) <= 2:
                raise
            kept.remove(bad[0])
    return tuple(kept)


def build_house(index: int) -> House:
    """The house of iTHOR index ``index`` (train 1-20, val 21-25): four rooms, or three when one has no
    wall free for a doorway."""
    return House(index, house_room_types(index))
