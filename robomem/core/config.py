"""Memory parameters: defaults live here; config/memory.yaml overrides them."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from robomem.core.scene_graph import Room


@functools.lru_cache(maxsize=4096)
def normalize_label(label: str) -> str:
    """Case/spacing-insensitive key for a label: 'Butter Knife', 'butter_knife', 'ButterKnife' agree."""
    return re.sub(r"[^a-z0-9]", "", label.lower())


def label_to_text(label: str) -> str:
    """Readable words of a label for text embedding: 'ButterKnife' -> 'butter knife'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_\-]+", " ", label)
    return re.sub(r"\s+", " ", spaced).strip().lower()


_RECEPTACLES = (
    "ArmChair Bathtub BathtubBasin Bed Bowl Box Cabinet Chair CoffeeMachine CoffeeTable CounterTop Cup "
    "Desk DiningTable DogBed Drawer Dresser Floor Footstool Fridge GarbageCan HandTowelHolder "
    "LaundryHamper Microwave Mug Ottoman Pan Plate Pot Safe Shelf ShelvingUnit SideTable Sink SinkBasin "
    "Sofa Stool StoveBurner TVStand Toaster Toilet ToiletPaperHanger TowelHolder Table KitchenTable "
    "Counter KitchenCounter Bookshelf Nightstand Couch Tray Basket Oven Dishwasher Closet Wardrobe "
    # VirtualHome / COCO-style names of the same things
    "KitchenCabinet KitchenCabinets BathroomCabinet BathroomCounter Refrigerator Stove CoffeeMaker "
    "WashingMachine Bench Cupboard Shelves Rack BookCase TvStand TableTop Island KitchenIsland "
    # things hang from these (see _HANGING_HOLDERS)
    "Hook CoatHook RobeHook KeyHook CoatRack TowelRail TowelRack TowelRing TowelBar Hanger"
)
#: Holders things hang from rather than rest on or in: the holder is beside or above what it holds
#: (a towel on a towel holder, a robe on a hook, a toilet roll on its hanger, keys on a key hook).
_HANGING_HOLDERS = (
    "TowelHolder HandTowelHolder ToiletPaperHanger Hook CoatHook RobeHook KeyHook CoatRack TowelRail "
    "TowelRack TowelRing TowelBar Hanger"
)
_CONTAINERS = (  # receptacles things go *into*; the others (tables, sofas, beds, ...) are surfaces
    "Bathtub BathtubBasin Bowl Box Cabinet CoffeeMachine Cup Drawer Dresser Fridge GarbageCan LaundryHamper "
    "Microwave Mug Pan Pot Safe Shelf ShelvingUnit Sink SinkBasin Toaster Toilet TVStand Oven Dishwasher Closet "
    "Wardrobe Basket Bookshelf SideTable Desk Nightstand CoffeeTable KitchenCabinet KitchenCabinets "
    "BathroomCabinet Refrigerator Stove CoffeeMaker WashingMachine Cupboard Shelves BookCase"
)
_OPENABLE = (
    "Box Cabinet Drawer Fridge Kettle Laptop LaundryHamper Microwave Safe Toilet Oven Dishwasher "
    "Closet Wardrobe Book KitchenCabinet KitchenCabinets BathroomCabinet Refrigerator Stove WashingMachine "
    "Cupboard"
)
_STATIC = (  # furniture and fixtures: they do not wander off, so they are never "relocated"
    "ArmChair Bathtub BathtubBasin Bed Blinds Cabinet Chair CoffeeMachine CoffeeTable CounterTop Curtains "
    "Desk DeskLamp Desktop DiningTable DogBed Drawer Dresser Faucet Floor FloorLamp Fridge GarbageBag "
    "GarbageCan HandTowelHolder HousePlant LaundryHamper LightSwitch Microwave Mirror Ottoman Painting Poster "
    "RoomDecor Safe Shelf ShelvingUnit ShowerCurtain ShowerDoor ShowerGlass ShowerHead SideTable Sink "
    "SinkBasin Sofa Stool StoveBurner StoveKnob TVStand Television Toaster Toilet ToiletPaperHanger "
    "TowelHolder VacuumCleaner Window Oven Dishwasher Couch Bookshelf Nightstand Wardrobe Closet Table "
    "KitchenTable KitchenCounter Counter KitchenCabinet KitchenCabinets BathroomCabinet BathroomCounter "
    "Refrigerator Stove CoffeeMaker WashingMachine Bench Cupboard Shelves BookCase TV Island KitchenIsland "
    "Hook CoatHook RobeHook KeyHook CoatRack TowelRail TowelRack TowelRing TowelBar"
)


def _label_set(words: str) -> frozenset[str]:
    return frozenset(normalize_label(w) for w in words.split())


@dataclass
class MemoryConfig:
    """All tunables of the memory core, with defaults suited to household scenes."""

    db_path: str = ":memory:"
    # --- data association ---
    # A detection may be a track when its center lies inside the track's box grown, per axis, by
    # gate_size_fraction of the half-size plus a margin (per-class margins in class_gates). Box-shaped
    # gates keep stacked drawers or neighbouring stove burners apart yet let big furniture, whose
    # detected center wanders with the part in view, stay one object.
    gate_m: float = 0.1
    gate_size_fraction: float = 0.25
    max_gate_m: float = 2.0
    position_noise_m: float = 0.03  # prior per-axis noise of detected centers; then learned online ...
    gate_sigmas: float = 3.5  # ... and gates are at least this many standard deviations wide
    size_gate_ratio: float = 1.8  # a detection whose box side differs more than this factor is another object
    class_gates: dict[str, float] = field(default_factory=dict)
    # Furniture (static labels) seen in part: a detection whose box and a same-label track's box overlap
    # at least partial_overlap_min (per axis, of the smaller side, with partial_tolerance_m of slack) is
    # the same object; the track's box grows to hold both.
    partial_overlap_min: float = 0.5
    partial_tolerance_m: float = 0.1
    # Openable furniture whose open/closed state changed may be this many times its largest horizontal
    # side away from its box (a drawer slides out, a door swings) and still be the same object, as long
    # as the two boxes overlap.
    articulation_reach: float = 1.2
    embedding_match_min: float = 0.8  # cosine for a cross-label (synonym) match
    move_threshold_m: float = 0.25  # displacement that makes a new placement (a "moved" fact)
    static_move_threshold_m: float = 0.6
    # --- existence belief (log-odds) ---
    hit_base: float = 0.9
    hit_confidence_gain: float = 1.1
    miss_weight: float = 0.6  # discounts a miss, log(1 - p_detect): cones overstate visibility (occlusion)
    log_odds_max: float = 4.0
    log_odds_min: float = -3.0
    confirm_log_odds: float = 2.2
    confirm_min_hits: int = 2
    confirm_single_confidence: float = 0.6  # one detection this confident is believed at once ...
    single_needs_support: bool = True  # ... and only if it rests on or in a receptacle, or on the floor ...
    # ... or, for furniture and fixtures (they hang on walls and stand on bases memory may not know: a wall
    # TV, a stove's burners), if it is at least this confident
    single_static_confidence: float = 0.95
    floor_z: float | None = None  # height of the floor in the map frame (None: learned from the furniture)
    floor_tolerance_m: float = 0.15
    gone_log_odds: float = -0.5  # a tentative track this doubtful is dismissed as a false detection
    # A believed object is gone once the evidence of its misses since last seen, -log P(misses | there),
    # outweighs the prior log-odds that it is still there: objects change place at ``change_rate_per_hour``,
    # so after a long absence fewer misses suffice. Bounded to [min_gone_evidence, max_gone_evidence].
    change_rate_per_hour: float = 3.0
    min_gone_evidence: float = 2.0
    max_gone_evidence: float = 4.5
    static_gone_factor: float = 3.0  # furniture needs this many times the evidence (its box center may be air,
    # and a big flat surface seen at a grazing angle is often not segmented)
    relocate_min_confidence: float = 0.35
    appeared_min_evidence: float = 4.0  # -log P(missed by all earlier looks) before a newcomer "appeared"
    # --- detector model: how likely a present, visible object is detected ---
    detector_p_max: float = 0.85  # a near, normal-sized object
    detection_range_falloff: float = 0.35  # drops by this fraction at the edge of the view's range
    small_object_m: float = 0.12  # objects whose largest side is below this ...
    small_object_factor: float = 0.75  # ... are detected this much less often
    calibrate_detector: bool = True  # learn detector_p_max online from detected vs expected sightings
    detector_prior_strength: float = 200.0  # how many looks the configured detector_p_max is worth
    # --- states ---
    numeric_state_tolerance: float = 0.05  # numeric states closer than this are the same value
    fraction_change: float = 0.3  # 'openness' must move this much to be opened/closed
    # --- relations ---
    support_margin_m: float = 0.02
    support_gap_m: float = 0.12
    near_radius_m: float = 1.0
    # An object hangs from a hanging holder when its center is over the holder's footprint grown by
    # hang_margin_m and its top is at the holder's height (between the holder's bottom and top, each
    # with hang_margin_m of slack), below the holder's center.
    hang_margin_m: float = 0.08
    # --- rooms: the top of the scene graph; horizontal boxes {name, min: [x, y], max: [x, y]} ---
    rooms: list[dict[str, Any]] = field(default_factory=list)
    default_room: str = "home"  # where objects outside every listed room go
    # --- short-term memory ---
    stm_capacity: int = 256
    stm_policy: str = "score"  # lru | lfu | score
    # --- persistence ---
    flush_every_batches: int = 50  # commit to storage after this many batches ...
    flush_interval_s: float = 0.25  # ... or this much wall time, whichever comes first
    # --- label knowledge ---
    receptacles: frozenset[str] = field(default_factory=lambda: _label_set(_RECEPTACLES))
    containers: frozenset[str] = field(default_factory=lambda: _label_set(_CONTAINERS))
    openable: frozenset[str] = field(default_factory=lambda: _label_set(_OPENABLE))
    static: frozenset[str] = field(default_factory=lambda: _label_set(_STATIC))
    hanging_holders: frozenset[str] = field(default_factory=lambda: _label_set(_HANGING_HOLDERS))
    max_detections_per_batch: int = 2000
    # --- text embedding model (None: the packaged all-MiniLM-L6-v2 ONNX int8) ---
    embedding_model_path: str | None = None
    embedding_tokenizer_path: str | None = None
    # --- running for weeks: time, bounds, retention, trust (README "Running for weeks") ---
    # stamps: a batch more than future_tolerance_s ahead of the wall clock (stamps in wall time) is refused;
    # with stamps in another time base (simulation, replay) one batch may move memory's clock at most
    # max_clock_jump_s; a batch more than late_tolerance_s behind memory's clock is refused as late, a later
    # one within it is taken as of memory's clock (counted); a batch repeated (same source and sequence, or
    # same source and stamp) changes nothing.
    future_tolerance_s: float = 5.0
    wall_clock: bool | None = None  # None: stamps are wall time when the first is within a year of the clock
    max_clock_jump_s: float = 7 * 86400.0
    late_tolerance_s: float = 1.0
    # physical bounds of what memory takes (detections and views): the map's extent (|x|, |y|, |z|), the
    # largest side of a piece of furniture or fixture (static labels) and of any other object
    map_extent_m: float = 1000.0
    max_furniture_size_m: float = 12.0
    max_object_size_m: float = 3.0
    # lifelong: tentative tracks never believed are dismissed after tentative_expiry_s without a sighting,
    # dismissed ones leave memory (every index, RAM) rejected_forget_s later; views and sightings keep
    # full detail for the raw windows, then views are consolidated (one per cell of view_cell_m x
    # view_cell_deg, weighted by how many it stands for) and sightings written sparsely (one per track
    # every observation_sparse_s, and the last one before every gap)
    tentative_expiry_s: float = 600.0
    rejected_forget_s: float = 300.0
    view_raw_window_s: float = 600.0
    view_cell_m: float = 0.5
    view_cell_deg: float = 15.0
    max_view_cells: int = 100_000
    view_persist_interval_s: float = 5.0
    observation_raw_window_s: float = 600.0
    observation_sparse_s: float = 10.0
    max_reject_rows_per_minute: int = 600
    retention_sweep_batches: int = 100
    # trust: sources are robot ids ("robot/sensor" to name one sensor); an allowlist (empty: any source),
    # a trust level per source in [0, 1] (default_source_trust otherwise); a source below trust_threshold
    # is heard but never believed (its reports are quarantined until a trusted source confirms them).
    source_allowlist: list[str] = field(default_factory=list)
    source_trust: dict[str, float] = field(default_factory=dict)
    default_source_trust: float = 1.0
    trust_threshold: float = 0.5
    max_sources: int = 256
    # implausible reports are quarantined: more than max_new_same_label new objects of one label, or more
    # than max_new_seen_places new objects where earlier views would have seen them, in one batch; a new
    # piece of furniture while every known instance of its label is in view, undetected, teleport_min_m
    # away; a box larger than its room; a move of an object that outvote_sources other sources saw in place
    # within outvote_window_s
    max_new_same_label: int = 8
    max_new_seen_places: int = 12
    teleport_min_m: float = 2.0
    outvote_sources: int = 2
    outvote_window_s: float = 60.0
    quarantine_capacity: int = 1024
    quarantine_ttl_s: float = 3600.0
    # --- durability: 'interval' (a crash loses at most the last flush interval) or 'batch' (every ingested
    # batch is committed before ingest returns: acknowledged means committed) ---
    durability: str = "interval"

    def gone_threshold(self, unseen_s: float) -> float:
        """Prior log-odds that an object last seen ``unseen_s`` seconds ago is still where it was."""
        # log((1 - changed) / changed) with changed = 1 - exp(-x), stable for any absence (a weekend away)
        x = self.change_rate_per_hour * min(max(unseen_s, 1e-3), 1e12) / 3600.0
        prior = -x - math.log(max(-math.expm1(-x), 1e-12))
        return min(max(prior, self.min_gone_evidence), self.max_gone_evidence)

    def room_regions(self) -> list[Room]:
        """The configured rooms, validated."""
        regions = []
        for spec in self.rooms:
            try:
                lower, upper = [float(v) for v in spec["min"][:2]], [float(v) for v in spec["max"][:2]]
                regions.append(Room(str(spec["name"]), (lower[0], lower[1]), (upper[0], upper[1])))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ValueError(f"bad room {spec!r}: needs name, min [x, y], max [x, y]") from exc
        return regions

    def is_receptacle(self, label: str) -> bool:
        return normalize_label(label) in self.receptacles

    def is_container(self, label: str) -> bool:
        return normalize_label(label) in self.containers

    def is_openable(self, label: str) -> bool:
        return normalize_label(label) in self.openable

    def is_static(self, label: str) -> bool:
        return normalize_label(label) in self.static

    def is_hanging_holder(self, label: str) -> bool:
        return normalize_label(label) in self.hanging_holders

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MemoryConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown memory config keys: {unknown}")
        converted = dict(values)
        for key in ("receptacles", "containers", "openable", "static", "hanging_holders"):
            if key in converted:
                converted[key] = frozenset(normalize_label(str(label)) for label in converted[key])
        if "class_gates" in converted:
            converted["class_gates"] = {normalize_label(k): float(v) for k, v in converted["class_gates"].items()}
        return cls(**converted)

    @classmethod
    def from_yaml(cls, path: str | Path, section: str = "memory") -> MemoryConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.from_dict(data.get(section, data))
