"""Tiny text environments for smoke tests and from-scratch training of small models.

Both share the episode bookkeeping in `ToyEnv`: a step budget, a limit of
consecutive invalid actions and the end-of-episode metrics.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

from questline.core import ConfigError, Step, Task, derive_seed
from questline.envs.base import DIFFICULTIES, Env

MAX_INVALID = 3  # consecutive invalid actions that end an episode


def task_id(prefix: str, spec: dict[str, Any]) -> str:
    """A stable content hash of the spec, so identical tasks share an id."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return f"{prefix}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def distinct_tasks(
    env: str, prefix: str, n: int, difficulty: str, seed: int,
    sample: Callable[[random.Random, str], dict[str, Any]],
) -> list[Task]:
    """`n` tasks with distinct specs, drawn by `sample(rng, difficulty)`."""
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"difficulty: '{difficulty}' is not one of {', '.join(DIFFICULTIES)}")
    rng = random.Random(derive_seed(seed, env, difficulty))
    tasks: dict[str, Task] = {}
    for _ in range(100 * n + 100):
        if len(tasks) == n:
            break
        spec = sample(rng, difficulty)
        tid = task_id(prefix, spec)
        tasks.setdefault(tid, Task(tid, env, difficulty, spec))
    if len(tasks) < n:
        raise ConfigError(f"{env}: could not draw {n} distinct '{difficulty}' tasks")
    return list(tasks.values())


class ToyEnv(Env):
    """Step budget, invalid-action streaks and metrics; subclasses do the rest."""

    def __init__(self, max_steps: int | None = None):
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"{self.name}: max_steps must be >= 1 or None, got {max_steps}")
        self.max_steps = max_steps
        self.task: Task | None = None
        self.done = True

    def _begin(self, task: Task, optimal: int) -> None:
        if task.env != self.name:
            raise ValueError(f"{self.name} cannot run a task of {task.env}")
        self.task, self.optimal, self.done = task, optimal, False
        self.budget = self.max_steps or 2 * optimal + 2
        self.steps = self.streak = self.invalid = 0

    def _tick(self) -> None:
        if self.done:
            raise RuntimeError(f"{self.name}: step() called without an open episode; call reset()")
        self.steps += 1

    def _finish(
        self, obs: str, reward: float, *, invalid: bool = False, won: bool = False, lost: bool = False
    ) -> Step:
        """Close one step: end on a win, a loss, too many invalid actions or an empty budget."""
        self.streak = self.streak + 1 if invalid else 0
        self.invalid += invalid
        lost = lost or self.streak >= MAX_INVALID
        truncated = not (won or lost) and self.steps >= self.budget
        info: dict[str, Any] = {"state_key": self.state_key()}
        if invalid:
            info["invalid_action"] = True
        if not (won or lost or truncated):
            return Step(obs, reward, info=info)
        self.done = True
        metrics = self.metrics()
        if won:
            metrics.update(success=1.0, score=1.0)
        info["metrics"] = metrics
        if truncated:
            info["truncated"] = True
        return Step(obs, reward, True, info)

    def metrics(self) -> dict[str, float]:
        """Metrics of the episode so far (also for episodes the rollout cuts off)."""
        return {
            "success": 0.0,
            "score": self._score(),
            "steps": self.steps,
            "optimal_steps": self.optimal,
            "invalid_actions": self.invalid,
            **self._metrics(),
        }

    def _score(self) -> float:
        return 0.0

    def _metrics(self) -> dict[str, float]:
        return {}
