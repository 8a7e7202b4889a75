"""Run many episodes at once against an engine and return Trajectories.

Every task is played `group_size` times from the identical start state (the env
is rebuilt from the task). All live episodes generate together, one turn per
engine call; an episode that ends leaves the batch at once, so finished episodes
never cost compute and never hold the others back. The same loop runs scripted
policies: `policy="oracle"` (demonstrations for SFT) or any other name an env
knows (`env.scripted_action(policy)`, e.g. TravelPlanner's `greedy` and `random`
baselines): their actions are tokenised, and nothing else changes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from questline.agent import ChatTokens, parse_action
from questline.core import Task, Trajectory, Turn, derive_seed
from questline.envs import make, prepare
from questline.inference import Engine, Generation, SamplingParams


@dataclass(frozen=True)
class RolloutConfig:
    max_turns: int = 16
    max_new_tokens: int = 24  # per turn
    max_context_tokens: int = 2048  # per episode
    temperature: float = 1.0
    top_p: float = 1.0
    action_format: str = "react"
    env_workers: int = 1  # threads that step episodes concurrently (swe waits on test subprocesses)


@dataclass
class _Episode:
    env: Any
    traj: Trajectory
    session: str


def rollout(
    engine: Engine | None,
    chat: ChatTokens,
    tasks: list[Task],
    cfg: RolloutConfig,
    *,
    group_size: int = 1,
    seed: int = 0,
    env_cfg: dict | None = None,
    policy: str = "model",
    progress=None,
) -> list[Trajectory]:
    """`progress`, when given, is called with the number of episodes just finished."""
    prepare(tasks, env_cfg)  # envs with slow resets build all start states at once
    episodes = []
    for g, task in enumerate(tasks):
        for k in range(group_size):
            env = make(task.env, **(env_cfg or {}))
            traj = Trajectory(task=task, system=env.instructions, group=g)
            try:
                obs = env.reset(task)
            except Exception as e:  # an env that cannot start is an infra failure
                traj.infra_failed, traj.infra_error, traj.done = True, f"reset: {e!r}", True
                episodes.append(_Episode(env, traj, ""))
                continue
            traj.first_observation = obs
            traj.ids = chat.prompt_ids(env.instructions, obs)
            traj.prompt_len = len(traj.ids)
            traj.loss_mask = [0] * len(traj.ids)
            traj.logprobs = [0.0] * len(traj.ids)
            episodes.append(_Episode(env, traj, f"{seed}/{g}/{k}/{task.id}"))

    params = SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens, (chat.eot_id,))
    live = [e for e in episodes if not e.traj.done]
    pool = ThreadPoolExecutor(cfg.env_workers) if cfg.env_workers > 1 else None
    try:
        _run_turns(live, engine, chat, cfg, params, policy, seed, pool, progress)
    finally:
        if pool is not None:
            pool.shutdown()
    return [e.traj for e in episodes]


def _run_turns(live, engine, chat, cfg, params, policy, seed, pool, progress) -> None:
    turn = 0
    while live:
        t0 = time.perf_counter()
        if policy != "model":
            gens = [_scripted_generation(e.env, chat, policy) for e in live]
        else:
            gens = engine.generate([e.traj.ids for e in live], params, [e.session for e in live],
                                   seed=derive_seed(seed, "turn", turn))
        gen_seconds = (time.perf_counter() - t0) / len(live)
        secs = [gen_seconds] * len(live)
        if pool is not None and len(live) > 1:
            finished = list(pool.map(_play_turn, live, [chat] * len(live), gens, secs, [cfg] * len(live)))
        else:
            finished = [_play_turn(e, chat, gen, s, cfg) for e, gen, s in zip(live, gens, secs)]
        still = [e for e, done in zip(live, finished) if not done]
        if engine is not None:
            engine.end_sessions([e.session for e in live if e.traj.done])
        for e in live:
            if e.traj.done:
                e.env.close()
                if progress:
                    progress(1)
        live = still
        turn += 1


def _scripted_generation(env, chat: ChatTokens, policy: str) -> Generation:
    ids = chat.action_ids(env.scripted_action(policy))
    return Generation(ids, [0.0] * len(ids), "stop")


def _play_turn(e: _Episode, chat: ChatTokens, gen: Generation, gen_seconds: float, cfg) -> bool:
    """Append one sampled action, step the env, append the observation. Returns done."""
    tr = e.traj
    ids, lps, forwarded = gen.ids, gen.logprobs, gen.stats.get("forwarded", 0)
    start = len(tr.ids)
    tr.ids += ids
    tr.loss_mask += [1] * len(ids)
    tr.logprobs += lps
    tr.tokens_forwarded += forwarded
    if ids[-1] != chat.eot_id:  # cut off at max_new_tokens: close the turn, not trained on
        tr.ids.append(chat.eot_id)
        tr.loss_mask.append(0)
        tr.logprobs.append(0.0)
    text = chat.decode_action(ids)
    action = parse_action(text, cfg.action_format)
    t0 = time.perf_counter()
    try:
        step = e.env.step(action)
    except Exception as err:  # the environment, not the agent, failed
        tr.turns.append(Turn(text, "", 0.0, start, start + len(ids), gen_seconds))
        tr.infra_failed, tr.infra_error, tr.done = True, f"step: {err!r}", True
        return True
    env_seconds = time.perf_counter() - t0
    tr.turns.append(Turn(text, step.observation, float(step.reward), start, start + len(ids),
                         gen_seconds, env_seconds, {k: v for k, v in step.info.items() if k != "metrics"}))
    if step.info.get("infra_error"):
        tr.infra_failed, tr.infra_error = True, str(step.info["infra_error"])
    if step.done or tr.infra_failed:
        return _finish(e, step.info.get("metrics"), truncation="max_turns" if step.info.get("truncated") else "")
    if len(tr.turns) >= cfg.max_turns:
        return _finish(e, None, "max_turns")
    obs_ids = chat.observation_ids(step.observation)
    if len(tr.ids) + len(obs_ids) + cfg.max_new_tokens > cfg.max_context_tokens:
        return _finish(e, None, "max_tokens")
    tr.ids += obs_ids
    tr.loss_mask += [0] * len(obs_ids)
    tr.logprobs += [0.0] * len(obs_ids)
    return False


def _finish(e: _Episode, metrics: dict | None, truncation: str) -> bool:
    tr = e.traj
    if metrics is None:
        metrics = dict(getattr(e.env, "metrics", lambda: {})())
    tr.metrics = {"success": 0.0, "score": 0.0, **{k: float(v) for k, v in (metrics or {}).items()}}
    tr.metrics["turns"] = float(len(tr.turns))
    tr.truncated, tr.truncation = bool(truncation), truncation
    tr.done = True
    return True
