"""Procedural ALFWorld scenes: a room of typed receptacles, objects placed by ALFRED's
affordances, and a goal of one of the six ALFWorld task types, written as a PDDL
problem in ALFRED's style for the `alfworld` package's own `alfred.pddl` domain.

Affordances come from the package (`alfworld.gen.constants`): which receptacle type
can hold which object type (`VAL_RECEPTACLE_OBJECTS`), which objects can be cleaned,
heated, cooled, toggled, sliced (`VAL_ACTION_OBJECTS`), which receptacles open
(`OPENABLE_CLASS_SET`), which receptacle objects exist (`MOVABLE_RECEPTACLES`) and in
which room types each task type occurs (`GOALS_VALID`). Goals and goal texts are the
package's own (`alfworld.gen.goal_library`). Ids follow ALFRED's mangling
(`Cabinet_bar_03`, `Sink_bar_01_bar_SinkBasin`) so alfworld's AlfredDemangler names
them "cabinet 1", "sinkbasin 1" as in the official games.

A scene is a JSON-able dict, a pure function of (task type, knobs, seed):
    {"task_type", "room", "receptacles": [type, ...], "objects": [[type, receptacle index], ...],
     "target": {"object", "parent", "toggle"}, "template": goal template index}

Where this differs from the official games (on purpose): rooms are lists of
receptacles without ALFRED's 3-D layouts (every receptacle has its own location, the
agent starts in the middle of the room); the desk lamp is the only light source
(ALFRED also has floor lamps); no sliced objects and no movable-receptacle tasks
(ALFWorld drops those too); nothing starts cool, hot or clean.
"""

from __future__ import annotations

import random
from typing import Any

from questline.core import ConfigError

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
# short names accepted in recipes
ALIASES = {"pick": TASK_TYPES[0], "look": TASK_TYPES[1], "clean": TASK_TYPES[2], "heat": TASK_TYPES[3],
           "cool": TASK_TYPES[4], "pick_two": TASK_TYPES[5]}
# the appliance a transforming task uses: targets never start in it and it is not the goal receptacle
APPLIANCE = {TASK_TYPES[2]: "SinkBasin", TASK_TYPES[3]: "Microwave", TASK_TYPES[4]: "Fridge"}
LAMP, LAMP_HOLDERS = "DeskLamp", ("Desk", "SideTable", "Dresser")

# receptacle type -> (min, max) instances, per room type (counts as in ALFRED's floor plans)
ROOMS: dict[str, dict[str, tuple[int, int]]] = {
    "Kitchen": {"CounterTop": (1, 3), "Cabinet": (1, 12), "Drawer": (0, 8), "Fridge": (1, 1),
                "Microwave": (1, 1), "SinkBasin": (1, 1), "StoveBurner": (0, 4), "DiningTable": (0, 1),
                "CoffeeMachine": (0, 1), "GarbageCan": (0, 1), "Toaster": (0, 1), "Shelf": (0, 3)},
    "LivingRoom": {"Sofa": (1, 1), "SideTable": (1, 2), "CoffeeTable": (0, 1), "ArmChair": (0, 2),
                   "DiningTable": (0, 1), "TVStand": (0, 1), "Drawer": (0, 4), "Cabinet": (0, 4),
                   "Shelf": (0, 4), "GarbageCan": (0, 1), "Ottoman": (0, 1), "Dresser": (0, 1)},
    "Bedroom": {"Bed": (1, 1), "Desk": (0, 1), "SideTable": (0, 2), "Dresser": (0, 1), "Drawer": (1, 6),
                "Shelf": (0, 6), "GarbageCan": (0, 1), "LaundryHamper": (0, 1), "Safe": (0, 1),
                "ArmChair": (0, 1)},
    "Bathroom": {"Toilet": (1, 1), "SinkBasin": (1, 2), "CounterTop": (1, 1), "Cabinet": (1, 4),
                 "Drawer": (0, 4), "BathtubBasin": (0, 1), "TowelHolder": (0, 1), "HandTowelHolder": (0, 1),
                 "ToiletPaperHanger": (0, 1), "GarbageCan": (0, 1), "Shelf": (0, 2)},
}
# pickupable object types found in each room type
ROOM_OBJECTS: dict[str, tuple[str, ...]] = {
    "Kitchen": ("Apple", "Bread", "Egg", "Lettuce", "Potato", "Tomato", "Mug", "Cup", "Bowl", "Plate", "Pan",
                "Pot", "Kettle", "Fork", "Knife", "ButterKnife", "Spoon", "Spatula", "Ladle", "DishSponge",
                "SaltShaker", "PepperShaker", "SoapBottle", "WineBottle", "Glassbottle", "CreditCard",
                "CellPhone", "Vase", "Statue", "PaperTowel"),
    "LivingRoom": ("RemoteControl", "Newspaper", "Book", "Laptop", "KeyChain", "CreditCard", "CellPhone",
                   "Box", "Pillow", "Statue", "Vase", "Watch", "WateringCan", "TissueBox", "CD", "Pen",
                   "Pencil", "Candle", "Bowl", "Plate", "AlarmClock"),
    "Bedroom": ("AlarmClock", "Book", "CellPhone", "CD", "CreditCard", "KeyChain", "Laptop", "Pen", "Pencil",
                "Pillow", "Mug", "Bowl", "Cloth", "BaseballBat", "BasketBall", "TennisRacket", "Watch",
                "Vase", "Statue", "TissueBox"),
    "Bathroom": ("SoapBar", "SoapBottle", "SprayBottle", "ToiletPaper", "Cloth", "DishSponge", "HandTowel",
                 "Candle", "TissueBox", "Towel", "PaperTowel"),
}

# difficulty -> default knobs (inclusive ranges, sampled per scene)
DIFFICULTY_KNOBS: dict[str, dict[str, tuple[int, int]]] = {
    "easy": {"receptacles": (5, 8), "objects": (4, 8)},
    "medium": {"receptacles": (10, 15), "objects": (10, 16)},
    "hard": {"receptacles": (18, 28), "objects": (20, 32)},
}
KNOB_LIMITS = {"receptacles": (4, 40), "objects": (2, 60)}


def _constants():
    import alfworld.gen.constants as c  # the package's ALFRED affordance tables
    return c


def canonical_task_type(name: str) -> str:
    if name in TASK_TYPES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise ConfigError(f"env.config.task_types: unknown task type '{name}' "
                      f"(allowed: {', '.join(TASK_TYPES)} or {', '.join(ALIASES)})")


def check_knob(name: str, value: Any) -> tuple[int, int]:
    """An int or a [lo, hi] range within KNOB_LIMITS -> (lo, hi)."""
    lo_lim, hi_lim = KNOB_LIMITS[name]
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"env.config.{name}: expected an int or [lo, hi], got {value!r}")
    lo, hi = value
    if not lo_lim <= lo <= hi <= hi_lim:
        raise ConfigError(f"env.config.{name}: {list(value)} is out of range; need "
                          f"{lo_lim} <= lo <= hi <= {hi_lim}")
    return lo, hi


def can_hold(receptacle: str, obj: str) -> bool:
    return obj in _constants().VAL_RECEPTACLE_OBJECTS.get(receptacle, ())


def _receptacles(room: str, n: int, required: set[str], rng: random.Random) -> list[str]:
    spec = ROOMS[room]
    counts = {t: lo for t, (lo, _) in spec.items()}
    for t in required:
        counts[t] = max(counts.get(t, 0), 1)
    while sum(counts.values()) < n:
        free = [t for t, (_, hi) in spec.items() if counts[t] < hi]
        if not free:
            break
        counts[rng.choice(free)] += 1
    out = [t for t in spec for _ in range(counts[t])]
    rng.shuffle(out)
    return out


def _target(task_type: str, room: str, types: set[str], rng: random.Random) -> tuple[str, str | None]:
    """(object type, goal receptacle type) for the task; raises ValueError if the room has none."""
    c = _constants()
    objs = list(ROOM_OBJECTS[room])
    rng.shuffle(objs)
    appliance = APPLIANCE.get(task_type)
    need = {TASK_TYPES[2]: "Cleanable", TASK_TYPES[3]: "Heatable", TASK_TYPES[4]: "Coolable"}.get(task_type)
    for obj in objs:
        if need and obj not in c.VAL_ACTION_OBJECTS[need]:
            continue
        holders = sorted(t for t in types if can_hold(t, obj))
        if task_type == TASK_TYPES[1]:  # look: any object that has somewhere to lie
            if holders:
                return obj, None
            continue
        parents = [t for t in holders if t != appliance]
        rng.shuffle(parents)
        for parent in parents:
            # somewhere to start that is neither the goal receptacle type nor the appliance
            if any(t not in (parent, appliance) for t in holders):
                return obj, parent
    raise ValueError(f"no {task_type} target fits a {room} with {sorted(types)}")


def sample_scene(task_type: str, seed: int, receptacles: tuple[int, int], objects: tuple[int, int],
                 room: str | None = None) -> dict[str, Any]:
    """One scene, a pure function of its arguments. Raises ValueError when the
    sampled room cannot host the task (the caller retries with another seed)."""
    c = _constants()
    rng = random.Random(seed)
    rooms = sorted(c.GOALS_VALID[task_type] & set(ROOMS))
    if room is not None:
        if room not in ROOMS:
            raise ConfigError(f"env.config.room: unknown room '{room}' (allowed: {', '.join(ROOMS)})")
        if room not in rooms:
            raise ConfigError(f"env.config.room: {task_type} does not occur in a {room} "
                              f"(ALFRED: {', '.join(rooms)})")
        rooms = [room]
    room = rng.choice(rooms)
    required = set()
    if task_type in APPLIANCE:
        required.add(APPLIANCE[task_type])
    if task_type == TASK_TYPES[1]:  # a desk lamp needs a desk, side table or dresser
        required.add(rng.choice([t for t in LAMP_HOLDERS if t in ROOMS[room]]))
    recs = _receptacles(room, rng.randint(*receptacles), required, rng)
    obj, parent = _target(task_type, room, set(recs), rng)
    appliance = APPLIANCE.get(task_type)

    def spots(o: str, banned: tuple) -> list[int]:
        return [i for i, t in enumerate(recs) if can_hold(t, o) and t not in banned]

    placed: list[list] = []
    n_targets = rng.randint(2, 3) if task_type == TASK_TYPES[5] else rng.randint(1, 2)
    for _ in range(n_targets):
        placed.append([obj, rng.choice(spots(obj, (parent, appliance)))])
    toggle = None
    if task_type == TASK_TYPES[1]:
        toggle = LAMP
        placed.append([LAMP, rng.choice([i for i, t in enumerate(recs) if t in LAMP_HOLDERS])])
    others = [o for o in ROOM_OBJECTS[room] if o != obj and spots(o, ())]
    for _ in range(max(0, rng.randint(*objects) - n_targets)):
        o = rng.choice(others)
        placed.append([o, rng.choice(spots(o, ()))])
    templates = _goal_library()[task_type]["templates"]
    return {"task_type": task_type, "room": room, "receptacles": recs, "objects": placed,
            "target": {"object": obj, "parent": parent, "toggle": toggle},
            "template": rng.randrange(len(templates))}


def _goal_library() -> dict:
    import alfworld.gen.goal_library as glib
    return glib.gdict


def goal_text(scene: dict) -> str:
    """The package's goal template, filled as alfworld's get_templated_task_desc does."""
    t = scene["target"]
    template = _goal_library()[scene["task_type"]]["templates"][scene["template"]]
    return template.format(obj=t["object"].lower(), recep=(t["parent"] or "").lower(),
                           toggle=(t["toggle"] or "").lower(), mrecep="")


def pddl_params(scene: dict) -> dict:
    """traj_data.json's pddl_params for this scene (the official data's goal fields)."""
    t = scene["target"]
    return {"object_target": t["object"], "parent_target": t["parent"] or "",
            "toggle_target": t["toggle"] or "", "mrecep_target": "", "object_sliced": False}


def _ids(types: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for t in types:
        seen[t] = seen.get(t, 0) + 1
        k = f"{seen[t]:02d}"
        if t.endswith("Basin"):  # ALFRED: Sink|..|SinkBasin -> "sinkbasin"
            out.append(f"{t[:-5]}_bar_{k}_bar_{t}")
        else:
            out.append(f"{t}_bar_{k}")
    return out


def to_pddl(scene: dict, name: str = "questline", targets_only: bool = False) -> str:
    """The scene as a PDDL problem for alfworld's `alfred.pddl` domain. `targets_only`
    keeps only the objects the goal is about (and the lamp), as ALFRED's planning
    problems do: other objects never block an action, so a plan for that problem is a
    plan for the whole scene, and the planner finds it far faster."""
    c = _constants()
    recs = scene["receptacles"]
    objects = scene["objects"]
    if targets_only:
        keep = {scene["target"]["object"], scene["target"]["toggle"]}
        objects = [o for o in objects if o[0] in keep]
    obj_types = [o for o, _ in objects]
    rec_ids, obj_ids = _ids(recs), _ids(obj_types)
    locs = [f"loc_bar_{i + 1}" for i in range(len(recs))]
    otypes, rtypes = sorted(set(obj_types)), sorted(set(recs))
    decl = (["agent1 - agent"] + [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
            + [f"{i} - object" for i in obj_ids] + [f"{i} - receptacle" for i in rec_ids]
            + ["loc_bar_0 - location"] + [f"{loc} - location" for loc in locs])
    init = ["(atLocation agent1 loc_bar_0)"]
    for rid, t, loc in zip(rec_ids, recs, locs):
        init.append(f"(receptacleType {rid} {t}Type)")
        init.append(f"(receptacleAtLocation {rid} {loc})")
        if t in c.OPENABLE_CLASS_SET:
            init.append(f"(openable {rid})")
    init += [f"(canContain {r}Type {o}Type)" for r in rtypes for o in otypes if can_hold(r, o)]
    actions = c.VAL_ACTION_OBJECTS
    for oid, (t, where) in zip(obj_ids, objects):
        init.append(f"(objectType {oid} {t}Type)")
        init.append(f"(inReceptacle {oid} {rec_ids[where]})")
        init.append(f"(objectAtLocation {oid} {locs[where]})")
        if t == LAMP:
            init.append(f"(toggleable {oid})")
            continue
        init.append(f"(pickupable {oid})")
        if t in c.MOVABLE_RECEPTACLES_SET:
            init.append(f"(isReceptacleObject {oid})")
        for prop, kind in (("cleanable", "Cleanable"), ("heatable", "Heatable"), ("coolable", "Coolable"),
                           ("sliceable", "Sliceable")):
            if t in actions[kind]:
                init.append(f"({prop} {oid})")
    tgt = scene["target"]
    goal = _goal_library()[scene["task_type"]]["pddl"].replace("#", "-").format(
        obj=tgt["object"], recep=tgt["parent"] or "", toggle=tgt["toggle"] or "", mrecep="")
    nl = "\n        "
    return (f"(define (problem {name})\n    (:domain alfred)\n    (:objects\n        {nl.join(decl)}\n    )\n"
            f"    (:init\n        {nl.join(init)}\n    )\n{goal}")
