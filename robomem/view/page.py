"""``robomem view``: a static page of a memory file: a top-down map (rooms, furniture and objects as
memory believes them, a line from each object to its holder), a table of the objects with their holder,
room and states, and, with ``focus``, one object's history on a timeline (status, holder, place and
states over time). One self-contained HTML file (inline SVG, no script, no network) and a PNG of the
same map and timeline (matplotlib)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from robomem.core import MemoryConfig
from robomem.view.snapshot import ObjectView, Snapshot, Span, take_snapshot

PAGE_MARGIN_PX = 16
HEADER_PX = 72  # the map's top-left corner is at (PAGE_MARGIN_PX, PAGE_MARGIN_PX + HEADER_PX) on the page
MAP_WIDTH = 900
MAP_MAX_HEIGHT = 700
PAD_M = 0.4
SMALL_FOOTPRINT_M2 = 0.1  # objects smaller than this get their label on the map
COLORS = {"receptacle": ("#5b8cd6", "#2c4f8a", 0.35), "object": ("#f08c26", "#9a5410", 0.9)}
TIMELINE_COLORS = {"status": "#8e6cc2", "holder": "#3f9b5a", "place": "#d6823b"}


def write_view(db: Path | str, out: Path | str, focus: str | None = None, png: bool = True,
               config: MemoryConfig | None = None) -> list[Path]:
    """Write ``index.html`` (and ``map.png``) of the memory in ``db`` into ``out``; returns the paths."""
    snap = take_snapshot(db, config, focus)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(render_html(snap))
    written = [page]
    if png:
        written.append(render_png(snap, out / "map.png"))
    return written


# ---------------------------------------------------------------------- geometry
def _bounds(snap: Snapshot) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for o in snap.objects:
        xs += [o.center[0] - o.size[0] / 2, o.center[0] + o.size[0] / 2]
        ys += [o.center[1] - o.size[1] / 2, o.center[1] + o.size[1] / 2]
    for _, lo, hi in snap.rooms:
        xs += [lo[0], hi[0]]
        ys += [lo[1], hi[1]]
    if not xs:
        return -1.0, -1.0, 1.0, 1.0
    return min(xs) - PAD_M, min(ys) - PAD_M, max(xs) + PAD_M, max(ys) + PAD_M


class _Projection:
    """Map metres (x east, y north) to SVG pixels (y down), one scale for both axes."""

    def __init__(self, bounds: tuple[float, float, float, float]) -> None:
        self.x0, self.y0, x1, y1 = bounds
        self.scale = min(MAP_WIDTH / max(x1 - self.x0, 1e-6), MAP_MAX_HEIGHT / max(y1 - self.y0, 1e-6))
        self.width = math.ceil((x1 - self.x0) * self.scale)
        self.height = math.ceil((y1 - self.y0) * self.scale)
        self.y1 = y1

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.scale, (self.y1 - y) * self.scale

    def rect(self, center: Sequence[float], size: Sequence[float]) -> tuple[float, float, float, float]:
        left, top = self.point(center[0] - size[0] / 2, center[1] + size[1] / 2)
        return left, top, max(size[0] * self.scale, 2.0), max(size[1] * self.scale, 2.0)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _states(o: ObjectView) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(o.states.items()))


# ---------------------------------------------------------------------- HTML
def render_map_svg(snap: Snapshot) -> str:
    proj = _Projection(_bounds(snap))
    parts = [f'<svg id="map" xmlns="http://www.w3.org/2000/svg" width="{proj.width}" height="{proj.height}" '
             f'viewBox="0 0 {proj.width} {proj.height}" role="img" aria-label="top-down map of memory">',
             f'<rect x="0" y="0" width="{proj.width}" height="{proj.height}" fill="#fbfbf8"/>']
    for name, lo, hi in snap.rooms:
        x, y = proj.point(lo[0], hi[1])
        parts.append(f'<rect class="room" x="{x:.1f}" y="{y:.1f}" width="{(hi[0] - lo[0]) * proj.scale:.1f}" '
                     f'height="{(hi[1] - lo[1]) * proj.scale:.1f}" fill="none" stroke="#555" stroke-dasharray="6 4"/>'
                     f'<text x="{x + 4:.1f}" y="{y + 14:.1f}" font-size="13" font-weight="bold" fill="#444">'
                     f'{_e(name)}</text>')
    by_id = {o.track_id: o for o in snap.objects}
    ordered = sorted(snap.objects, key=lambda o: (o.kind != "receptacle", -o.size[0] * o.size[1]))
    for o in ordered:
        fill, stroke, alpha = COLORS.get(o.kind, COLORS["object"])
        x, y, w, h = proj.rect(o.center, o.size)
        parts.append(f'<rect class="{_e(o.kind)}" data-label="{_e(o.label)}" data-id="{o.track_id}" '
                     f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" '
                     f'fill-opacity="{alpha}" stroke="{stroke}"><title>{_e(o.label)} #{o.track_id}'
                     f'{" " + _e(o.holder) if o.holder else ""}</title></rect>')
    for child, parent, _relation in snap.edges:
        if child in by_id and parent in by_id:
            (x0, y0), (x1, y1) = proj.point(*by_id[child].center[:2]), proj.point(*by_id[parent].center[:2])
            parts.append(f'<line class="edge" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                         f'stroke="#333" stroke-width="1" stroke-opacity="0.6"/>')
    for o in ordered:
        small = o.size[0] * o.size[1] < SMALL_FOOTPRINT_M2
        x, y = proj.point(o.center[0], o.center[1] + (o.size[1] / 2 if small else 0.0))
        parts.append(f'<text class="label" x="{x:.1f}" y="{y - 2:.1f}" text-anchor="middle" '
                     f'font-size="{10 if small else 11}" fill="{"#000" if small else "#1d3763"}">{_e(o.label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_timeline_svg(snap: Snapshot) -> str:
    if not snap.history:
        return ""
    rows = sorted({(s.track_id, s.predicate) for s in snap.history})
    start = min(s.start for s in snap.history)
    end = max([snap.now, *(s.end for s in snap.history if s.end is not None), start + 1e-3])
    left, width, row_h = 190, 700, 26
    height = 30 + row_h * len(rows)

    def x_of(t: float) -> float:
        return left + (t - start) / (end - start) * width

    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}">']
    for k, (track_id, predicate) in enumerate(rows):
        y = 20 + k * row_h
        parts.append(f'<text x="4" y="{y + 16}" font-size="12">#{track_id} {_e(predicate)}</text>')
        for s in (s for s in snap.history if (s.track_id, s.predicate) == (track_id, predicate)):
            x0, x1 = x_of(s.start), x_of(s.end if s.end is not None else end)
            color = TIMELINE_COLORS.get(s.predicate, "#4a90a4")
            parts.append(f'<rect class="span" x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="{row_h - 6}" fill="{color}" fill-opacity="0.55" stroke="#fff">'
                         f'<title>{_e(s.predicate)}: {_e(s.value)} '
                         f'[{s.start:g}, {"now" if s.end is None else f"{s.end:g}"})</title></rect>')
            if x1 - x0 > 7 * len(s.value):
                parts.append(f'<text x="{x0 + 3:.1f}" y="{y + 16}" font-size="11">{_e(s.value)}</text>')
    parts.append(f'<text x="{left}" y="{height - 2}" font-size="11">t = {start:g} s</text>'
                 f'<text x="{left + width}" y="{height - 2}" font-size="11" text-anchor="end">t = {end:g} s</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(snap: Snapshot) -> str:
    rows = "\n".join(
        f'<tr data-label="{_e(o.label)}" data-id="{o.track_id}">'
        f'<td class="label">{_e(o.label)}</td><td>{o.track_id}</td>'
        f"<td>{_e(o.kind)}</td><td class=\"holder\">{_e(o.holder)}</td><td>{_e(o.room)}</td>"
        f'<td class="states">{_e(_states(o))}</td><td>{_e(o.status)}</td><td>{o.last_seen:g}</td></tr>'
        for o in snap.objects)
    history = ""
    if snap.focus:
        items = "\n".join(f"<li>#{s.track_id} {_e(s.predicate)} = {_e(s.value)} from {s.start:g} "
                          f"{'(now)' if s.end is None else f'to {s.end:g}'}</li>"
                          for s in sorted(snap.history, key=lambda s: (s.start, s.track_id, s.predicate)))
        history = (f'<h2>History of {_e(snap.focus)}</h2>\n{render_timeline_svg(snap)}\n'
                   f'<ul id="history">{items}</ul>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>robomem memory: {_e(Path(snap.source).name)}</title>
<style>
body {{ font-family: sans-serif; margin: {PAGE_MARGIN_PX}px; color: #222; background: #fff; }}
header {{ height: {HEADER_PX}px; overflow: hidden; display: flow-root; }} h1 {{ margin: 0; font-size: 24px; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
th {{ background: #eee; }} #map {{ display: block; }}
</style></head>
<body>
<header><h1>Memory {_e(Path(snap.source).name)}</h1>
<p id="summary">{len(snap.objects)} objects believed present ({snap.tracks_total} tracks in all), memory time
{snap.now:g} s.</p></header>
{render_map_svg(snap)}
<h2>Objects</h2>
<table id="objects"><thead><tr><th>label</th><th>id</th><th>kind</th><th>holder</th><th>room</th><th>states</th>
<th>status</th><th>last seen</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{history}
</body></html>
"""


# ---------------------------------------------------------------------- PNG
def render_png(snap: Snapshot, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = sorted({(s.track_id, s.predicate) for s in snap.history})
    fig = plt.figure(figsize=(11, 8 + (0.35 * len(rows) + 1 if rows else 0)), dpi=100)
    ax = fig.add_axes((0.05, 0.3 if rows else 0.05, 0.9, 0.65 if rows else 0.9))
    x0, y0, x1, y1 = _bounds(snap)
    for name, lo, hi in snap.rooms:
        ax.add_patch(Rectangle(lo, hi[0] - lo[0], hi[1] - lo[1], fill=False, ls="--", ec="0.3"))
        ax.text(lo[0] + 0.05, hi[1] - 0.05, name, va="top", fontsize=9, weight="bold")
    by_id = {o.track_id: o for o in snap.objects}
    for o in snap.objects:
        fill, stroke, alpha = COLORS.get(o.kind, COLORS["object"])
        ax.add_patch(Rectangle((o.center[0] - o.size[0] / 2, o.center[1] - o.size[1] / 2), o.size[0], o.size[1],
                               fc=fill, ec=stroke, alpha=alpha, zorder=3 if o.kind == "receptacle" else 4))
        ax.text(o.center[0], o.center[1], o.label, fontsize=6, ha="center", zorder=6)
    for child, parent, _ in snap.edges:
        if child in by_id and parent in by_id:
            (a, b), (c, d) = by_id[child].center[:2], by_id[parent].center[:2]
            ax.plot([a, c], [b, d], color="0.2", lw=0.6, zorder=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(f"{Path(snap.source).name}: {len(snap.objects)} objects believed (t = {snap.now:g} s)")
    if rows:
        tl = fig.add_axes((0.2, 0.04, 0.75, 0.2))
        start = min(s.start for s in snap.history)
        end = max([snap.now, *(s.end for s in snap.history if s.end is not None), start + 1e-3])
        for k, row in enumerate(rows):
            for s in (s for s in snap.history if (s.track_id, s.predicate) == row):
                stop = s.end if s.end is not None else end
                tl.barh(k, stop - s.start, left=s.start, color=TIMELINE_COLORS.get(s.predicate, "#4a90a4"),
                        alpha=0.6, edgecolor="white")
                tl.text(s.start, k, f" {s.value}", va="center", fontsize=6)
        tl.set_yticks(range(len(rows)), [f"#{t} {p}" for t, p in rows], fontsize=7)
        tl.set_xlim(start, end)
        tl.set_xlabel("memory time (s)")
        tl.set_title(f"history of {snap.focus}", fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return path


def spans_of(snap: Snapshot, predicate: str) -> list[Span]:
    """The history's spans of one predicate, in time order."""
    return sorted((s for s in snap.history if s.predicate == predicate), key=lambda s: s.start)
