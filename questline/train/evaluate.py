"""Evaluation on held-out tasks: success rate with a Wilson 95% interval."""

from __future__ import annotations

import json
import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from questline.agent.planning import aggregate_planning
from questline.core import Trajectory
from questline.rollout import RolloutConfig, rollout


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def diff_interval(p1: float, n1: int, p2: float, n2: int, z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation 95% interval for p2 - p1 of two independent proportions."""
    half = z * math.sqrt(p1 * (1 - p1) / max(n1, 1) + p2 * (1 - p2) / max(n2, 1))
    return p2 - p1 - half, p2 - p1 + half


def paired_diff_interval(before: dict[str, float], after: dict[str, float], z: float = 1.96):
    """(mean difference, low, high): 95% interval for mean(after - before) over the
    tasks both were evaluated on. Two policies on the *same* held-out tasks are
    paired data: most tasks are solved by both or by neither, so the paired interval
    is much tighter than treating the two success rates as independent."""
    keys = sorted(set(before) & set(after))
    d = [after[k] - before[k] for k in keys]
    n = len(d)
    if n < 2:
        return (d[0] if d else 0.0), -1.0, 1.0
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def pooled_paired_interval(runs: list[tuple[dict[str, float], dict[str, float]]], z: float = 1.96):
    """(mean difference, low, high) over the tasks of several paired runs (one per seed, each
    with its own held-out tasks): every (run, task) pair is one paired difference. It
    measures the evaluation noise of all runs together; the spread between seeds is in
    the per-seed differences, reported beside it."""
    before = {f"{i}/{k}": v for i, (b, _) in enumerate(runs) for k, v in b.items()}
    after = {f"{i}/{k}": v for i, (_, a) in enumerate(runs) for k, v in a.items()}
    return paired_diff_interval(before, after, z)


def pooled_unpaired_interval(runs: list[tuple[dict[str, float], dict[str, float]]], z: float = 1.96):
    """(mean difference, low, high) of mean(after) - mean(before) when the two sides ran
    different tasks (e.g. two task settings): every (run, task) value of a side is one
    sample, and the interval is the two-sample normal approximation."""
    before = [v for b, _ in runs for v in b.values()]
    after = [v for _, a in runs for v in a.values()]
    if len(before) < 2 or len(after) < 2:
        return 0.0, -1.0, 1.0

    def mean_var(xs):
        m = sum(xs) / len(xs)
        return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    (mb, vb), (ma, va) = mean_var(before), mean_var(after)
    half = z * math.sqrt(vb / len(before) + va / len(after))
    return ma - mb, ma - mb - half, ma - mb + half


def interval_text(diff: float, lo: float, hi: float) -> str:
    """'95% CI [lo, hi]', or in words what an interval of zero width means (every
    paired task moved by exactly `diff`), so '[+0.0%, +0.0%]' never looks like a bug."""
    if hi - lo > 1e-9:
        return f"95% CI [{lo:+.1%}, {hi:+.1%}]"
    return ("no spread: every task scored the same in both" if abs(diff) < 1e-12 else
            f"no spread: every task moved by {diff:+.1%}")


@dataclass
class EvalResult:
    n: int
    success: float
    ci_low: float
    ci_high: float
    score: float
    turns: float
    tokens: float  # mean context length per episode
    truncated: float
    by_difficulty: dict[str, float] = field(default_factory=dict)
    per_task: dict[str, float] = field(default_factory=dict)  # task id -> success (mean over samples)
    env_metrics: dict[str, float] = field(default_factory=dict)  # the env's own table (Env.aggregate)
    per_task_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> task id -> mean
    planning: dict[str, float] = field(default_factory=dict)  # agent.planning.aggregate_planning ({} when off)
    infra_failed: int = 0  # episodes left out of every number above (the environment failed)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        left_out = f" ({self.infra_failed} infra failures left out)" if self.infra_failed else ""
        return f"{self.success:6.1%}  [{self.ci_low:.1%}, {self.ci_high:.1%}]  n={self.n}{left_out}"


def infra_summary(trajs: list[Trajectory]) -> str:
    """'' when every episode finished; else how many were left out and why, e.g.
    '6 of 30 episodes left out as infrastructure failures (4x CostEnquiry timed out, ...)'."""
    errors = Counter(t.infra_error or "unknown error" for t in trajs if t.infra_failed)
    if not errors:
        return ""
    why = ", ".join(f"{k}x {e}" for e, k in errors.most_common(3)) + (", ..." if len(errors) > 3 else "")
    return (f"{sum(errors.values())} of {len(trajs)} episodes left out as infrastructure failures ({why}); "
            f"the numbers are over the other {len(trajs) - sum(errors.values())}")


def summarise(trajs: list[Trajectory]) -> EvalResult:
    from questline.envs import env_class
    ok = [t for t in trajs if not t.infra_failed]
    n = len(ok)
    wins = sum(t.success for t in ok)
    lo, hi = wilson(wins, n)
    by: dict[str, list[float]] = {}
    for t in ok:
        by.setdefault(t.task.difficulty, []).append(float(t.success))
    mean = lambda xs: sum(xs) / max(len(xs), 1)  # noqa: E731
    per_task: dict[str, list[float]] = {}
    for t in ok:
        per_task.setdefault(t.task.id, []).append(float(t.success))
    env = env_class(ok[0].task.env) if ok else None
    env_metrics = env.aggregate(ok) if env else {}
    per_metric: dict[str, dict[str, list[float]]] = {}
    for key in env.paired_metrics if env else ():
        for t in ok:
            per_metric.setdefault(key, {}).setdefault(t.task.id, []).append(t.metrics.get(key, 0.0))
    return EvalResult(
        n=n, infra_failed=len(trajs) - n, success=wins / max(n, 1), ci_low=lo, ci_high=hi,
        score=mean([t.metrics.get("score", 0.0) for t in ok]),
        turns=mean([len(t.turns) for t in ok]),
        tokens=mean([len(t.ids) for t in ok]),
        truncated=mean([float(t.truncated) for t in ok]),
        by_difficulty={k: mean(v) for k, v in sorted(by.items())},
        per_task={k: mean(v) for k, v in per_task.items()},
        env_metrics=env_metrics,
        planning=aggregate_planning([t.metrics for t in ok]),
        per_task_metrics={m: {k: mean(v) for k, v in d.items()} for m, d in per_metric.items()},
    )


def evaluate(engine, chat, tasks, cfg: RolloutConfig, *, greedy: bool = True,
             temperature: float = 1.0, seed: int = 0, env_cfg: dict | None = None,
             progress=None, policy: str = "model", given_plan=None,
             on_episode=None) -> tuple[EvalResult, list[Trajectory]]:
    """`on_episode(traj)` is called as each episode finishes (`episode_writer` streams them to a file)."""
    cfg = replace(cfg, temperature=0.0 if greedy else temperature, top_p=1.0)
    trajs = rollout(engine, chat, tasks, cfg, seed=seed, env_cfg=env_cfg, progress=progress, policy=policy,
                    given_plan=given_plan, on_episode=on_episode)
    return summarise(trajs), trajs


@contextmanager
def episode_writer(path: str | Path | None):
    """A callback that appends each finished episode to the jsonl at `path` and
    flushes it, so a long evaluation's file fills as it runs (None: no file)."""
    if not path:
        yield None
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        def write(traj: Trajectory) -> None:
            f.write(json.dumps(traj.to_dict()) + "\n")
            f.flush()
        yield write
