"""Crafter state -> text, in the standard BALROG form (after SmartPlay).

The agent sees the 9x7 window of the semantic map around itself (9 columns west to
east, 7 rows north to south, the player in the middle: what crafter's image shows).
Each object type other than the player is listed once, at its closest tile
(Manhattan distance; ties go to the first tile in BALROG's scan order: columns west
to east, each column north to south), in order of first appearance in that scan:

    You see:
    - tree 2 steps to your north-west
    - water 1 step to your south

    You face tree at your front.

Grass, sand and path are ground, never listed, and "nothing" when faced. Then the
status (health, food, drink, energy as n/9) and the inventory (items with a nonzero
count, in crafter's order), and "You are sleeping, ..." / "You died." first when so.

Differences from BALROG, on purpose: near the world's edge BALROG slices the map with
negative indices (garbage tiles); here tiles outside the world are simply not there.
BALROG lists only the outer ("edge") tiles of water; the closest water tile is always
an edge tile, so with one entry per type the text is the same and no dilation is done.
"""

from __future__ import annotations

import numpy as np

# crafter 1.8.3's semantic ids: materials in data.yaml order after None, then objects
ITEM_NAMES = ["none", "water", "grass", "stone", "path", "sand", "tree", "lava", "coal", "iron", "diamond",
              "table", "furnace", "player", "cow", "zombie", "skeleton", "arrow", "plant"]
ID = {name: i for i, name in enumerate(ITEM_NAMES)}
GROUND = {ID["grass"], ID["sand"], ID["path"]}
PLAYER = ID["player"]
WINDOW = (9, 7)  # columns (x, west-east) x rows (y, north-south)
VITALS = ("health", "food", "drink", "energy")
SLEEPING = "You are sleeping, and will not be able take actions until energy is full."  # BALROG's wording
DIED = "You died."


def describe_location(dx: int, dy: int) -> str:
    """'4 steps to your north-west' for a tile dx east and dy south of the player."""
    parts = (["north"] if dy < 0 else ["south"] if dy > 0 else []) + \
            (["west"] if dx < 0 else ["east"] if dx > 0 else [])
    dist = abs(dx) + abs(dy)
    return f"{dist} step{'s' if dist > 1 else ''} to your {'-'.join(parts)}"


def window_tiles(semantic: np.ndarray, pos) -> list[tuple[int, int, int]]:
    """(dx, dy, id) of the visible window in BALROG's scan order (x-major), skipping
    tiles outside the world."""
    (px, py), (w, h) = (int(pos[0]), int(pos[1])), semantic.shape
    out = []
    for dx in range(-(WINDOW[0] // 2), WINDOW[0] // 2 + 1):
        for dy in range(-(WINDOW[1] // 2), WINDOW[1] // 2 + 1):
            x, y = px + dx, py + dy
            if 0 <= x < w and 0 <= y < h:
                out.append((dx, dy, int(semantic[x, y])))
    return out


def closest_objects(semantic: np.ndarray, pos) -> list[tuple[str, int, int]]:
    """(name, dx, dy) of the closest tile of each visible non-ground type."""
    best: dict[str, tuple[int, int, int]] = {}
    for dx, dy, idx in window_tiles(semantic, pos):
        if idx == PLAYER or idx in GROUND or idx == 0:
            continue
        name, dist = ITEM_NAMES[idx], abs(dx) + abs(dy)
        if name not in best or dist < best[name][0]:
            best[name] = (dist, dx, dy)
    return [(name, dx, dy) for name, (_, dx, dy) in best.items()]


def faced(semantic: np.ndarray, pos, facing) -> str:
    x, y = int(pos[0]) + int(facing[0]), int(pos[1]) + int(facing[1])
    w, h = semantic.shape
    if not (0 <= x < w and 0 <= y < h):
        return "nothing"
    idx = int(semantic[x, y])
    return "nothing" if idx in GROUND or idx == 0 else ITEM_NAMES[idx]


def describe_view(semantic: np.ndarray, pos, facing) -> str:
    objs = closest_objects(semantic, pos)
    seen = ("You see:\n" + "\n".join(f"- {n} {describe_location(dx, dy)}" for n, dx, dy in objs)
            if objs else "You see nothing away from you.")
    return f"{seen}\n\nYou face {faced(semantic, pos, facing)} at your front."


def describe_inventory(inventory: dict[str, int]) -> str:
    status = "Your status:\n" + "\n".join(f"- {v}: {inventory[v]}/9" for v in VITALS)
    items = [f"- {k}: {n}" for k, n in inventory.items() if k not in VITALS and n != 0]
    inv = "Your inventory:\n" + "\n".join(items) if items else "You have nothing in your inventory."
    return f"{status}\n\n{inv}"


def describe_frame(semantic: np.ndarray, pos, facing, inventory: dict[str, int], *,
                   sleeping: bool = False, dead: bool = False) -> tuple[str, str]:
    """(long-term context, short-term context) as BALROG splits them: the view (with
    the sleeping / died line first) and the status + inventory."""
    view = describe_view(semantic, pos, facing)
    if sleeping:  # BALROG checks sleeping first
        view = f"{SLEEPING}\n\n{view}"
    elif dead:
        view = f"{DIED}\n\n{view}"
    return view, describe_inventory(inventory)
