"""toy/maze: reach the goal of a small grid maze seeing only local exits and a compass.

A maze is a square grid of cells with walls between them. Each cell is stored as
one hex digit, the bitmask of its open sides (north 1, east 2, south 4, west 8),
so a spec is e.g. {"size": 4, "cells": ["6ac8", ...], "start": [3, 0], "goal": [0, 2]}.
Rows grow southwards, columns eastwards; the agent never sees coordinates.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from questline.core import Step, Task
from questline.envs.toy import ToyEnv, distinct_tasks

Cell = tuple[int, int]
MOVES = {"north": (-1, 0, 1), "east": (0, 1, 2), "south": (1, 0, 4), "west": (0, -1, 8)}
OPPOSITE = {1: 4, 2: 8, 4: 1, 8: 2}
SIZE = {"easy": 4, "medium": 5, "hard": 6}
SPAN = {"easy": (2, 5), "medium": (4, 8), "hard": (6, 12)}  # shortest path length
OPEN = {"easy": 0.6, "medium": 0.3, "hard": 0.0}  # share of leftover walls knocked out
INVALID = "Invalid action. Use north, south, east or west."


def carve(size: int, extra: float, rng: random.Random) -> list[list[int]]:
    """A perfect maze by randomised depth-first search, then `extra` of the
    remaining inner walls removed (0 keeps every dead end)."""
    cells = [[0] * size for _ in range(size)]

    def neighbours(r: int, c: int) -> list[tuple[int, int, int]]:
        return [(r + dr, c + dc, bit) for dr, dc, bit in MOVES.values()
                if 0 <= r + dr < size and 0 <= c + dc < size]

    start = (rng.randrange(size), rng.randrange(size))
    stack, seen = [start], {start}
    while stack:
        r, c = stack[-1]
        fresh = [(r2, c2, bit) for r2, c2, bit in neighbours(r, c) if (r2, c2) not in seen]
        if not fresh:
            stack.pop()
            continue
        r2, c2, bit = rng.choice(fresh)
        cells[r][c] |= bit
        cells[r2][c2] |= OPPOSITE[bit]
        seen.add((r2, c2))
        stack.append((r2, c2))
    for r in range(size):
        for c in range(size):
            for r2, c2, bit in neighbours(r, c):
                if bit in (2, 4) and not cells[r][c] & bit and rng.random() < extra:
                    cells[r][c] |= bit
                    cells[r2][c2] |= OPPOSITE[bit]
    return cells


def distances(cells: list[list[int]], goal: Cell) -> dict[Cell, int]:
    """BFS shortest-path distance from every reachable cell to `goal`."""
    dist, queue = {goal: 0}, deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc, bit in MOVES.values():
            nxt = (r + dr, c + dc)
            if cells[r][c] & bit and nxt not in dist:
                dist[nxt] = dist[(r, c)] + 1
                queue.append(nxt)
    return dist


def sample_spec(rng: random.Random, difficulty: str) -> dict[str, Any]:
    size, (lo, hi) = SIZE[difficulty], SPAN[difficulty]
    while True:
        cells = carve(size, OPEN[difficulty], rng)
        goal = (rng.randrange(size), rng.randrange(size))
        dist = distances(cells, goal)
        length = rng.randint(lo, hi)  # uniform over path lengths, not over cells
        starts = sorted(cell for cell, d in dist.items() if d == length)
        if starts:
            start = rng.choice(starts)
            rows = ["".join(f"{v:x}" for v in row) for row in cells]
            return {"size": size, "cells": rows, "start": list(start), "goal": list(goal)}


class MazeEnv(ToyEnv):
    name = "toy/maze"
    instructions = "Find the goal in a maze. Reply with one move per turn: north, south, east or west."

    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        return distinct_tasks(cls.name, "maze", n, difficulty, seed, sample_spec)

    def reset(self, task: Task) -> str:
        spec = task.spec
        self.cells = [[int(ch, 16) for ch in row] for row in spec["cells"]]
        self.goal: Cell = tuple(spec["goal"])
        self.pos: Cell = tuple(spec["start"])
        self.dist = distances(self.cells, self.goal)
        self.d_start = self.dist[self.pos]
        if self.d_start == 0:
            raise ValueError("maze task: start must differ from goal")
        self.bumps = 0
        self._begin(task, self.d_start)
        return "Reach the goal. " + self._view()

    def step(self, action: str) -> Step:
        self._tick()
        move = MOVES.get(action.strip().lower())
        if move is None:
            return self._finish(INVALID, 0.0, invalid=True)
        dr, dc, bit = move
        r, c = self.pos
        if not self.cells[r][c] & bit:
            self.bumps += 1
            return self._finish("You hit a wall. " + self._view(), 0.0)
        d_prev = self.dist[self.pos]
        self.pos = (r + dr, c + dc)
        reward = (d_prev - self.dist[self.pos]) / self.d_start  # telescopes to 1 at the goal
        if self.pos == self.goal:
            return self._finish("You reached the goal.", reward, won=True)
        return self._finish(self._view(), reward)

    def oracle_action(self) -> str:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        r, c = self.pos
        for name, (dr, dc, bit) in MOVES.items():
            if self.cells[r][c] & bit and self.dist[(r + dr, c + dc)] < self.dist[self.pos]:
                return name
        raise RuntimeError("no move towards the goal")  # unreachable: the goal is connected

    def state_key(self) -> str:
        return f"{self.pos[0]},{self.pos[1]}"

    def _view(self) -> str:
        """Compass to the goal and the open exits, e.g. 'Goal: 2 east, 1 north. Exits: north.'"""
        (r, c), (gr, gc) = self.pos, self.goal
        east, north = gc - c, r - gr
        goal = []
        if east:
            goal.append(f"{abs(east)} {'east' if east > 0 else 'west'}")
        if north:
            goal.append(f"{abs(north)} {'north' if north > 0 else 'south'}")
        exits = [name for name, (_, _, bit) in MOVES.items() if self.cells[r][c] & bit]
        return f"Goal: {', '.join(goal)}. Exits: {', '.join(exits)}."

    def _score(self) -> float:
        return min(1.0, max(0.0, 1.0 - self.dist[self.pos] / self.d_start))

    def _metrics(self) -> dict[str, float]:
        return {"bumps": self.bumps, "distance": self.dist[self.pos]}
