"""Environment cost per family: game generation, reset and step throughput, and the
oracle's win rate, alone and with 2 worker processes.

  generation  seconds per generated game from an empty cache: 1 process (the first
              `--gen-sample` games) and 2 worker processes (all `--games`)
  reset       mean seconds of env.reset (loading a generated game into the engine)
  steps/s     env.step calls per second over random-policy episodes (random admissible
              commands, `--random-steps` per game) plus the oracle episodes: in this
              process alone, and summed over 2 processes stepping half the games each
  oracle won  share of games the oracle (the walkthrough, then the engine's policy;
              ALFWorld: the planner's) wins; issue 5 asks 100% of >= 50 games per
              family and per ALFWorld task type
  failed      seeds whose game failed to compile (or, ALFWorld, to solve): retried

Other environments add a row with one line in FAMILIES: family -> factory(workers,
cache_dir) returning (env name, env config); the env must implement the Env protocol
with `oracle_action()` and the scripted policy 'random'.

    python benchmarks/env_step.py                          # 50 games per family, fresh cache
    python benchmarks/env_step.py --games 6 --families textworld/custom textworld/cooking
    python benchmarks/env_step.py --families alfworld/pick alfworld/heat      # ALFWorld task types
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable

from questline.envs import generate_tasks, make


def _textworld(family: str) -> Callable:
    return lambda workers, cache: ("textworld", {"family": family, "workers": workers,
                                                 "cache_dir": cache, "progress": False})


FAMILIES: dict[str, Callable[[int, str | None], tuple[str, dict]]] = {
    "textworld/custom": _textworld("custom"),
    "textworld/cooking": _textworld("cooking"),
    "textworld/coin_collector": _textworld("coin_collector"),
    "textworld/treasure_hunter": _textworld("treasure_hunter"),
    "textworld/simple": _textworld("simple"),
}

try:  # ALFWorld rows, one per task type, when the extra is installed
    from questline.envs.alfworld.scenes import ALIASES

    def _alfworld(task_type: str) -> Callable:
        return lambda workers, cache: ("alfworld", {"source": "generated", "task_types": [task_type],
                                                    "workers": workers, "cache_dir": cache})

    FAMILIES.update({f"alfworld/{short}": _alfworld(short) for short in ALIASES})
except ImportError:
    pass


def play(env_name: str, cfg: dict, task_dicts: list[dict], random_steps: int) -> dict:
    """Oracle and random episodes of each task; step and reset times (one process)."""
    from questline.core import Task
    out = {"steps": 0, "step_s": 0.0, "resets": 0, "reset_s": 0.0, "won": 0, "games": 0}
    for td in task_dicts:
        task = Task.from_dict(td)
        for policy in ("oracle", "random"):
            env = make(env_name, **{**cfg, "max_steps": random_steps} if policy == "random" else cfg)
            t0 = time.perf_counter()
            env.reset(task)
            out["reset_s"] += time.perf_counter() - t0
            out["resets"] += 1
            done, step = False, None
            while not done:
                action = env.scripted_action(policy)
                t0 = time.perf_counter()
                step = env.step(action)
                out["step_s"] += time.perf_counter() - t0
                out["steps"] += 1
                done = step.done
            if policy == "oracle":
                out["games"] += 1
                out["won"] += int(step.info["metrics"]["success"] == 1.0)
            env.close()
    return out


def _warm(env_name: str, cfg: dict) -> None:
    time.sleep(0.5)  # so that each worker takes one
    make(env_name, **cfg)


def bench_family(name: str, args, cache: str | None) -> dict:
    env_name, cfg1 = FAMILIES[name](1, cache)
    _, cfg2 = FAMILIES[name](2, cache)
    row: dict = {"family": name}
    with tempfile.TemporaryDirectory() as sample_cache:  # 1 process, from an empty cache
        _, cfg_sample = FAMILIES[name](1, sample_cache)
        t0 = time.perf_counter()
        generate_tasks(env_name, args.gen_sample, args.difficulty, args.seed, **cfg_sample)
        row["gen_s_1proc"] = (time.perf_counter() - t0) / args.gen_sample
    t0 = time.perf_counter()
    tasks = generate_tasks(env_name, args.games, args.difficulty, args.seed, **cfg2)
    row["gen_s_2proc"] = (time.perf_counter() - t0) / args.games
    if env_name == "textworld":
        from questline.envs.textworld import games
        rep = games.LAST_REPORT
        row.update(generated=rep.generated, cached=rep.cached, failed_seeds=len(rep.failed),
                   duplicates=rep.duplicates)
    if env_name == "alfworld":  # seeds whose scene failed to compile or solve, retried with the next
        row["failed_seeds"] = sum(len(t.spec["rejected"]) for t in tasks)
    dicts = [t.to_dict() for t in tasks]
    alone = play(env_name, cfg1, dicts, args.random_steps)
    row.update(games=alone["games"], oracle_won=alone["won"] / alone["games"],
               reset_s=alone["reset_s"] / alone["resets"], steps_per_s_1proc=alone["steps"] / alone["step_s"])
    halves = [dicts[0::2], dicts[1::2]]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.starmap(_warm, [(env_name, cfg1)] * 2)  # start both workers and import the env first
        t0 = time.perf_counter()
        parts = pool.starmap(play, [(env_name, cfg1, h, args.random_steps) for h in halves])
        wall = time.perf_counter() - t0
    steps = sum(p["steps"] for p in parts)
    row["steps_per_s_2proc"] = steps / sum(p["step_s"] for p in parts) * 2  # both busy the whole time
    row["episodes_per_s_2proc"] = sum(p["resets"] for p in parts) / wall
    row["episodes_per_s_1proc"] = alone["resets"] / (alone["reset_s"] + alone["step_s"])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--games", type=int, default=50)
    p.add_argument("--gen-sample", type=int, default=3, help="games generated in 1 process")
    p.add_argument("--difficulty", default="easy")
    p.add_argument("--random-steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--use-cache", action="store_true", help="reuse $QUESTLINE_CACHE (generation times "
                   "then only count games not cached)")
    p.add_argument("--out", default=None, help="write the rows as json here")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.games} games per family "
          f"({args.difficulty})")
    header = (f"{'family':<28}{'gen s/game 1p':>14}{'2p':>7}{'reset s':>9}{'steps/s 1p':>11}{'2p':>7}"
              f"{'ep/s 1p':>8}{'2p':>7}{'oracle won':>12}{'failed':>7}")
    print(header)
    rows = []
    with tempfile.TemporaryDirectory() as fresh:
        for name in args.families:
            row = bench_family(name, args, None if args.use_cache else fresh)
            rows.append(row)
            print(f"{name:<28}{row['gen_s_1proc']:>14.2f}{row['gen_s_2proc']:>7.2f}{row['reset_s']:>9.3f}"
                  f"{row['steps_per_s_1proc']:>11.0f}{row['steps_per_s_2proc']:>7.0f}"
                  f"{row['episodes_per_s_1proc']:>8.1f}{row['episodes_per_s_2proc']:>7.1f}"
                  f"{row['oracle_won']:>11.0%} {row['games']:<3}{row.get('failed_seeds', 0):>4}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
