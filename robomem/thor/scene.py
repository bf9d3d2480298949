"""AI2-THOR scene metadata + RoomR rearrangements -> ground-truth world states.

Two external, real data sources are joined here:

* AI2-THOR ``event.metadata["objects"]`` dumps for the iTHOR scenes, shipped in the
  PyPI wheel ``procthor==0.0.1.dev2`` (used as a data package only, never imported).
* RoomR episodes (``{year}_{train,val}.pkl.gz``), plain dict pickles.

AI2-THOR is y-up.  A :class:`WorldState` holds every object of one room arrangement
with its box, states and ground-truth containment chain.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METADATA_ENV = "ROBOMEM_THOR_METADATA"
ROOMR_ENV = "ROBOMEM_ROOMR_DIR"
METADATA_REL = ("databases", "ai2thor-object-metadata.json")

#: Types a household object detector would not report; they are never observed and never named
#: as a receptacle in the truth, except the Floor under what stands on it (see compute_chains).
UNDETECTED_TYPES = frozenset(
    {"Floor", "Wall", "Ceiling", "LightSwitch", "StoveKnob", "ShowerGlass"}
)

#: Boolean states: key in the episode -> (metadata capability flag, metadata value).
STATE_FLAGS: dict[str, tuple[str, str]] = {
    "on": ("toggleable", "isToggled"),
    "dirty": ("dirtyable", "isDirty"),
    "sliced": ("sliceable", "isSliced"),
    "cooked": ("cookable", "isCooked"),
    "filled": ("canFillWithLiquid", "isFilledWithLiquid"),
}

OPEN_EPS = 1e-3  # openness above this counts as open
FOOTPRINT_MARGIN = 0.03  # m, horizontal slack when testing "center over footprint"
REST_BELOW = 0.03  # m, support top may be this far above the object's bottom
REST_ABOVE = 0.06  # m, ... or this far below it (a gap)
HIDE_MARGIN = 0.02  # m, slack of "center inside a closed openable's box"
SUPPORT_AREA_FRAC = 0.25  # a support's footprint is at least this part of the object's
UNMOVED_TOL = 0.02  # m, RoomR pose this close to the metadata pose = not moved
STAND_TOL = 0.05  # m, a smaller "parent" whose bottom is this close to the child's stands beside it
FLOOR_REST = (-0.05, 0.10)  # m, bottom this far below/above the floor's top: held by nothing, it stands on the Floor

_ROOM_GROUPS = {0: "kitchens", 2: "living_rooms", 3: "bedrooms", 4: "bathrooms"}


# --------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """The repository root (the folder holding the ``robomem`` package)."""
    return Path(__file__).resolve().parents[2]


def roomr_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """RoomR data folder: argument, else $ROBOMEM_ROOMR_DIR, else ../shared/data/roomr."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ROOMR_ENV)
    if env:
        return Path(env)
    return repo_root().parent / "shared" / "data" / "roomr"


def metadata_path() -> Path:
    """Locate ai2thor-object-metadata.json without importing the procthor package."""
    env = os.environ.get(METADATA_ENV)
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"${METADATA_ENV} names no file: {env}")
        return Path(env)
    spec = importlib.util.find_spec("procthor")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "AI2-THOR metadata not found: run "
            "`pip install --no-deps procthor==0.0.1.dev2` or set " + METADATA_ENV
        )
    for base in spec.submodule_search_locations:
        path = Path(base).joinpath(*METADATA_REL)
        if path.is_file():
            return path
    raise FileNotFoundError("procthor is installed but lacks " + "/".join(METADATA_REL))


# --------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=1)
def _all_metadata(path: str) -> dict[str, list[list[dict[str, Any]]]]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def scene_group_index(scene: str) -> tuple[str, int]:
    """'FloorPlan21' -> ('kitchens', 20); 'FloorPlan301' -> ('bedrooms', 0)."""
    match = re.fullmatch(r"FloorPlan(\d+)", scene)
    if not match:
        raise ValueError(f"not an iTHOR scene name: {scene!r}")
    num = int(match.group(1))
    group = _ROOM_GROUPS.get(num // 100)
    index = num - 1 if num < 100 else num % 100 - 1
    if group is None or index < 0:
        raise ValueError(f"not an iTHOR scene name: {scene!r}")
    return group, index


def load_scene_metadata(scene: str) -> list[dict[str, Any]]:
    """The AI2-THOR object metadata list of one iTHOR scene."""
    group, index = scene_group_index(scene)
    return _all_metadata(str(metadata_path()))[group][index]


def thor_vocabulary() -> frozenset[str]:
    """Every detectable objectType of the iTHOR scenes (kitchens .. bathrooms)."""
    return _vocabulary(str(metadata_path()))


@functools.lru_cache(maxsize=1)
def _vocabulary(path: str) -> frozenset[str]:
    data = _all_metadata(path)
    return frozenset(
        o["objectType"]
        for group in _ROOM_GROUPS.values()
        for scene in data[group]
        for o in scene
        if o["objectType"] not in UNDETECTED_TYPES
    )


@functools.lru_cache(maxsize=4)
def _load_roomr_cached(path: str) -> dict[str, list[dict[str, Any]]]:
    with gzip.open(path, "rb") as fh:
        return pickle.load(fh)  # plain dicts/lists/floats/str only (see SOURCE.md)


ROOMR_SPLITS = ("train", "val")  # RoomR's test split (rooms 26-30 of each type) is held out: never here


def held_out(scene: str) -> bool:
    """Rooms 26-30 of each room type: kept for measurement, out of every generator and tuning run."""
    return 26 <= int(scene.removeprefix("FloorPlan")) % 100 <= 30


def roomr_split(scene: str) -> str:
    """The RoomR split of an iTHOR room: train (rooms 1-20 of each type) or val (21-25); the held-out
    rooms 26-30 are refused."""
    index = int(scene.removeprefix("FloorPlan")) % 100
    if 1 <= index <= 20:
        return "train"
    if 21 <= index <= 25:
        return "val"
    raise ValueError(f"{scene} has no RoomR split here (rooms 26-30 are held out)")


def load_roomr(
    year: int | str, data_dir: str | os.PathLike[str] | None = None, split: str = "val"
) -> dict[str, list[dict[str, Any]]]:
    """RoomR episodes of one year and split (train: rooms 1-20 of each type, val: 21-25):
    ``{scene: [episode, ...]}``, held-out rooms left out."""
    if split not in ROOMR_SPLITS:
        raise ValueError(f"RoomR split must be one of {ROOMR_SPLITS}, got {split!r}")
    path = roomr_dir(data_dir) / f"{int(year)}_{split}.pkl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"RoomR data not found: {path}")
    return {scene: episodes for scene, episodes in _load_roomr_cached(str(path)).items() if not held_out(scene)}


# --------------------------------------------------------------------------- model


@dataclass
class ThorObject:
    """One object of a room arrangement (AI2-THOR axes, y up)."""

    key: str  # AI2-THOR metadata ``name``: unique within the scene
    label: str  # objectType, what a detector reports
    center: np.ndarray
    size: np.ndarray
    states: dict[str, bool]
    receptacle: bool
    openable: bool
    pickupable: bool
    openness: float | None = None  # openables only, 0 (closed) .. 1
    moved: bool = False  # pose differs from the metadata pose
    thor_parents: list[str] = field(default_factory=list)  # keys, unmoved objects only
    chain: list[str] = field(default_factory=list)  # keys, innermost first


@dataclass
class WorldState:
    """A full room arrangement with containment chains and hidden flags."""

    scene: str
    objects: list[ThorObject]
    floor_y: float

    def __post_init__(self) -> None:
        self.by_key = {o.key: o for o in self.objects}
        compute_chains(self)

    def chain_labels(self, key: str) -> list[str]:
        """Labels of the containment chain of ``key``, innermost first, no repeats."""
        out: list[str] = []
        for k in self.by_key[key].chain:
            label = self.by_key[k].label
            if label not in out:
                out.append(label)
        return out

    def hidden(self, key: str) -> bool:
        """True when the object is inside (not on top of) a closed openable on its chain."""
        obj = self.by_key[key]
        return self.hides(obj.center, obj.chain)

    def hides(self, point: np.ndarray, keys: list[str]) -> bool:
        """True when ``point`` lies inside a closed openable among ``keys`` (others skipped).

        With another arrangement's chain as ``keys`` this tells whether a place (where a
        removed object was, where an added one will be) can be seen in this arrangement.
        """
        for k in keys:
            parent = self.by_key.get(k)
            if parent is None or not parent.openable or parent.states.get("open", True):
                continue
            half = parent.size / 2 + HIDE_MARGIN
            if np.all(np.abs(np.asarray(point) - parent.center) <= half):
                return True
        return False

    def labels(self) -> set[str]:
        """Detectable labels present in the room."""
        return {o.label for o in self.objects if o.label not in UNDETECTED_TYPES}


def _vec(d: dict[str, float]) -> np.ndarray:
    return np.array([d["x"], d["y"], d["z"]], dtype=float)


def _meta_openness(meta: dict[str, Any]) -> float | None:
    if not meta.get("openable"):
        return None
    value = float(meta.get("openness") or 0.0)
    return 1.0 if meta.get("isOpen") and value <= OPEN_EPS else value


def _object_states(meta: dict[str, Any], openness: float | None) -> dict[str, bool]:
    states: dict[str, bool] = {}
    if openness is not None:
        states["open"] = openness > OPEN_EPS
    for key, (flag, value) in STATE_FLAGS.items():
        if meta.get(flag):
            states[key] = bool(meta.get(value))
    return states


def _base_object(meta: dict[str, Any]) -> ThorObject:
    box = meta["axisAlignedBoundingBox"]
    openness = _meta_openness(meta)
    return ThorObject(
        key=meta["name"],
        label=meta["objectType"],
        center=_vec(box["center"]),
        size=np.abs(_vec(box["size"])),
        states=_object_states(meta, openness),
        openness=openness,
        receptacle=bool(meta.get("receptacle")),
        openable=bool(meta.get("openable")),
        pickupable=bool(meta.get("pickupable")),
    )


def floor_height(meta_objects: list[dict[str, Any]]) -> float:
    """Top of the Floor object's box, else the lowest object bottom."""
    floors = [m for m in meta_objects if m["objectType"] == "Floor"]
    if floors:
        box = floors[0]["axisAlignedBoundingBox"]
        return float(box["center"]["y"] + abs(box["size"]["y"]) / 2)
    bottoms = [
        m["axisAlignedBoundingBox"]["center"]["y"] - abs(m["axisAlignedBoundingBox"]["size"]["y"]) / 2
        for m in meta_objects
    ]
    return float(min(bottoms))


# --------------------------------------------------------------------------- joining


def _type_key(name: str) -> str:
    return name.split("_")[0].lower()


def match_pose_names(
    pose_names: list[str], meta_objects: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Map RoomR object names to metadata objects.

    Exact ``name`` match first (RoomR 2022).  Names that do not join (RoomR 2023
    renamed the instances) are assigned to unused pickupable metadata objects of the
    same type (case-insensitive name prefix vs objectType), in sorted-name order.
    """
    by_name = {m["name"]: m for m in meta_objects}
    out: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for name in pose_names:
        if name in by_name:
            out[name] = by_name[name]
            used.add(name)
    for name in sorted(n for n in pose_names if n not in out):
        pool = sorted(
            (m for m in meta_objects
             if m["pickupable"] and m["name"] not in used
             and m["objectType"].lower() == _type_key(name)),
            key=lambda m: m["name"],
        )
        if pool:
            out[name] = pool[0]
            used.add(pool[0]["name"])
    return out


def _id_position(object_id: str) -> np.ndarray | None:
    parts = object_id.split("|")
    try:
        return np.array([float(p) for p in parts[1:4]])
    except (ValueError, IndexError):
        return None


def match_openable(entry: dict[str, Any], meta_objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Join one RoomR ``openable_data`` entry: by name, objectId, then nearest same-type id."""
    for field_name, meta_field in (("name", "name"), ("objectId", "objectId")):
        for meta in meta_objects:
            if meta[meta_field] == entry.get(field_name):
                return meta
    want = _id_position(entry.get("objectId", ""))
    kind = entry.get("objectId", "").split("|")[0]
    best, best_d = None, 0.3
    for meta in meta_objects:
        pos = _id_position(meta["objectId"])
        if meta["objectType"] != kind or pos is None or want is None:
            continue
        dist = float(np.linalg.norm(pos - want))
        if dist < best_d:
            best, best_d = meta, dist
    return best


# --------------------------------------------------------------------------- states


def build_world(
    scene: str, episode: dict[str, Any] | None = None, which: str = "target"
) -> WorldState:
    """The room of ``scene`` in RoomR ``episode``'s "target" or "start" arrangement.

    Pickupable objects absent from the episode's poses are left out (AI2-THOR's
    SetObjectPoses removes unlisted pickupables).  ``episode=None`` gives the plain
    metadata scene.
    """
    if which not in ("target", "start"):
        raise ValueError("which must be 'target' or 'start'")
    meta_objects = load_scene_metadata(scene)
    id_to_name = {m["objectId"]: m["name"] for m in meta_objects}
    poses, openness = _episode_overrides(episode, which, meta_objects)
    objects = []
    for meta in meta_objects:
        if episode is not None and meta["pickupable"] and meta["name"] not in poses:
            continue
        obj = _place(meta, poses.get(meta["name"]), openness.get(meta["name"]))
        if not obj.moved:
            obj.thor_parents = [
                id_to_name[i] for i in (meta.get("parentReceptacles") or []) if i in id_to_name
            ]
        objects.append(obj)
    return WorldState(scene=scene, objects=objects, floor_y=floor_height(meta_objects))


def _episode_overrides(
    episode: dict[str, Any] | None, which: str, meta_objects: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    if episode is None:
        return {}, {}
    pose_list = episode[f"{which}_poses" if which == "target" else "starting_poses"]
    names = match_pose_names([p["name"] for p in pose_list], meta_objects)
    poses = {names[p["name"]]["name"]: p["position"] for p in pose_list if p["name"] in names}
    openness: dict[str, float] = {}
    for entry in episode.get("openable_data", []):
        meta = match_openable(entry, meta_objects)
        if meta is not None:
            openness[meta["name"]] = float(entry[f"{which}_openness"])
    return poses, openness


def _place(meta: dict[str, Any], pose: dict[str, float] | None, openness: float | None) -> ThorObject:
    obj = _base_object(meta)
    if openness is not None and obj.openable:
        obj.openness = openness
        obj.states = _object_states(meta, openness)
    if pose is not None:
        meta_pos = _vec(meta["position"])
        new_pos = _vec(pose)
        if float(np.linalg.norm(new_pos - meta_pos)) > UNMOVED_TOL:
            obj.center = new_pos + (obj.center - meta_pos)
            obj.moved = True
    return obj


# --------------------------------------------------------------------------- containment


def geometric_parents(objects: list[ThorObject]) -> list[int | None]:
    """Index of each object's parent receptacle by box geometry (y up), or None.

    Candidates are detectable receptacles whose (x, z) footprint holds the object's
    center and whose box either holds the center vertically and is bigger ("in"), or
    has its top just below the object's bottom and a footprint at least a quarter of
    the object's ("on").  The support is the "on"
    candidate with the highest top; the smallest "in" candidate wins when it is
    smaller than that support (an Apple in a Bowl on a CounterTop -> Bowl).  Of two
    objects that would hold each other, only the higher one keeps its parent.
    """
    n = len(objects)
    centers = np.array([o.center for o in objects]).reshape(n, 3)
    sizes = np.array([o.size for o in objects]).reshape(n, 3)
    lo, hi = centers - sizes / 2, centers + sizes / 2
    volume = np.prod(np.maximum(sizes, 1e-3), axis=1)
    is_rec = np.array([o.receptacle and o.label not in UNDETECTED_TYPES for o in objects])
    # [child, candidate] matrices
    cx, cz = centers[:, None, 0], centers[:, None, 2]
    over = (
        (cx >= lo[None, :, 0] - FOOTPRINT_MARGIN) & (cx <= hi[None, :, 0] + FOOTPRINT_MARGIN)
        & (cz >= lo[None, :, 2] - FOOTPRINT_MARGIN) & (cz <= hi[None, :, 2] + FOOTPRINT_MARGIN)
    )
    cy = centers[:, None, 1]
    inside = (cy >= lo[None, :, 1]) & (cy <= hi[None, :, 1])
    gap = lo[:, None, 1] - hi[None, :, 1]
    resting = (gap >= -REST_BELOW) & (gap <= REST_ABOVE)
    bigger = volume[None, :] > volume[:, None]
    valid = over & is_rec[None, :]
    np.fill_diagonal(valid, False)
    in_ok = valid & inside & bigger
    area = np.maximum(sizes[:, 0] * sizes[:, 2], 1e-6)
    rest_ok = valid & resting & (area[None, :] >= SUPPORT_AREA_FRAC * area[:, None])
    in_vol = np.where(in_ok, volume[None, :], np.inf)
    # support: the highest top just below the object, smaller volume breaking near-ties
    rest_key = np.where(rest_ok, np.round(hi[None, :, 1], 2) * 1e6 - volume[None, :], -np.inf)
    parents: list[int | None] = []
    for i in range(n):
        best_in = int(np.argmin(in_vol[i]))
        best_rest = int(np.argmax(rest_key[i]))
        has_in, has_rest = np.isfinite(in_vol[i, best_in]), np.isfinite(rest_key[i, best_rest])
        if has_in and (not has_rest or volume[best_in] < volume[best_rest]):
            parents.append(best_in)
        else:
            parents.append(best_rest if has_rest else None)
    for i, j in enumerate(parents):  # a mutual pair (a thin CounterTop piece "in" the
        # Toaster standing on it): the lower one holds the higher one
        if j is not None and parents[j] == i and centers[i, 1] <= centers[j, 1]:
            parents[i] = None
    return parents


def compute_chains(world: WorldState) -> None:
    """Fill ``chain`` (keys, innermost first) of every object of ``world``.

    Geometric chain (parent, parent's parent, ...), then for unmoved objects the
    AI2-THOR parentReceptacles and their own geometric chains (lenient union).
    Undetectable types (Wall, ...) are never on a chain, except the Floor: an object held by
    nothing whose bottom is at the floor's height has the chain [Floor].
    """
    objs = world.objects
    parents = geometric_parents(objs) if objs else []

    def geo_chain(i: int) -> list[str]:
        out: list[str] = []
        j = parents[i]
        while j is not None and j != i and objs[j].key not in out:
            out.append(objs[j].key)
            j = parents[j]
        return out

    index = {o.key: i for i, o in enumerate(objs)}
    floor = next((o for o in objs if o.label == "Floor"), None)
    geo = [geo_chain(i) for i in range(len(objs))]
    below = [set(g) for g in geo]  # below[i]: everything that holds objs[i], geometrically
    for i, obj in enumerate(objs):
        chain = list(geo[i])
        for parent_key in obj.thor_parents:
            j = index.get(parent_key)
            if j is None or objs[j].label in UNDETECTED_TYPES or not thor_parent_plausible(
                    objs[j], obj):
                continue
            for k in [parent_key, *geo[j]]:
                # never the object itself, nor anything that it holds up (a cycle)
                if k not in chain and k != obj.key and obj.key not in below[index[k]]:
                    chain.append(k)
        if not chain and floor is not None and obj is not floor and _rests_on_floor(obj, world.floor_y):
            chain = [floor.key]
        obj.chain = chain


def _rests_on_floor(obj: ThorObject, floor_y: float) -> bool:
    """Whether the object's bottom is at the floor's height (see FLOOR_REST)."""
    bottom = float(obj.center[1] - obj.size[1] / 2) - floor_y
    return FLOOR_REST[0] <= bottom <= FLOOR_REST[1]


def thor_parent_plausible(parent: ThorObject, child: ThorObject) -> bool:
    """Whether an AI2-THOR ``parentReceptacles`` entry can really hold ``child``.

    The metadata lists neighbours too (a DiningTable "in" a Chair pushed under it, a
    DiningTable on the Plate that lay on it).  Rejected: a parent RoomR moved (the
    relation describes the metadata pose), and a parent smaller than the child that is
    pickupable, that names the child as its own parent (the smaller one of a mutual
    pair is the one held), or that stands beside a fixed child (its bottom no higher
    than the child's, its top above the child's center: it neither encloses the child
    nor carries it from below).
    """
    if parent.moved:
        return False
    if float(np.prod(parent.size)) >= float(np.prod(child.size)):
        return True
    if parent.pickupable or child.key in parent.thor_parents:
        return False
    if not child.pickupable:
        top = parent.center[1] + parent.size[1] / 2
        bottom = parent.center[1] - parent.size[1] / 2
        child_bottom = child.center[1] - child.size[1] / 2
        if top > child.center[1] and bottom <= child_bottom + STAND_TOL:
            return False
    return True


# --------------------------------------------------------------------------- other rooms


def foreign_pickupables(scene: str) -> list[dict[str, Any]]:
    """Metadata of the pickupable objects of the *other* iTHOR rooms of ``scene``'s kind."""
    group, index = scene_group_index(scene)
    rooms = _all_metadata(str(metadata_path()))[group]
    return [
        m for i, room in enumerate(rooms) if i != index for m in room
        if m.get("pickupable") and m["objectType"] not in UNDETECTED_TYPES
    ]


def object_from_metadata(meta: dict[str, Any], key: str, center: np.ndarray) -> ThorObject:
    """A copy of a metadata object under a new ``key``, its box centred at ``center``."""
    obj = _base_object(meta)
    obj.key = key
    obj.center = np.asarray(center, dtype=float).copy()
    obj.moved = True  # not at its metadata pose: AI2-THOR's parents do not apply
    return obj
