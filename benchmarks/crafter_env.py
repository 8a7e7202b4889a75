"""Crafter environment costs and the scripted expert's level.

  steps       env.step per second (crafter's update + the BALROG text), the bare game
              step, and the expert's decision time
  resets      T tasks x G samples per task: generating every world at reset (what a
              plain wrapper does) vs `CrafterEnv.prepare` (each seed generated once,
              in parallel processes) followed by snapshot restores
  rollout     env time (prepare + resets + steps) as a share of a rollout's wall time,
              with the tiny model (preset xs, random init: its outputs are mostly
              invalid and played as Noop, which costs the env the same): a cold batch,
              then the next batch, whose worlds were prefetched during the first (as
              the RL loop does)
  expert      the expert on N seeds within its step budget: mean achievements per
              episode, Crafter score, progression, per-achievement success rates

    OMP_NUM_THREADS=1 python benchmarks/crafter_env.py             # 20 expert seeds
    OMP_NUM_THREADS=1 python benchmarks/crafter_env.py --quick     # smaller, < 2 min
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from questline.envs import generate_tasks, make
from questline.envs.crafter import sim as crafter_sim
from questline.envs.crafter.env import ACHIEVEMENTS, ACTIONS, CrafterEnv, crafter_score


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--tasks", type=int, default=4, help="tasks per rollout batch")
    p.add_argument("--group", type=int, default=4, help="samples per task")
    p.add_argument("--max-turns", type=int, default=16)
    p.add_argument("--expert-seeds", type=int, default=20)
    p.add_argument("--expert-budget", type=int, default=1000, help="expert episode length cap (steps)")
    p.add_argument("--workers", type=int, default=0, help="world generation processes (0 = CPU count)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.steps, args.tasks, args.group, args.expert_seeds = 500, 2, 2, 4
    return args


def bench_steps(n: int) -> None:
    env = make("crafter", length=10**6, history=2)
    env.reset(generate_tasks("crafter", 1, "easy", 123)[0])
    rng = np.random.RandomState(0)
    moves = [ACTIONS[i] for i in rng.randint(0, 5, n)]  # noop and moves keep the player alive
    t0, k = time.perf_counter(), 0
    for a in moves:
        k += 1
        if env.step(a).done:
            break
    env_rate = k / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in rng.randint(0, 5, n):
        env.sim.step(int(i))
    sim_rate = n / (time.perf_counter() - t0)
    env = make("crafter", length=n, history=0)
    env.reset(generate_tasks("crafter", 1, "easy", 124)[0])
    t_expert = t_step = 0.0
    k = 0
    while not env.done:
        t0 = time.perf_counter()
        a = env.oracle_action()
        t1 = time.perf_counter()
        env.step(a)
        t_expert, t_step, k = t_expert + t1 - t0, t_step + time.perf_counter() - t1, k + 1
    print(f"steps: env.step {env_rate:,.0f}/s (text, history 2), bare game step {sim_rate:,.0f}/s; "
          f"expert episode: decide {1e3 * t_expert / k:.2f} ms + step {1e3 * t_step / k:.2f} ms per step")


def bench_resets(tasks: int, group: int, workers: int) -> None:
    ts = generate_tasks("crafter", tasks, "easy", 7)
    t0 = time.perf_counter()
    CrafterEnv.prepare(generate_tasks("crafter", 2, "easy", 1), reset_workers=workers)  # starts the pool
    print(f"resets: the first prepare starts the generator processes: {time.perf_counter() - t0:.1f} s (once)")
    crafter_sim.WORLDS.clear()
    t0 = time.perf_counter()
    for t in ts:
        for _ in range(group):
            crafter_sim.generate(t.spec["seed"], (64, 64))  # what every reset costs without the cache
    serial = time.perf_counter() - t0
    crafter_sim.WORLDS.clear()
    t0 = time.perf_counter()
    CrafterEnv.prepare(ts, reset_workers=workers)
    t1 = time.perf_counter()
    for t in ts:
        for _ in range(group):
            make("crafter").reset(t)
    prepared = time.perf_counter() - t0
    n = tasks * group
    print(f"resets: {tasks} tasks x {group} samples, serial generation {serial:.1f} s ({serial / n:.2f} s/reset); "
          f"prepared {prepared:.1f} s (prepare {t1 - t0:.1f} s with {workers or os.cpu_count()} processes, "
          f"{1e3 * (prepared - (t1 - t0)) / n:.1f} ms/restore): {serial / prepared:.1f}x; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def bench_rollout(tasks: int, group: int, max_turns: int) -> None:
    from questline.agent import ChatTokens
    from questline.data.corpus import oracle_texts
    from questline.inference import HFEngine
    from questline.models import build_model, train_tokenizer
    from questline.rollout import RolloutConfig, rollout

    corpus = generate_tasks("crafter", 4, "easy", 99, length=60)
    tok = train_tokenizer(oracle_texts(corpus, {"length": 60, "history": 0}), vocab_size=1024)
    chat = ChatTokens(tok)
    model = build_model("xs", tok, seed=0).eval()
    engine = HFEngine(model, tok.pad_token_id if tok.pad_token_id is not None else chat.eot_id)
    ts = generate_tasks("crafter", tasks, "easy", 8, length=150)
    nxt = generate_tasks("crafter", tasks, "easy", 18, length=150)
    cfg = RolloutConfig(max_turns=max_turns, max_new_tokens=8, max_context_tokens=2048)
    timing = {"reset": 0.0, "prepare": 0.0}
    reset, prepare = CrafterEnv.reset, CrafterEnv.prepare.__func__

    def timed_reset(self, task):
        t0 = time.perf_counter()
        try:
            return reset(self, task)
        finally:
            timing["reset"] += time.perf_counter() - t0

    def timed_prepare(cls, tasks, wait=True, **cfg):
        t0 = time.perf_counter()
        try:
            return prepare(cls, tasks, wait=wait, **cfg)
        finally:
            timing["prepare"] += time.perf_counter() - t0

    def measure(batch, label, prefetch=None):
        timing.update(reset=0.0, prepare=0.0)
        CrafterEnv.reset, CrafterEnv.prepare = timed_reset, classmethod(timed_prepare)
        try:
            t0 = time.perf_counter()
            CrafterEnv.prepare(batch, length=150, history=0)  # what RL's collect() does first
            if prefetch:
                CrafterEnv.prepare(prefetch, wait=False, length=150, history=0)
            trajs = rollout(engine, chat, batch, cfg, group_size=group, seed=0,
                            env_cfg={"length": 150, "history": 0})
            wall = time.perf_counter() - t0
        finally:
            CrafterEnv.reset, CrafterEnv.prepare = reset, classmethod(prepare)
        steps = sum(u.env_seconds for t in trajs for u in t.turns)
        gen = sum(u.gen_seconds for t in trajs for u in t.turns)
        turns = sum(len(t.turns) for t in trajs)
        env_total = timing["prepare"] + timing["reset"] + steps
        print(f"rollout ({label}): {len(trajs)} episodes x {turns / len(trajs):.0f} turns, xs model, "
              f"wall {wall:.1f} s; env {env_total:.2f} s = {env_total / wall:.1%} of wall (prepare "
              f"{timing['prepare']:.2f} s, resets {timing['reset']:.3f} s, steps {steps:.2f} s); generation {gen:.1f} s")

    crafter_sim.WORLDS.clear()
    measure(ts, "cold: worlds generated at the start", prefetch=nxt)
    measure(nxt, "next batch, prefetched during the previous one")


def bench_expert(seeds: int, budget: int, workers: int) -> None:
    ts = generate_tasks("crafter", seeds, "easy", 0, length=budget)
    CrafterEnv.prepare(ts, reset_workers=workers)
    counts, metrics = [], []
    t0 = time.perf_counter()
    for t in ts:
        env = make("crafter", length=budget, history=0)
        env.reset(t)
        while not env.done:
            step = env.step(env.oracle_action())
        m = step.info["metrics"]
        metrics.append(m)
        counts.append(m["achievements"])
    rates = [100 * sum(m[f"achievement_{a}"] for m in metrics) / seeds for a in ACHIEVEMENTS]
    died = sum(m["died"] for m in metrics)
    length = sum(m["steps"] for m in metrics) / seeds
    print(f"expert: {seeds} seeds, budget {budget} steps: {np.mean(counts):.2f} achievements per episode "
          f"(min {min(counts):.0f}, max {max(counts):.0f}), Crafter score {crafter_score(rates):.1f}%, "
          f"progression {np.mean(counts) / 22:.3f}; {died:.0f} died, mean length {length:.0f} steps; "
          f"{time.perf_counter() - t0:.0f} s")
    print("  success rates: " + ", ".join(f"{a} {r:.0f}%" for a, r in zip(ACHIEVEMENTS, rates)))


def main():
    args = parse_args()
    bench_steps(args.steps)
    bench_resets(args.tasks, args.group, args.workers)
    bench_rollout(args.tasks, args.group, args.max_turns)
    bench_expert(args.expert_seeds, args.expert_budget, args.workers)


if __name__ == "__main__":
    main()
