"""A scripted Crafter expert: the source of SFT demonstrations.

It plays from what the agent could know: the tiles it has seen in its 9x7 window
(remembered, so it can walk back to a table or a lake it passed), the creatures in
view, its inventory and its achievements. Each step it picks the first subgoal that
applies, in this order:

1. while asleep: keep sleeping (and afterwards dig out of its shelter);
2. a zombie or skeleton next to it: fight it; hurt (health <= 5) with a skeleton or
   an arrow within 6 tiles, or (health <= 4) a zombie within 4: run away;
3. needs: drink when thirsty, eat a cow when hungry (exploring to find them), sleep
   when exhausted (a stone in front first when it has one) or at night, then only in
   a sealed shelter: a two-tile pocket it walks (or digs) into and closes with a stone;
4. the tech tree: wood -> table -> wood pickaxe and sword -> (drink, cow, sapling,
   plant, a nap for "wake up") -> stone -> place stone -> stone pickaxe and sword ->
   coal -> furnace -> iron -> iron pickaxe and sword -> diamond;
5. otherwise explore (breadth-first search to the nearest unseen tile).

Movement is breadth-first search over remembered walkable tiles (never lava, never
unseen tiles). To use a tile the expert stands next to it and faces it (a move
towards a tile that cannot be entered only turns the player). `decide()` returns the
action index and the subgoal as text ("collect wood for a table"), so a change of
subgoal is visible in the trajectory.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from crafter import constants

from questline.envs.crafter.render import ID, WINDOW

ACTIONS = ["Noop", "Move West", "Move East", "Move North", "Move South", "Do", "Sleep", "Place Stone",
           "Place Table", "Place Furnace", "Place Plant", "Make Wood Pickaxe", "Make Stone Pickaxe",
           "Make Iron Pickaxe", "Make Wood Sword", "Make Stone Sword", "Make Iron Sword"]
A = {name: i for i, name in enumerate(ACTIONS)}
MOVES = {(-1, 0): A["Move West"], (1, 0): A["Move East"], (0, -1): A["Move North"], (0, 1): A["Move South"]}
WALKABLE = {ID["grass"], ID["sand"], ID["path"]}
UNSEEN = -1
TABLE_WOOD = constants.place["table"]["uses"]["wood"]
FURNACE_STONE = constants.place["furnace"]["uses"]["stone"]
FAR_TABLE = 12  # steps: farther than this, place a new table instead of walking back


class Expert:
    def __init__(self, area: tuple[int, int]):
        self.known = np.full(tuple(area), UNSEEN, np.int16)  # remembered materials
        self.last_pos: tuple[int, int] | None = None
        self.stuck = 0
        self.sapling_tries = 0
        self.shelter: tuple[tuple[int, int], tuple[int, int]] | None = None  # (entrance, direction)
        self.sealed: tuple[int, int] | None = None  # the stone that closes the shelter
        self.rng = np.random.RandomState(0)

    # ------------------------------------------------------------ perception
    def _observe(self, sim) -> None:
        (px, py), (w, h) = sim.player.pos, self.known.shape
        hw, hh = WINDOW[0] // 2, WINDOW[1] // 2
        x0, x1, y0, y1 = max(0, px - hw), min(w, px + hw + 1), max(0, py - hh), min(h, py + hh + 1)
        self.known[x0:x1, y0:y1] = sim.world._mat_map[x0:x1, y0:y1]
        self.creatures: dict[tuple[int, int], str] = {}
        for obj in sim.world.objects:
            dx, dy = obj.pos[0] - px, obj.pos[1] - py
            if obj is not sim.player and abs(dx) <= hw and abs(dy) <= hh:
                self.creatures[(int(obj.pos[0]), int(obj.pos[1]))] = type(obj).__name__.lower()
        pos = (int(px), int(py))
        self.stuck = self.stuck + 1 if pos == self.last_pos else 0
        self.last_pos = pos

    def _free(self, t: tuple[int, int]) -> bool:
        w, h = self.known.shape
        return 0 <= t[0] < w and 0 <= t[1] < h and self.known[t] in WALKABLE and t not in self.creatures

    def _mat(self, t: tuple[int, int]) -> int:
        w, h = self.known.shape
        return int(self.known[t]) if 0 <= t[0] < w and 0 <= t[1] < h else UNSEEN

    # ------------------------------------------------------------ search
    def _search(self, start, goal, limit: int = 4000) -> tuple[tuple[int, int], int] | None:
        """Breadth-first search over free tiles: (first move, length) of a shortest walk
        to a tile where `goal(tile)` holds, or None within `limit` tiles."""
        if goal(start):
            return (0, 0), 0
        parent, dist, queue = {start: None}, {start: 0}, deque([start])
        while queue and len(parent) < limit:
            cur = queue.popleft()
            for d in MOVES:
                nxt = (cur[0] + d[0], cur[1] + d[1])
                if nxt in parent or not self._free(nxt):
                    continue
                parent[nxt], dist[nxt] = cur, dist[cur] + 1
                if goal(nxt):
                    first = nxt
                    while parent[first] != start:
                        first = parent[first]
                    return (first[0] - start[0], first[1] - start[1]), dist[nxt]
                queue.append(nxt)
        return None

    def _path_step(self, start, goal, limit: int = 4000) -> tuple[int, int] | None:
        """First move of a shortest walk to a tile where `goal(tile)` holds."""
        found = self._search(start, goal, limit)
        return found and found[0]

    def _distance(self, start, goal, limit: int = 4000) -> int | None:
        found = self._search(start, goal, limit)
        return None if found is None else found[1]

    def _interact(self, sim, is_target) -> int | None:
        """Walk next to a tile where `is_target` holds, face it and Do. None if none is known."""
        pos, facing = self._pos(sim), tuple(int(v) for v in sim.player.facing)
        front = (pos[0] + facing[0], pos[1] + facing[1])
        if is_target(front):
            return A["Do"]
        for d in MOVES:
            if is_target((pos[0] + d[0], pos[1] + d[1])):
                return MOVES[d]  # the tile cannot be entered: this only turns the player
        step = self._path_step(pos, lambda t: any(is_target((t[0] + d[0], t[1] + d[1])) for d in MOVES))
        return MOVES[step] if step and step != (0, 0) else None

    def _goto(self, sim, goal) -> int | None:
        step = self._path_step(self._pos(sim), goal)
        if step is None:
            return None
        return A["Noop"] if step == (0, 0) else MOVES[step]

    def _explore(self, sim) -> int:
        pos = self._pos(sim)
        if self.stuck > 8:
            return MOVES[list(MOVES)[self.rng.randint(4)]]
        w, h = self.known.shape

        def frontier(t):
            return any(0 <= t[0] + d[0] < w and 0 <= t[1] + d[1] < h and self.known[t[0] + d[0], t[1] + d[1]] == UNSEEN
                       for d in MOVES)
        step = self._path_step(pos, frontier)
        if step and step != (0, 0):
            return MOVES[step]
        free = [d for d in MOVES if self._free((pos[0] + d[0], pos[1] + d[1]))]
        return MOVES[free[self.rng.randint(len(free))]] if free else A["Noop"]

    def _place(self, sim, action: str, where: list[str]) -> int:
        """Place something on the faced tile, walking until a suitable one is in front."""
        pos, facing = self._pos(sim), tuple(int(v) for v in sim.player.facing)
        ok = {ID[m] for m in where}

        def good(t):
            return self._mat(t) in ok and t not in self.creatures
        if good((pos[0] + facing[0], pos[1] + facing[1])):
            return A[action]
        for d in MOVES:  # a move into a free tile leaves the next tile in that direction in front
            a, b = (pos[0] + d[0], pos[1] + d[1]), (pos[0] + 2 * d[0], pos[1] + 2 * d[1])
            if self._free(a) and good(b):
                return MOVES[d]
        return self._explore(sim)

    @staticmethod
    def _pos(sim) -> tuple[int, int]:
        return int(sim.player.pos[0]), int(sim.player.pos[1])

    def _near(self, t, material: str) -> bool:
        return any(self._mat((t[0] + dx, t[1] + dy)) == ID[material] for dx in (-1, 0, 1) for dy in (-1, 0, 1))

    # ------------------------------------------------------------ policy
    def decide(self, sim) -> tuple[int, str]:
        """(action index, subgoal text) for the current state."""
        self._observe(sim)
        p = sim.player
        inv, done = p.inventory, {k for k, v in p.achievements.items() if v > 0}
        pos = self._pos(sim)
        if p.sleeping:
            return A["Noop"], "sleep until energy is restored"
        if self.sealed is not None:  # awake in the shelter: open it
            if self._mat(self.sealed) not in WALKABLE and inv["energy"] >= 8:
                return self._dig_out(sim), "leave the shelter"
            if inv["energy"] < 8:
                return A["Sleep"], "sleep to restore energy"
            self.sealed = None

        for d in MOVES:  # threats next to the player
            kind = self.creatures.get((pos[0] + d[0], pos[1] + d[1]))
            if kind in ("zombie", "skeleton"):
                facing = tuple(int(v) for v in p.facing)
                return (A["Do"] if facing == d else MOVES[d]), f"fight the {kind}"

        danger = self._danger(inv)
        if danger:
            return self._flee(sim), f"get away from the {danger}"
        for act, goal in self._needs(sim, inv, done):
            if act is not None:
                return act, goal
        for act, goal in self._progress(sim, inv, done):
            if act is not None:
                return act, goal
        return self._explore(sim), "explore"

    def _hostiles(self, kinds=("zombie", "skeleton", "arrow")) -> list[tuple[int, int]]:
        return [t for t, k in self.creatures.items() if k in kinds]

    def _danger(self, inv) -> str | None:
        """A creature to run from: skeletons (and their arrows) within reach of their
        bows, and zombies when health is low."""
        pos = self.last_pos
        near = lambda t, r: abs(t[0] - pos[0]) + abs(t[1] - pos[1]) <= r  # noqa: E731
        if inv["health"] <= 5 and any(near(t, 6) for t in self._hostiles(("skeleton", "arrow"))):
            return "skeleton"
        if inv["health"] <= 4 and any(near(t, 4) for t in self._hostiles(("zombie",))):
            return "zombie"
        return None

    def _flee(self, sim) -> int:
        pos, hostiles = self._pos(sim), self._hostiles()

        def gap(t):
            return min(abs(t[0] - h[0]) + abs(t[1] - h[1]) for h in hostiles)
        step = self._path_step(pos, lambda t: gap(t) >= 8, limit=800)
        if step and step != (0, 0):
            return MOVES[step]
        free = [d for d in MOVES if self._free((pos[0] + d[0], pos[1] + d[1]))]
        if not free:
            return A["Noop"]
        return MOVES[max(free, key=lambda d: gap((pos[0] + d[0], pos[1] + d[1])))]

    def _water(self, t):
        return self._mat(t) == ID["water"]

    def _cow(self, t):
        return self.creatures.get(t) == "cow"

    def _material(self, name):
        return lambda t: self._mat(t) == ID[name]

    def _needs(self, sim, inv, done):
        if inv["drink"] <= 4:
            yield self._interact(sim, self._water) or self._explore(sim), "drink water"
        if inv["food"] <= 4:
            yield self._interact(sim, self._cow) or self._explore(sim), "eat a cow"
        if inv["energy"] <= 2:
            yield self._sleep(sim, inv), "sleep to restore energy"
        if sim.world.daylight < 0.3 and (inv["energy"] < 7 or (self.shelter is not None and inv["energy"] < 9)):
            yield self._sleep(sim, inv, sheltered=True), "sleep through the night"
        pos = self._pos(sim)
        if inv["drink"] < 9 and any(self._water((pos[0] + d[0], pos[1] + d[1])) for d in MOVES):
            yield self._interact(sim, self._water), "drink water"
        if inv["food"] < 7 and any(self._cow((pos[0] + d[0], pos[1] + d[1])) for d in MOVES):
            yield self._interact(sim, self._cow), "eat a cow"

    def _sleep(self, sim, inv, sheltered: bool = False) -> int | None:
        """Sleep sealed in a two-tile pocket when one is known (or can be dug), else sleep
        with a stone in front. A pocket: entrance E, then T1 = E + d and T2 = E + 2d
        (walkable or stone to dig) whose other neighbours cannot be walked on; walk in to
        T2, step back to T1 (now facing E) and place a stone on E."""
        p, pos = sim.player, self._pos(sim)
        facing = (int(p.facing[0]), int(p.facing[1]))
        front = (pos[0] + facing[0], pos[1] + facing[1])
        if self.shelter is None or not self._pocket_ok(*self.shelter, inv):
            self.shelter = self._find_pocket(sim, inv)
        if self.shelter is not None and inv["stone"] > 0:
            (ex, ey), (dx, dy) = self.shelter
            t1, t2 = (ex + dx, ey + dy), (ex + 2 * dx, ey + 2 * dy)
            if pos == t1 and facing == (-dx, -dy):
                if self._free((ex, ey)):
                    self.sealed = (ex, ey)
                    return A["Place Stone"]
                self.shelter = None
                return A["Sleep"]
            if pos == t2:
                return MOVES[(-dx, -dy)]
            if pos in ((ex, ey), t1):
                ahead = t1 if pos == (ex, ey) else t2
                if facing == (dx, dy) and self._mat(ahead) not in WALKABLE:
                    return A["Do"]  # dig the pocket
                return MOVES[(dx, dy)]
            step = self._path_step(pos, lambda t: t == (ex, ey), limit=1500)
            if step and step != (0, 0):
                return MOVES[step]
            self.shelter = None
        if sheltered:
            return None
        if inv["stone"] > 0 and self._free(front):
            return A["Place Stone"]  # block the open tile in front before sleeping
        return A["Sleep"]

    def _dig_out(self, sim) -> int:
        pos, (sx, sy) = self._pos(sim), self.sealed
        d = (sx - pos[0], sy - pos[1])
        if d not in MOVES:  # not next to the seal any more
            self.sealed = None
            return A["Noop"]
        facing = tuple(int(v) for v in sim.player.facing)
        return A["Do"] if facing == d else MOVES[d]

    def _blocked(self, t) -> bool:
        m = self._mat(t)
        return m != UNSEEN and m not in WALKABLE

    def _pocket_ok(self, e, d, inv) -> bool:
        t1, t2 = (e[0] + d[0], e[1] + d[1]), (e[0] + 2 * d[0], e[1] + 2 * d[1])
        diggable = {ID["stone"]} if inv["wood_pickaxe"] else set()
        if self._mat(e) not in WALKABLE:
            return False
        for t in (t1, t2):
            if self._mat(t) not in WALKABLE | diggable:
                return False
        p = (d[1], d[0])
        sides = [(t1[0] + p[0], t1[1] + p[1]), (t1[0] - p[0], t1[1] - p[1]), (t2[0] + p[0], t2[1] + p[1]),
                 (t2[0] - p[0], t2[1] - p[1]), (t2[0] + d[0], t2[1] + d[1])]
        return all(self._blocked(t) and self._mat(t) != ID["lava"] for t in sides)

    def _find_pocket(self, sim, inv):
        pos = self._pos(sim)
        cands = {}
        w, h = self.known.shape
        x0, x1, y0, y1 = max(0, pos[0] - 12), min(w, pos[0] + 13), max(0, pos[1] - 12), min(h, pos[1] + 13)
        for x in range(x0, x1):
            for y in range(y0, y1):
                if self.known[x, y] in WALKABLE:
                    for d in MOVES:
                        if self._pocket_ok((x, y), d, inv):
                            cands[(x, y)] = d
        if not cands:
            return None
        step_goal = lambda t: t in cands  # noqa: E731
        best, dist = None, None
        for e, d in cands.items():
            dd = abs(e[0] - pos[0]) + abs(e[1] - pos[1])
            if dist is None or dd < dist:
                best, dist = (e, d), dd
        if self._path_step(pos, step_goal, limit=1500) is None:
            return None
        return best

    def _table_step(self, sim, inv, why: str):
        """Go next to a table (placing one when none is close), for crafting `why`."""
        pos = self._pos(sim)
        dist = self._distance(pos, lambda t: self._near(t, "table"), limit=600)
        if dist is None or dist > FAR_TABLE:
            if inv["wood"] >= TABLE_WOOD + 1:
                return self._place(sim, "Place Table", constants.place["table"]["where"]), f"place a table to {why}"
            return self._interact(sim, self._material("tree")) or self._explore(sim), f"collect wood for a table to {why}"
        return self._goto(sim, lambda t: self._near(t, "table")), f"go to the table to {why}"

    def _progress(self, sim, inv, done):
        pos = self._pos(sim)
        wood_need = TABLE_WOOD * ("place_table" not in done) + ("make_wood_pickaxe" not in done) + \
            ("make_wood_sword" not in done)
        if inv["wood"] < wood_need:
            yield (self._interact(sim, self._material("tree")) or self._explore(sim),
                   "collect wood for a table" if "place_table" not in done else "collect wood for tools")
        if "place_table" not in done:
            yield self._place(sim, "Place Table", constants.place["table"]["where"]), "place a table"
        for tool in ("wood_pickaxe", "wood_sword"):
            if f"make_{tool}" not in done and inv["wood"] >= 1:
                if self._near(pos, "table"):
                    yield A[f"Make {tool.replace('_', ' ').title()}"], f"make a {tool.replace('_', ' ')}"
                yield self._table_step(sim, inv, f"make a {tool.replace('_', ' ')}")
        if "collect_drink" not in done and inv["drink"] < 9:
            yield self._interact(sim, self._water), "drink water"
        if "eat_cow" not in done:
            yield self._interact(sim, self._cow), "eat a cow"
        if "collect_sapling" not in done and self.sapling_tries < 40:
            act = self._interact(sim, lambda t: self._mat(t) == ID["grass"] and t not in self.creatures)
            if act == A["Do"]:
                self.sapling_tries += 1
            yield act, "collect a sapling from the grass"
        if inv["sapling"] > 0 and "place_plant" not in done:
            yield self._place(sim, "Place Plant", ["grass"]), "place a sapling"
        if "wake_up" not in done and inv["energy"] < 9 and sim.world.daylight > 0.5 and \
                "zombie" not in self.creatures.values():
            yield self._sleep(sim, inv), "take a nap"
        stone_need = 1 + ("make_stone_pickaxe" not in done) + ("make_stone_sword" not in done) + \
            FURNACE_STONE * ("place_furnace" not in done) + 1
        if inv["wood_pickaxe"] and inv["stone"] < min(stone_need, 9):
            yield self._interact(sim, self._material("stone")) or self._explore(sim), "collect stone"
        if inv["stone"] > 0 and "place_stone" not in done:
            yield self._place(sim, "Place Stone", constants.place["stone"]["where"]), "place a stone"
        wood_need = ("make_stone_pickaxe" not in done) + ("make_stone_sword" not in done) + 2
        if inv["wood_pickaxe"] and inv["wood"] < wood_need:
            act = self._interact(sim, self._material("tree"))
            if act is not None:
                yield act, "collect wood for stone tools"
        for tool in ("stone_pickaxe", "stone_sword"):
            if f"make_{tool}" not in done and inv["wood"] >= 1 and inv["stone"] >= 1:
                if self._near(pos, "table"):
                    yield A[f"Make {tool.replace('_', ' ').title()}"], f"make a {tool.replace('_', ' ')}"
                yield self._table_step(sim, inv, f"make a {tool.replace('_', ' ')}")
        if inv["wood_pickaxe"] and inv["coal"] < 2:
            act = self._interact(sim, self._material("coal"))
            if act is not None:
                yield act, "collect coal"
        if "place_furnace" not in done and inv["stone"] >= FURNACE_STONE:
            if self._near(pos, "table"):
                yield self._place(sim, "Place Furnace", constants.place["furnace"]["where"]), "place a furnace"
            yield self._table_step(sim, inv, "place a furnace")
        if inv["stone_pickaxe"] and inv["iron"] < 2:
            act = self._interact(sim, self._material("iron"))
            if act is not None:
                yield act, "collect iron"
        for tool in ("iron_pickaxe", "iron_sword"):
            if f"make_{tool}" not in done and inv["wood"] >= 1 and inv["coal"] >= 1 and inv["iron"] >= 1:
                goal = lambda t: self._near(t, "table") and self._near(t, "furnace")  # noqa: E731
                if goal(pos):
                    yield A[f"Make {tool.replace('_', ' ').title()}"], f"make an {tool.replace('_', ' ')}"
                yield self._goto(sim, goal), f"go to the table and furnace to make an {tool.replace('_', ' ')}"
        if inv["iron_pickaxe"]:
            act = self._interact(sim, self._material("diamond"))
            if act is not None:
                yield act, "collect a diamond"
        if inv["wood_pickaxe"] and inv["coal"] < 2:
            yield self._explore(sim), "explore to find coal"
        if inv["stone_pickaxe"] and inv["iron"] < 1:
            yield self._explore(sim), "explore to find iron"
