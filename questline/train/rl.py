"""The RL loop: sample tasks -> roll out groups -> shape rewards -> advantages ->
clipped policy-gradient update -> sync the engine. Reads top to bottom.

Every random stream of iteration `it` is derived from (seed, it), and a
checkpoint holds the policy (HF format), optimizer and schedule, so a killed run
resumes from its last checkpoint with exactly the metrics it would have had.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import torch

from questline.algos import LOSSES, aggregate, compute_advantages, kl_penalty, masked_mean
from questline.core import Batch, Trajectory, derive_seed
from questline.data import TaskSet, write_jsonl
from questline.inference import HFEngine
from questline.rewards import shape_rewards
from questline.rollout import RolloutConfig, rollout
from questline.train.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from questline.train.common import make_optimizer, sequence_logprobs, warmup_constant
from questline.train.logging import MetricsLogger


def batch_logprobs(model, batch: Batch, micro: int, temperature: float, use_autocast: bool):
    out = torch.zeros_like(batch.old_logprobs)
    with torch.no_grad():
        for s in range(0, len(batch), micro):
            attn = batch.attention_mask[s:s + micro]
            t = int(attn.sum(1).max())
            lp, _ = sequence_logprobs(model, batch.input_ids[s:s + micro, :t], attn[:, :t],
                                      temperature=temperature, use_autocast=use_autocast)
            out[s:s + micro, :t] = lp
    return out


def drop_flat_groups(trajs: list[Trajectory], rewards: list[list[float]]):
    """Keep only groups whose total rewards differ (equal rewards carry no signal)."""
    totals: dict[int, set] = {}
    for t, r in zip(trajs, rewards):
        totals.setdefault(t.group, set()).add(round(sum(r), 9))
    keep = [i for i, t in enumerate(trajs) if len(totals[t.group]) > 1]
    return [trajs[i] for i in keep], [rewards[i] for i in keep]


def rl_update(model, ref_model, optimizer, scheduler, batch: Batch, cfg, *, temperature: float,
              use_autocast: bool) -> dict:
    """One iteration's policy update on a batch of trajectories. `cfg` is an RLConfig."""
    micro = cfg.micro_batch_size
    # With one epoch over one mini-batch the update is exactly on-policy: the old
    # logprobs are the current ones, taken from the training forward pass itself.
    on_policy = cfg.ppo_epochs == 1 and cfg.minibatch_size >= len(batch)
    if cfg.recompute_logprobs and not on_policy:
        batch.old_logprobs = batch_logprobs(model, batch, micro, temperature, use_autocast)
    if ref_model is not None:
        batch.ref_logprobs = batch_logprobs(ref_model, batch, micro, temperature, use_autocast)
    batch.advantages, batch.returns = compute_advantages(
        cfg.advantage, batch.token_rewards, batch.loss_mask, batch.group_ids)
    model.train()
    stats: dict[str, list[float]] = {}
    for _ in range(cfg.ppo_epochs):
        for m0 in range(0, len(batch), cfg.minibatch_size):
            mb = batch.select(range(m0, min(m0 + cfg.minibatch_size, len(batch))))
            n_tokens = float(mb.loss_mask.sum().clamp(min=1))
            for s in range(0, len(mb), micro):
                part = mb.select(range(s, min(s + micro, len(mb))))
                t = int(part.attention_mask.sum(1).max())
                mask = part.loss_mask[:, :t]
                logp, ent = sequence_logprobs(
                    model, part.input_ids[:, :t], part.attention_mask[:, :t], temperature=temperature,
                    use_autocast=use_autocast, with_entropy=True)
                old = logp.detach() if (on_policy and cfg.recompute_logprobs) else part.old_logprobs[:, :t]
                per_tok, st = LOSSES[cfg.loss](logp, old, part.advantages[:, :t],
                                               mask, clip_low=cfg.clip_low, clip_high=cfg.clip_high)
                if ref_model is not None and cfg.kl_coef > 0:
                    kl = kl_penalty(logp, part.ref_logprobs[:, :t], cfg.kl_kind)
                    per_tok = per_tok + cfg.kl_coef * kl
                    st["kl"] = masked_mean(kl, mask).item()
                if cfg.entropy_coef > 0:
                    per_tok = per_tok - cfg.entropy_coef * ent
                if cfg.aggregation == "token-mean":
                    loss = aggregate(per_tok, mask, "token-mean", normaliser=n_tokens)
                else:
                    loss = aggregate(per_tok, mask, cfg.aggregation) * len(part) / len(mb)
                loss.backward()
                st["loss"] = loss.item()
                st["entropy"] = masked_mean(ent.detach(), mask).item()
                for k, v in st.items():
                    stats.setdefault(k, []).append(v)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            stats.setdefault("grad_norm", []).append(float(grad_norm))
    model.eval()
    out = {k: sum(v) / len(v) for k, v in stats.items()}
    out["loss"] = sum(stats["loss"])  # summed over micro-batches = the mini-batch loss
    out["lr"] = scheduler.get_last_lr()[0]
    return out


def rollout_metrics(trajs: list[Trajectory], rewards: list[list[float]]) -> dict:
    n = max(len(trajs), 1)
    ok = [t for t in trajs if not t.infra_failed]
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    return {
        "success": mean([t.success for t in ok]),
        "score": mean([t.metrics.get("score", 0.0) for t in ok]),
        "reward": mean([sum(r) for r in rewards]),
        "turns": mean([len(t.turns) for t in ok]),
        "context_tokens": mean([len(t.ids) for t in ok]),
        "policy_tokens": mean([t.num_policy_tokens for t in ok]),
        "truncated": sum(t.truncated for t in trajs) / n,
        "infra_failed": sum(t.infra_failed for t in trajs) / n,
    }


def train_rl(recipe, model, tokenizer, chat, taskset: TaskSet, run_dir: Path, *, iterations: int,
             ref_model=None, logger: MetricsLogger | None = None, progress=None,
             stop_after: int | None = None) -> int:
    """Run RL iterations [resume point, iterations). Returns the last finished iteration + 1.
    `stop_after` ends the call early after that many iterations (tests, time budgets)."""
    cfg, seed = recipe.rl, recipe.seed
    rcfg = RolloutConfig(**recipe.rollout.model_dump())
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else chat.eot_id
    use_autocast = recipe.model.autocast
    optimizer = make_optimizer(model, cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_constant(s, cfg.warmup_iters))
    start = 0
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        load_weights(model, ckpt)
        start = load_trainer_state(ckpt, optimizer, scheduler)["iteration"] + 1
    logger = logger or MetricsLogger(run_dir, resume_after=start - 1 if ckpt else None)
    if cfg.kl_coef > 0 and ref_model is None:
        ref_model = copy.deepcopy(model)
    if ref_model is not None:
        ref_model.eval().requires_grad_(False)
    engine = HFEngine(model, pad_id, autocast=use_autocast)
    model.eval()
    done = start
    for it in range(start, iterations):
        t0 = time.perf_counter()
        tasks = taskset.batch(it, cfg.tasks_per_iter)
        trajs = rollout(engine, chat, tasks, rcfg, group_size=cfg.group_size,
                        seed=derive_seed(seed, "rl", it), env_cfg=recipe.env.config)
        t_rollout = time.perf_counter() - t0
        valid = [t for t in trajs if not t.infra_failed]  # infra failures never enter group stats
        rewards = [shape_rewards(cfg.reward, t, progress=it / max(iterations, 1)) for t in valid]
        metrics = rollout_metrics(trajs, rewards)
        if cfg.filter_groups:
            valid, rewards = drop_flat_groups(valid, rewards)
        metrics["trained_episodes"] = len(valid)
        if valid:
            batch = Batch.from_trajectories(valid, pad_id, [t.token_rewards(r) for t, r in zip(valid, rewards)])
            metrics.update(rl_update(model, ref_model, optimizer, scheduler, batch, cfg,
                                     temperature=max(rcfg.temperature, 1e-6) if rcfg.temperature > 0 else 1.0,
                                     use_autocast=use_autocast))
        engine.update_weights()  # the engine shares the model: just drop stale caches
        metrics["rollout_s"] = t_rollout
        metrics["iter_s"] = time.perf_counter() - t0
        logger.log("rl", it, metrics)
        if recipe.run.sample_trajectories:
            write_jsonl(Path(run_dir) / "samples.jsonl",
                        [{"iteration": it, **t.to_dict()} for t in trajs[: recipe.run.sample_trajectories]],
                        append=True)
        done = it + 1
        last = done == iterations
        every = recipe.run.checkpoint_every
        if last or (every and done % every == 0):
            save_checkpoint(run_dir, it, model, tokenizer, optimizer, scheduler,
                            keep=recipe.run.keep_checkpoints)
        if progress:
            progress(done, iterations, f"success {metrics['success']:.2f}")
        if stop_after is not None and done - start >= stop_after:
            break
    return done


def load_weights(model, path: Path) -> None:
    """Copy weights saved in HF format at `path` into `model` in place."""
    from questline.models import load_policy
    loaded, _ = load_policy(path)
    model.load_state_dict(loaded.state_dict())


def rollout_config(recipe) -> RolloutConfig:
    return RolloutConfig(**recipe.rollout.model_dump())


__all__ = ["rl_update", "train_rl", "rollout_config", "replace"]
