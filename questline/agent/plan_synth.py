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


def plan_text(env, horizon: int) -> tuple[str, int]:
    """(plan text, how many steps it spells out: 0 when they are subgoals)."""
    own = getattr(env, "oracle_plan", None)
    if callable(own):
        return str(own()), 0
    steps, kind = future(env, horizon)
    if kind == "subgoals":
        return ", then ".join(steps), 0
    return ", ".join(steps), len(steps)


def expert_plan(env, horizon: int = 3) -> str:
    """Steering with a plan a person would write: the expert's plan for the episode's start
    (call after reset)."""
    return plan_text(env, horizon)[0]


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
            plan, steps = plan_text(env, self.cfg.horizon)
            self.made_at, self.plan_len = turn, max(1, steps or self.cfg.horizon)
            self.last_goal = _subgoal(env)
        action = env.oracle_action()
        return f"{OPEN}{plan}{CLOSE}\n{action}" if plan is not None else action


def synthetic_episode(task, cfg: PlanningConfig, *, context: str = "full", env_cfg: dict | None = None,
                      seed: int = 0, max_turns: int = 64, action_format: str = "react") -> dict:
    """One oracle episode with synthetic plans as chat text (no tokenizer needed):
    {"messages": [...]} in full context, {"rows": [[...] per turn]} in window
    context, and the episode's "metrics". The token-level version of the same data
    is `rollout(None, ..., policy="oracle")` with `RolloutConfig.planning` set."""
    from questline.agent.parsing import parse_action
    from questline.agent.planning import PlanTracker, instructions, planning_metrics
    from questline.core import derive_seed
    from questline.envs import make

    env = make(task.env, **(env_cfg or {}))
    system = f"{env.instructions}\n\n{instructions(cfg)}"
    synth = SyntheticPlanner(cfg, random.Random(derive_seed(seed, "plan-synth", task.id)))
    tracker = PlanTracker(cfg)
    obs, messages, rows, infos, step = env.reset(task), [], [], [], None
    for turn in range(max_turns):
        user = tracker.window_text(obs, turn) if context == "window" else obs
        prefix = tracker.prefix(turn)
        reply = synth.reply(env, turn)
        action, info = tracker.accept(turn, prefix, reply[len(prefix):] if reply.startswith(prefix) else reply, 0)
        infos.append(info)
        if context == "window":
            rows.append([{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}])
        else:
            messages += ([{"role": "system", "content": system}] if turn == 0 else []) + [
                {"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        step = env.step(parse_action(action, action_format))
        if step.done:
            break
        obs = step.observation
    env.close()
    metrics = {**(step.info.get("metrics", {}) if step else {}), **planning_metrics(infos, 0)}
    out = {"task": task.to_dict(), "metrics": metrics}
    out["rows" if context == "window" else "messages"] = rows if context == "window" else messages
    return out


def synthetic_texts(tasks, cfg: PlanningConfig, *, context: str = "full", env_cfg: dict | None = None,
                    seed: int = 0) -> list[str]:
    """Texts of synthetic planning episodes (e.g. to train a tokenizer that knows plans)."""
    texts = []
    for task in tasks:
        ep = synthetic_episode(task, cfg, context=context, env_cfg=env_cfg, seed=seed)
        for msgs in ep.get("rows") or [ep["messages"]]:
            texts += [m["content"] for m in msgs]
    return texts
