"""The believed scene graph as a visualization_msgs/MarkerArray for RViz: a box per object, its label,
and a line from each object to its holder (in/on)."""

from __future__ import annotations

from collections.abc import Sequence

from builtin_interfaces.msg import Time
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from robomem.core.retrieval import GraphEdge, GraphNode
from robomem.ros.convert import point_to_msg, vector_to_msg

COLORS = {  # by node kind
    "receptacle": ColorRGBA(r=0.35, g=0.55, b=0.85, a=0.35),
    "object": ColorRGBA(r=0.95, g=0.55, b=0.15, a=0.8),
}
TEXT_COLOR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.9)
LINK_COLOR = ColorRGBA(r=0.2, g=0.9, b=0.3, a=0.9)
MIN_SCALE_M = 0.01  # RViz does not draw zero-sized boxes


def scene_graph_markers(
    nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], stamp: Time, frame_id: str
) -> MarkerArray:
    """Markers in namespaces objects / labels / links; the first marker clears the previous set."""
    markers = [Marker(action=Marker.DELETEALL)]
    centers = {}
    for node in nodes:
        if node.kind == "room":
            continue
        centers[node.node_id] = node.center
        box = Marker(ns="objects", id=node.track_id, type=Marker.CUBE, action=Marker.ADD)
        box.pose.position = point_to_msg(node.center)
        box.pose.orientation.w = 1.0
        box.scale = vector_to_msg([max(float(v), MIN_SCALE_M) for v in node.size])
        box.color = COLORS.get(node.kind, COLORS["object"])
        label = Marker(ns="labels", id=node.track_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.pose.position = point_to_msg(node.center + [0.0, 0.0, float(node.size[2]) / 2 + 0.05])
        label.pose.orientation.w = 1.0
        label.scale.z = 0.06
        label.color = TEXT_COLOR
        label.text = f"{node.label}#{node.track_id}"
        markers += [box, label]
    links = Marker(ns="links", id=0, type=Marker.LINE_LIST, action=Marker.ADD, color=LINK_COLOR)
    links.pose.orientation.w = 1.0
    links.scale.x = 0.01
    for edge in edges:
        if edge.child in centers and edge.parent in centers:
            links.points += [point_to_msg(centers[edge.child]), point_to_msg(centers[edge.parent])]
    if links.points:
        markers.append(links)
    for marker in markers:
        marker.header.stamp = stamp
        marker.header.frame_id = frame_id
    return MarkerArray(markers=markers)
