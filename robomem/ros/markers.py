"""The believed scene graph as ROS messages: robomem/SceneGraph and, for RViz, a
visualization_msgs/MarkerArray (a box per object, its label, a line from each object to its holder).

Building ten thousand message objects in Python costs about a second, so both are built from
per-object caches: an object's messages are rebuilt only when its label, kind, box or holder changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from builtin_interfaces.msg import Time
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robomem import msg as rmsg
from robomem.core.states import canonical_key
from robomem.core.types import GraphEdge, GraphNode
from robomem.ros.convert import point_to_msg, vector_to_msg

COLORS = {  # by node kind
    "receptacle": ColorRGBA(r=0.35, g=0.55, b=0.85, a=0.35),
    "object": ColorRGBA(r=0.95, g=0.55, b=0.15, a=0.8),
}
OPEN_COLOR = ColorRGBA(r=0.2, g=0.85, b=0.35, a=0.45)  # an open receptacle (isOpen true)
ON_COLOR = ColorRGBA(r=1.0, g=0.9, b=0.1, a=0.85)  # a device switched on (isToggled true)
ROOM_COLOR = ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.15)
ROOM_HEIGHT_M = 0.02  # rooms are drawn as floor areas
TEXT_COLOR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.9)
LINK_COLOR = ColorRGBA(r=0.2, g=0.9, b=0.3, a=0.9)  # in / on
#: Link colours of the other relations: hanging from a holder, part of a piece of furniture, on the floor
RELATION_COLORS = {
    "hanging": ColorRGBA(r=0.8, g=0.3, b=0.9, a=0.9),
    "part_of": ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.6),
    "on_floor": ColorRGBA(r=0.9, g=0.8, b=0.5, a=0.9),
}
MIN_SCALE_M = 0.01  # RViz does not draw zero-sized boxes


def _node_key(node: GraphNode, state: dict | None = None) -> tuple:
    return (node.node_id, node.kind, node.label, tuple(round(float(v), 4) for v in (*node.center, *node.size)),
            tuple(sorted((state or {}).items())))


def shown(state: dict | None) -> dict[str, bool]:
    """The states RViz shows, under the core's keys (``open``, ``on``; AI2-THOR's isOpen, isToggled too)."""
    out: dict[str, bool] = {}
    for key, value in (state or {}).items():
        name = canonical_key(key)
        if name in ("open", "on") and isinstance(value, bool):
            out[name] = value
    return out


def state_text(state: dict) -> str:
    """' open' / ' closed', ' on' / ' off' for the states RViz shows."""
    state = shown(state)
    words = []
    if "open" in state:
        words.append("open" if state["open"] else "closed")
    if "on" in state:
        words.append("on" if state["on"] else "off")
    return "".join(f" {w}" for w in words)


def _room_markers(node: GraphNode, frame_id: str, marker_id: int) -> tuple[Marker, Marker]:
    area = Marker(ns="rooms", id=marker_id, type=Marker.CUBE, action=Marker.ADD, color=ROOM_COLOR)
    area.pose.position = point_to_msg([float(node.center[0]), float(node.center[1]), 0.0])
    area.pose.orientation.w = 1.0
    area.scale = vector_to_msg([max(float(node.size[0]), MIN_SCALE_M), max(float(node.size[1]), MIN_SCALE_M),
                                ROOM_HEIGHT_M])
    name = Marker(ns="room_names", id=marker_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, color=TEXT_COLOR)
    name.pose.position = point_to_msg([float(node.center[0]), float(node.center[1]), 0.1])
    name.pose.orientation.w = 1.0
    name.scale.z = 0.25
    name.text = node.label
    for marker in (area, name):
        marker.header.frame_id = frame_id
    return area, name


def _object_markers(node: GraphNode, frame_id: str, state: dict | None = None) -> tuple[Marker, Marker]:
    box = Marker(ns="objects", id=node.track_id, type=Marker.CUBE, action=Marker.ADD)
    box.pose.position = point_to_msg(node.center)
    box.pose.orientation.w = 1.0
    box.scale = vector_to_msg([max(float(v), MIN_SCALE_M) for v in node.size])
    flags = shown(state)
    box.color = COLORS.get(node.kind, COLORS["object"])
    if flags.get("open"):
        box.color = OPEN_COLOR
    if flags.get("on"):
        box.color = ON_COLOR
    label = Marker(ns="labels", id=node.track_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
    label.pose.position = point_to_msg(node.center + [0.0, 0.0, float(node.size[2]) / 2 + 0.05])
    label.pose.orientation.w = 1.0
    label.scale.z = 0.06
    label.color = TEXT_COLOR
    label.text = f"{node.label}#{node.track_id}{state_text(state or {})}"
    for marker in (box, label):
        marker.header.frame_id = frame_id  # stamp 0: "the latest transform", right for a map-fixed picture
    return box, label


class GraphMessages:
    """Builds SceneGraph and MarkerArray messages, reusing each object's messages while it is unchanged."""

    def __init__(self, frame_id: str, max_marker_objects: int = 2000) -> None:
        self.frame_id = frame_id
        self.max_marker_objects = max_marker_objects
        self._nodes: dict[str, tuple[tuple, rmsg.SceneGraphNode]] = {}
        self._markers: dict[str, tuple[tuple, tuple[Marker, Marker]]] = {}

    def graph(self, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], stamp: Time) -> rmsg.SceneGraph:
        fresh: dict[str, tuple[tuple, rmsg.SceneGraphNode]] = {}
        for node in nodes:
            key = _node_key(node)
            cached = self._nodes.get(node.node_id)
            if cached is None or cached[0] != key:
                cached = (key, rmsg.SceneGraphNode(
                    id=node.node_id, kind=node.kind, label=node.label, track_id=int(node.track_id),
                    center=point_to_msg(node.center), size=vector_to_msg(node.size)))
            fresh[node.node_id] = cached
        self._nodes = fresh
        out = rmsg.SceneGraph(
            nodes=[entry[1] for entry in fresh.values()],
            edges=[rmsg.SceneGraphEdge(child=e.child, parent=e.parent, relation=e.relation) for e in edges],
        )
        out.header.stamp = stamp
        out.header.frame_id = self.frame_id
        return out

    def markers(self, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge],
                states: dict[int, dict] | None = None) -> MarkerArray:
        """Markers in namespaces objects / labels / links (coloured by relation: RELATION_COLORS; a thing on
        the floor gets a line down to where it stands) for at most ``max_marker_objects`` objects (the
        receptacles first, then the lowest ids), rooms / room_names for the rooms with an area (floor
        boxes); ``states``: track id -> the shown states (open/closed and on/off recolour the box and
        end its label). The first marker clears the previous set."""
        states = states or {}
        objects = sorted((n for n in nodes if n.kind != "room"), key=lambda n: (n.kind != "receptacle", n.track_id))
        objects = objects[: self.max_marker_objects]
        fresh: dict[str, tuple[tuple, tuple[Marker, Marker]]] = {}
        out = [Marker(action=Marker.DELETEALL)]
        centers = {}
        rooms = sorted((n for n in nodes if n.kind == "room" and float(n.size[0]) > 0 and float(n.size[1]) > 0),
                       key=lambda n: n.node_id)
        for index, room in enumerate(rooms):
            out += _room_markers(room, self.frame_id, index)
        for node in objects:
            state = states.get(node.track_id)
            key = _node_key(node, state)
            cached = self._markers.get(node.node_id)
            if cached is None or cached[0] != key:
                cached = (key, _object_markers(node, self.frame_id, state))
            fresh[node.node_id] = cached
            out += cached[1]
            centers[node.node_id] = node.center
        self._markers = fresh
        links = Marker(ns="links", id=0, type=Marker.LINE_LIST, action=Marker.ADD, color=LINK_COLOR)
        links.header.frame_id = self.frame_id
        links.pose.orientation.w = 1.0
        links.scale.x = 0.01
        bottoms = {n.node_id: n.center - [0.0, 0.0, float(n.size[2]) / 2.0] for n in objects}
        for edge in edges:
            if edge.relation == "on_floor" and edge.child in centers:  # down to where it stands
                ends = (centers[edge.child], bottoms[edge.child])
            elif edge.child in centers and edge.parent in centers:
                ends = (centers[edge.child], centers[edge.parent])
            else:
                continue
            links.points += [point_to_msg(end) for end in ends]
            links.colors += [RELATION_COLORS.get(edge.relation, LINK_COLOR)] * 2
        if links.points:
            out.append(links)
        out[0].header.frame_id = self.frame_id
        return MarkerArray(markers=out)
