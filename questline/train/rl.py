"""The RL loop: sample tasks -> roll out groups -> shape rewards -> advantages ->
clipped policy-gradient update (+ critic update for PPO) -> sync the engine.
Reads top to bottom; all the math is in `questline.algos`.

Every random stream of iteration `it` is derived from (seed, it), and a
checkpoint holds the policy (HF format), the critic if any, optimizers and
schedule, so a killed run resumes with exactly the metrics it would have had.
With `rl.async` the rollouts run on a thread, up to `rl.max_staleness` policy
versions behind the update (questline.train.async_rollouts); a resumed async run
redoes the rollout that was in flight from the checkpoint's weights.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import torch

from questline.agent.planning import PlanningConfig, aggregate_planning
from questline.algos import (
    LOSSES,
    aggregate,
    compute_advantages,
    episode_advantages,
    kl_penalty,
    logprob_mismatch,
    masked_mean,
    row_count,
    truncated_importance_weights,
    value_loss,
)
from questline.core import Batch, Trajectory, derive_seed
from questline.data import TaskSet
from questline.envs import prepare
from questline.models.device import model_device
from questline.models.lora import ADAPTER_DIR, adapter_off, add_lora, is_lora, load_adapter_weights
from questline.models.precision import choose_precision
from questline.rewards import shape_rewards
from questline.rollout import RolloutConfig, rollout
from questline.train.async_rollouts import AsyncRollouts, snapshot_of
from questline.train.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from questline.train.common import (
    TokenLogits,
    clip_grad_norm,
    make_optimizer,
    sequence_logprobs,
    warmup_constant,
)
from questline.train.distributed import SINGLE, Parallel
from questline.train.engine import open_engine, probe_ids
from questline.train.logging import MetricsLogger


# ------------------------------------------------------------------ rewards and batches
def overlong_penalty(traj: Trajectory, max_tokens: int, buffer: int, penalty: float) -> float:
    """DAPO's soft overlong punishment, on the episode's context length: 0 up to
    max_tokens - buffer, then falling linearly to -penalty at max_tokens."""
    if buffer <= 0:
        return 0.0
    over = len(traj.ids) - (max_tokens - buffer)
    return -penalty * min(max(over / buffer, 0.0), 1.0)


def episode_rewards(trajs: list[Trajectory], cfg, rcfg: RolloutConfig, progress: float) -> list[list[float]]:
    """Per-turn rewards of each episode: the reward scheme, minus rl.invalid_penalty on
    each turn whose action the env rejected (info["invalid_action"]), minus
    planning.plan_cost per plan token on the turn that wrote the plan, plus the
    overlong penalty on the last turn."""
    out = []
    plan_cost = rcfg.planning.plan_cost if rcfg.planning is not None else 0.0
    for t in trajs:
        r = shape_rewards(cfg.reward, t, progress=progress, **cfg.reward_args)
        if cfg.invalid_penalty:
            r = [x - cfg.invalid_penalty * bool(turn.info.get("invalid_action")) for x, turn in zip(r, t.turns)]
        if plan_cost:
            r = [x - plan_cost * turn.info.get("plan_tokens", 0) for x, turn in zip(r, t.turns)]
        if r and cfg.overlong_buffer:
            r[-1] += overlong_penalty(t, rcfg.max_context_tokens, cfg.overlong_buffer, cfg.overlong_penalty)
        out.append(r)
    return out


def group_is_informative(rewards: list[list[float]]) -> bool:
    return len({round(sum(r), 9) for r in rewards}) > 1


def by_group(trajs: list[Trajectory]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(trajs):
        groups.setdefault(t.group, []).append(i)
    return groups


def drop_flat_groups(trajs: list[Trajectory], rewards: list[list[float]]):
    """Keep only groups whose total rewards differ (equal rewards carry no signal)."""
    keep = [i for idx in by_group(trajs).values()
            if group_is_informative([rewards[i] for i in idx]) for i in idx]
    return [trajs[i] for i in keep], [rewards[i] for i in keep]


# ------------------------------------------------------------------ model passes
def _per_micro_batch(batch: Batch, micro: int, fn, parallel: Parallel = SINGLE) -> torch.Tensor:
    """[B, T] from `fn(input_ids, attention_mask, loss_mask) -> [b, t]` run without
    gradients on micro-batches, each cut to its longest sequence. With several
    processes each computes its share of the rows and the shares are summed."""
    out = torch.zeros_like(batch.old_logprobs)
    with torch.no_grad():
        for rows, weight in parallel.micro_batches(len(batch), micro):
            attn = batch.attention_mask[rows.start:rows.stop]
            t = int(attn.sum(1).max())
            part = fn(batch.input_ids[rows.start:rows.stop, :t], attn[:, :t],
                      batch.loss_mask[rows.start:rows.stop, :t])
            if weight:  # a zero-weight micro-batch only keeps the ranks' forwards in step
                out[rows.start:rows.stop, :t] = part
    return parallel.all_sum(out)


def batch_logprobs(model, batch: Batch, micro: int, temperature: float, use_autocast: bool,
                   parallel: Parallel = SINGLE):
    return _per_micro_batch(batch, micro, lambda ids, attn, mask: sequence_logprobs(
        model, ids, attn, temperature=temperature, use_autocast=use_autocast, token_mask=mask)[0], parallel)


def batch_values(critic, batch: Batch, micro: int, use_autocast: bool, parallel: Parallel = SINGLE) -> torch.Tensor:
    from questline.models.critic import token_values
    return _per_micro_batch(batch, micro, lambda ids, attn, _: token_values(
        critic, ids, attn, use_autocast=use_autocast), parallel)


def estimator_kwargs(cfg) -> dict:
    """The recipe's hyper-parameters for the advantage estimators."""
    return {"gamma": cfg.gamma, "lam": cfg.lam, "returns": cfg.returns, "norm_std": cfg.norm_std,
            "step_gamma": cfg.step_gamma, "step_weight": cfg.step_weight, "baseline": cfg.baseline,
            "eps": cfg.grpo_eps, "singleton": cfg.singleton_advantage, "whiten": cfg.whiten_advantages}


def loss_kwargs(cfg) -> dict:
    return {"clip_low": cfg.clip_low, "clip_high": cfg.clip_high, "dual_clip": cfg.dual_clip}


# ------------------------------------------------------------------ one update
def rl_update(model, ref_model, optimizer, scheduler, batch: Batch, cfg, *, temperature: float,
              use_autocast: bool, critic=None, critic_optimizer=None, train_policy: bool = True,
              parallel: Parallel = SINGLE) -> dict:
    """One iteration's update on a batch of trajectories. `cfg` is an RLConfig.
    With a critic, it is trained on the same mini-batches (value loss, own optimizer);
    `train_policy=False` trains only the critic (critic warm-up). With several
    processes (`parallel`), `model` and `critic` are their DDP / FSDP2 modules, every
    rank holds the whole batch and trains on its share of each mini-batch's rows."""
    micro, par = cfg.micro_batch_size, parallel
    batch.to(model_device(model))
    # With one epoch over one mini-batch the update is exactly on-policy: the old
    # logprobs are the current ones, taken from the training forward pass itself.
    on_policy = cfg.ppo_epochs == 1 and cfg.minibatch_size >= len(batch)
    mismatch = None  # the sampling engine vs the trainer, before this update
    if (cfg.recompute_logprobs and not on_policy) or cfg.tis_cap:
        batch.old_logprobs = batch_logprobs(model, batch, micro, temperature, use_autocast, par)
        on_policy = False
        if batch.rollout_logprobs is not None:
            mismatch = logprob_mismatch(batch.old_logprobs, batch.rollout_logprobs, batch.loss_mask)
    if ref_model is not None:  # a LoRA policy is its own reference, with the adapter off
        with adapter_off(ref_model):
            batch.ref_logprobs = batch_logprobs(ref_model, batch, micro, temperature, use_autocast, par)
        if cfg.kl_in == "reward" and cfg.kl_coef > 0:
            kl = kl_penalty(batch.old_logprobs, batch.ref_logprobs, cfg.kl_kind) * batch.loss_mask
            batch.token_rewards = batch.token_rewards - cfg.kl_coef * kl
    if critic is not None:
        batch.values = batch_values(critic, batch, micro, use_autocast, par)
    if batch.episode_ids is not None:  # window context: rows are turns, baselines per episode
        batch.advantages, batch.returns = episode_advantages(
            cfg.advantage, batch.token_rewards, batch.loss_mask, batch.group_ids, batch.episode_ids,
            batch.row_turns, values=batch.values, step_keys=batch.step_keys, **estimator_kwargs(cfg))
    else:
        batch.advantages, batch.returns = compute_advantages(
            cfg.advantage, batch.token_rewards, batch.loss_mask, batch.group_ids, values=batch.values,
            turn_ids=batch.turn_ids, step_keys=batch.step_keys, **estimator_kwargs(cfg))
    has_signal = bool(batch.advantages.any()) or (cfg.kl_coef > 0 and cfg.kl_in == "loss") or cfg.entropy_coef > 0
    if not has_signal and critic is None:
        # No signal (e.g. every group all-fail). Stepping anyway would let Adam's
        # momentum keep moving the weights along stale gradients, so skip.
        if mismatch is None and batch.rollout_logprobs is not None:
            trainer = batch_logprobs(model, batch, micro, temperature, use_autocast, par)
            mismatch = logprob_mismatch(trainer, batch.rollout_logprobs, batch.loss_mask)
        return {"skipped_update": 1.0, "lr": scheduler.get_last_lr()[0], **(mismatch or {})}
    train_policy = train_policy and has_signal
    model.train()
    if critic is not None:
        critic.train()
    stats: dict[str, list[float]] = {}
    pre_step: list[tuple[torch.Tensor, torch.Tensor]] | None = [] if mismatch is None else None
    for epoch in range(cfg.ppo_epochs):
        for m0 in range(0, len(batch), cfg.minibatch_size):
            mb = batch.select(range(m0, min(m0 + cfg.minibatch_size, len(batch))))
            n_tokens = float(mb.loss_mask.sum().clamp(min=1))
            n_rows = max(row_count(mb.loss_mask, cfg.aggregation_rows), 1)  # seq-mean divisor
            parts = par.micro_batches(len(mb), micro)
            for k, (rows, weight) in enumerate(parts):
                part = mb.select(rows)
                t = int(part.attention_mask.sum(1).max())
                mask = part.loss_mask[:, :t]
                scale = weight * par.loss_scale
                st: dict[str, float] = {}
                with par.accumulate((model if train_policy else None, critic), sync=k == len(parts) - 1):
                    if train_policy:
                        st.update(_policy_backward(model, part, t, mask, cfg, on_policy, temperature,
                                                   use_autocast, n_tokens, n_rows, scale,
                                                   pre_step if epoch == 0 and m0 == 0 else None))
                    if critic is not None:
                        st.update(_critic_backward(critic, part, t, mask, cfg, use_autocast, n_tokens, n_rows,
                                                   scale))
                for key, v in st.items() if weight else ():
                    stats.setdefault(key, []).append(v)
            if train_policy:
                grad_norm = clip_grad_norm(model, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if par.main:  # the same on every rank
                    stats.setdefault("grad_norm", []).append(grad_norm)
            if critic is not None:
                clip_grad_norm(critic, cfg.critic.max_grad_norm)
                critic_optimizer.step()
                critic_optimizer.zero_grad(set_to_none=True)
    model.eval()
    if critic is not None:
        critic.eval()
    stats = par.gather_lists(stats)
    out = {k: sum(v) / len(v) for k, v in stats.items()}
    if "loss" in stats:
        out["loss"] = sum(stats["loss"]) / (cfg.ppo_epochs * -(-len(batch) // cfg.minibatch_size))
    out["lr"] = scheduler.get_last_lr()[0]
    out["advantage_abs"] = masked_mean(batch.advantages.abs(), batch.loss_mask).item()
    if pre_step:  # the first mini-batch's forward passes ran before any optimizer step
        trainer, engine = (torch.cat(x) for x in zip(*pre_step))
        mismatch = logprob_mismatch(trainer, engine, torch.ones_like(trainer))
    out.update(mismatch or {})
    return out


def _scale(loss_per_token, mask, cfg, n_tokens, n_rows):
    """The micro-batch's share of the mini-batch's aggregated loss."""
    return aggregate(loss_per_token, mask, cfg.aggregation,
                     normaliser=n_tokens if cfg.aggregation == "token-mean" else n_rows)


def _policy_backward(model, part: Batch, t, mask, cfg, on_policy, temperature, use_autocast,
                     n_tokens, n_rows, scale: float = 1.0, pre_step: list | None = None) -> dict[str, float]:
    """`pre_step`, when given, collects (trainer, engine) logprobs of the policy tokens
    (this forward runs before any optimizer step of the update)."""
    logp, ent = sequence_logprobs(model, part.input_ids[:, :t], part.attention_mask[:, :t],
                                  temperature=temperature, use_autocast=use_autocast, with_entropy=True,
                                  token_mask=mask)
    if pre_step is not None and part.rollout_logprobs is not None:
        on = mask > 0
        pre_step.append((logp.detach()[on], part.rollout_logprobs[:, :t][on]))
    old = logp.detach() if (on_policy and cfg.recompute_logprobs) else part.old_logprobs[:, :t]
    per_tok, st = LOSSES.get(cfg.loss)(logp, old, part.advantages[:, :t], mask, **loss_kwargs(cfg))
    if cfg.tis_cap:
        w = truncated_importance_weights(old, part.rollout_logprobs[:, :t], cfg.tis_cap)
        per_tok = per_tok * w
        st["tis_weight"] = masked_mean(w, mask).item()
    if part.ref_logprobs is not None and cfg.kl_coef > 0:
        kl = kl_penalty(logp, part.ref_logprobs[:, :t], cfg.kl_kind)
        if cfg.kl_in == "loss":
            per_tok = per_tok + cfg.kl_coef * kl
        st["kl"] = masked_mean(kl.detach(), mask).item()
    if cfg.entropy_coef > 0:
        per_tok = per_tok - cfg.entropy_coef * ent
    loss = _scale(per_tok, mask, cfg, n_tokens, n_rows)
    (loss * scale).backward()
    st["loss"] = loss.item()
    st["entropy"] = masked_mean(ent.detach(), mask).item()
    return st


def _critic_backward(critic, part: Batch, t, mask, cfg, use_autocast, n_tokens, n_rows,
                     scale: float = 1.0) -> dict[str, float]:
    from questline.models.critic import token_values
    values = token_values(critic, part.input_ids[:, :t], part.attention_mask[:, :t], use_autocast=use_autocast)
    per_tok, st = value_loss(values, part.values[:, :t], part.returns[:, :t], mask, cfg.critic.value_clip)
    loss = _scale(per_tok, mask, cfg, n_tokens, n_rows)
    (loss * scale).backward()
    st["value_loss"] = loss.item()
    return st


# ------------------------------------------------------------------ rollouts
def rollout_metrics(trajs: list[Trajectory], rewards: list[list[float]]) -> dict:
    n = max(len(trajs), 1)
    ok = [t for t in trajs if not t.infra_failed]
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    return {**aggregate_planning([t.metrics for t in ok]),
        "success": mean([t.success for t in ok]),
        "score": mean([t.metrics.get("score", 0.0) for t in ok]),
        "reward": mean([sum(r) for r in rewards]),
        "turns": mean([len(t.turns) for t in ok]),
        "context_tokens": mean([len(t.ids) for t in ok]),
        "policy_tokens": mean([t.num_policy_tokens for t in ok]),
        "truncated": sum(t.truncated for t in trajs) / n,
        "infra_failed": sum(t.infra_failed for t in trajs) / n,
    }


def temperature_at(rcfg: RolloutConfig, cfg, progress: float) -> float:
    if cfg.temperature_end is None:
        return rcfg.temperature
    return rcfg.temperature + (cfg.temperature_end - rcfg.temperature) * min(max(progress, 0.0), 1.0)


def collect(engine, chat, taskset: TaskSet, it: int, recipe, rcfg: RolloutConfig, progress: float):
    """Roll out this iteration's groups -> (metrics of the first round, valid
    trajectories to train on, their rewards, all trajectories). Infra-failed episodes never enter group statistics. With DAPO's
    dynamic sampling, extra rounds of fresh tasks top the batch up with informative
    groups (bounded by rl.dynamic_sampling_rounds)."""
    cfg, seed = recipe.rl, recipe.seed
    tasks = taskset.batch(it, cfg.tasks_per_iter)
    prepare(tasks, recipe.env.config)  # slow-reset envs (crafter): this batch's start states
    prepare(taskset.batch(it + 1, cfg.tasks_per_iter), recipe.env.config, wait=False)  # the next, meanwhile
    trajs = rollout(engine, chat, tasks, rcfg, group_size=cfg.group_size,
                    seed=derive_seed(seed, "rl", it), env_cfg=recipe.env.config)
    valid = [t for t in trajs if not t.infra_failed]
    rewards = episode_rewards(valid, cfg, rcfg, progress)
    metrics = rollout_metrics(trajs, rewards)
    if cfg.filter_groups or cfg.dynamic_sampling_rounds:
        valid, rewards = drop_flat_groups(valid, rewards)
    rounds = 0
    while cfg.dynamic_sampling_rounds and rounds < cfg.dynamic_sampling_rounds and \
            len(by_group(valid)) < cfg.tasks_per_iter:
        rounds += 1
        rng = random.Random(derive_seed(seed, "dynamic", it, rounds))
        extra = rollout(engine, chat, rng.sample(taskset.tasks, min(cfg.tasks_per_iter, len(taskset))), rcfg,
                        group_size=cfg.group_size, seed=derive_seed(seed, "rl", it, rounds),
                        env_cfg=recipe.env.config)
        for t in extra:
            t.group += rounds * cfg.tasks_per_iter  # keep group ids distinct across rounds
        trajs += extra
        ok = [t for t in extra if not t.infra_failed]
        more_valid, more_rewards = drop_flat_groups(ok, episode_rewards(ok, cfg, rcfg, progress))
        valid, rewards = valid + more_valid, rewards + more_rewards
    if cfg.dynamic_sampling_rounds:  # at most tasks_per_iter groups, in order
        groups = by_group(valid)
        idx = [i for g in sorted(groups)[: cfg.tasks_per_iter] for i in groups[g]]
        valid, rewards = [valid[i] for i in idx], [rewards[i] for i in idx]
    metrics["sampling_rounds"] = rounds + 1
    return metrics, valid, rewards, trajs


def rollout_iteration(policy_engine, engine, chat, taskset: TaskSet, it: int, recipe, iterations: int):
    """Iteration `it`'s rollout on `engine` (what `policy_engine` samples with): its
    temperature, `collect`, the engine's health and prefix-cache statistics."""
    frac = it / max(iterations, 1)
    it_rcfg = rollout_config(recipe, temperature=temperature_at(rollout_config(recipe), recipe.rl, frac))
    cache_before = policy_engine.cache_counters()
    metrics, valid, rewards, trajs = collect(engine, chat, taskset, it, recipe, it_rcfg, frac)
    policy_engine.raise_if_down(it, trajs)
    metrics.update(policy_engine.cache_stats(cache_before))
    return metrics, valid, rewards, trajs


def _start_pipeline(recipe, engine, policy, tokenizer, chat, taskset, pad_id, run_dir, use_autocast, *,
                    start: int, end: int, iterations: int) -> AsyncRollouts:
    """rl.async: rollouts of [start, end) on a thread. The in-process HF engine gets its
    own engine on the snapshot (the trainer's engine shares the live weights); a vLLM
    server is synced from the snapshot between rollouts."""
    snapshot = snapshot_of(policy)
    rollout_engine = open_engine(recipe, snapshot, tokenizer, pad_id, run_dir, autocast=use_autocast) \
        if recipe.engine.kind == "hf" else engine
    roll = lambda eng, it: rollout_iteration(rollout_engine, eng, chat, taskset, it, recipe, iterations)  # noqa: E731
    return AsyncRollouts(rollout_engine, snapshot, roll, first=start, end=end, version=start,
                         max_staleness=recipe.rl.max_staleness)


# ------------------------------------------------------------------ the loop
def train_rl(recipe, model, tokenizer, chat, taskset: TaskSet, run_dir: Path, *, iterations: int,
             ref_model=None, logger: MetricsLogger | None = None, progress=None,
             stop_after: int | None = None, parallel: Parallel = SINGLE, engine=None) -> int:
    """Run RL iterations [resume point, iterations). Returns the last finished iteration + 1.
    `stop_after` ends the call early after that many iterations (tests, time budgets).
    With several processes (`parallel`), every rank calls this: rank 0 rolls out, logs
    and checkpoints, all ranks train (questline.train.distributed).
    `engine` (a `questline.train.engine` PolicyEngine, rank 0's) is the caller's to close;
    without one, the recipe's `engine` section makes one for this call."""
    cfg, par = recipe.rl, parallel
    rcfg = rollout_config(recipe)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else chat.eot_id
    # the device training runs on (with FSDP2 a rank's plain model may wait on the CPU)
    use_autocast = choose_precision(recipe.model.precision, (par.device if par.on else model_device(model)).type).bf16
    critic = None
    if cfg.needs_critic:
        from questline.models.critic import build_critic
        critic = build_critic(model, seed=derive_seed(recipe.seed, "critic"))
    # LoRA: a fresh adapter on the policy RL starts from; `model` holds its layers (critics train in full)
    policy = add_lora(model, recipe.model.lora, seed=derive_seed(recipe.seed, "lora-rl")) if recipe.model.lora \
        else model
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
    if cfg.kl_coef > 0 and ref_model is None:  # the policy RL starts from (before any resume)
        ref_model = policy if is_lora(policy) else copy.deepcopy(model)
    start = 0
    ckpt = latest_checkpoint(run_dir)  # the newest intact one
    if ckpt is not None:  # weights before wrapping: DDP and FSDP2 start from them
        load_weights(policy, ckpt)
        if critic is not None:
            from questline.models.critic import load_critic
            critic.load_state_dict(load_critic(Path(ckpt) / "critic").state_dict())
    if recipe.train.gradient_checkpointing:
        enable_gradient_checkpointing(model, critic)
    trained = par.wrap(TokenLogits(model)) if par.on else model
    trained_critic = par.wrap(critic)
    if ref_model is not None and not is_lora(ref_model):
        ref_model.eval().requires_grad_(False)
        if par.on and par.kind == "fsdp2":  # forward only, sharded too
            ref_model = par.wrap(TokenLogits(ref_model))
    par.park(model, keep=par.main)
    par.park(critic, keep=False)
    optimizer = make_optimizer(trained, cfg.lr, eps=cfg.adam_eps, betas=(0.9, cfg.adam_beta2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_constant(s, cfg.warmup_iters))
    critic_optimizer = make_optimizer(trained_critic, cfg.critic.lr) if critic is not None else None
    if ckpt is not None:
        state = load_trainer_state(ckpt, scheduler=scheduler)
        par.load_optimizer_state(trained, optimizer, state["optimizer"])
        if critic is not None:
            par.load_optimizer_state(trained_critic, critic_optimizer, state["critic_optimizer"])
        start = state["iteration"] + 1
    own_logger = logger is None and par.main
    if own_logger:
        logger = MetricsLogger(run_dir, "rl", resume_after=start - 1)
    model.eval()
    done = start
    own_engine = engine is None and par.main
    if own_engine:
        engine = open_engine(recipe, policy, tokenizer, pad_id, run_dir, autocast=use_autocast)
    end = iterations if stop_after is None else min(iterations, start + stop_after)
    pipeline = None  # rl.async: rollouts on a thread, from a snapshot of the policy
    try:
        if engine is not None:
            engine.sync(policy)  # resumed or changed weights
            engine.restart_checks()  # the syncs after the first updates are checked (engine.check_first_n)
        if cfg.async_ and par.main and start < end:
            pipeline = _start_pipeline(recipe, engine, policy, tokenizer, chat, taskset, pad_id, run_dir,
                                       use_autocast, start=start, end=end, iterations=iterations)
        for it in range(start, iterations):
            t0 = time.perf_counter()
            frac = it / max(iterations, 1)
            temperature = temperature_at(rcfg, cfg, frac)
            trajs = []
            if pipeline is not None:
                sampled = pipeline.get(it)
                metrics, valid, rewards, trajs = sampled.result
                metrics.update(sampled.sync_stats, staleness=it - sampled.version,
                               rollout_wait_s=time.perf_counter() - t0)
            elif par.main:
                metrics, valid, rewards, trajs = rollout_iteration(engine, engine.engine, chat, taskset, it, recipe,
                                                                   iterations)
            metrics, valid, rewards = par.broadcast((metrics, valid, rewards) if par.main else None)
            t_rollout = sampled.seconds if pipeline is not None else time.perf_counter() - t0
            metrics.update(trained_episodes=len(valid), temperature=temperature)
            if valid:
                batch = (Batch.from_episode_rows(valid, pad_id, rewards) if valid[0].windowed else
                         Batch.from_trajectories(valid, pad_id, [t.token_rewards(r) for t, r in zip(valid, rewards)]))
                metrics.update(rl_update(trained, ref_model, optimizer, scheduler, batch, cfg,
                                         temperature=temperature if temperature > 0 else 1.0,
                                         use_autocast=use_autocast, critic=trained_critic,
                                         critic_optimizer=critic_optimizer, parallel=par,
                                         train_policy=it >= cfg.critic.warmup_iters or critic is None))
                par.sync(trained, model)  # FSDP2: the engine's (and checkpoint's) full weights
            if pipeline is not None:
                pipeline.publish(policy, it + 1, probe_ids(valid))  # a later rollout samples from these
            elif engine is not None:
                metrics.update(engine.sync(policy, probe_ids(valid)))  # the engine samples from the new weights
            metrics["rollout_s"] = t_rollout
            metrics["iter_s"] = time.perf_counter() - t0
            done = it + 1
            last = done == iterations
            every = recipe.run.checkpoint_every
            checkpoint = last or (every and done % every == 0)
            optimizer_states = None
            if checkpoint:  # collectives with FSDP2
                par.sync(trained_critic, critic)
                optimizer_states = (par.optimizer_state(trained, optimizer), None if critic is None else
                                    par.optimizer_state(trained_critic, critic_optimizer))
            if par.main:
                logger.log("rl", it, metrics)
                if recipe.run.sample_trajectories:
                    logger.samples(it, [t.to_dict() for t in trajs[: recipe.run.sample_trajectories]])
                if checkpoint:
                    save_checkpoint(run_dir, it, policy, tokenizer, optimizer_states[0], scheduler,
                                    keep=recipe.run.keep_checkpoints, critic=critic,
                                    critic_optimizer=optimizer_states[1])
                if progress:
                    progress(done, iterations, f"success {metrics['success']:.2f}")
            par.barrier()  # ranks > 0 read no checkpoint rank 0 is still writing
            if stop_after is not None and done - start >= stop_after:
                break
        if pipeline is not None and engine is not None:
            engine.sync(policy)  # the caller's engine (evaluation) samples from the final weights
    finally:
        if pipeline is not None:
            pipeline.close()
            if pipeline.policy_engine is not engine:
                pipeline.policy_engine.close()
        if own_engine:
            engine.close()
    if own_logger:
        logger.close()
    return done


def enable_gradient_checkpointing(*models) -> None:
    """Recompute each layer's activations in backward (non-reentrant: works under DDP and FSDP2)."""
    for m in models:
        if m is not None:
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_weights(model, path: Path) -> None:
    """Copy weights saved in HF format at `path` into `model` in place (a LoRA
    policy: only its adapter, from path/adapter)."""
    from questline.models import load_policy
    if is_lora(model):
        load_adapter_weights(model, Path(path) / ADAPTER_DIR)
        return
    loaded, _ = load_policy(path)
    model.load_state_dict(loaded.state_dict())


def rollout_config(recipe, **changes) -> RolloutConfig:
    planning = PlanningConfig(**recipe.planning.model_dump()) if recipe.planning is not None else None
    return RolloutConfig(**{**recipe.rollout.model_dump(), "planning": planning, "ray": recipe.ray.model_dump(),
                            **changes})


__all__ = ["rl_update", "train_rl", "rollout_config", "collect", "drop_flat_groups"]
