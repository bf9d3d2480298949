"""Instruction parsing: task templates over a vocabulary of AI2-THOR object types with synonyms.

A noun phrase is resolved by (1) the synonym table, (2) the type whose spaced name it is
("dining table" -> DiningTable), (3) memory's semantic search (a tools callable), else it is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

THOR_TYPES = (  # noqa: SIM905 - one readable block
    "AlarmClock AluminumFoil Apple ArmChair BaseballBat BasketBall Bathtub BathtubBasin Bed Blinds Book Boots "
    "Bottle Bowl Box Bread ButterKnife CD Cabinet Candle CellPhone Chair Cloth CoffeeMachine CoffeeTable "
    "CounterTop CreditCard Cup Curtains Desk DeskLamp Desktop DiningTable DishSponge DogBed Drawer Dresser "
    "Dumbbell Egg Faucet FloorLamp Footstool Fork Fridge GarbageBag GarbageCan HandTowel HandTowelHolder "
    "HousePlant Kettle KeyChain Knife Ladle Laptop LaundryHamper Lettuce LightSwitch Microwave Mirror Mug "
    "Newspaper Ottoman Painting Pan PaperTowelRoll Pen Pencil PepperShaker Pillow Plate Plunger Poster Pot "
    "Potato RemoteControl RoomDecor Safe SaltShaker ScrubBrush Shelf ShelvingUnit ShowerCurtain ShowerDoor "
    "ShowerHead SideTable Sink SinkBasin SoapBar SoapBottle Sofa Spatula Spoon SprayBottle Statue Stool "
    "StoveBurner StoveKnob TVStand TableTopDecor TeddyBear Television TennisRacket TissueBox Toaster Toilet "
    "ToiletPaper ToiletPaperHanger Tomato Towel TowelHolder VacuumCleaner Vase Watch WateringCan Window "
    "WineBottle"
).split()

#: Everyday words for AI2-THOR types (the spaced type name always works too).
SYNONYMS = {
    "counter": "CounterTop", "kitchen counter": "CounterTop", "countertop": "CounterTop",
    "keys": "KeyChain", "key": "KeyChain", "keychain": "KeyChain", "car keys": "KeyChain",
    "phone": "CellPhone", "mobile": "CellPhone", "cell phone": "CellPhone",
    "remote": "RemoteControl", "tv remote": "RemoteControl",
    "tv": "Television", "couch": "Sofa", "armchair": "ArmChair", "refrigerator": "Fridge",
    "trash can": "GarbageCan", "bin": "GarbageCan", "trash": "GarbageCan",
    "nightstand": "SideTable", "night stand": "SideTable", "bedside table": "SideTable",
    "sponge": "DishSponge", "soap": "SoapBar", "plant": "HousePlant", "lamp": "DeskLamp",
    "spray bottle": "SprayBottle", "paper towels": "PaperTowelRoll", "toilet roll": "ToiletPaper",
    "salt": "SaltShaker", "pepper": "PepperShaker", "wine": "WineBottle", "cd": "CD",
    "alarm clock": "AlarmClock", "clock": "AlarmClock", "laptop": "Laptop", "computer": "Laptop",
    "basketball": "BasketBall", "baseball bat": "BaseballBat", "bat": "BaseballBat",
    "teddy": "TeddyBear", "teddy bear": "TeddyBear", "tissues": "TissueBox", "foil": "AluminumFoil",
    "coffee maker": "CoffeeMachine", "stove": "StoveBurner", "tv stand": "TVStand",
    "dresser": "Dresser", "shelf": "Shelf", "shelves": "ShelvingUnit", "bathtub": "Bathtub", "tub": "Bathtub",
}


def spaced(label: str) -> str:
    """'DiningTable' -> 'dining table', 'TVStand' -> 'tv stand'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", label).lower()


_BY_SPACED = {spaced(t): t for t in THOR_TYPES} | {t.lower(): t for t in THOR_TYPES}

#: The everyday name a task instruction uses for a type (inverse of :data:`SYNONYMS` where it is nicer).
NAMES = {"CounterTop": "counter", "KeyChain": "keys", "CellPhone": "phone", "RemoteControl": "remote",
         "Television": "TV", "DishSponge": "sponge", "HousePlant": "plant", "PaperTowelRoll": "paper towels",
         "BasketBall": "basketball", "ArmChair": "armchair", "TVStand": "tv stand", "CD": "CD"}


def name_of(label: str) -> str:
    """How an instruction names an object type."""
    return NAMES.get(label, spaced(label))


class ParseError(ValueError):
    """The instruction fits no template or names an unknown object."""


@dataclass(frozen=True)
class Intent:
    """What the instruction asks.

    kind: ``place`` (objects -> receptacle), ``toggle`` (object on/off), ``fetch`` (pick up and hold),
    ``put_back`` (objects back where they were at ``when``), ``moved_from`` (put back what was moved
    away from ``receptacle`` since ``when``). ``then``: follow-up actions (``close``, ``toggle_on``)."""

    kind: str
    objects: tuple[str, ...] = ()
    receptacle: str | None = None
    relation: str | None = None  # "in" | "on"
    on: bool | None = None
    when: str | None = None  # a time phrase, e.g. "this morning"
    then: tuple[tuple[str, str], ...] = field(default=())
    hint: str | None = None  # where the speaker left it ("the bedroom", "the desk"), as said


def _clean(text: str) -> str:
    text = text.lower().strip().rstrip(".!?")
    text = re.sub(r"^(please|could you|can you|robot,?)\s+", "", text)
    return re.sub(r"\s+", " ", text)


def _strip_article(phrase: str) -> str:
    return re.sub(r"^(the|a|an|my|your|some)\s+", "", phrase.strip())


def resolve(phrase: str, search: Callable[[str], list[str]] | None = None) -> str:
    """The AI2-THOR type a noun phrase names (ParseError if none)."""
    words = _strip_article(phrase)
    for candidate in (words, words.rstrip("s") if not words.endswith("ss") else words):
        if candidate in SYNONYMS:
            return SYNONYMS[candidate]
        if candidate in _BY_SPACED:
            return _BY_SPACED[candidate]
        if candidate.replace(" ", "") in _BY_SPACED:
            return _BY_SPACED[candidate.replace(" ", "")]
    if search is not None:
        found = [label for label in search(words) if label in THOR_TYPES]
        if found:
            return found[0]
    raise ParseError(f"unknown object: {phrase!r}")


_WHEN = r"(?P<when>this morning|earlier|today|before)"
_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("moved_from", r"put back (?:the|what) (?:thing|object|item)?\s*(?:that )?(?:was |got |has been )?moved "
                   r"(?:away )?(?:from|off) the (?P<rec>.+?)(?: since " + _WHEN + r")?"),
    ("put_back", r"put the (?P<objs>.+?) back where (?:it was|they were|i had (?:it|them))(?: " + _WHEN + r")?"),
    ("put_back", r"put back the (?P<objs>.+?) where (?:it was|they were)(?: " + _WHEN + r")?"),
    ("fetch", r"(?:bring|get|fetch|hand) me the (?P<objs>.+?)(?: (?:that )?i left (?:on|in|at) the (?P<hint>.+?)"
              r"(?: " + _WHEN + r")?)?"),
    ("toggle", r"(?:switch|turn) (?P<on>on|off) the (?P<objs>.+)"),
    ("toggle", r"(?:switch|turn) the (?P<objs>.+?) (?P<on>on|off)"),
    ("place", r"(?:put|place|move|take) the (?P<objs>.+?) (?P<rel>in|into|inside|on|onto) the (?P<rec>.+?)"
              r"(?: and (?P<then>close it|close the .+?|turn (?:it )?on|switch (?:it )?on))?"),
)


def parse(instruction: str, search: Callable[[str], list[str]] | None = None) -> Intent:
    """Parse an instruction into an :class:`Intent` (ParseError if it fits no template)."""
    text = _clean(instruction)
    for kind, pattern in _TEMPLATES:
        m = re.fullmatch(pattern, text)
        if m is None:
            continue
        groups = m.groupdict()
        objs = tuple(resolve(p, search) for p in re.split(r",\s*(?:and\s+)?(?:the\s+)?|\s+and\s+(?:the\s+)?",
                                                         groups.get("objs") or "") if p.strip())
        rec = resolve(groups["rec"], search) if groups.get("rec") else None
        rel = groups.get("rel")
        relation = None if rel is None else ("in" if rel in ("in", "into", "inside") else "on")
        then: list[tuple[str, str]] = []
        follow = groups.get("then")
        if follow and rec is not None:
            then.append(("close", rec) if follow.startswith("close") else ("toggle_on", rec))
        on = None if groups.get("on") is None else groups["on"] == "on"
        hint = groups.get("hint")
        return Intent(kind, objs, rec, relation, on, groups.get("when"), tuple(then), hint.strip() if hint else None)
    raise ParseError(f"no task template fits: {instruction!r}")
