"""SWE environment throughput on this machine.

  generation   verified tasks per minute from a cold cache (every candidate bug runs
               the project's test suite), per level
  test runs    sandboxed pytest runs per second, 1 episode vs 2 episodes in parallel
               (processes), and a plain subprocess run of the same suite as baseline
  oracle       oracle episodes per minute (view, replace, run tests, submit)

Usage: python benchmarks/swe_env.py [--tasks 20] [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from questline.core import Task
from questline.envs.swe import tasks as swe_tasks
from questline.envs.swe.env import SweEnv
from questline.envs.swe.sandbox import Sandbox
from questline.envs.swe.testrun import run_pytest


def generation(n: int, level: str) -> tuple[float, swe_tasks.GenerationStats]:
    with tempfile.TemporaryDirectory() as cache:
        stats = swe_tasks.GenerationStats()
        verifier = swe_tasks.Verifier(cache)
        t0 = time.perf_counter()
        swe_tasks.generate(n, level, seed=1, verifier=verifier, stats=stats)
        verifier.close()
        return n / (time.perf_counter() - t0) * 60, stats


def _test_runs(project: str, runs: int) -> float:
    sb = Sandbox(swe_tasks.project_dir(project))
    t0 = time.perf_counter()
    for _ in range(runs):
        run_pytest(sb)
    sb.close()
    return runs / (time.perf_counter() - t0)


def _plain_runs(project: str, runs: int) -> float:
    t0 = time.perf_counter()
    for _ in range(runs):
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                       cwd=swe_tasks.project_dir(project), capture_output=True,
                       env={"PYTHONPATH": str(swe_tasks.project_dir(project)), "PYTHONDONTWRITEBYTECODE": "1"})
    return runs / (time.perf_counter() - t0)


def parallel(project: str, runs: int, workers: int) -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_test_runs, [project] * workers, [runs] * workers))
    return runs * workers / (time.perf_counter() - t0)


def oracle_episodes(specs: list[dict]) -> float:
    t0 = time.perf_counter()
    for spec in specs:
        env = SweEnv()
        env.reset(Task(spec["instance_id"], "swe", spec["level"], spec))
        while True:
            step = env.step(env.oracle_action())
            if step.done:
                break
        assert step.info["metrics"]["success"] == 1.0, spec["instance_id"]
        env.close()
    return len(specs) / (time.perf_counter() - t0) * 60


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    project = swe_tasks.projects()[0]
    print(f"SWE env benchmark ({len(swe_tasks.projects())} projects; test-run figures on '{project}', "
          f"{len(swe_tasks.project_files(project))} files)")
    print(f"sandbox isolation: {Sandbox().isolation}")
    for level in swe_tasks.LEVELS:
        rate, stats = generation(args.tasks, level)
        print(f"generation {level:6s}: {rate:6.1f} tasks/min  ({stats.tried} tried, {stats.runs} suite runs, "
              f"retry rate {stats.retry_rate():.0%}, rejected {dict(stats.rejected)})")
    plain = _plain_runs(project, args.runs)
    one = _test_runs(project, args.runs)
    two = parallel(project, args.runs, 2)
    print(f"test runs, plain subprocess : {plain:5.2f} /s")
    print(f"test runs, sandbox x1       : {one:5.2f} /s  ({one / plain:.2f}x plain)")
    print(f"test runs, sandbox x2 procs : {two:5.2f} /s  ({two / one:.2f}x one episode)")
    with tempfile.TemporaryDirectory() as cache:
        verifier = swe_tasks.Verifier(cache)
        specs = swe_tasks.generate(args.tasks // 2, "easy", seed=2, verifier=verifier)
        verifier.close()
    print(f"oracle episodes             : {oracle_episodes(specs):5.1f} /min")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
