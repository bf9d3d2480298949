"""The current scene graph (networkx): rooms → receptacles/furniture → objects, with in/on edges.

It mirrors memory's *current* beliefs; the past lives in the fact timelines of each track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class Room:
    """An axis-aligned horizontal region of the map."""

    name: str
    min_xy: tuple[float, float]
    max_xy: tuple[float, float]

    def contains(self, point: np.ndarray) -> bool:
        return bool(
            self.min_xy[0] <= point[0] <= self.max_xy[0] and self.min_xy[1] <= point[1] <= self.max_xy[1]
        )


def room_node(name: str) -> str:
    return f"room:{name}"


class SceneGraph:
    """Nodes: ``room:<name>`` strings and track ids (ints). Edges parent → child with a relation."""

    def __init__(self, rooms: list[Room] | None = None, default_room: str = "home") -> None:
        self.graph = nx.DiGraph()
        self.rooms = list(rooms or [])
        self.default_room = default_room
        for room in self.rooms:
            self.graph.add_node(room_node(room.name), kind="room", label=room.name)
        self.graph.add_node(room_node(default_room), kind="room", label=default_room)

    def room_for(self, point: np.ndarray) -> str:
        for room in self.rooms:
            if room.contains(point):
                return room.name
        return self.default_room

    def upsert(self, track_id: int, label: str, center: np.ndarray, size: np.ndarray, receptacle: bool) -> None:
        attrs = {"kind": "object", "label": label, "center": center, "size": size, "receptacle": receptacle}
        self.graph.add_node(track_id, **attrs)
        if self.graph.in_degree(track_id) == 0:
            self.graph.add_edge(room_node(self.room_for(center)), track_id, relation="in")

    def load(self, nodes: Sequence[tuple[int, str, np.ndarray, np.ndarray, bool, Sequence | None]]) -> None:
        """Add many nodes at once, (track id, label, center, size, receptacle, parent): as :meth:`upsert`
        for each, then :meth:`set_parent` for each, in one pass (opening a large memory)."""
        self.graph.add_nodes_from(
            (track_id, {"kind": "object", "label": label, "center": center, "size": size, "receptacle": receptacle})
            for track_id, label, center, size, receptacle, _ in nodes)
        self.graph.add_edges_from(
            (parent[0], track_id, {"relation": parent[1] or "on"}) if parent and parent[0] in self.graph else
            (room_node(self.room_for(center)), track_id, {"relation": "in"})
            for track_id, _, center, _, _, parent in nodes)

    def remove(self, track_id: int) -> None:
        if track_id in self.graph:
            children = list(self.graph.successors(track_id))
            self.graph.remove_node(track_id)
            for child in children:
                self._attach_to_room(child)

    def set_parent(self, track_id: int, parent: Sequence | None) -> None:
        """Hang the node under ``parent`` = [parent id, "in" | "on"], or under its room when None."""
        if track_id not in self.graph:
            return
        for old in list(self.graph.predecessors(track_id)):
            self.graph.remove_edge(old, track_id)
        if parent and parent[0] in self.graph:
            self.graph.add_edge(parent[0], track_id, relation=parent[1] or "on")
        else:
            self._attach_to_room(track_id)

    def _attach_to_room(self, track_id: int) -> None:
        center = self.graph.nodes[track_id]["center"]
        self.graph.add_edge(room_node(self.room_for(center)), track_id, relation="in")

    def parent(self, track_id: int) -> int | str | None:
        preds = list(self.graph.predecessors(track_id)) if track_id in self.graph else []
        return preds[0] if preds else None

    def ancestors_chain(self, track_id: int) -> list[int | str]:
        """Parent, grandparent, ... up to the room."""
        chain: list[int | str] = []
        node = self.parent(track_id)
        while node is not None and node not in chain:
            chain.append(node)
            node = self.parent(node) if isinstance(node, int) else None
        return chain

    def descendants(self, node: int | str) -> set[int]:
        return {n for n in nx.descendants(self.graph, node) if isinstance(n, int)}
