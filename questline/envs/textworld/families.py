"""Game families, their knobs, the difficulty table and in-process game making.

Every family is made through the `textworld` package API (no `tw-make` subprocess):
`custom` with `textworld.generator.make_game`, the challenges through
`textworld.challenges.CHALLENGES` (the registry `tw-make` itself uses).

Knobs (explicit values in the env config override the difficulty's level):

| family          | knob          | range                          | easy | medium | hard |
|-----------------|---------------|--------------------------------|------|--------|------|
| custom          | world_size    | 1..20 rooms                    | 2    | 2      | 4    |
|                 | nb_objects    | 0..40                          | 3    | 3      | 6    |
|                 | quest_length  | 1..20 actions                  | 2    | 4      | 8    |
| cooking         | recipe        | 1..5 ingredients               | 1    | 2      | 3    |
|                 | take          | 0..recipe to find              | 1    | 2      | 3    |
|                 | go            | 1, 6, 9, 12 rooms              | 1    | 6      | 9    |
|                 | open          | bool (containers/doors closed) | no   | yes    | yes  |
|                 | cook          | bool                           | no   | yes    | yes  |
|                 | cut           | bool                           | no   | no     | yes  |
|                 | drop          | bool (limited inventory)       | no   | no     | no   |
| coin_collector  | level         | 1..300, rooms <= 100           | 5    | 105    | 210  |
| treasure_hunter | level         | 1..30                          | 5    | 15     | 25   |
| simple          | rewards       | dense, balanced, sparse        | dense| dense  | dense|
|                 | goal          | detailed, brief, none          | detailed | brief | none |
|                 | test          | bool (test food names)         | no   | no     | no   |

custom medium is the practitioner's guide w2-o3-q4 and custom hard its w4-o6-q8.
coin_collector level L: quest length (L-1) % 100 + 1, rooms (L-1)//100 + 1 times that
(distractor rooms from level 101). treasure_hunter: levels 1-10 five rooms without
doors, 11-20 ten rooms with closed doors and containers, 21-30 twenty rooms with
locked ones. simple: `rewards` is the game's own point structure (how many sub-goals
score); the env option `rewards` (dense/sparse) decides what the agent receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from questline.core import ConfigError

DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Knob:
    kind: type  # int, bool or str
    lo: int = 0
    hi: int = 0
    choices: tuple = ()

    def check(self, family: str, name: str, value: Any) -> Any:
        where = f"textworld {family}: knob '{name}'"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if value not in self.choices:
                raise ConfigError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value}")
        if not self.choices and not self.lo <= value <= self.hi:
            raise ConfigError(f"{where} is out of range: {value} (allowed {self.lo}..{self.hi})")
        return value


@dataclass(frozen=True)
class Family:
    knobs: dict[str, Knob]
    levels: dict[str, dict[str, Any]]
    verbs: str  # command forms shown to the agent
    extra_check: Any = field(default=None)

    def check_knobs(self, family: str, knobs: dict[str, Any]) -> None:
        """Every knob known and in range on its own (combinations are checked in `params`)."""
        bad = sorted(set(knobs) - set(self.knobs))
        if bad:
            raise ConfigError(f"textworld {family}: unknown knob(s) {bad} "
                              f"(allowed: {', '.join(self.knobs)})")
        for k, v in knobs.items():
            self.knobs[k].check(family, k, v)

    def params(self, family: str, difficulty: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """The full knob values for one difficulty, explicit `overrides` winning; validated."""
        if difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty: '{difficulty}' is not one of {', '.join(DIFFICULTIES)}")
        self.check_knobs(family, overrides)
        out = {**self.levels[difficulty], **overrides}
        out = {k: self.knobs[k].check(family, k, v) for k, v in sorted(out.items())}
        if self.extra_check:
            self.extra_check(family, out)
        return out


def _cooking_check(family: str, p: dict) -> None:
    if p["take"] > p["recipe"]:
        raise ConfigError(f"textworld {family}: knob 'take' ({p['take']}) must be <= 'recipe' ({p['recipe']})")


def _coin_check(family: str, p: dict) -> None:
    level = p["level"]
    rooms = ((level - 1) // 100 + 1) * ((level - 1) % 100 + 1)
    if rooms > 100:
        raise ConfigError(f"textworld {family}: knob 'level' {level} needs {rooms} rooms "
                          "(textworld 1.7 supports at most 100)")


_MOVE = "go north/south/east/west, "
_OBJ = ("take X, take X from Y, put X on Y, insert X into Y, drop X, open X, close X, "
        "unlock X with Y, lock X with Y, examine X, look, inventory")

FAMILIES: dict[str, Family] = {
    "custom": Family(
        {"world_size": Knob(int, 1, 20), "nb_objects": Knob(int, 0, 40), "quest_length": Knob(int, 1, 20)},
        {"easy": {"world_size": 2, "nb_objects": 3, "quest_length": 2},
         "medium": {"world_size": 2, "nb_objects": 3, "quest_length": 4},
         "hard": {"world_size": 4, "nb_objects": 6, "quest_length": 8}},
        _MOVE + _OBJ + ", eat X"),
    "cooking": Family(
        {"recipe": Knob(int, 1, 5), "take": Knob(int, 0, 5), "go": Knob(int, choices=(1, 6, 9, 12)),
         "open": Knob(bool), "cook": Knob(bool), "cut": Knob(bool), "drop": Knob(bool)},
        {"easy": {"recipe": 1, "take": 1, "go": 1, "open": False, "cook": False, "cut": False, "drop": False},
         "medium": {"recipe": 2, "take": 2, "go": 6, "open": True, "cook": True, "cut": False, "drop": False},
         "hard": {"recipe": 3, "take": 3, "go": 9, "open": True, "cook": True, "cut": True, "drop": False}},
        _MOVE + _OBJ + ", cook X with Y (stove, oven, BBQ), slice/dice/chop X with knife, "
        "prepare meal, eat meal", _cooking_check),
    "coin_collector": Family(
        {"level": Knob(int, 1, 300)},
        {"easy": {"level": 5}, "medium": {"level": 105}, "hard": {"level": 210}},
        _MOVE + "take coin", _coin_check),
    "treasure_hunter": Family(
        {"level": Knob(int, 1, 30)},
        {"easy": {"level": 5}, "medium": {"level": 15}, "hard": {"level": 25}},
        _MOVE + _OBJ),
    "simple": Family(
        {"rewards": Knob(str, choices=("dense", "balanced", "sparse")),
         "goal": Knob(str, choices=("detailed", "brief", "none")), "test": Knob(bool)},
        {"easy": {"rewards": "dense", "goal": "detailed", "test": False},
         "medium": {"rewards": "dense", "goal": "brief", "test": False},
         "hard": {"rewards": "dense", "goal": "none", "test": False}},
        _MOVE + _OBJ + ", eat X"),
}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError(f"textworld: unknown family '{name}' (allowed: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def resolve_params(name: str, difficulty: str, knobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return family(name).params(name, difficulty, dict(knobs or {}))


def make_game(name: str, params: dict[str, Any], seed: int, path: str):
    """One uncompiled `textworld.Game` of a family, fully determined by (params, seed)."""
    import textworld
    import textworld.challenges
    from textworld import GameOptions

    options = GameOptions()
    options.seeds = seed
    options.path = path
    options.file_ext = ".z8"
    if name == "custom":
        options.nb_rooms = params["world_size"]
        options.nb_objects = params["nb_objects"]
        # as `tw-make custom --quest-length Q`: length and max depth Q, breadth 1..5
        q = params["quest_length"]
        options.chaining.min_length = options.chaining.max_length = options.chaining.max_depth = q
        options.chaining.min_depth, options.chaining.min_breadth, options.chaining.max_breadth = 1, 1, 5
        return textworld.generator.make_game(options), options
    settings = dict(params)
    if name == "cooking":
        settings.update(recipe_seed=0, split=None)
    _, make, _ = textworld.challenges.CHALLENGES[f"tw-{name}"]
    return make(settings=settings, options=options), options
