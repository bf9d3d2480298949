"""How far the robot drives between two points of a home: through doorways, not through walls.

A robot reports its floor plan with its viewpoints (``Executor.rooms()``): besides each room's
viewpoints, an entry ``floor:<room>`` holds the room's floor box ([lower corner, upper corner]) and
``door:<room>`` each doorway as [point inside the room, point outside it] (outside: the hallway or the
room next door). :class:`FloorPlan` turns that into a visibility graph (networkx): within one room, or
within the space outside the rooms (the hallway), a straight line; between them, through the doorways'
points. Without a floor plan every distance is a straight line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import networkx as nx

FLOOR, DOOR = "floor:", "door:"
HALLWAY = ""  # the space outside every room's floor box


def is_plan_entry(name: str) -> bool:
    """A ``rooms()`` entry that is part of the floor plan, not a room's viewpoints."""
    return name.startswith((FLOOR, DOOR))


class FloorPlan:
    """Rooms (floor boxes) and their doorways; :meth:`distance` is the shortest path through doorways."""

    def __init__(self, floors: Mapping[str, tuple[tuple[float, float], tuple[float, float]]],
                 doors: Mapping[str, Sequence[tuple[tuple[float, float], tuple[float, float]]]]) -> None:
        self.floors = dict(floors)
        self.graph = nx.Graph()
        self._region_nodes: dict[str, list[str]] = {}
        for room, pairs in doors.items():
            for k, (inside, outside) in enumerate(pairs):
                a, b = f"{room}/{k}/in", f"{room}/{k}/out"
                self.graph.add_node(a, xy=tuple(inside))
                self.graph.add_node(b, xy=tuple(outside))
                self.graph.add_edge(a, b, weight=math.dist(inside, outside))
                self._region_nodes.setdefault(room, []).append(a)
                self._region_nodes.setdefault(self.room_at(outside), []).append(b)
        for nodes in self._region_nodes.values():  # the doorways of one region see each other
            for i, a in enumerate(nodes):
                for b in nodes[i + 1:]:
                    self.graph.add_edge(a, b, weight=math.dist(self.graph.nodes[a]["xy"], self.graph.nodes[b]["xy"]))

    @classmethod
    def from_rooms(cls, rooms: Mapping[str, Sequence[Sequence[float]]]) -> FloorPlan | None:
        """The floor plan in a robot's ``rooms()`` answer, or None when it has none."""
        floors, doors = {}, {}
        for name, points in rooms.items():
            pts = [(float(p[0]), float(p[1])) for p in points]
            if name.startswith(FLOOR) and len(pts) == 2:
                floors[name[len(FLOOR):]] = (pts[0], pts[1])
            elif name.startswith(DOOR) and len(pts) >= 2:
                doors[name[len(DOOR):]] = [(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 2)]
        return cls(floors, doors) if floors and doors else None

    def room_at(self, xy: Sequence[float]) -> str:
        """The room whose floor box holds the point (:data:`HALLWAY` outside them all)."""
        for name, (lo, hi) in self.floors.items():
            if lo[0] <= xy[0] <= hi[0] and lo[1] <= xy[1] <= hi[1]:
                return name
        return HALLWAY

    def distance(self, a: Sequence[float], b: Sequence[float]) -> float:
        """Metres from ``a`` to ``b`` (x, y) through doorways (a straight line within one region)."""
        a, b = (float(a[0]), float(a[1])), (float(b[0]), float(b[1]))
        ra, rb = self.room_at(a), self.room_at(b)
        if ra == rb:
            return math.dist(a, b)
        graph = self.graph.copy()
        graph.add_node("a", xy=a)
        graph.add_node("b", xy=b)
        for end, region in (("a", ra), ("b", rb)):
            for node in self._region_nodes.get(region, []):
                graph.add_edge(end, node, weight=math.dist(graph.nodes[end]["xy"], graph.nodes[node]["xy"]))
        try:
            return float(nx.shortest_path_length(graph, "a", "b", weight="weight"))
        except nx.NetworkXNoPath:
            return math.dist(a, b)
