"""Crafter state -> text, exactly as BALROG's `CrafterLanguageWrapper` writes it.

The agent sees BALROG's slice of the semantic map around itself: 9 columns (x, west to
east) by 7 rows (y, north to south), the player at column 4, row 3 (what crafter's image
shows). With BALROG's defaults every tile other than the player counts, ground (grass,
sand, path) included; each type is listed once, at its closest tile (Manhattan distance;
ties go to the first tile of the scan: columns west to east, each column north to
south), in order of first appearance in that scan; then the faced tile, named whatever
it is:

    You see:
    - grass 1 step to your west
    - tree 2 steps to your north-west

    You face grass at your front.

"You are sleeping, ..." / "You died." come first, followed by three blank lines, as
BALROG's `describe_frame` joins them. The status (health, food, drink, energy as n/9)
and the inventory (nonzero items in crafter's order) are the short-term context.

`Settings` holds BALROG's other options: `unique_items=False` lists every tile,
`precise_location` says "2 steps north and 1 step west", `skip_items` leaves types out
(and says "nothing" when one is faced), `edge_only_items` lists only the tiles of a type
with a 4-neighbour in the window of another type.

The window is cut the way BALROG slices the numpy array, quirk included: when the player
is within 4 columns of the west edge or 3 rows of the north edge, the slice starts at a
negative index, comes out empty, and the agent sees nothing at all; near the east and
south edges the tiles outside the world are simply not there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# crafter 1.8.3's semantic ids (BALROG's id_to_item): materials in data.yaml order after
# None (id 0, never inside the world), then the objects
ITEM_NAMES = ["None", "water", "grass", "stone", "path", "sand", "tree", "lava", "coal", "iron", "diamond",
              "table", "furnace", "player", "cow", "zombie", "skeleton", "arrow", "plant"]
ID = {name: i for i, name in enumerate(ITEM_NAMES)}
PLAYER = ID["player"]
WINDOW = (9, 7)  # columns (x, west-east) x rows (y, north-south)
CENTER = (WINDOW[0] // 2, WINDOW[1] // 2)  # the player's tile in the window
VITALS = ("health", "food", "drink", "energy")
SLEEPING = "You are sleeping, and will not be able take actions until energy is full."  # BALROG's wording
DIED = "You died."


@dataclass(frozen=True)
class Settings:
    """BALROG's text options (its `config.yaml` crafter_kwargs); the defaults are BALROG's."""
    unique_items: bool = True
    precise_location: bool = False
    skip_items: tuple[str, ...] = ()
    edge_only_items: tuple[str, ...] = ()


DEFAULT = Settings()


def describe_location(dx: int, dy: int, precise: bool = False) -> str:
    """Where a tile dx east and dy south of the player is: '4 steps to your
    north-west', or with `precise` '3 steps north and 1 step west'."""
    if precise:
        parts = [f"{abs(d)} step{'s' if abs(d) > 1 else ''} {name}"
                 for d, name in ((dy, "north" if dy < 0 else "south"), (dx, "west" if dx < 0 else "east")) if d]
        return " and ".join(parts) if parts else "at your location"
    parts = (["north"] if dy < 0 else ["south"] if dy > 0 else []) + \
            (["west"] if dx < 0 else ["east"] if dx > 0 else [])
    dist = abs(dx) + abs(dy)
    return f"{dist} step{'s' if dist > 1 else ''} to your {'-'.join(parts)}"


def window(semantic: np.ndarray, pos) -> np.ndarray:
    """BALROG's slice of the map around the player, [x, y] with the player at CENTER.
    Sliced exactly as BALROG does: a negative start wraps to an empty window."""
    px, py = int(pos[0]), int(pos[1])
    return semantic[px - CENTER[0]: px + CENTER[0] + 1, py - CENTER[1]: py + CENTER[1] + 1]


def edge_tiles(win: np.ndarray, idx: int) -> np.ndarray:
    """Tiles of type `idx` with a 4-neighbour inside the window of another type
    (scipy's binary_dilation of the other tiles, outside the window counting as none)."""
    other = np.pad(win != idx, 1, constant_values=False)
    near = other[1:-1, 1:-1] | other[:-2, 1:-1] | other[2:, 1:-1] | other[1:-1, :-2] | other[1:-1, 2:]
    return near & (win == idx)


def visible_objects(win: np.ndarray, s: Settings = DEFAULT) -> list[tuple[str, int, int]]:
    """(name, dx, dy) of the listed tiles, in scan order (x-major); with
    `unique_items` the closest tile of each type, in order of first appearance."""
    skip = {ID[name] for name in s.skip_items}
    edges = {ID[name]: edge_tiles(win, ID[name]) for name in s.edge_only_items}
    listed = []
    for i in range(win.shape[0]):
        for j in range(win.shape[1]):
            idx = int(win[i, j])
            if idx == PLAYER or idx in skip or (idx in edges and not edges[idx][i, j]):
                continue
            listed.append((ITEM_NAMES[idx], i - CENTER[0], j - CENTER[1]))
    if not s.unique_items:
        return listed
    best: dict[str, tuple[int, int]] = {}
    for name, dx, dy in listed:
        if name not in best or abs(dx) + abs(dy) < sum(map(abs, best[name])):
            best[name] = (dx, dy)
    return [(name, dx, dy) for name, (dx, dy) in best.items()]


def faced(win: np.ndarray, facing, s: Settings = DEFAULT) -> str:
    """The faced tile's name; 'nothing' outside the window or for a skipped type."""
    x, y = CENTER[0] + int(facing[0]), CENTER[1] + int(facing[1])
    if not (0 <= x < win.shape[0] and 0 <= y < win.shape[1]):
        return "nothing"
    name = ITEM_NAMES[int(win[x, y])]
    return "nothing" if name in s.skip_items else name


def describe_view(semantic: np.ndarray, pos, facing, s: Settings = DEFAULT) -> str:
    win = window(semantic, pos)
    objs = visible_objects(win, s)
    seen = ("You see:\n" + "\n".join(f"- {n} {describe_location(dx, dy, s.precise_location)}" for n, dx, dy in objs)
            if objs else "You see nothing away from you.")
    return f"{seen}\n\nYou face {faced(win, facing, s)} at your front."


def describe_inventory(inventory: dict[str, int]) -> str:
    status = "Your status:\n" + "\n".join(f"- {v}: {inventory[v]}/9" for v in VITALS)
    items = [f"- {k}: {n}" for k, n in inventory.items() if k not in VITALS and n != 0]
    inv = "Your inventory:\n" + "\n".join(items) if items else "You have nothing in your inventory."
    return f"{status}\n\n{inv}"


def describe_frame(semantic: np.ndarray, pos, facing, inventory: dict[str, int], *,
                   sleeping: bool = False, dead: bool = False, settings: Settings = DEFAULT) -> tuple[str, str]:
    """(long-term context, short-term context) as BALROG splits them: the view (after
    the sleeping / died line and three blank lines) and the status + inventory."""
    view = describe_view(semantic, pos, facing, settings)
    notice = SLEEPING if sleeping else DIED if dead else ""  # BALROG checks sleeping first
    return (f"{notice}\n\n\n\n{view}" if notice else view), describe_inventory(inventory)
