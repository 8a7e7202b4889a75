"""Scale-out on this machine: environment workers on Ray (`rollout.workers`).

  env throughput   oracle episodes of the env-heavy environments (ALFWorld: the PDDL
                   engine and planner; SWE: test suites in the sandbox) with the envs in
                   this process (workers 0) or in 1 / 2 Ray actors; ratios vs workers 0,
                   all from one run. The policy is scripted, so the env side is what is
                   timed; actor start-up and a warm-up run of the same rollout
                   (imports, per-process and on-disk caches) are not timed.
  actor overhead   a no-op call to an env actor: serial (call, wait, call, ...) and
                   pipelined (all submitted, then all awaited), ms per call.
  RL iteration     synchronous vs asynchronous RL (`rl.async`) on the quickstart recipe,
                   shrunk to a few minutes; seconds per iteration and their ratio.

The local Ray cluster runs in a network namespace with loopback as its only interface
(the script re-runs itself there with `unshare --net`; root needed). The machine's
load average is printed with the numbers: compare ratios from one run, on an idle
machine where possible.

Usage: python benchmarks/scale.py [--alfworld-tasks 4] [--swe-tasks 2] [--group 2] [--calls 300]
                                  [--rl-iterations 5] [--rl-rounds 3] [--parts envs,actor,rl]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from questline.agent import ChatTokens  # noqa: E402
from questline.core import Task  # noqa: E402
from questline.envs import generate_tasks  # noqa: E402
from questline.models import train_tokenizer  # noqa: E402
from questline.rollout import RolloutConfig, rollout  # noqa: E402
from questline.rollout import workers as ray_workers  # noqa: E402

WORKERS = (0, 1, 2)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def timed_rollout(chat: ChatTokens, tasks: list[Task], env_cfg: dict, group: int, workers: int,
                  max_turns: int) -> tuple[float, int, int]:
    """(seconds, episodes, env steps) of one oracle rollout."""
    cfg = RolloutConfig(max_turns=max_turns, max_new_tokens=4096, max_context_tokens=1 << 20,
                        action_format="raw" if tasks[0].env == "swe" else "react", workers=workers)
    t0 = time.perf_counter()
    trajs = rollout(None, chat, tasks, cfg, group_size=group, seed=1, env_cfg=env_cfg, policy="oracle")
    seconds = time.perf_counter() - t0
    failed = [t.infra_error for t in trajs if t.infra_failed]
    if failed:
        raise RuntimeError(f"{len(failed)} episodes failed: {failed[:3]}")
    return seconds, len(trajs), sum(len(t.turns) for t in trajs)


def env_throughput(name: str, chat: ChatTokens, tasks: list[Task], env_cfg: dict, group: int,
                   max_turns: int = 64) -> None:
    base = None
    for n in WORKERS:
        if n:
            ray_workers.env_workers(n)  # actors up (and their imports done) before timing
        timed_rollout(chat, tasks, env_cfg, group, n, max_turns)  # warm-up: imports, per-process and disk caches
        seconds, episodes, steps = timed_rollout(chat, tasks, env_cfg, group, n, max_turns)
        rate = episodes / seconds
        base = base or rate
        print(f"  {name:9s} workers {n}: {rate * 60:7.1f} episodes/min  {steps / seconds:7.1f} env steps/s  "
              f"({episodes} episodes in {seconds:5.1f}s, {rate / base:.2f}x workers 0)", flush=True)


def actor_overhead(calls: int) -> None:
    import ray
    actor = ray_workers.env_workers(1).actors[0]
    ray.get([actor.ping.remote() for _ in range(20)])  # warm
    t0 = time.perf_counter()
    for _ in range(calls):
        ray.get(actor.ping.remote())
    serial = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    ray.get([actor.ping.remote() for _ in range(calls)])
    pipelined = (time.perf_counter() - t0) / calls
    print(f"  no-op actor call: {serial * 1e3:.2f} ms serial, {pipelined * 1e3:.2f} ms pipelined "
          f"({calls} calls each)", flush=True)


RL_OVERRIDES = ("rollout.max_turns=4", "rollout.max_new_tokens=48", "rl.tis_cap=2.0")


def rl_iteration_times(iterations: int = 5, rounds: int = 3, overrides: tuple[str, ...] = RL_OVERRIDES) -> None:
    """Iteration time of synchronous vs asynchronous RL (`rl.async`) on the quickstart
    recipe, shrunk (`overrides`) to take a few minutes: the same initial policy, seed
    and number of iterations in both modes, run alternately `rounds` times (a shared
    machine's load drifts). The first iteration of each run is left out of the means
    (an asynchronous run overlaps nothing there)."""
    import copy
    import json

    import torch

    from questline.experiments.recipe import load_recipe
    from questline.train.pipeline import Pipeline
    from questline.train.rl import train_rl

    root = Path(__file__).resolve().parent.parent / "questline" / "recipes" / "quickstart.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        base = Pipeline(load_recipe(root, [f"run.dir={tmp}/init", "run.progress=false", *overrides]))
        print(f"  quickstart ({', '.join(overrides)}), {iterations} iterations a run, {rounds} rounds, "
              f"torch threads {torch.get_num_threads()}", flush=True)
        steady: dict[str, list[float]] = {"sync": [], "async": []}
        for k in range(rounds):
            for mode in steady:
                recipe = load_recipe(root, [f"run.dir={tmp}/{mode}{k}", "run.progress=false",
                                            "run.checkpoint_every=0", f"rl.async={mode == 'async'}", *overrides])
                run_dir = Path(tmp) / f"{mode}{k}"
                t0 = time.perf_counter()
                train_rl(recipe, copy.deepcopy(base.model), base.tokenizer, base.chat, base.train_set, run_dir,
                         iterations=iterations)
                wall = time.perf_counter() - t0
                rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
                later = rows[1:]
                mean = lambda key, rows=later: sum(r.get(key, 0.0) for r in rows) / len(rows)  # noqa: E731
                steady[mode].append(mean("iter_s"))
                print(f"  round {k + 1} {mode:5s}: {mean('iter_s'):5.1f} s/iteration (iterations 2-{iterations}: "
                      f"rollout {mean('rollout_s'):4.1f} s, waited for it {mean('rollout_wait_s'):4.1f} s); "
                      f"first iteration {rows[0]['iter_s']:4.1f} s; whole run {wall:5.1f} s; {load()}", flush=True)
        sync, async_ = (sum(v) / len(v) for v in steady.values())
        print(f"  mean of {rounds} rounds: sync {sync:.1f} s/iteration, async {async_:.1f} s/iteration; "
              f"async / sync = {async_ / sync:.2f} ({sync / async_:.2f}x faster)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alfworld-tasks", type=int, default=4)
    ap.add_argument("--swe-tasks", type=int, default=2)
    ap.add_argument("--group", type=int, default=2)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rl-iterations", type=int, default=5)
    ap.add_argument("--rl-rounds", type=int, default=3)
    ap.add_argument("--parts", default="envs,actor,rl", help="which measurements (comma-separated)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if ray_workers.interfaces() != ["lo"]:  # run in a loopback-only network namespace
        cmd = ray_workers.loopback_only_command([sys.executable, *sys.argv])
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
               "RAY_memory_monitor_refresh_ms": "0"}  # Ray's OOM killer counts other jobs' memory too
        sys.exit(subprocess.run(cmd, env=env).returncode)
    print(f"scale-out benchmark; {load()}", flush=True)
    chat = ChatTokens(train_tokenizer(["go north", "take apple"], vocab_size=300))
    try:
        if "envs" in parts:
            print("env throughput (oracle episodes; ratios vs workers 0):")
            with tempfile.TemporaryDirectory() as tmp:
                alf_cfg = {"source": "generated", "cache_dir": f"{tmp}/alfworld"}
                alf = generate_tasks("alfworld", args.alfworld_tasks, "easy", 0, **alf_cfg)
                env_throughput("alfworld", chat, alf, alf_cfg, args.group)
                swe_cfg = {"cache_dir": f"{tmp}/swe"}
                swe = generate_tasks("swe", args.swe_tasks, "easy", 0, **swe_cfg)
                env_throughput("swe", chat, swe, swe_cfg, args.group)
        if "actor" in parts:
            print("Ray env actor overhead:")
            actor_overhead(args.calls)
        if "rl" in parts:
            print("RL iteration, synchronous vs asynchronous:")
            rl_iteration_times(args.rl_iterations, args.rl_rounds)
    finally:
        ray_workers.shutdown()
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
