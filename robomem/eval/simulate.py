"""Camera views and a realistic noisy object detector over a :class:`WorldState`.

Views follow docs/spec memory-qa.md with ``up = "y"``: forward = (sin yaw, 0, cos yaw);
an object is inside a view when the horizontal angle to its center is at most
fov/2 and its 3D distance is at most range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robomem.core.geometry import in_cones
from robomem.thor.scene import UNDETECTED_TYPES, WorldState


@dataclass(frozen=True)
class EpisodeConfig:
    """All rates and sizes of the episode generator."""

    walk_viewpoints: int = 4  # viewpoints of the walkthrough (target state)
    explore_viewpoints: int = 4  # viewpoints after the shuffle (start state)
    headings: int = 8  # yaw steps per viewpoint
    fov_deg: float = 90.0
    range_min_m: float = 3.5
    range_max_m: float = 5.0
    camera_height_m: float = 1.5  # above the floor
    view_dt_s: float = 1.0  # time between views at one viewpoint
    move_dt_s: float = 3.0  # extra time to walk between viewpoints
    shuffle_gap_s: float = 60.0  # no observations while the room is rearranged
    p_detect: float = 0.85  # detection probability of a near, normal-sized object
    far_drop: float = 0.35  # probability falls linearly by this fraction at full range
    tiny_m: float = 0.12  # largest extent below this = tiny object
    tiny_factor: float = 0.75  # detection probability factor for tiny objects
    center_sigma_m: float = 0.03  # per-axis Gaussian center noise
    size_sigma_frac: float = 0.05  # per-axis relative size noise
    openness_sigma: float = 0.02  # noise of the reported "openness" state
    true_conf_beta: tuple[float, float] = (8.0, 2.0)
    false_conf_beta: tuple[float, float] = (2.0, 4.0)
    false_per_view: float = 0.15  # Poisson mean of false detections per view
    # partial views: a detection shows only part of the object (cut by the image border or occluded):
    # with this probability its box keeps a uniform 40-90 % of one axis, on a random side
    partial_view_p: float = 0.0
    viewpoint_margin_m: float = 0.3  # keep viewpoints this far inside the object extent
    furniture_min_height_m: float = 0.35  # boxes taller than this block a viewpoint
    # the shuffle also takes objects away and brings new ones in (inclusive ranges)
    removed_per_episode: tuple[int, int] = (1, 2)  # walkthrough-detected pickupables
    added_per_episode: tuple[int, int] = (1, 1)  # types from other rooms of the same kind


@dataclass
class View:
    """One camera view."""

    t: float
    phase: int  # 1 = walkthrough (target state), 2 = after the shuffle (start state)
    position: np.ndarray
    yaw_deg: float
    fov_deg: float
    range_m: float

    def to_json(self) -> dict[str, object]:
        """The spec's ``view`` dict."""
        return {
            "position": [round(float(v), 4) for v in self.position],
            "yaw_deg": round(self.yaw_deg, 3),
            "fov_deg": self.fov_deg,
            "range_m": round(self.range_m, 3),
        }


@dataclass
class Detection:
    """One reported object; ``key`` is the true object or None for a false detection."""

    key: str | None
    label: str
    center: np.ndarray
    size: np.ndarray
    confidence: float
    state: dict[str, bool | float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The spec's object dict."""
        return {
            "label": self.label,
            "center": [round(float(v), 4) for v in self.center],
            "size": [round(float(v), 4) for v in self.size],
            "confidence": round(self.confidence, 3),
            "state": self.state,
        }


class SceneArrays:
    """Vectorised view of the detectable objects of one world state."""

    def __init__(self, world: WorldState) -> None:
        objs = [o for o in world.objects if o.label not in UNDETECTED_TYPES]
        self.world = world
        self.objects = objs
        self.keys = [o.key for o in objs]
        self.centers = np.array([o.center for o in objs]).reshape(len(objs), 3)
        self.sizes = np.array([o.size for o in objs]).reshape(len(objs), 3)
        self.hidden = np.array([world.hidden(o.key) for o in objs], dtype=bool)
        self.vocab = sorted({o.label for o in objs})


def _z_up(offsets: np.ndarray) -> np.ndarray:
    """Offsets (N, 3) from AI2-THOR's y-up axes to the core's z-up ones (see robomem.thor.frames)."""
    return offsets[:, [2, 0, 1]]


def in_view(points: np.ndarray, view: View) -> np.ndarray:
    """Boolean mask of the points inside the view cone (y up; the core's cone test)."""
    delta = np.asarray(points, dtype=float).reshape(-1, 3) - view.position
    return in_cones(_z_up(delta), np.radians(view.yaw_deg), np.radians(view.fov_deg) / 2.0, view.range_m)


def views_containing(point: np.ndarray, views: list[View]) -> np.ndarray:
    """Boolean mask of the ``views`` whose cone holds ``point`` (the same test as :func:`in_view`)."""
    if not views:
        return np.zeros(0, dtype=bool)
    delta = np.asarray(point, dtype=float).reshape(1, 3) - np.array([v.position for v in views], dtype=float)
    return in_cones(_z_up(delta), np.radians([v.yaw_deg for v in views]),
                    np.radians([v.fov_deg for v in views]) / 2.0, np.array([v.range_m for v in views]))


def visible_mask(arrays: SceneArrays, view: View) -> np.ndarray:
    """Objects inside the cone and not hidden in a closed receptacle."""
    if not arrays.keys:
        return np.zeros(0, dtype=bool)
    return in_view(arrays.centers, view) & ~arrays.hidden


def detection_probability(
    arrays: SceneArrays, view: View, cfg: EpisodeConfig
) -> np.ndarray:
    """Per-object detection probability, falling with distance and for tiny objects."""
    dist = np.linalg.norm(arrays.centers - view.position, axis=1)
    prob = cfg.p_detect * (1.0 - cfg.far_drop * np.clip(dist / view.range_m, 0.0, 1.0))
    tiny = arrays.sizes.max(axis=1) < cfg.tiny_m
    return np.where(tiny, prob * cfg.tiny_factor, prob)


def _true_detection(
    arrays: SceneArrays, i: int, rng: np.random.Generator, cfg: EpisodeConfig
) -> Detection:
    obj = arrays.objects[i]
    center = obj.center + rng.normal(0.0, cfg.center_sigma_m, 3)
    size = obj.size * np.clip(1.0 + rng.normal(0.0, cfg.size_sigma_frac, 3), 0.5, 1.5)
    if cfg.partial_view_p > 0.0 and rng.random() < cfg.partial_view_p:
        center, size = _part_of_box(center, size, rng)
    state: dict[str, bool | float] = dict(obj.states)
    if obj.openness is not None:
        noisy = obj.openness + rng.normal(0.0, cfg.openness_sigma)
        state["openness"] = round(float(np.clip(noisy, 0.0, 1.0)), 3)
    conf = float(rng.beta(*cfg.true_conf_beta))
    return Detection(obj.key, obj.label, center, size, conf, state)


def _part_of_box(center: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The visible part of a box: 40-90 % of one axis, cut from a random side."""
    axis = int(rng.integers(3))
    kept = float(rng.uniform(0.4, 0.9))
    part_center, part_size = center.copy(), size.copy()
    part_size[axis] = size[axis] * kept
    part_center[axis] += (1.0 if rng.random() < 0.5 else -1.0) * (size[axis] - part_size[axis]) / 2.0
    return part_center, part_size


def _false_detection(
    arrays: SceneArrays, view: View, rng: np.random.Generator, cfg: EpisodeConfig
) -> Detection:
    label = arrays.vocab[int(rng.integers(len(arrays.vocab)))]
    like = [o for o in arrays.objects if o.label == label]
    size = like[int(rng.integers(len(like)))].size * rng.lognormal(0.0, 0.2, 3)
    floor_y = arrays.world.floor_y
    for _ in range(20):
        ang = np.radians(view.yaw_deg + rng.uniform(-0.95, 0.95) * view.fov_deg / 2)
        horiz = rng.uniform(0.5, 0.9 * view.range_m)
        point = np.array([
            view.position[0] + horiz * np.sin(ang),
            floor_y + rng.uniform(0.05, 1.8),
            view.position[2] + horiz * np.cos(ang),
        ])
        if in_view(point, view)[0]:
            break
    conf = float(rng.beta(*cfg.false_conf_beta))
    return Detection(None, label, point, size, conf, {})


def detect(
    arrays: SceneArrays, view: View, rng: np.random.Generator, cfg: EpisodeConfig
) -> list[Detection]:
    """What the detector reports for one view: misses, noise and false detections."""
    out: list[Detection] = []
    if arrays.keys:
        visible = visible_mask(arrays, view)
        hit = visible & (rng.random(len(arrays.keys)) < detection_probability(arrays, view, cfg))
        out = [_true_detection(arrays, int(i), rng, cfg) for i in np.flatnonzero(hit)]
    if arrays.vocab:
        for _ in range(int(rng.poisson(cfg.false_per_view))):
            out.append(_false_detection(arrays, view, rng, cfg))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


# --------------------------------------------------------------------------- viewpoints


def _blocked(point: np.ndarray, arrays: SceneArrays, cfg: EpisodeConfig) -> bool:
    """True when (x, z) lies inside the footprint of a tall furniture box."""
    lo = arrays.centers - arrays.sizes / 2
    hi = arrays.centers + arrays.sizes / 2
    tall = (hi[:, 1] - arrays.world.floor_y) > cfg.furniture_min_height_m
    tall &= arrays.sizes[:, 0] * arrays.sizes[:, 2] > 0.04
    inside = (point[0] >= lo[:, 0]) & (point[0] <= hi[:, 0])
    inside &= (point[1] >= lo[:, 2]) & (point[1] <= hi[:, 2])
    return bool(np.any(tall & inside))


def sample_viewpoints(
    arrays: SceneArrays, n: int, rng: np.random.Generator, cfg: EpisodeConfig
) -> list[np.ndarray]:
    """``n`` spread-out camera positions inside the room's horizontal object extent."""
    xz = arrays.centers[:, [0, 2]]
    lo = xz.min(axis=0) + cfg.viewpoint_margin_m
    hi = np.maximum(xz.max(axis=0) - cfg.viewpoint_margin_m, lo + 1e-3)
    cands = [p for p in rng.uniform(lo, hi, size=(12 * n, 2)) if not _blocked(p, arrays, cfg)]
    if len(cands) < n:
        cands += list(rng.uniform(lo, hi, size=(n - len(cands), 2)))
    chosen = [cands[0]]
    while len(chosen) < n:  # greedy farthest-point spread
        dists = np.min([np.linalg.norm(np.array(cands) - c, axis=1) for c in chosen], axis=0)
        chosen.append(cands[int(np.argmax(dists))])
    height = arrays.world.floor_y + cfg.camera_height_m
    return [np.array([p[0], height, p[1]]) for p in chosen]


def plan_views(
    arrays: SceneArrays,
    n_viewpoints: int,
    t0: float,
    phase: int,
    rng: np.random.Generator,
    cfg: EpisodeConfig,
) -> list[View]:
    """Views of one exploration: each viewpoint looks around in ``cfg.headings`` steps."""
    views: list[View] = []
    t = t0
    for k, pos in enumerate(sample_viewpoints(arrays, n_viewpoints, rng, cfg)):
        if k:
            t += cfg.move_dt_s
        yaw0 = float(rng.uniform(0.0, 360.0))
        range_m = float(rng.uniform(cfg.range_min_m, cfg.range_max_m))
        for h in range(cfg.headings):
            yaw = (yaw0 + 360.0 * h / cfg.headings) % 360.0
            views.append(View(round(t, 3), phase, pos, yaw, cfg.fov_deg, range_m))
            t += cfg.view_dt_s
    return views
