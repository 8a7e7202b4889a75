"""Task sets with a difficulty mix, and the split of a fixed episode budget."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from questline.core import ConfigError, Task, derive_seed
from questline.envs import DIFFICULTIES, generate_tasks


def split_counts(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Integer counts proportional to `mix` that add up to `total` (largest remainder)."""
    bad = set(mix) - set(DIFFICULTIES)
    if bad:
        raise ConfigError(f"data.mix: unknown difficulty {sorted(bad)} (allowed: {', '.join(DIFFICULTIES)})")
    weight = sum(mix.values())
    if weight <= 0 or any(v < 0 for v in mix.values()):
        raise ConfigError("data.mix: ratios must be >= 0 with a positive sum")
    exact = {k: total * v / weight for k, v in mix.items()}
    counts = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def split_budget(episodes: int, sft_fraction: float) -> tuple[int, int]:
    """A fixed budget of episodes -> (SFT demonstrations, RL episodes)."""
    n_sft = round(episodes * sft_fraction)
    return n_sft, episodes - n_sft


@dataclass
class TaskSet:
    """`size` tasks of `env`, mixed by difficulty. Batches are drawn without
    replacement, one fresh shuffle per pass, each a pure function of (seed, index),
    so a resumed run draws the same batches."""

    env: str
    size: int
    mix: dict[str, float]
    seed: int
    env_cfg: dict = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()  # task ids to keep out (e.g. the held-out set)

    def __post_init__(self):
        self.tasks: list[Task] = []
        for level, n in split_counts(self.size, self.mix).items():
            if n == 0:
                continue
            # over-generate so excluded ids can be dropped without changing the count
            pool = generate_tasks(self.env, n + len(self.exclude), level,
                                  derive_seed(self.seed, "tasks", level), **self.env_cfg)
            self.tasks += [t for t in pool if t.id not in self.exclude][:n]

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.tasks)

    def batch(self, index: int, n: int) -> list[Task]:
        """The `index`-th batch of `n` tasks in a stream of shuffled passes."""
        out = []
        for k in range(index * n, (index + 1) * n):
            epoch, pos = divmod(k, len(self.tasks))
            order = list(range(len(self.tasks)))
            random.Random(derive_seed(self.seed, "epoch", epoch)).shuffle(order)
            out.append(self.tasks[order[pos]])
        return out

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for t in self.tasks:
            c[t.difficulty] = c.get(t.difficulty, 0) + 1
        return c
