"""Run many episodes at once against an engine and return Trajectories.

Every task is played `group_size` times from the identical start state (the env
is rebuilt from the task). All live episodes generate together, one turn per
engine call; an episode that ends leaves the batch at once, so finished episodes
never cost compute and never hold the others back. The same loop runs scripted
policies: `policy="oracle"` (demonstrations for SFT) or any other name an env
knows (`env.scripted_action(policy)`, e.g. TravelPlanner's `greedy` and `random`
baselines): their actions are tokenised, and nothing else changes.

Context modes (`RolloutConfig.context`)
  full    one growing sequence per episode: prompt + (action + observation) per
          turn; the engine keeps each episode's KV cache between turns.
  window  each turn's prompt is rendered afresh: system + (current plan) + latest
          observation (an env that wants a history puts it in its observation).
          The trajectory stores every turn's row back to back: the row's prompt
          ids (loss mask 0) then the sampled ids, exactly as the engine saw and
          sampled them; `Trajectory.row_starts[k]` is where turn k's row begins.
          Training splits an episode into one row per turn (`split_rows`); see
          `questline.rollout.context`. No KV cache is reused across turns (each
          prompt is new), so the engine is called without sessions.

Planning (`RolloutConfig.planning`, `questline.agent.planning`): a per-episode
`PlanTracker` adds the rules to the system prompt, forces a prefix where the
strategy requires a plan (prompt tokens), splits each reply into plan + action and
keeps the latest plan. Scripted policies write plans with `SyntheticPlanner`.
`given_plan` (steering) starts every episode from a person's plan.

Environment workers (`RolloutConfig.workers` > 0, `questline.rollout.workers`): the
environments live in Ray actors instead of this process; the loop, the tokens and
the trajectories are the same (one batched call per actor per turn).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from questline.agent import ChatTokens, parse_action
from questline.agent.plan_synth import SyntheticPlanner
from questline.agent.planning import (
    CLOSE,
    PlanningConfig,
    PlanTracker,
    instructions,
    parse_reply,
    plan_token_count,
    planning_metrics,
)
from questline.core import ConfigError, Step, Task, Trajectory, Turn, derive_seed
from questline.envs import make, prepare
from questline.inference import Engine, Generation, SamplingParams, TextEngine


@dataclass(frozen=True)
class RolloutConfig:
    max_turns: int = 16
    max_new_tokens: int = 24  # per turn
    max_context_tokens: int = 2048  # per episode
    temperature: float = 1.0
    top_p: float = 1.0
    action_format: str = "react"
    env_workers: int = 1  # threads that step episodes concurrently (swe waits on test subprocesses)
    context: str = "full"  # "full" | "window" (see the module docstring)
    planning: PlanningConfig | None = None
    workers: int = 0  # Ray actors hosting the environments (0: in this process)
    ray: Any = None  # RayConfig (or its fields as a dict) for workers > 0

    def __post_init__(self):
        if self.context not in ("full", "window"):
            raise ValueError(f"rollout.context: '{self.context}' is not one of full, window")
        if isinstance(self.ray, dict):
            from questline.rollout.workers import RayConfig
            object.__setattr__(self, "ray", RayConfig(**self.ray))


@dataclass
class _Episode:
    env: Any
    traj: Trajectory
    session: str
    planner: PlanTracker | None = None
    synth: SyntheticPlanner | None = None
    obs: str = ""  # latest observation (window mode renders each prompt afresh)
    prefix: str = ""  # text forced at the start of this turn's reply
    prefix_ids: list[int] | None = None


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
    given_plan: str | Callable | None = None,
    on_episode=None,
) -> list[Trajectory]:
    """`progress`, when given, is called with the number of episodes just finished,
    `on_episode` with each finished trajectory (episodes that failed to start included).
    `given_plan` (steering) is placed in context as the current plan at the first turn: a
    text, or a function of the freshly reset env (a plan per task, e.g. `expert_plan`)."""
    remote = None
    if cfg.workers > 0:  # environments in Ray actors (questline.rollout.workers)
        from questline.rollout.workers import RemoteEpisodes
        remote = RemoteEpisodes(cfg, env_cfg)
        episodes = remote.start(tasks, group_size, chat, seed=seed, policy=policy, given_plan=given_plan)
    else:
        prepare(tasks, env_cfg)  # envs with slow resets build all start states at once
        episodes = [start_episode(task, g, k, chat, cfg, seed=seed, env_cfg=env_cfg, policy=policy,
                                  given_plan=given_plan)
                    for g, task in enumerate(tasks) for k in range(group_size)]

    def on_done(traj: Trajectory) -> None:
        if progress:
            progress(1)
        if on_episode:
            on_episode(traj)

    for e in episodes:
        if e.traj.done:  # failed at reset
            on_done(e.traj)
    live = [e for e in episodes if not e.traj.done]
    pool = ThreadPoolExecutor(cfg.env_workers) if cfg.env_workers > 1 else None
    try:
        _run_turns(live, engine, chat, cfg, policy, seed, pool, on_done, remote)
    finally:
        if pool is not None:
            pool.shutdown()
        if remote is not None:
            remote.release()
    return [e.traj for e in episodes]


def start_episode(task: Task, g: int, k: int, chat: ChatTokens, cfg: RolloutConfig, *, seed: int = 0,
                  env_cfg: dict | None = None, policy: str = "model",
                  given_plan: str | Callable | None = None) -> _Episode:
    """Build the env, reset it and write the first prompt (full mode)."""
    env = make(task.env, **(env_cfg or {}))
    e = new_episode(env, task, g, cfg, given_plan, synthetic_planner(cfg, policy, seed, g, k, task))
    try:
        obs = env.reset(task)
        if callable(given_plan):
            e.planner.give(given_plan(env))
    except Exception as err:  # an env that cannot start is an infra failure
        return fail_start(e, f"reset: {err!r}")
    return begin_episode(e, obs, chat, cfg, f"{seed}/{g}/{k}/{task.id}")


def synthetic_planner(cfg: RolloutConfig, policy: str, seed: int, g: int, k: int, task: Task) -> SyntheticPlanner | None:
    """The oracle's plan writer for this episode (planning demonstrations), else None."""
    if cfg.planning is None or policy != "oracle":
        return None
    return SyntheticPlanner(cfg.planning, random.Random(derive_seed(seed, "plan-synth", g, k, task.id)))


def new_episode(env, task: Task, g: int, cfg: RolloutConfig, given_plan: str | Callable | None,
                synth: SyntheticPlanner | None) -> _Episode:
    """An episode not yet reset: its system prompt (the env's instructions) and plan memory."""
    system, planner = env.instructions, None
    if cfg.planning is not None or given_plan:
        planner = PlanTracker(cfg.planning or PlanningConfig("never"))
        if cfg.planning is not None:
            system = f"{system}\n\n{instructions(cfg.planning)}" if system else instructions(cfg.planning)
        if isinstance(given_plan, str):
            planner.give(given_plan)
    return _Episode(env, Trajectory(task=task, system=system, group=g), "", planner, synth)


def fail_start(e: _Episode, error: str) -> _Episode:
    e.traj.infra_failed, e.traj.infra_error, e.traj.done = True, error, True
    return e


def begin_episode(e: _Episode, obs: str, chat: ChatTokens, cfg: RolloutConfig, session: str) -> _Episode:
    """Record the first observation and write the first prompt (full mode)."""
    traj = e.traj
    traj.first_observation = e.obs = obs
    e.session = session
    if cfg.context == "full":
        traj.ids = chat.prompt_ids(traj.system, obs)
        traj.prompt_len = len(traj.ids)
        traj.loss_mask = [0] * len(traj.ids)
        traj.logprobs = [0.0] * len(traj.ids)
    return e


def prepare_turn(e: _Episode, chat: ChatTokens, cfg: RolloutConfig, turn: int, forced: bool = True) -> list[int]:
    """Write this turn's prompt into the trajectory and return the ids the engine
    continues: the whole sequence (full) or this turn's row (window), ending with
    the forced prefix if the strategy or a given plan sets one (`forced=False`: none,
    for a person's action in `questline play`)."""
    tr = e.traj
    e.prefix = e.planner.prefix(turn) if (e.planner and forced) else ""
    e.prefix_ids = chat.tokenizer.encode(e.prefix, add_special_tokens=False) if e.prefix else []
    start = 0
    if cfg.context == "window":
        text = e.planner.window_text(e.obs, turn) if e.planner else e.obs
        row = chat.prompt_ids(tr.system, text)
        start = len(tr.ids)
        tr.row_starts.append(start)
        if turn == 0:
            tr.prompt_len = len(row)
        _append(tr, row, 0)
    _append(tr, e.prefix_ids, 0)
    return tr.ids[start:]


def _append(tr: Trajectory, ids: list[int], mask: int, logprobs: list[float] | None = None) -> None:
    tr.ids += ids
    tr.loss_mask += [mask] * len(ids)
    tr.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)


def _run_turns(live, engine, chat, cfg, policy, seed, pool, on_done, remote=None) -> None:
    turn = 0
    window = cfg.context == "window"
    while live:
        prompts = [prepare_turn(e, chat, cfg, turn) for e in live]
        budget = max(e.planner.max_new_tokens(turn, cfg.max_new_tokens) if e.planner else cfg.max_new_tokens
                     for e in live)
        params = SamplingParams(cfg.temperature, cfg.top_p, budget, (chat.eot_id,))
        t0 = time.perf_counter()
        if policy != "model":
            gens = [_scripted_generation(e, chat, policy, turn) for e in live]
        elif isinstance(engine, TextEngine):
            gens = _text_generations(live, chat, engine, params, seed, turn, window)
        else:
            gens = engine.generate(prompts, params, None if window else [e.session for e in live],
                                   seed=derive_seed(seed, "turn", turn))
        gen_seconds = (time.perf_counter() - t0) / len(live)
        secs = [gen_seconds] * len(live)
        n = len(live)
        if remote is not None:
            finished = remote.play_turn(live, chat, gens, secs, turn)
        elif pool is not None and n > 1:
            finished = list(pool.map(_play_turn, live, [chat] * n, gens, secs, [cfg] * n, [turn] * n))
        else:
            finished = [_play_turn(e, chat, gen, s, cfg, turn) for e, gen, s in zip(live, gens, secs)]
        still = [e for e, done in zip(live, finished) if not done]
        if engine is not None and not window and not isinstance(engine, TextEngine):
            engine.end_sessions([e.session for e in live if e.traj.done])
        for e in live:
            if e.traj.done:
                e.env.close()
                on_done(e.traj)
        live = still
        turn += 1


def _scripted_generation(e: _Episode, chat: ChatTokens, policy: str, turn: int) -> Generation:
    """A scripted reply (with synthetic plans when planning), minus the forced prefix."""
    text = e.synth.reply(e.env, turn) if e.synth else e.env.scripted_action(policy)
    if e.prefix and text.startswith(e.prefix):
        text = text[len(e.prefix):]
    elif e.prefix and CLOSE in e.prefix:  # a given plan is in force: keep only the action
        text = parse_reply(text).action.strip() or text
    ids = _encode_reply(chat, text)
    return Generation(ids, [0.0] * len(ids), "stop")


def episode_messages(e: _Episode, turn: int, window: bool) -> list[dict]:
    """The episode so far as chat messages (text engines): system, first observation,
    then each reply and observation; window mode: system + this turn's observation."""
    tr = e.traj
    if window:
        return ChatTokens.first_messages(tr.system, e.planner.window_text(e.obs, turn) if e.planner else e.obs)
    msgs = ChatTokens.first_messages(tr.system, tr.first_observation)
    for t in tr.turns:
        msgs += [{"role": "assistant", "content": t.action}, {"role": "user", "content": t.observation}]
    return msgs


def _text_generations(live, chat: ChatTokens, engine: TextEngine, params: SamplingParams, seed: int,
                      turn: int, window: bool) -> list[Generation]:
    """One turn of a text engine (a chat endpoint). Its replies are tokenised locally
    so the trajectory keeps its shape; `stats["text"]` is the reply as the server wrote it."""
    if any(e.prefix for e in live):
        raise ConfigError("a text engine (--engine openai) cannot be forced to start its reply with a plan: "
                          "run it without --plan and without a planning strategy that forces plans")
    replies = engine.chat([episode_messages(e, turn, window) for e in live], params,
                          [derive_seed(seed, "turn", turn, e.session) for e in live])
    gens = []
    for r in replies:
        ids = chat.tokenizer.encode(r.text, add_special_tokens=False) + [chat.eot_id] * (r.finish_reason == "stop")
        gens.append(Generation(ids, [0.0] * len(ids), r.finish_reason, stats={"text": r.text},
                               error=(r.error or "server kept failing") if r.finish_reason == "infra" else ""))
    return gens


def _encode_reply(chat: ChatTokens, text: str) -> list[int]:
    """A scripted reply's ids. A plan block is tokenised on its own, then the action:
    the same token boundary as when a plan is forced as a prefix (steering), so a
    model trained on these ids continues a given plan as it continues its own."""
    end = text.find(CLOSE)
    if end < 0:
        return chat.action_ids(text)
    end += len(CLOSE) + (text[end + len(CLOSE):].startswith("\n"))
    return chat.tokenizer.encode(text[:end], add_special_tokens=False) + chat.action_ids(text[end:])


def _decode(chat: ChatTokens):
    return lambda ids: chat.tokenizer.decode(ids, skip_special_tokens=False)


def _play_turn(e: _Episode, chat: ChatTokens, gen: Generation, gen_seconds: float, cfg, turn: int = 0) -> bool:
    """Append one sampled action, step the env, append the observation (full mode).
    Returns done."""
    if end_before_step(e, gen):
        return True
    action, taken = take_action(e, chat, gen, gen_seconds, cfg, turn)
    t0 = time.perf_counter()
    try:
        step = e.env.step(action)
    except Exception as err:  # the environment, not the agent, failed
        return record_step(e, chat, cfg, turn, taken, None, 0.0, f"step: {err!r}")
    return record_step(e, chat, cfg, turn, taken, step, time.perf_counter() - t0)


@dataclass
class _Taken:
    """An action appended to the trajectory, waiting for the env's answer."""
    text: str
    start: int
    n_ids: int
    gen_seconds: float
    plan_info: dict


def end_before_step(e: _Episode, gen: Generation) -> bool:
    """End the episode when `gen` is no action (returns True): the engine failed for it
    (server gone, timeouts: infra, not the agent's doing) or the context window is full."""
    if gen.error:
        e.traj.infra_failed, e.traj.infra_error, e.traj.done = True, f"engine: {gen.error}", True
        return True
    if gen.finish_reason == "context":  # a text engine says the conversation no longer fits
        return _finish(e, None, "max_tokens")
    return False


def take_action(e: _Episode, chat: ChatTokens, gen: Generation, gen_seconds: float, cfg,
                turn: int) -> tuple[str, _Taken]:
    """Append one sampled action; return the action for the env and what `record_step` needs."""
    tr = e.traj
    ids, lps, forwarded = gen.ids, gen.logprobs, gen.stats.get("forwarded", 0)
    start = len(tr.ids)
    _append(tr, ids, 1, list(lps))
    tr.tokens_forwarded += forwarded
    if not ids or ids[-1] != chat.eot_id:  # cut off at max_new_tokens: close the turn, not trained on
        _append(tr, [chat.eot_id], 0)
    text = gen.stats["text"] if "text" in gen.stats else chat.decode_action(ids)
    action_text, plan_info = text, {}
    if e.planner is not None:
        sampled = ids[:-1] if ids and ids[-1] == chat.eot_id else ids
        n_plan = plan_token_count(_decode(chat), e.prefix_ids or [], sampled)
        action_text, plan_info = e.planner.accept(turn, e.prefix, text, n_plan)
        text = e.prefix + text
    return parse_action(action_text, cfg.action_format), _Taken(text, start, len(ids), gen_seconds, plan_info)


def record_step(e: _Episode, chat: ChatTokens, cfg, turn: int, taken: _Taken, step: Step | None,
                env_seconds: float, error: str = "") -> bool:
    """Append the env's answer to a taken action (full mode: the observation ids), or
    flag the episode when the env failed (`error`). Returns done."""
    tr = e.traj
    start, end = taken.start, taken.start + taken.n_ids
    if step is None:
        tr.turns.append(Turn(taken.text, "", 0.0, start, end, taken.gen_seconds, info=taken.plan_info))
        tr.infra_failed, tr.infra_error, tr.done = True, error, True
        return True
    info = {k: v for k, v in step.info.items() if k != "metrics"}
    tr.turns.append(Turn(taken.text, step.observation, float(step.reward), start, end,
                         taken.gen_seconds, env_seconds, {**info, **taken.plan_info}))
    if step.info.get("infra_error"):
        tr.infra_failed, tr.infra_error = True, str(step.info["infra_error"])
    if step.done or tr.infra_failed:
        return _finish(e, step.info.get("metrics"), truncation="max_turns" if step.info.get("truncated") else "")
    if len(tr.turns) >= cfg.max_turns:
        return _finish(e, None, "max_turns")
    if cfg.context == "window":
        e.obs = step.observation
        text = e.planner.window_text(e.obs, turn + 1) if e.planner else e.obs
        if len(chat.prompt_ids(tr.system, text)) + cfg.max_new_tokens > cfg.max_context_tokens:
            return _finish(e, None, "max_tokens")
        return False
    obs_ids = chat.observation_ids(step.observation)
    if len(tr.ids) + len(obs_ids) + cfg.max_new_tokens > cfg.max_context_tokens:
        return _finish(e, None, "max_tokens")
    _append(tr, obs_ids, 0)
    return False


def _finish(e: _Episode, metrics: dict | None, truncation: str) -> bool:
    tr = e.traj
    if metrics is None:
        metrics = dict(getattr(e.env, "metrics", lambda: {})())
    tr.metrics = {"success": 0.0, "score": 0.0, **{k: float(v) for k, v in (metrics or {}).items()}}
    if e.planner is not None:
        tr.metrics.update(planning_metrics([t.info for t in tr.turns], tr.num_policy_tokens))
    tr.metrics["turns"] = float(len(tr.turns))
    tr.truncated, tr.truncation = bool(truncation), truncation
    tr.done = True
    return True
