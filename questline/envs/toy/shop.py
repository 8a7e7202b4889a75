"""toy/shop: price a small shopping list with tool calls, then answer.

A spec holds the order, the city and a price table for two cities and a few items
(the asked ones plus one distractor of each), e.g.
{"city": "rome", "order": [["apple", 2], ["fish", 3]],
 "prices": {"rome": {"apple": 3, "fish": 2, "tea": 5}, "oslo": {...}}}.
A quantity of 1 needs no `mul`, a single item needs no `add`.
"""

# No `from __future__ import annotations`: call_tool converts arguments using the
# tool methods' real (non-string) annotations.
import random
from typing import Any

from questline.core import Step, Task
from questline.envs.base import ToolError, call_tool, tool
from questline.envs.toy import ToyEnv, distinct_tasks

CITIES = ("paris", "rome", "oslo", "lima", "cairo", "tokyo")
ITEMS = ("apple", "pear", "fish", "bread", "milk", "rice", "tea", "salt")
Key = tuple[Any, ...]  # a needed intermediate value: ("price", item, city) | ("mul"|"add", a, b)


def sample_spec(rng: random.Random, difficulty: str) -> dict[str, Any]:
    k = 2 if difficulty == "hard" else 1
    cities, items = rng.sample(CITIES, 2), rng.sample(ITEMS, k + 1)
    prices = {c: {i: rng.randint(1, 9) for i in items} for c in cities}
    order = [[i, 1 if difficulty == "easy" else rng.randint(2, 5)] for i in items[:k]]
    return {"city": cities[0], "order": order, "prices": prices}


def question(spec: dict[str, Any]) -> str:
    (item, qty), *rest = spec["order"]
    if qty == 1 and not rest:
        return f"What does one {item} cost in {spec['city']}?"
    goods = " and ".join(f"{q} {i}" for i, q in spec["order"])
    return f"What do {goods} cost in {spec['city']}?"


def plan(spec: dict[str, Any]) -> tuple[list[Key], list[str], int]:
    """Needed intermediate values, the canonical calls that compute them, and the total."""
    city, order = spec["city"], spec["order"]
    keys, calls, subtotals = [], [], []
    for item, _ in order:
        keys.append(("price", item, city))
        calls.append(f"price[{item}, {city}]")
    for item, qty in order:
        p = spec["prices"][city][item]
        subtotals.append(qty * p)
        if qty > 1:
            keys.append(("mul", *sorted((qty, p))))
            calls.append(f"mul[{qty}, {p}]")
    if len(subtotals) == 2:
        keys.append(("add", *sorted(subtotals)))
        calls.append(f"add[{subtotals[0]}, {subtotals[1]}]")
    return keys, calls, sum(subtotals)


class ShopEnv(ToyEnv):
    name = "toy/shop"
    instructions = (
        "Answer the question with one tool call per turn: price[item, city], mul[a, b], add[a, b]. "
        "Finish with answer[number]."
    )

    @classmethod
    def generate_tasks(cls, n: int, difficulty: str, seed: int, **cfg: Any) -> list[Task]:
        return distinct_tasks(cls.name, "shop", n, difficulty, seed, sample_spec)

    def reset(self, task: Task) -> str:
        self.prices: dict[str, dict[str, int]] = task.spec["prices"]
        self.needed, self.calls, self.total = plan(task.spec)
        self.got = [False] * len(self.needed)
        self.share = 1.0 / (len(self.needed) + 1)  # one per needed value, one for the answer
        self.earned = 0.0
        self._begin(task, len(self.needed) + 1)
        return question(task.spec)

    def step(self, action: str) -> Step:
        self._tick()
        self._gain, self._answer = 0.0, None
        ok, out = call_tool(self, action)
        if not ok:
            return self._finish(out, 0.0, invalid=True)
        if self._answer is not None:
            won = self._answer == self.total
            # the answer tops a won episode up to exactly 1.0
            return self._finish(out, 1.0 - self.earned if won else 0.0, won=won, lost=not won)
        self.earned += self._gain
        return self._finish(out, self._gain)

    def oracle_action(self) -> str:
        if self.done:
            raise RuntimeError("oracle_action() needs an open episode")
        todo = [call for call, got in zip(self.calls, self.got) if not got]
        return todo[0] if todo else f"answer[{self.total}]"

    # ------------------------------------------------------------ tools

    @tool
    def price(self, item: str, city: str) -> str:
        item, city = item.lower(), city.lower()
        if item not in next(iter(self.prices.values())):
            raise ToolError(f"Unknown item '{item}'.")
        if city not in self.prices:
            raise ToolError(f"Unknown city '{city}'.")
        self._credit(("price", item, city))
        return f"price of {item} in {city}: {self.prices[city][item]}"

    @tool
    def mul(self, a: int, b: int) -> str:
        self._credit(("mul", *sorted((a, b))))
        return str(a * b)

    @tool
    def add(self, a: int, b: int) -> str:
        self._credit(("add", *sorted((a, b))))
        return str(a + b)

    @tool
    def answer(self, value: int) -> str:
        self._answer = value
        return "Correct." if value == self.total else "Wrong."

    def _credit(self, key: Key) -> None:
        """Reward the first time a needed value is computed."""
        for i, k in enumerate(self.needed):
            if k == key and not self.got[i]:
                self.got[i] = True
                self._gain = self.share
                return

    def state_key(self) -> str:
        return "".join("1" if g else "0" for g in self.got)

    def _score(self) -> float:
        return sum(self.got) / len(self.got)

    def _metrics(self) -> dict[str, float]:
        return {"values_found": float(sum(self.got))}
