"""Rollout cost: HFEngine keeping each episode's KV cache across turns vs the naive
engine that re-prefills the whole history on every call (`reuse_cache=False`).

Same model (a from-scratch preset briefly SFT-ed on oracle demos so that it plays
real multi-turn episodes, see common.py), same tasks, same seed; each engine runs
`--repeats` times, interleaved, and its best wall time counts. In fp32 both engines
must produce identical trajectories (caching changes cost, never results); this is
asserted. The same pair is then run under bf16 autocast.

    python benchmarks/rollout.py            # preset s, 32 tasks x group 4, 12 turns
    python benchmarks/rollout.py --quick    # small configuration, < 60 s
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from statistics import mean

import torch
from common import DIFFICULTY, ENV, bench_tasks, describe, load_average, make_policy, rollout_setup

from questline.inference import HFEngine
from questline.rollout import rollout


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="s", choices=["xs", "s", "m"])
    p.add_argument("--tasks", type=int, default=32)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--max-turns", type=int, default=12)
    p.add_argument("--sft-demos", type=int, default=48, help="oracle demos for the brief SFT (setup)")
    p.add_argument("--repeats", type=int, default=2, help="rollouts per engine; the best wall time counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="preset xs, 16 tasks x 4, 10 turns, 1 repeat")
    args = p.parse_args()
    if args.quick:
        args.preset, args.tasks, args.group, args.max_turns, args.repeats = "xs", 16, 4, 10, 1
    return args


class Timer:
    """Seconds spent in the model's forward and in HFEngine._store during a rollout."""

    def __init__(self, engine: HFEngine):
        self.forward = self.store = 0.0
        self.hooks = [engine.model.register_forward_pre_hook(self._start),
                      engine.model.register_forward_hook(self._stop)]
        store = engine._store

        def timed_store(*a):
            t0 = time.perf_counter()
            store(*a)
            self.store += time.perf_counter() - t0

        engine._store = timed_store  # on this engine instance only

    def _start(self, *_):
        self._t0 = time.perf_counter()

    def _stop(self, *_):
        self.forward += time.perf_counter() - self._t0

    def close(self):
        for h in self.hooks:
            h.remove()


def run(policy, tasks, cfg, env_cfg, args, *, reuse_cache: bool, autocast: bool) -> dict:
    engine = HFEngine(policy.model, policy.pad_id, reuse_cache=reuse_cache, autocast=autocast)
    rollout(engine, policy.chat, tasks[:2], replace(cfg, max_turns=2), seed=args.seed + 1)  # warm-up
    engine.tokens_forwarded = engine.padded_forwarded = 0
    timer = Timer(engine)
    t0 = time.perf_counter()
    trajs = rollout(engine, policy.chat, tasks, cfg, group_size=args.group, seed=args.seed, env_cfg=env_cfg)
    wall = time.perf_counter() - t0
    timer.close()
    context = sum(len(t.ids) for t in trajs)
    gen_s = sum(turn.gen_seconds for t in trajs for turn in t.turns)
    return {
        "name": f"{'bf16' if autocast else 'fp32'} {'cached' if reuse_cache else 'naive'}",
        "trajs": trajs,
        "wall": wall,
        "turns": mean(len(t.turns) for t in trajs),
        "context": context / len(trajs),
        "fwd_per_ctx": mean(t.tokens_forwarded / len(t.ids) for t in trajs),
        "engine_fwd_per_ctx": engine.tokens_forwarded / context,
        "pad_ratio": engine.padded_forwarded / max(engine.tokens_forwarded, 1),
        "steps_s": sum(len(t.turns) for t in trajs) / wall,
        "gen_tok_s": sum(t.num_policy_tokens for t in trajs) / wall,
        "success": mean(t.success for t in trajs),
        "forward_s": timer.forward,
        "store_s": timer.store,
        "engine_other_s": gen_s - timer.forward - timer.store,
        "env_s": sum(turn.env_seconds for t in trajs for turn in t.turns),
    }


def same_ids(a: list, b: list) -> float:
    return mean(x.ids == y.ids for x, y in zip(a, b))


def max_logprob_gap(a: list, b: list) -> float:
    """Largest |logprob difference| over sampled tokens of episodes with identical ids."""
    return max((abs(p - q) for x, y in zip(a, b) if x.ids == y.ids for p, q in zip(x.logprobs, y.logprobs)),
               default=float("nan"))


if __name__ == "__main__":
    args = parse_args()
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    policy = make_policy(args.preset, sft_demos=args.sft_demos, seed=args.seed)
    tasks = bench_tasks(args.tasks, seed=args.seed)
    cfg, env_cfg = rollout_setup(args.max_turns)
    print(f"# rollout benchmark: {describe(policy, args.preset)}")
    print(f"# {load_average()} at start")
    print(f"# {ENV} {DIFFICULTY}, {args.tasks} tasks x group {args.group} = {args.tasks * args.group} episodes, "
          f"max_turns {args.max_turns}, max_new_tokens {cfg.max_new_tokens}, temperature {cfg.temperature}")

    results = {}
    for _ in range(args.repeats):  # interleaved; each engine keeps its best wall time
        for autocast in (False, True):
            for reuse in (True, False):
                r = run(policy, tasks, cfg, env_cfg, args, reuse_cache=reuse, autocast=autocast)
                print(f"  ran {r['name']}: {r['wall']:.1f}s")
                best = results.setdefault(r["name"], r)
                assert same_ids(best["trajs"], r["trajs"]) == 1.0, f"{r['name']}: a repeat sampled differently"
                if r["wall"] < best["wall"]:
                    results[r["name"]] = r

    fp32_match = same_ids(results["fp32 cached"]["trajs"], results["fp32 naive"]["trajs"])
    bf16_match = same_ids(results["bf16 cached"]["trajs"], results["bf16 naive"]["trajs"])
    assert fp32_match == 1.0, f"fp32: cached and naive trajectories differ ({fp32_match:.1%} identical)"

    r0 = results["fp32 cached"]
    print(f"\nepisodes: {r0['turns']:.1f} turns, {r0['context']:.0f} context tokens, "
          f"success {r0['success']:.1%} (fp32 policy)")
    head = (f"{'engine':<12} {'wall s':>7} {'env steps/s':>11} {'gen tok/s':>9} {'fwd/ctx':>7} "
            f"{'pad/real':>8} {'model s':>7} {'store s':>7} {'other s':>7} {'env s':>6}")
    print(head)
    print("-" * len(head))
    for r in results.values():
        print(f"{r['name']:<12} {r['wall']:7.1f} {r['steps_s']:11.1f} {r['gen_tok_s']:9.1f} "
              f"{r['fwd_per_ctx']:7.2f} {r['pad_ratio']:8.2f} {r['forward_s']:7.1f} {r['store_s']:7.1f} "
              f"{r['engine_other_s']:7.1f} {r['env_s']:6.2f}")
    print()
    for prec in ("fp32", "bf16"):
        c, n = results[f"{prec} cached"], results[f"{prec} naive"]
        print(f"{prec}: speed-up cached/naive {n['wall'] / c['wall']:.2f}x wall, "
              f"{n['engine_fwd_per_ctx'] / c['engine_fwd_per_ctx']:.2f}x fewer tokens forwarded")
    b0 = results["bf16 cached"]
    print(f"identical trajectories cached vs naive: fp32 {fp32_match:.0%} (asserted), bf16 {bf16_match:.0%}; "
          f"bf16 cached vs fp32 cached {same_ids(b0['trajs'], r0['trajs']):.0%} "
          f"(max |logprob gap| {max_logprob_gap(b0['trajs'], r0['trajs']):.1e})")
    print(f"total {time.perf_counter() - t_start:.0f}s, {load_average()} at end")
