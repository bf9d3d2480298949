"""A compact, token-budgeted text rendering of the relevant part of the scene graph for an LLM."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from robomem.core.config import label_to_text, normalize_label
from robomem.core.geometry import rests_on_floor
from robomem.core.relations import HANGING
from robomem.core.tracks import Track

if TYPE_CHECKING:
    from robomem.core.memory import Memory


def estimate_tokens(text: str) -> int:
    """Tokens an LLM tokenizer spends on ``text``: ~4 characters each for English and numbers."""
    return math.ceil(len(text) / 4)


def _name(track: Track) -> str:
    return f"{track.label}#{track.track_id}"


def _object_line(memory: Memory, track: Track) -> str:
    x, y, z = (round(float(v), 2) for v in track.center)
    parts = [f"- {_name(track)} at ({x}, {y}, {z})"]
    parent = track.history("parent").value_now()
    if parent and parent[0] in memory.tracks:
        parts.append(f"{'hanging from' if parent[1] == HANGING else parent[1]} {_name(memory.tracks[parent[0]])}")
    elif rests_on_floor(track.center, track.size, memory.floor_height(), memory.config.floor_tolerance_m):
        parts.append("on the floor")
    states = {k: track.history(f"state:{k}").value_now() for k in track.state_keys()}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(states.items()) if v is not None)
    if shown:
        parts.append(f"[{shown}]")
    parts.append(f"seen t={track.last_seen:.1f}")
    return " ".join(parts)


def relevant_tracks(memory: Memory, query: str, min_similarity: float = 0.5) -> list[Track]:
    """Believed tracks whose label matches words of the query (exactly or by meaning), then their holders."""
    words = {normalize_label(w) for w in query.replace(",", " ").split() if w}
    direct: list[Track] = []
    for track in memory.believed_tracks():
        if normalize_label(track.label) in words or normalize_label(label_to_text(track.label)) in words:
            direct.append(track)
    if query.strip():
        seen = {t.track_id for t in direct}
        for info, _ in memory.search(query, k=20, min_similarity=min_similarity):
            if info.track_id not in seen:
                direct.append(memory.tracks[info.track_id])
                seen.add(info.track_id)
    ordered: list[Track] = []
    for track in direct:
        for node in [track.track_id, *memory.graph.ancestors_chain(track.track_id)]:
            if isinstance(node, int) and all(node != t.track_id for t in ordered):
                ordered.append(memory.tracks[node])
    return ordered


def render_context(memory: Memory, query: str = "", token_budget: int = 400, max_changes: int = 8) -> str:
    """Header, the objects relevant to ``query`` with their holders, recent changes, then the rest,
    cut where the budget ends."""
    with memory.lock:
        return _render(memory, query, token_budget, max_changes)


def _render(memory: Memory, query: str, token_budget: int, max_changes: int) -> str:
    believed = memory.believed_tracks()
    lines = [f"Memory at t={memory.now:.1f}: {len(believed)} objects believed present."]
    budget = token_budget - estimate_tokens(lines[0])
    sections: list[tuple[str, list[str]]] = []
    relevant = relevant_tracks(memory, query) if query.strip() else []
    sections.append(("Relevant objects:", [_object_line(memory, t) for t in relevant]))
    changes = [
        f"- t={e.t:.1f} {e.label}#{e.track_id} {e.change}" for e in reversed(memory.stm.events()[-max_changes:])
    ]
    sections.append(("Recent changes:", changes))
    shown = {t.track_id for t in relevant}
    rest = sorted((t for t in believed if t.track_id not in shown), key=lambda t: -t.last_seen)
    sections.append(("Other objects:", [_object_line(memory, t) for t in rest]))
    for title, body in sections:
        if not body or budget <= estimate_tokens(title) + 1:
            continue
        lines.append(title)
        budget -= estimate_tokens(title) + 1
        for line in body:
            cost = estimate_tokens(line) + 1
            if cost > budget:
                break
            lines.append(line)
            budget -= cost
    return "\n".join(lines)
