"""Object states (open, on, dirty, openness, ...): when a new value is a change, and of what kind."""

from __future__ import annotations

from typing import Any

#: Boolean keys with named changes (value True -> first name, False -> second).
#: AI2-THOR's names (isOpen, isToggled) mean the same as open / on.
BOOLEAN_CHANGES = {
    "open": ("opened", "closed"),
    "isOpen": ("opened", "closed"),
    "on": ("turned_on", "turned_off"),
    "isToggled": ("turned_on", "turned_off"),
}
#: Fractional keys (0..1) with named changes when they rise / fall by at least ``fraction_change``.
FRACTION_CHANGES = {"openness": ("opened", "closed")}
#: The keys :func:`is_open` reads.
OPEN_KEYS = ("open", "isOpen", "openness")
#: Other names detectors and simulators give the known states (AI2-THOR's isOpen, isToggled, ...), by
#: their lower-case, separator-free spelling; :func:`canonical_key` maps them to one key.
KEY_ALIASES = {
    "isopen": "open", "opened": "open", "istoggled": "on", "toggled": "on", "ison": "on", "poweredon": "on",
    "isdirty": "dirty", "issliced": "sliced", "iscooked": "cooked", "isfilledwithliquid": "filled",
    "isfilled": "filled", "filledwithliquid": "filled", "isbroken": "broken", "isused": "used",
}
#: The state keys memory knows the meaning of (others are kept as observed, under their own name).
KNOWN_KEYS = frozenset({"open", "on", "dirty", "sliced", "cooked", "filled", "broken", "used", "openness"})


def canonical_key(key: str) -> str:
    """One name per state: 'isOpen', 'is_open' and 'open' are 'open'; unknown keys are kept as given."""
    folded = "".join(ch for ch in key.lower() if ch.isalnum())
    if folded in KNOWN_KEYS:
        return folded
    return KEY_ALIASES.get(folded, KEY_ALIASES.get("is" + folded, key))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def differs(old: Any, new: Any, tolerance: float) -> bool:
    """Whether ``new`` is a different observed value (numbers within ``tolerance`` are the same)."""
    if old is None:
        return new is not None
    if _is_number(old) and _is_number(new):
        return abs(float(new) - float(old)) > tolerance
    return old != new or type(old) is not type(new)


def change_kind(key: str, old: Any, new: Any, tolerance: float, fraction_change: float) -> str | None:
    """The spec's change name for old -> new, or None when it is no change worth reporting."""
    if old is None or new is None or not differs(old, new, tolerance):
        return None
    if key in BOOLEAN_CHANGES and isinstance(new, bool) and isinstance(old, bool):
        return BOOLEAN_CHANGES[key][0 if new else 1]
    if key in FRACTION_CHANGES and _is_number(old) and _is_number(new):
        delta = float(new) - float(old)
        if abs(delta) < fraction_change:
            return None
        return FRACTION_CHANGES[key][0 if delta > 0 else 1]
    return "state"


def is_open(states: dict[str, Any]) -> bool | None:
    """Open, closed or unknown, from 'open' (or 'isOpen') or else 'openness' (> 0.05 counts as open)."""
    for key in ("open", "isOpen"):
        if isinstance(states.get(key), bool):
            return states[key]
    openness = states.get("openness")
    if _is_number(openness):
        return float(openness) > 0.05
    return None
