"""Question generation: only questions whose answer the emitted observations determine.

Each ``ask_*`` function returns a list of :class:`Question` (question dict + truth).
Knowledge is judged from the *true* detections emitted up to the question time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from robomem.eval.simulate import Detection, View, views_containing
from robomem.thor.scene import UNDETECTED_TYPES, ThorObject, WorldState

T = TypeVar("T")

STATE_KEYS = ("open", "on", "dirty", "sliced", "cooked", "filled")
MOVED_M = 0.3  # displacement that counts as "moved"
STILL_M = 0.1  # displacement below which an object counts as unmoved
AMBIGUOUS_MOVE_M = (0.1, 0.5)  # seen before+after with a move in here: undecidable
OPENNESS_CHANGE = 0.3  # openness change that counts as opened/closed
AMBIGUOUS_OPENNESS = (0.1, 0.3)
NEAR_MARGIN_M = 0.2  # a near point is this much closer to its instance than to others
NEAR_FAR = (0.55, 1.0)  # where_is/where_was: near is off the truth by more than the 0.5 m
NEAR_CLOSE = (0.0, 0.15)  # state: near only has to pick the instance
MANY_LOOKS = 3  # in this many views yet never detected: memory may call it gone
APPEAR_LOOKS = 2  # walkthrough views on a place where an object turns up later: "appeared"


@dataclass
class Question:
    """One question with its ground truth (``truth`` None = unknown/gone)."""

    t: float
    type: str
    question: dict[str, Any]
    truth: Any
    extra: dict[str, Any] = field(default_factory=dict)


def _r(vec: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in vec]


class Knowledge:
    """What the emitted observations reveal, indexed for question generation."""

    def __init__(
        self,
        worlds: dict[int, WorldState],
        views: list[View],
        detections: list[list[Detection]],
        t_shuffle: float,
    ) -> None:
        self.worlds = worlds
        self.views = views
        self.t_shuffle = t_shuffle
        self.sightings: dict[str, list[float]] = {}
        self.false_times: dict[str, list[float]] = {}
        for view, dets in zip(views, detections, strict=True):
            for det in dets:
                if det.key is None:
                    self.false_times.setdefault(det.label, []).append(view.t)
                else:
                    self.sightings.setdefault(det.key, []).append(view.t)
        before, after = worlds[1], worlds[2]
        self.keys = [o.key for o in before.objects if o.label not in UNDETECTED_TYPES]
        self.keys += [o.key for o in after.objects  # brought in by the shuffle
                      if o.label not in UNDETECTED_TYPES and o.key not in before.by_key]
        self.removed = {k for k in self.keys if k not in after.by_key}
        self.added = {k for k in self.keys if k not in before.by_key}
        self._label = {k: (before.by_key.get(k) or after.by_key[k]).label for k in self.keys}
        self.labels = sorted(set(self._label.values()))
        self.emitted_labels = {self._label[k] for k in self.sightings} | set(self.false_times)
        # the place of a removed (added) object in the arrangement that lacks it: hidden
        # there when it lies inside a closed receptacle of its chain
        self._look_times: dict[tuple[str, int, int], list[float]] = {}  # sorted view times

    # ------------------------------------------------------------------ basics

    def phase(self, t: float) -> int:
        """1 before the shuffle, 2 after it."""
        return 1 if t < self.t_shuffle else 2

    def world(self, t: float) -> WorldState:
        """The true arrangement at time ``t``."""
        return self.worlds[self.phase(t)]

    def obj(self, key: str, t: float) -> ThorObject:
        """The object ``key`` as it is at time ``t`` (KeyError when it is not in the room)."""
        return self.world(t).by_key[key]

    def present(self, key: str, t: float) -> bool:
        """Whether the object is in the room at time ``t`` (removed/added ones are not
        always)."""
        return key in self.world(t).by_key

    def label(self, key: str) -> str:
        """The object's label."""
        return self._label[key]

    def all_instances(self, label: str) -> list[str]:
        """Keys labelled ``label`` in either arrangement."""
        return sorted(k for k in self.keys if self._label[k] == label)

    def single(self, key: str) -> bool:
        """No other object ever in the room shares the label of ``key``."""
        return len(self.all_instances(self._label[key])) == 1

    def false_between(self, label: str, t_min: float, t_max: float) -> bool:
        """Whether a false detection of ``label`` was emitted in (t_min, t_max]."""
        return any(t_min < s <= t_max for s in self.false_times.get(label, []))

    def settled_gone(self, key: str, t: float) -> bool:
        """A removed object, after the shuffle, that memory either never saw or must have
        missed at its old place: in view (cone, not hidden) at least MANY_LOOKS times
        after the shuffle (it is detected nowhere then: it is not in the room)."""
        if key not in self.removed or self.phase(t) != 2:
            return False
        return self.last_seen(key, t) is None or self.looks(key, 2, t) >= MANY_LOOKS

    def gone_now(self, key: str, t: float) -> bool:
        """where_is truth null: a removed single-instance object whose old place was in
        view at least MANY_LOOKS times after the shuffle, and no false detection of its
        label since the shuffle."""
        return (self.settled_gone(key, t) and self.single(key)
                and not self.false_between(self._label[key], self.t_shuffle, t))

    def seen_times(self, key: str, t_max: float, t_min: float = -np.inf) -> list[float]:
        """Times of true detections of ``key`` in [t_min, t_max]."""
        times = self.sightings.get(key, [])
        return times[bisect.bisect_left(times, t_min): bisect.bisect_right(times, t_max)]

    def last_seen(self, key: str, t: float) -> float | None:
        """Latest true detection of ``key`` at or before ``t``."""
        times = self.seen_times(key, t)
        return times[-1] if times else None

    def false_before(self, label: str, t: float) -> bool:
        """Whether a false detection of ``label`` was emitted at or before ``t``."""
        times = self.false_times.get(label, [])
        return bool(times) and times[0] <= t

    def displacement(self, key: str) -> float:
        """How far the object moved in the shuffle (inf when removed or added)."""
        if key in self.removed or key in self.added:
            return float("inf")
        return float(np.linalg.norm(self.worlds[1].by_key[key].center
                                    - self.worlds[2].by_key[key].center))

    def openness_change(self, key: str) -> float:
        """Signed openness change in the shuffle (0 for non-openables, removed, added)."""
        if key in self.removed or key in self.added:
            return 0.0
        before = self.worlds[1].by_key[key].openness
        after = self.worlds[2].by_key[key].openness
        return 0.0 if before is None or after is None else float(after - before)

    def fresh(self, key: str, t: float) -> bool:
        """In the room at ``t``, seen by ``t``, and not moved since its last sighting."""
        last = self.last_seen(key, t)
        if last is None or not self.present(key, t):
            return False
        return self.phase(last) == self.phase(t) or self.displacement(key) <= STILL_M

    def fresh_state(self, key: str, skey: str, t: float) -> bool:
        """Seen by ``t``, in the room, and state ``skey`` unchanged since its last sighting."""
        last = self.last_seen(key, t)
        if last is None or not self.present(key, t):
            return False
        return self.obj(key, last).states.get(skey) == self.obj(key, t).states.get(skey)

    def instances(self, label: str, t: float) -> list[str]:
        """Keys of the objects labelled ``label`` at time ``t``."""
        return sorted(o.key for o in self.world(t).objects if o.label == label)

    def looks(self, key: str, phase: int, t_max: float) -> int:
        """Views of ``phase`` up to ``t_max`` that had the object visible (cone, not hidden).

        For a phase whose arrangement lacks the object (removed: after the shuffle; added:
        before it) these are the views that had its place visible: where it was, where it
        will be.
        """
        if key in self.worlds[phase].by_key:
            return self.place_looks(key, phase, phase, t_max)
        return self.place_looks(key, 3 - phase, phase, t_max)

    def place_looks(self, key: str, where: int, phase: int, t_max: float) -> int:
        """Views of ``phase`` up to ``t_max`` whose cone holds the object's center in the
        arrangement of phase ``where``, unless that place is inside a closed receptacle
        (of the object's chain there) in the arrangement of ``phase``."""
        cache = (key, where, phase)
        if cache not in self._look_times:
            obj = self.worlds[where].by_key[key]
            hidden = self.worlds[phase].hides(obj.center, obj.chain)
            views = [v for v in self.views if v.phase == phase]
            mask = np.zeros(len(views), bool) if hidden else views_containing(obj.center, views)
            self._look_times[cache] = [v.t for v, m in zip(views, mask, strict=True) if m]
        return bisect.bisect_right(self._look_times[cache], t_max)

    def near_point(
        self, key: str, t: float, rng: np.random.Generator, offset: tuple[float, float]
    ) -> list[float] | None | bool:
        """``near`` for a multi-instance label: a point ``offset`` metres (3D, random
        direction) from the instance that is still closer to it than to any other
        instance by NEAR_MARGIN_M.  None for a single instance, False if none found.
        """
        obj = self.obj(key, t)
        others = [self.obj(k, t).center for k in self.instances(obj.label, t) if k != key]
        if self.phase(t) == 2:  # where removed instances were: memory may still hold them
            others += [self.worlds[1].by_key[k].center for k in self.removed
                       if self._label[k] == obj.label]
        if not others:
            return None
        for _ in range(24):
            direction = rng.normal(size=3)
            direction /= max(float(np.linalg.norm(direction)), 1e-9)
            point = obj.center + direction * rng.uniform(*offset)
            own = float(np.linalg.norm(point - obj.center))
            if all(np.linalg.norm(point - c) - own >= NEAR_MARGIN_M for c in others):
                return _r(point)
        return False


def _pick(rng: np.random.Generator, items: list[Any], n: int) -> list[Any]:
    if n <= 0 or not items:
        return []
    idx = rng.choice(len(items), size=min(n, len(items)), replace=False)
    return [items[int(i)] for i in idx]


def _prefer(
    kn: Knowledge, rng: np.random.Generator, first: list[str], rest: list[str], t: float
) -> list[str]:
    """``first`` shuffled, then ``rest`` shuffled with pickupable objects mostly ahead."""
    ordered = _pick(rng, first, len(first))
    pick = [k for k in rest if kn.obj(k, t).pickupable]
    other = [k for k in rest if not kn.obj(k, t).pickupable]
    pick, other = _pick(rng, pick, len(pick)), _pick(rng, other, len(other))
    while pick or other:  # about three pickupable objects for each piece of furniture
        take_pick = pick and (not other or rng.random() < 0.75)
        ordered.append((pick if take_pick else other).pop(0))
    return ordered


def _told_apart(
    kn: Knowledge, items: Iterable[T], at: float, rng: np.random.Generator, offset: tuple[float, float],
    out: list[Question], n: int, key: Callable[[T], str] = lambda item: item,
) -> Iterator[tuple[T, dict[str, Any]]]:
    """``items`` in turn with the ``near`` entry of a question about each (empty for a single
    instance), passing over those whose instance no near point tells apart, until ``out`` holds ``n``."""
    for item in items:
        if len(out) >= n:
            return
        near = kn.near_point(key(item), at, rng, offset)
        if near is not False:
            yield item, {"near": near} if near else {}


def _location_truth(world: WorldState, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    chain = world.chain_labels(key)
    truth = {"center": _r(world.by_key[key].center), "receptacle": chain[0] if chain else None}
    return truth, {"receptacle_chain": chain, "object": key}


# --------------------------------------------------------------------------- types


def ask_where_is(kn: Knowledge, t: float, n: int, rng: np.random.Generator) -> list[Question]:
    """where_is for objects whose current place was observed; moved and added ones first.

    Removed single-instance objects that are known gone (:meth:`Knowledge.gone_now`)
    come before all others, with truth null.
    """
    out: list[Question] = []
    gone = [k for k in sorted(kn.removed) if kn.gone_now(k, t)]
    for key in _pick(rng, gone, n):
        q = {"type": "where_is", "label": kn.label(key)}
        out.append(Question(t, "where_is", q, None, {"receptacle_chain": [], "object": key}))
    fresh = [k for k in kn.keys if kn.fresh(k, t)]
    moved = [k for k in fresh if kn.phase(t) == 2 and kn.displacement(k) > MOVED_M]
    order = _prefer(kn, rng, moved, [k for k in fresh if k not in moved], t)
    for key, near in _told_apart(kn, order, t, rng, NEAR_FAR, out, n):
        q = {"type": "where_is", "label": kn.obj(key, t).label, **near}
        out.append(Question(t, "where_is", q, *_location_truth(kn.world(t), key)))
    return out


def ask_where_was(
    kn: Knowledge, t: float, at: float, n: int, rng: np.random.Generator, n_null: int = 1
) -> list[Question]:
    """where_was at a walkthrough time ``at``; moved objects first, plus ``n_null`` nulls."""
    known = [k for k in kn.keys if kn.last_seen(k, at) is not None]
    moved = [k for k in known if kn.displacement(k) > MOVED_M]
    out: list[Question] = []
    order = _prefer(kn, rng, moved, [k for k in known if k not in moved], at)
    for key, near in _told_apart(kn, order, at, rng, NEAR_FAR, out, n):
        q = {"type": "where_was", "label": kn.obj(key, at).label, "at": at, **near}
        out.append(Question(t, "where_was", q, *_location_truth(kn.world(at), key)))
    unknown = [  # single instance, not seen by `at` but seen later: memory knew nothing then
        k for k in kn.keys
        if kn.single(k) and kn.last_seen(k, at) is None
        and kn.last_seen(k, t) is not None and not kn.false_before(kn.label(k), at)
    ]
    for key in _pick(rng, unknown, n_null):
        q = {"type": "where_was", "label": kn.label(key), "at": at}
        out.append(Question(t, "where_was", q, None, {"object": key}))
    return out


def ask_last_seen(kn: Knowledge, t: float, n: int, rng: np.random.Generator) -> list[Question]:
    """last_seen for labels of one object ever in the room that no false detection named.

    After the shuffle one removed object (its last sighting is from the walkthrough)
    comes first.
    """
    keys = [k for k in kn.keys if kn.single(k) and not kn.false_before(kn.label(k), t)]
    seen = [k for k in keys if kn.last_seen(k, t) is not None]
    unseen = [k for k in keys if kn.last_seen(k, t) is None]
    gone = _pick(rng, [k for k in seen if k in kn.removed and kn.phase(t) == 2], 1 if n else 0)
    seen = [k for k in seen if k not in gone]
    n_seen = (n - 1 if unseen else n) - len(gone)
    chosen = gone + _pick(rng, seen, n_seen) + _pick(rng, unseen, 1 if n > 1 else 0)
    out = []
    for key in chosen:
        last = kn.last_seen(key, t)
        truth = None if last is None else {"t": last}
        q = {"type": "last_seen", "label": kn.label(key)}
        out.append(Question(t, "last_seen", q, truth, {"object": key}))
    return out


def _contents_determined(kn: Knowledge, rkey: str, t: float) -> bool:
    """No object that memory may wrongly place in/out of ``rkey`` (seen, then moved, or
    removed but not yet missed often enough at its old place)."""
    for key in kn.keys:
        last = kn.last_seen(key, t)
        if key == rkey or last is None or kn.fresh(key, t):
            continue
        then = kn.obj(key, last)
        if not then.pickupable or kn.settled_gone(key, t):
            continue
        if rkey in then.chain or (kn.present(key, t) and rkey in kn.obj(key, t).chain):
            return False
    return True


def ask_contents(kn: Knowledge, t: float, n: int, rng: np.random.Generator) -> list[Question]:
    """contents of single-instance receptacles.

    Truth: labels of the pickupable objects whose current place was observed and whose
    containment chain (any depth) holds the receptacle.  Furniture and fixed parts
    (Drawer, Shelf, Faucet, a Chair under a table, ...) never count.
    """
    world = kn.world(t)
    cands = []
    for rkey in kn.keys:
        if rkey not in world.by_key:
            continue
        rec = world.by_key[rkey]
        if not rec.receptacle or len(kn.instances(rec.label, t)) != 1:
            continue
        if kn.fresh(rkey, t) and _contents_determined(kn, rkey, t):
            labels = sorted(world.by_key[k].label for k in kn.keys
                            if k != rkey and kn.fresh(k, t) and world.by_key[k].pickupable
                            and rkey in world.by_key[k].chain)
            cands.append((rkey, labels))
    full = [c for c in cands if c[1]]
    empty = [c for c in cands if not c[1]]
    chosen = _pick(rng, full, n) + _pick(rng, empty, max(0, n - len(full)))
    return [
        Question(t, "contents", {"type": "contents", "receptacle": world.by_key[r].label},
                 {"labels": labels}, {"object": r})
        for r, labels in chosen
    ]


def ask_state(kn: Knowledge, t: float, n: int, rng: np.random.Generator) -> list[Question]:
    """state of a boolean key, as last observed (and still true now)."""
    pairs = [
        (k, s) for k in kn.keys if kn.present(k, t) for s in STATE_KEYS
        if s in kn.obj(k, t).states and kn.fresh_state(k, s, t)
    ]
    out: list[Question] = []
    order = _pick(rng, pairs, len(pairs))
    for (key, skey), near in _told_apart(kn, order, t, rng, NEAR_CLOSE, out, n, key=lambda pair: pair[0]):
        q = {"type": "state", "label": kn.obj(key, t).label, "key": skey, **near}
        truth = {"value": bool(kn.obj(key, t).states[skey])}
        out.append(Question(t, "state", q, truth, {"object": key}))
    return out


def ask_count(kn: Knowledge, t: float, n: int, rng: np.random.Generator) -> list[Question]:
    """count of labels whose every instance was observed where it is now and whose
    removed instances memory never saw or missed often enough (:meth:`settled_gone`).

    Labels with a removed or added instance come first (at most one per question time).
    """
    ok = [lab for lab in kn.labels
          if all(kn.fresh(k, t) for k in kn.instances(lab, t))
          and all(kn.settled_gone(k, t) for k in kn.all_instances(lab) if k in kn.removed
                  and kn.phase(t) == 2)]
    extra = kn.removed | kn.added if kn.phase(t) == 2 else set()
    changed = _pick(rng, [lab for lab in ok if any(kn.label(k) == lab for k in extra)],
                    1 if n else 0)
    ok = [lab for lab in ok if lab not in changed]
    many = [lab for lab in ok if len(kn.instances(lab, t)) > 1]
    single = [lab for lab in ok if lab not in many]
    half = (n + 1) // 2
    chosen = changed + _pick(rng, many, half - len(changed))
    chosen += _pick(rng, single, n - len(chosen))
    return [
        Question(t, "count", {"type": "count", "label": lab}, {"n": len(kn.instances(lab, t))})
        for lab in chosen
    ]


def _change_of(kn: Knowledge, key: str, since: float, t: float) -> list[str] | None:
    """Observable changes of one object (or None when undecidable)."""
    seen1 = bool(kn.seen_times(key, since))
    seen2 = bool(kn.seen_times(key, t, kn.t_shuffle))
    if key in kn.removed:  # known before, then missed where it was
        looks = kn.looks(key, 2, t)
        if not seen1 or looks == 0:
            return []
        return ["disappeared"] if looks >= MANY_LOOKS else None
    if key in kn.added:  # found where the walkthrough had looked and seen nothing
        looks = kn.looks(key, 1, since)
        if not seen2 or looks == 0:
            return []
        return ["appeared"] if looks >= APPEAR_LOOKS else None
    disp = kn.displacement(key)
    if seen1 != seen2:
        if disp > STILL_M:
            missing_phase = 2 if seen1 else 1  # where memory looked and saw nothing
            limit = t if missing_phase == 2 else since
            if kn.looks(key, missing_phase, limit) > 0:
                return None
            # the place where it was seen, looked at on the other side as often as makes
            # memory call a removed (added) object gone (new): the same evidence
            if kn.place_looks(key, 3 - missing_phase, missing_phase, limit) >= (
                    MANY_LOOKS if seen1 else APPEAR_LOOKS):
                return None
        elif kn.looks(key, 2 if seen1 else 1, t if seen1 else since) >= (
                MANY_LOOKS if seen1 else APPEAR_LOOKS):
            return None  # memory may call it gone (appeared), as for a removed (added) one
        return []
    if not seen1:
        return []
    if AMBIGUOUS_MOVE_M[0] < disp <= AMBIGUOUS_MOVE_M[1]:
        return None
    changes = ["moved"] if disp > AMBIGUOUS_MOVE_M[1] else []
    d_open = kn.openness_change(key)
    if AMBIGUOUS_OPENNESS[0] < abs(d_open) < AMBIGUOUS_OPENNESS[1]:
        return None
    if abs(d_open) >= OPENNESS_CHANGE:
        changes.append("opened" if d_open > 0 else "closed")
    return changes


def ask_what_changed(kn: Knowledge, t: float, since: float) -> list[Question]:
    """what_changed since a walkthrough time, when the change set is decidable."""
    pairs = []
    for key in kn.keys:
        changes = _change_of(kn, key, since, t)
        if changes is None:
            return []
        pairs += [{"label": kn.label(key), "change": c} for c in changes]
    pairs.sort(key=lambda p: (p["label"], p["change"]))
    q = {"type": "what_changed", "since": since, "until": t}
    return [Question(t, "what_changed", q, {"changes": pairs})]


def ask_absent(
    kn: Knowledge, t: float, n: int, rng: np.random.Generator, vocabulary: frozenset[str]
) -> list[Question]:
    """Questions about labels never present nor ever reported: truth null."""
    absent = sorted(vocabulary - set(kn.labels) - kn.emitted_labels)
    out = []
    kinds = ("where_is", "last_seen", "state")
    for i, label in enumerate(_pick(rng, absent, n)):
        kind = kinds[(i + int(rng.integers(3))) % 3]
        q: dict[str, Any] = {"type": kind, "label": label}
        if kind == "state":
            q["key"] = "open"
        out.append(Question(t, kind, q, None))
    return out
