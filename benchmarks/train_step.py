"""Training throughput of Questline's RL update (`rl_update`: GRPO advantages,
ppo_clip, token-mean, recompute_logprobs=True) vs a bare PyTorch loop over the
same tokens.

Two update shapes, because rl_update does different work in each:
  1 mini-batch   one optimizer step over the whole batch. The update is exactly
                 on-policy, so rl_update takes the old logprobs from the training
                 forward itself and runs no separate recompute pass.
  2 mini-batches two optimizer steps. rl_update first recomputes the old logprobs
                 in a no-grad pass over the whole batch.

The bare loop does the same work in each shape: the same micro-batches trimmed to
their longest row; with 2 mini-batches first the no-grad recompute pass; then per
micro-batch a forward, log_softmax + gather of the taken ids, loss -adv * logprob
(masked, token-mean over the mini-batch), backward; per mini-batch grad-norm
clipping and an AdamW step. Advantages are computed once, outside the timing.
Both start from copies of the same weights; with 1 mini-batch (ratio 1) the
clipped PPO gradient equals the plain policy gradient, so after the first update
the two models must agree: this is checked in fp32.

The batch comes from a real rollout of the briefly SFT-ed policy on toy/maze
(groups of 4 samples per task, "score" reward, so GRPO advantages are non-zero).

    python benchmarks/train_step.py            # preset s, 32 episodes, 3 repeats
    python benchmarks/train_step.py --quick    # preset xs, 32 episodes, 3 repeats
"""

from __future__ import annotations

import argparse
import copy
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
    p.add_argument("--episodes", type=int, default=32, help="trajectories in the batch (groups of 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed updates per loop, shape and precision")
    p.add_argument("--micro", type=int, default=8, help="micro-batch size (trajectories)")
    p.add_argument("--max-turns", type=int, default=12)
    p.add_argument("--sft-demos", type=int, default=48, help="oracle demos for the brief SFT (setup)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="preset xs, 32 episodes, 10 turns, 3 repeats")
    args = p.parse_args()
    if args.quick:
        args.preset, args.episodes, args.repeats, args.micro, args.max_turns = "xs", 32, 3, 8, 10
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


def bare_update(model, optimizer, batch: Batch, adv, minibatch: int, micro: int, use_autocast: bool):
    ids, attn, mask = batch.input_ids, batch.attention_mask, batch.loss_mask
    n = len(ids)

    def spans(start, stop):  # micro-batches as (first row, end row, length of their longest row)
        out = []
        for s in range(start, stop, micro):
            e = min(s + micro, stop)
            out.append((s, e, int(attn[s:e].sum(1).max())))
        return out

    if minibatch < n:  # off-policy after the first step: recompute the old logprobs, as rl_update does
        old = torch.zeros_like(mask)  # (-adv * logprob never reads them; the pass is here so the work matches)
        with torch.no_grad():
            for s, e, t in spans(0, n):
                old[s:e, :t] = token_logprobs(model, ids[s:e, :t], attn[s:e, :t], use_autocast)
    model.train()
    for m0 in range(0, n, minibatch):
        m1 = min(m0 + minibatch, n)
        n_tokens = mask[m0:m1].sum().clamp(min=1)
        for s, e, t in spans(m0, m1):
            logp = token_logprobs(model, ids[s:e, :t], attn[s:e, :t], use_autocast)
            loss = -(adv[s:e, :t] * logp * mask[s:e, :t]).sum() / n_tokens
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(base_model, batch: Batch, args, minibatches: int, use_autocast: bool) -> dict:
    minibatch = -(-len(batch) // minibatches)
    cfg = RLConfig(advantage="grpo", loss="ppo_clip", aggregation="token-mean", recompute_logprobs=True,
                   lr=LR, minibatch_size=minibatch, micro_batch_size=args.micro)
    q_model, b_model = copy.deepcopy(base_model), copy.deepcopy(base_model)
    q_opt = make_optimizer(q_model, LR)
    q_sched = torch.optim.lr_scheduler.LambdaLR(q_opt, lambda s: 1.0)
    b_opt = torch.optim.AdamW(b_model.parameters(), lr=LR, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    adv, _ = compute_advantages("grpo", batch.token_rewards, batch.loss_mask, batch.group_ids)

    def questline():
        rl_update(q_model, None, q_opt, q_sched, batch, cfg, temperature=1.0, use_autocast=use_autocast)

    def bare():
        bare_update(b_model, b_opt, batch, adv, minibatch, args.micro, use_autocast)

    timed(questline), timed(bare)  # warm-up, then: did both take the same step from the same weights?
    diff = max((p - q).abs().max().item() for p, q in zip(q_model.parameters(), b_model.parameters()))
    q_times, b_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        q_times.append(timed(questline))
        b_times.append(timed(bare))
    tokens = int(batch.attention_mask.sum())
    q, b = min(q_times), min(b_times)  # best of N: the least disturbed by other load
    return {"q_s": q, "b_s": b, "q_tok_s": tokens / q, "b_tok_s": tokens / b, "ratio": q / b,
            "diff": diff, "q_all": q_times, "b_all": b_times}


def fmt(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    args = parse_args()
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    policy = make_policy(args.preset, sft_demos=args.sft_demos, seed=args.seed)
    batch = rollout_batch(policy, args)
    tokens, policy_tokens = int(batch.attention_mask.sum()), int(batch.loss_mask.sum())
    print(f"# train-step benchmark: {describe(policy, args.preset)}")
    print(f"# {load_average()} at start")
    print(f"# batch: {len(batch)} episodes from a toy/maze rollout, {tokens} tokens "
          f"({tokens / len(batch):.0f}/episode, padded to {batch.input_ids.shape[1]}), {policy_tokens} policy "
          f"tokens; micro-batch {args.micro}; 1 warm-up + best of {args.repeats} timed updates each")

    results = {}
    for minibatches in (1, 2):
        for use_autocast in (False, True):
            name = f"{'bf16' if use_autocast else 'fp32'}, {minibatches} mini-batch{'es' if minibatches > 1 else ''}"
            r = results[name] = compare(policy.model, batch, args, minibatches, use_autocast)
            print(f"  ran {name}: questline {fmt(r['q_all'])} s, bare {fmt(r['b_all'])} s")
    gap = results["fp32, 1 mini-batch"]["diff"]
    assert gap < 1e-6, f"fp32 on-policy: questline and bare updates disagree (max |dw| {gap:.1e})"

    head = (f"{'update':<22} {'questline tok/s':>15} {'bare tok/s':>10} {'questline s':>11} {'bare s':>7} "
            f"{'overhead':>8} {'max |dw|':>8}")
    print("\n" + head)
    print("-" * len(head))
    for name, r in results.items():
        print(f"{name:<22} {r['q_tok_s']:15.0f} {r['b_tok_s']:10.0f} {r['q_s']:11.2f} {r['b_s']:7.2f} "
              f"{r['ratio']:7.2f}x {r['diff']:8.1e}")
    print("tok/s = batch tokens per update / best update time; overhead = questline time / bare time;\n"
          f"max |dw| = largest weight gap after the warm-up update (lr {LR:g}; must be ~0 with 1 mini-batch)")
    print(f"total {time.perf_counter() - t_start:.0f}s, {load_average()} at end")
