"""Training throughput of Questline's RL update (`rl_update`: GRPO advantages,
ppo_clip, token-mean, logprobs recomputed by the trainer) vs a bare PyTorch loop
over the same tokens.

The bare loop does the same work: the same micro-batches trimmed to their longest
row, one no-grad forward to recompute the old logprobs, then per micro-batch a
forward, log_softmax + gather of the taken ids, loss -adv * logprob (masked,
token-mean), backward; then grad-norm clipping and one AdamW step. Both start
from copies of the same weights and take one optimizer step per update, so after
the first update their weights must agree (checked in fp32: at ratio 1 the
clipped PPO gradient is the plain policy gradient).

The batch comes from a real rollout of the briefly SFT-ed policy on toy/maze
(groups of 4 samples per task, "score" reward, so GRPO advantages are non-zero).

    python benchmarks/train_step.py            # preset s, 64 episodes, 3 repeats
    python benchmarks/train_step.py --quick    # preset xs, 16 episodes, 2 repeats
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from common import bench_tasks, describe, load_average, make_policy, rollout_setup

from questline.algos import compute_advantages
from questline.core import Batch
from questline.experiments.recipe import RLConfig
from questline.inference import HFEngine
from questline.rewards import shape_rewards
from questline.rollout import rollout
from questline.train.common import make_optimizer
from questline.train.rl import rl_update

LR = 1e-4


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="s", choices=["xs", "s", "m"])
    p.add_argument("--episodes", type=int, default=64, help="trajectories in the batch (groups of 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed updates per engine and precision")
    p.add_argument("--micro", type=int, default=32, help="micro-batch size (trajectories)")
    p.add_argument("--max-turns", type=int, default=12)
    p.add_argument("--sft-demos", type=int, default=48, help="oracle demos for the brief SFT (setup)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="preset xs, 16 episodes, 2 repeats")
    args = p.parse_args()
    if args.quick:
        args.preset, args.episodes, args.repeats, args.micro, args.max_turns = "xs", 16, 2, 8, 8
    return args


def rollout_batch(policy, args) -> Batch:
    cfg, env_cfg = rollout_setup(args.max_turns)
    engine = HFEngine(policy.model, policy.pad_id)
    trajs = rollout(engine, policy.chat, bench_tasks(args.episodes // 4, seed=args.seed), cfg,
                    group_size=4, seed=args.seed, env_cfg=env_cfg)
    rewards = [t.token_rewards(shape_rewards("score", t)) for t in trajs]
    return Batch.from_trajectories(trajs, policy.pad_id, rewards)


def token_logprobs(model, ids, attn, use_autocast: bool):
    """[B, T] log p(ids[t] | ids[<t]), 0 at t = 0."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_autocast):
        logits = model(input_ids=ids, attention_mask=attn).logits
    logp = F.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
    return F.pad(logp, (1, 0))


def bare_update(model, optimizer, batch: Batch, adv, micro: int, use_autocast: bool) -> float:
    ids, attn, mask = batch.input_ids, batch.attention_mask, batch.loss_mask
    spans = [(s, int(attn[s:s + micro].sum(1).max())) for s in range(0, len(ids), micro)]
    old = torch.zeros_like(mask)  # recomputed like Questline does, though -adv*logp never reads it
    with torch.no_grad():
        for s, t in spans:
            old[s:s + micro, :t] = token_logprobs(model, ids[s:s + micro, :t], attn[s:s + micro, :t], use_autocast)
    model.train()
    n_tokens = mask.sum().clamp(min=1)
    total = 0.0
    for s, t in spans:
        logp = token_logprobs(model, ids[s:s + micro, :t], attn[s:s + micro, :t], use_autocast)
        loss = -(adv[s:s + micro, :t] * logp * mask[s:s + micro, :t]).sum() / n_tokens
        loss.backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return total


def fmt(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(base_model, batch: Batch, cfg: RLConfig, args, use_autocast: bool) -> dict:
    q_model, b_model = copy.deepcopy(base_model), copy.deepcopy(base_model)
    q_opt = make_optimizer(q_model, LR)
    q_sched = torch.optim.lr_scheduler.LambdaLR(q_opt, lambda s: 1.0)
    b_opt = torch.optim.AdamW(b_model.parameters(), lr=LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    adv, _ = compute_advantages("grpo", batch.token_rewards, batch.loss_mask, batch.group_ids)

    def questline():
        rl_update(q_model, None, q_opt, q_sched, batch, cfg, temperature=1.0, use_autocast=use_autocast)

    def bare():
        bare_update(b_model, b_opt, batch, adv, cfg.micro_batch_size, use_autocast)

    # warm-up (one update each), then check both took the same step from the same weights
    timed(questline), timed(bare)
    diff = max((p - q).abs().max().item() for p, q in zip(q_model.parameters(), b_model.parameters()))
    q_times, b_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        q_times.append(timed(questline))
        b_times.append(timed(bare))
    tokens = int(batch.attention_mask.sum())
    q, b = statistics.median(q_times), statistics.median(b_times)
    return {"q_s": q, "b_s": b, "q_tok_s": tokens / q, "b_tok_s": tokens / b, "ratio": q / b,
            "diff": diff, "q_all": q_times, "b_all": b_times}


if __name__ == "__main__":
    args = parse_args()
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    policy = make_policy(args.preset, sft_demos=args.sft_demos, seed=args.seed)
    batch = rollout_batch(policy, args)
    cfg = RLConfig(advantage="grpo", loss="ppo_clip", aggregation="token-mean", recompute_logprobs=True,
                   lr=LR, minibatch_size=len(batch), micro_batch_size=args.micro)
    tokens, policy_tokens = int(batch.attention_mask.sum()), int(batch.loss_mask.sum())
    print(f"# train-step benchmark: {describe(policy, args.preset)}")
    print(f"# {load_average()} at start")
    print(f"# batch: {len(batch)} episodes from a toy/maze rollout, {tokens} tokens "
          f"({tokens / len(batch):.0f}/episode, padded to {batch.input_ids.shape[1]}), {policy_tokens} policy "
          f"tokens; micro-batch {args.micro}; one optimizer step per update; "
          f"1 warm-up + {args.repeats} timed updates, median")

    results = {}
    for use_autocast in (False, True):
        name = "bf16" if use_autocast else "fp32"
        results[name] = compare(policy.model, batch, cfg, args, use_autocast)
        r = results[name]
        print(f"  ran {name}: questline {fmt(r['q_all'])} s, bare {fmt(r['b_all'])} s")
    assert results["fp32"]["diff"] < 10 * LR, f"fp32 updates disagree: max |dw| {results['fp32']['diff']:.2e}"

    head = f"{'precision':<9} {'questline tok/s':>15} {'bare tok/s':>10} {'questline s':>11} {'bare s':>7} " \
           f"{'overhead':>8} {'max |dw|':>9}"
    print("\n" + head)
    print("-" * len(head))
    for name, r in results.items():
        print(f"{name:<9} {r['q_tok_s']:15.0f} {r['b_tok_s']:10.0f} {r['q_s']:11.2f} {r['b_s']:7.2f} "
              f"{r['ratio']:7.2f}x {r['diff']:9.1e}")
    print("(tok/s = batch tokens per update / median update time; overhead = questline time / bare time;"
          f" max |dw| = weight gap after the warm-up update, lr {LR:g})")
    print(f"total {time.perf_counter() - t_start:.0f}s, {load_average()} at end")
