"""The task run's outputs: a summary table, a JSON report and a top-down map of what memory believes.

The map shows the simulator's true object boxes in grey, memory's believed objects on top (receptacles
blue, other objects orange, each labelled) and the scene graph's in/on edges as lines from an object to
its holder, with room outlines and the robot's path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

COLUMNS = (  # (key in summary[mode], heading, format)
    ("success_rate", "success", "{:.0%}"),
    ("mean_explore_steps", "explore steps", "{:.2f}"),
    ("mean_nav_m", "nav m", "{:.1f}"),
    ("mean_nav_steps", "nav cells", "{:.1f}"),
    ("mean_skill_calls", "skill calls", "{:.1f}"),
    ("mean_memory_queries", "memory queries", "{:.1f}"),
    ("mean_wall_s", "wall s/run", "{:.2f}"),
)


SMALL_FOOTPRINT_M2 = 0.1
RECEPTACLE_STYLE = {"fc": "#5b8cd6", "ec": "#2c4f8a", "z": 3, "alpha": 0.35}
OBJECT_STYLE = {"fc": "#f08c26", "ec": "#9a5410", "z": 4, "alpha": 0.9}


@dataclass(frozen=True)
class Box:
    """An axis-aligned box on the map (z up)."""

    label: str
    center: Sequence[float]
    size: Sequence[float]


def summary_table(summary: dict[str, dict[str, Any]], modes: Iterable[str]) -> str:
    """A plain-text table: one row per memory mode."""
    header = ["mode", "runs", *(heading for _, heading, _ in COLUMNS)]
    rows = [header]
    for mode in modes:
        values = summary.get(mode)
        if not values:
            continue
        cells = [mode, str(values.get("n", ""))]
        for key, _, fmt in COLUMNS:
            value = values.get(key)
            cells.append("-" if value is None else fmt.format(value))
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def category_table(summary: dict[str, dict[str, Any]], modes: Iterable[str]) -> str:
    """Success per task category and mode: successes/runs and the 95 % Wilson interval."""
    modes = [m for m in modes if summary.get(m)]
    categories = sorted({c for m in modes for c in summary[m].get("success_by_category", {})})
    rows = [["category", *modes]]
    for category in categories:
        cells = [category]
        for mode in modes:
            c = summary[mode]["success_by_category"].get(category)
            cells.append("-" if not c else f"{c['successes']}/{c['n']} [{c['ci95'][0]:.0%}-{c['ci95'][1]:.0%}]")
        rows.append(cells)
    cells = ["all"]
    for mode in modes:
        m = summary[mode]
        ok = round(m["success_rate"] * m["n"])
        cells.append(f"{ok}/{m['n']} [{m['success_ci95'][0]:.0%}-{m['success_ci95'][1]:.0%}]")
    rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_report(result: dict[str, Any], path: Path) -> Path:
    """The whole result (runs, summary, settings) as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


def draw_map(
    path: Path,
    truth: Sequence[Box],
    believed: Sequence[Any],
    edges: Sequence[Any],
    rooms: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
    robot_path: Sequence[Sequence[float]] = (),
    title: str = "",
) -> Path:
    """Top-down picture. ``believed``: scene-graph nodes (robomem.core.types.GraphNode: node_id,
    kind, label, center, size); ``edges``: GraphEdge (child, parent, relation)."""
    fig, ax = plt.subplots(figsize=(14, 10), dpi=120)
    for name, lo, hi in rooms:
        ax.add_patch(Rectangle((lo[0], lo[1]), hi[0] - lo[0], hi[1] - lo[1], fill=False, lw=1.5, ec="0.3", ls="--"))
        ax.text(lo[0] + 0.1, hi[1] - 0.1, name, va="top", fontsize=11, color="0.25", weight="bold")
    for box in truth:
        _box(ax, box.center, box.size, fc="0.85", ec="0.6", lw=0.5, z=1)
    centers = {}
    for node in believed:
        if node.kind == "room":
            continue
        centers[node.node_id] = node.center
        receptacle = node.kind == "receptacle"
        style = RECEPTACLE_STYLE if receptacle else OBJECT_STYLE
        _box(ax, node.center, node.size, lw=0.8, **style)
        if float(node.size[0]) * float(node.size[1]) < SMALL_FOOTPRINT_M2:  # label objects, not furniture
            ax.text(node.center[0], node.center[1] + float(node.size[1]) / 2 + 0.03, node.label, fontsize=5.5,
                    ha="center", va="bottom", zorder=6)
    for edge in edges:
        if edge.child in centers and edge.parent in centers:
            (x0, y0), (x1, y1) = centers[edge.child][:2], centers[edge.parent][:2]
            ax.plot([x0, x1], [y0, y1], color="#2a9d3c", lw=0.7, zorder=5)
    if len(robot_path) > 1:
        xs, ys = zip(*((p[0], p[1]) for p in robot_path), strict=True)
        ax.plot(xs, ys, color="#c0392b", lw=1.0, alpha=0.6, zorder=2, label="robot path")
    ax.plot([], [], color="#2a9d3c", label="in / on (scene graph)")
    ax.add_patch(Rectangle((0, 0), 0, 0, fc="#f08c26", label="object (memory)"))
    ax.add_patch(Rectangle((0, 0), 0, 0, fc="#5b8cd6", alpha=0.35, label="receptacle (memory)"))
    ax.add_patch(Rectangle((0, 0), 0, 0, fc="0.85", ec="0.6", label="true boxes (simulator)"))
    ax.legend(loc="lower right", fontsize=8)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    if title:
        ax.set_title(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _box(ax: Any, center: Sequence[float], size: Sequence[float], *, fc: str, ec: str, lw: float, z: int,
         alpha: float = 1.0) -> None:
    w, h = max(float(size[0]), 0.02), max(float(size[1]), 0.02)
    ax.add_patch(Rectangle((float(center[0]) - w / 2, float(center[1]) - h / 2), w, h, fc=fc, ec=ec, lw=lw,
                           zorder=z, alpha=alpha))
