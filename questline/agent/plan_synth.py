"""Synthetic planning demonstrations from an environment's oracle (SFT data).

At each turn the oracle's action is taken; a plan block is written before it
  dynamic   at the first turn, when the oracle's subgoal changes (envs with
            `oracle_subgoal()`), when an action plan has run out (envs without
            subgoals), and at random extra turns with probability `extra_rate`
  always    every turn;  every_k  turns 0, k, 2k, ...;  never  no turn
so a dynamic data set mixes planning and non-planning steps.

The plan text comes from the expert's future, environment-agnostic:
  1. `env.oracle_plan()` when the env writes its own plan text;
  2. else, with `env.oracle_subgoal()`: the next `horizon` distinct subgoals the
     oracle will pursue ("collect wood, then place table, then ...");
  3. else: the next `horizon` oracle actions ("east, east, north").
(2) and (3) look ahead by running the oracle on a deep copy of the environment.
"""

from __future__ import annotations

import copy
import random

from questline.agent.planning import CLOSE, OPEN, PlanningConfig

LOOKAHEAD_STEPS = 200  # oracle steps a subgoal look-ahead may take


def _subgoal(env) -> str | None:
    fn = getattr(env, "oracle_subgoal", None)
    return str(fn()) if callable(fn) else None


def future(env, horizon: int) -> tuple[list[str], str]:
    """(the next `horizon` subgoals, or actions when the env has no subgoals; kind)."""
    has_subgoals = _subgoal(env) is not None
    sim = copy.deepcopy(env)
    out: list[str] = []
    for _ in range(LOOKAHEAD_STEPS if has_subgoals else horizon):
        if has_subgoals:
            goal = _subgoal(sim)
            if not out or out[-1] != goal:
                out.append(goal)
            if len(out) > horizon:
                return out[:horizon], "subgoals"
        action = sim.oracle_action()
        if not has_subgoals:
            out.append(action)
        if sim.step(action).done:
            break
    return out[:horizon], "subgoals" if has_subgoals else "actions"


def plan_text(env, horizon: int) -> str:
    own = getattr(env, "oracle_plan", None)
    if callable(own):
        return str(own())
    steps, _ = future(env, horizon)
    return ", then ".join(steps) if _subgoal(env) is not None else ", ".join(steps)


class SyntheticPlanner:
    """Writes one episode's oracle replies with plan blocks at the chosen turns."""

    def __init__(self, cfg: PlanningConfig, rng: random.Random):
        self.cfg, self.rng = cfg, rng
        self.last_goal: str | None = None
        self.plan_len = 0  # steps of the current action plan
        self.made_at = 0

    def wants_plan(self, env, turn: int) -> bool:
        s = self.cfg.strategy
        if s != "dynamic":
            return self.cfg.must_plan(turn)
        extra = self.rng.random() < self.cfg.extra_rate  # drawn every turn: a stable stream
        if turn == 0:
            return True
        goal = _subgoal(env)
        if goal is not None:
            return goal != self.last_goal or extra
        return turn - self.made_at >= self.plan_len or extra

    def reply(self, env, turn: int) -> str:
        """The oracle's reply at this turn: '<plan>...</plan>\\naction' or 'action'."""
        plan = None
        if self.wants_plan(env, turn):
            plan = plan_text(env, self.cfg.horizon)
            self.made_at, self.plan_len = turn, max(1, len(plan.split(", ")))
            self.last_goal = _subgoal(env)
        action = env.oracle_action()
        return f"{OPEN}{plan}{CLOSE}\n{action}" if plan is not None else action
