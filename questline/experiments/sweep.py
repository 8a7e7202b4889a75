"""Sweeps: one base recipe, named variants (lists of dotted overrides) and seeds.

    recipe: recipes/quickstart.yaml      # the base recipe
    name: algorithms                     # runs/<name>/<variant>-s<seed>/
    overrides: [rl.lr=5e-4]              # applied to every variant
    seeds: [0, 1]
    variants:
      grpo: [rl.advantage=grpo]
      ppo:  [rl.advantage=gae]

When every variant only changes RL-time settings (rl.*, rollout.*, eval.*), the
untrained evaluation and SFT run once per seed in runs/<name>/base-s<seed>/ and
every variant starts RL from that same policy: the comparison isolates the RL
choice. Otherwise variants that agree on everything SFT sees share one SFT per seed
(runs/<name>/base-<first variant>-s<seed>/: e.g. five reward schemes per model size).
`share_sft: true` shares it also across variants that change env.* or data.* (tool
faults, the RL queries' count or mix): SFT trains on the base recipe's tasks, and such a
variant evaluates the SFT policy again on its own env. Variants that differ only in
eval.* evaluate one trained run. The report is a table (held-out success, RL - SFT with
its 95% interval, RL wall time) printed and written to report.md/json, plus learning
curves as PNG.

`report: planning` (recipes/sweeps/planning.yaml) adds the planning comparison:
per variant and stage (SFT-only, SFT+RL) the held-out progression (an env metric
named `progression` when there is one, else success), score, planning frequency,
policy tokens and plan tokens per episode, as planning.md and planning.png.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from pathlib import Path
from typing import Literal

from pydantic import Field
from rich import box
from rich.console import Console
from rich.table import Table

from questline.core import ConfigError
from questline.experiments.recipe import _Strict, explain, load_recipe, read_yaml_mapping
from questline.train.logging import duration

RL_TIME = ("rl.", "rollout.", "eval.", "run.")  # overrides that keep the SFT stage shareable
TASK_TIME = ("env.", "data.")  # shareable with share_sft: true (SFT then trains on the base recipe's tasks)


class Sweep(_Strict):
    recipe: str
    name: str = "sweep"
    overrides: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    variants: dict[str, list[str]]
    report: Literal["success", "planning"] = "success"
    # SFT once per seed, every variant's RL from it. None: when every variant changes only
    # RL-time settings (rl.*, rollout.*, eval.*, run.). true: also across env.* / data.*
    # changes (tool faults, RL query count or mix: SFT on the base recipe's tasks). false: never.
    share_sft: bool | None = None


def load_sweep(path: str | Path, extra: list[str] = ()) -> Sweep:
    path = Path(path)
    return sweep_from_mapping(read_yaml_mapping(path, "sweep"), path.parent, extra, f"sweep {path}")


def sweep_from_mapping(data: dict, base_dir: Path, extra: list[str] = (), where: str = "sweep") -> Sweep:
    """A validated sweep; a relative `recipe` is looked up as given, then beside the sweep file."""
    from pydantic import ValidationError
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as e:
        raise ConfigError(explain(e, Sweep, where)) from None
    sweep.overrides = list(sweep.overrides) + list(extra)
    base = Path(sweep.recipe)
    if not base.is_absolute() and not base.exists():
        base = Path(base_dir) / sweep.recipe
    sweep.recipe = str(base)
    if sweep.share_sft:
        for variant, ovs in sweep.variants.items():
            for o in ovs:
                if not o.split("=", 1)[0].startswith(RL_TIME + TASK_TIME):
                    raise ConfigError(f"{where}, variant '{variant}': share_sft: true, but '{o}' changes what SFT "
                                      "trains (only rl.*, rollout.*, eval.*, run.*, env.* and data.* can share it)")
    for variant, ovs in sweep.variants.items():  # fail before any training on a bad variant
        try:
            load_recipe(sweep.recipe, sweep.overrides + ovs + [f"name={sweep.name}-{variant}"])
        except ConfigError as e:
            raise ConfigError(f"{where}, variant '{variant}': {e}") from None
    return sweep


def sft_groups(sweep: Sweep) -> list[tuple[tuple[str, ...], list[str]]]:
    """Variants that train the same SFT policy: (the overrides SFT depends on, variant names).
    A setting SFT does not see (rl.*, rollout.*, eval.*, run.*; with share_sft: true also
    env.* and data.*) is left out; share_sft: false makes every variant its own group."""
    shareable = RL_TIME + (TASK_TIME if sweep.share_sft else ())
    groups: dict[tuple, list[str]] = {}
    for variant, ovs in sweep.variants.items():
        key = (variant,) if sweep.share_sft is False else tuple(
            sorted(o for o in ovs if not o.split("=", 1)[0].startswith(shareable)))
        groups.setdefault(key, []).append(variant)
    return list(groups.items())


def sweep_plan(sweep: Sweep) -> dict[str, int]:
    """What a sweep trains: SFT stages, RL stages, and runs that only evaluate a trained policy."""
    trains = len({_trains_like(ovs) for ovs in sweep.variants.values()})
    n, seeds = len(sweep.variants), len(sweep.seeds)
    sft = trains if sweep.share_sft is False else len(sft_groups(sweep))
    return {"sft": seeds * sft, "rl": seeds * trains, "evaluate_only": seeds * (n - trains)}


def _trains_like(ovs: list[str]) -> tuple[str, ...]:
    """What a variant trains: its overrides without the evaluation-only ones (eval.*)."""
    return tuple(sorted(o for o in ovs if not o.startswith("eval.")))


def run_sweep(sweep: Sweep, root: str | Path = "runs", console: Console | None = None,
              workers: int = 1) -> list[dict]:
    """Run (or resume) every variant x seed and write the report. `workers` > 1 runs
    independent runs in that many processes (one torch thread each; on 2 cores two
    1-thread runs beat one 2-thread run), each started as soon as what it builds on is
    done: a seed's shared SFT base, or the run of a variant that trains the same way
    (variants that differ only in eval.* evaluate one trained policy, not train it
    again). Each run's output then goes to its train.log; the console gets a line per run."""
    console = console or Console()
    out_dir = Path(root) / sweep.name
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = sft_groups(sweep)
    jobs, after = [], []  # jobs[i] = (variant or None for a base, seed, run_dir, job); after[i] = index it needs
    for seed in sweep.seeds:
        common = sweep.overrides + [f"seed={seed}"]
        base_of: dict[str, int] = {}
        for key, names in groups:
            if len({_trains_like(sweep.variants[v]) for v in names}) < 2:
                continue  # one trained run in the group: it trains its own SFT
            # one group: runs/<name>/base-s<seed>; several: named after the group's first variant
            name = f"base-s{seed}" if len(groups) == 1 else f"base-{names[0]}-s{seed}"
            base_dir = out_dir / name
            base_of.update({v: len(jobs) for v in names})
            jobs.append((None, seed, base_dir,
                         (sweep.recipe, common + list(key) + [f"name={name}", f"run.dir={base_dir}"], ("sft",))))
            after.append(None)
        trainer: dict[tuple, int] = {}
        for variant, ovs in sweep.variants.items():
            run_dir = out_dir / f"{variant}-s{seed}"
            same = trainer.setdefault(_trains_like(ovs), len(jobs))
            after.append(same if same != len(jobs) else base_of.get(variant))
            jobs.append((variant, seed, run_dir,
                         (sweep.recipe, common + ovs + [f"name={variant}-s{seed}", f"run.dir={run_dir}"],
                          ("sft", "rl"))))

    def prepare(i: int) -> None:
        if after[i] is None:
            return
        source, run_dir = jobs[after[i]][2], jobs[i][2]
        if jobs[after[i]][0] is None:  # a shared SFT; its evaluations hold unless the env or tasks differ
            base_overrides = set(jobs[after[i]][3][1])
            same_tasks = not any(o.startswith(TASK_TIME) for o in sweep.variants[jobs[i][0]] if o not in base_overrides)
            _seed_from_base(source, run_dir, keep_evaluations=same_tasks)
        else:
            _seed_from_trained(source, run_dir)

    def finished(i: int, wall: float) -> None:
        clock.save()
        variant, seed, run_dir, _ = jobs[i]
        if variant is None:
            console.print(f"{sweep.name}: shared SFT done ({run_dir})")
        elif workers > 1:
            console.print(f"{sweep.name}: {variant} (seed {seed}) done in {duration(wall)}: {run_dir}")

    clock = SweepClock(out_dir)
    results: dict[int, tuple[dict, float]] = {}
    if workers <= 1:
        for i, (variant, seed, _, job) in enumerate(jobs):  # a job only ever needs an earlier one
            prepare(i)
            if variant is not None:
                console.rule(f"{sweep.name}: {variant} (seed {seed})")
            results[i] = _run_job(*job, console=console)
            finished(i, results[i][1])
    else:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            def submit(i: int):
                prepare(i)
                return pool.submit(_run_job_quietly, jobs[i][3])
            pending = {submit(i): i for i in range(len(jobs)) if after[i] is None}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    finished(i, results[i][1])
                    pending.update({submit(j): j for j in range(len(jobs)) if after[j] == i})
    rows = [_row(variant, seed, run_dir, *results[i]) for i, (variant, seed, run_dir, _) in enumerate(jobs)
            if variant is not None]
    clock.save()
    write_report(sweep, rows, out_dir, console)
    return rows


class SweepClock:
    """The sweep's wall time over all its invocations (an interrupted sweep resumed counts
    both), in <sweep dir>/elapsed.json, saved as each run finishes: a kill loses only the
    time since the last save."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / "elapsed.json"
        self.before = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def save(self) -> None:
        self.path.write_text(json.dumps({"seconds": self.seconds}))


def _run_job(recipe_path: str, overrides: list[str], stages: tuple[str, ...], console=None) -> tuple[dict, float]:
    from questline.train.pipeline import Pipeline
    recipe = load_recipe(recipe_path, overrides)
    t0 = time.perf_counter()
    results = Pipeline(recipe, console).run(stages)
    return results, time.perf_counter() - t0


def _run_job_quietly(job) -> tuple[dict, float]:
    """A run in a worker process: one torch thread, console output into the run's own file."""
    import torch
    torch.set_num_threads(1)
    recipe_path, overrides, stages = job
    run_dir = Path(next(o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("run.dir=")))
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "console.txt", "a") as f:
        return _run_job(recipe_path, overrides, stages, Console(file=f, width=120))


def _seed_from_base(base_dir: Path, run_dir: Path, keep_evaluations: bool = True) -> None:
    """Start a variant from the shared base: same initial policy, SFT policy and (unless
    the variant changes the env or its tasks) their evaluations: results.json keeps only
    those stages."""
    if (run_dir / "results.json").exists():
        return  # already started (resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("init", "sft"):
        if (base_dir / sub).exists() and not (run_dir / sub).exists():
            shutil.copytree(base_dir / sub, run_dir / sub)
    results = json.loads((base_dir / "results.json").read_text())
    keep = {k: v for k, v in results.items()
            if keep_evaluations and (k in ("untrained", "sft") or k.startswith("sft@"))}
    (run_dir / "results.json").write_text(json.dumps(keep, indent=2))


def _seed_from_trained(trained_dir: Path, run_dir: Path) -> None:
    """Start an evaluation-only variant from the run that trained its policy: everything
    but the evaluations (they run again under this variant's eval.* settings)."""
    if (run_dir / "results.json").exists():
        return  # already started (resume)
    skip = shutil.ignore_patterns("eval_*", "results.json", "train.log", "console.txt", "recipe.yaml")
    shutil.copytree(trained_dir, run_dir, ignore=skip, dirs_exist_ok=True)
    (run_dir / "results.json").write_text("{}")


def _row(variant: str, seed: int, run_dir: Path, results: dict, wall: float) -> dict:
    rl_s = sum(m.get("iter_s", 0.0) for m in read_metrics(run_dir, "rl"))
    g = lambda stage: results.get(stage, {}).get("greedy", {})  # noqa: E731
    diff = results.get("rl_minus_sft", {})
    return {"variant": variant, "seed": seed, "run_dir": str(run_dir),
            "stages": {st: g(st) for st in results if st.split("@")[0] in ("sft", "rl") and g(st)},
            "sft": g("sft").get("success"), "rl": g("rl").get("success"),
            "rl_ci": [g("rl").get("ci_low"), g("rl").get("ci_high")],
            "diff": diff.get("diff"), "diff_ci": [diff.get("ci_low"), diff.get("ci_high")],
            "rl_seconds": rl_s, "wall_seconds": wall}


def read_metrics(run_dir: Path, stage: str) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last: dict[int, dict] = {}
    for r in rows:  # a resumed run may log an iteration twice: keep the last
        if r.get("stage") == stage:
            last[r["step"]] = r
    return [last[k] for k in sorted(last)]


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def diff_cell(diff: float | None, lo: float | None, hi: float | None) -> str:
    """'+9.3 [+3.8, +14.9]' in percentage points; an interval of zero width says so."""
    if diff is None:
        return "-"
    if hi - lo <= 1e-9:
        return f"{diff * 100:+.1f} (no spread)"
    return f"{diff * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]"


def write_report(sweep: Sweep, rows: list[dict], out_dir: Path, console: Console) -> None:
    cells = []
    for r in rows:
        lo, hi = r["diff_ci"]
        verdict = "-" if lo is None else ("better" if lo > 0 else "worse" if hi < 0 else "noise")
        cells.append((r["variant"], str(r["seed"]), _pct(r["sft"]), _pct(r["rl"]), diff_cell(r["diff"], lo, hi),
                      verdict, duration(r["rl_seconds"])))
    cols = ("variant", "seed", "SFT", "RL", "RL - SFT, pts [95% CI]", "verdict", "RL time")
    md = _write_table(f"{sweep.name}: held-out success (greedy)", cols, cells, console)
    if seeds := seed_summary(rows):
        cols = ("variant", "seeds", "SFT", "RL", "RL - SFT pooled, pts [95% CI]", "seeds gaining", "per seed")
        cells = [(s["variant"], str(s["seeds"]), _pct(s["sft"]), _pct(s["rl"]),
                  diff_cell(s["diff"], *s["diff_ci"]), f"{s['gaining']}/{s['seeds']}",
                  " ".join(f"{d * 100:+.1f}" for d in s["per_seed"])) for s in seeds]
        md += "\n" + _write_table(f"{sweep.name}: over seeds (paired over every seed's held-out tasks)",
                                  cols, cells, console)
    (out_dir / "report.md").write_text(md)
    (out_dir / "report.json").write_text(json.dumps({"runs": rows, "over_seeds": seeds}, indent=2))
    png = plot_curves(rows, out_dir / "curves.png", title=sweep.name)
    console.print(f"report: {out_dir / 'report.md'}, curves: {png}")
    if sweep.report == "planning":
        write_planning_report(sweep, rows, out_dir, console)


def seed_summary(rows: list[dict]) -> list[dict]:
    """Per variant run with several seeds: mean SFT and RL success, RL - SFT pooled over
    every seed's paired held-out tasks, how many seeds gained, and each seed's difference."""
    from questline.train.evaluate import pooled_paired_interval
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("diff") is not None:
            by_variant.setdefault(r["variant"], []).append(r)
    out = []
    for variant, runs in by_variant.items():
        pairs = [(r["stages"]["sft"].get("per_task", {}), r["stages"]["rl"].get("per_task", {})) for r in runs]
        if len(runs) < 2 or not all(b and a for b, a in pairs):
            continue
        diff, lo, hi = pooled_paired_interval(pairs)
        out.append({"variant": variant, "seeds": len(runs), "sft": sum(r["sft"] for r in runs) / len(runs),
                    "rl": sum(r["rl"] for r in runs) / len(runs), "diff": diff, "diff_ci": [lo, hi],
                    "gaining": sum(r["diff"] > 0 for r in runs), "per_seed": [r["diff"] for r in runs]})
    return out


def _write_table(title: str, cols: tuple[str, ...], cells: list[tuple[str, ...]], console: Console) -> str:
    """Print a rich table; return the same rows as a markdown table."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)  # 80 columns hold 8 of them
    for i, c in enumerate(cols):  # a header wider than its cells wraps between words
        table.add_column(textwrap.fill(c, max([len(w) for w in c.split()] + [len(row[i]) for row in cells])))
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in cells:
        table.add_row(*row)
        md.append("| " + " | ".join(row) + " |")
    console.print(table)
    return "\n".join(md) + "\n"


STAGE_NAMES = {"sft": "SFT", "rl": "SFT+RL"}


def planning_rows(rows: list[dict]) -> list[dict]:
    """One row per (variant, seed, stage) with the planning comparison's columns."""
    out = []
    for r in rows:
        for stage, res in r.get("stages", {}).items():
            env = res.get("env_metrics", {})
            p = res.get("planning", {})
            out.append({"variant": r["variant"], "seed": r["seed"], "stage": STAGE_NAMES[stage],
                        "progression": env.get("progression", res.get("success", 0.0)),
                        "score": env.get("crafter_score", res.get("score", 0.0)),
                        "plan_frequency": p.get("plan_frequency", 0.0),
                        "tokens_per_episode": p.get("tokens_per_episode", 0.0),
                        "plan_tokens_per_episode": p.get("plan_tokens_per_episode", 0.0)})
    return out


def write_planning_report(sweep: Sweep, rows: list[dict], out_dir: Path, console: Console) -> Path:
    prow = planning_rows(rows)
    cols = ("variant", "seed", "stage", "progression", "score", "plan freq", "tokens per episode",
            "plan tokens per episode")
    cells = [(r["variant"], str(r["seed"]), r["stage"], f"{r['progression']:.3f}", f"{r['score']:.3f}",
              f"{r['plan_frequency']:.2f}", f"{r['tokens_per_episode']:.1f}", f"{r['plan_tokens_per_episode']:.1f}")
             for r in prow]
    md = _write_table(f"{sweep.name}: planning comparison (held-out, greedy; progression = success where the env "
                      "has no progression metric)", cols, cells, console)
    (out_dir / "planning.md").write_text(md)
    (out_dir / "planning.json").write_text(json.dumps(prow, indent=2))
    png = plot_planning(prow, out_dir / "planning.png", title=sweep.name)
    console.print(f"planning report: {out_dir / 'planning.md'}, plot: {png}")
    return png


def plot_planning(prow: list[dict], path: Path, title: str = "") -> Path:
    """Bars per variant (SFT and SFT+RL side by side, means over seeds): progression,
    planning frequency and plan tokens per episode."""
    plt = _pyplot()
    variants = list(dict.fromkeys(r["variant"] for r in prow))
    stages = list(dict.fromkeys(r["stage"] for r in prow))
    keys = (("progression", "progression / success"), ("plan_frequency", "plans per turn"),
            ("plan_tokens_per_episode", "plan tokens per episode"))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8))
    width = 0.8 / max(len(stages), 1)
    for ax, (key, label) in zip(axes, keys):
        for j, stage in enumerate(stages):
            ys = []
            for v in variants:
                vals = [r[key] for r in prow if r["variant"] == v and r["stage"] == stage]
                ys.append(sum(vals) / len(vals) if vals else 0.0)
            ax.bar([i + (j - (len(stages) - 1) / 2) * width for i in range(len(variants))], ys, width, label=stage)
        ax.set_xticks(range(len(variants)), variants, rotation=20)
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _moving_average(ys: list[float], smooth: int) -> list[float]:
    return [sum(ys[max(0, i - smooth + 1):i + 1]) / len(ys[max(0, i - smooth + 1):i + 1]) for i in range(len(ys))]


def _plot_metric(ax, runs: list[tuple[str, Path]], stage: str, key: str, smooth: int) -> bool:
    """`key` per `stage` step (moving average of `smooth`), one line per (label, run dir).
    False when no run logged it."""
    drawn = False
    for label, run_dir in runs:
        ys = [m[key] for m in read_metrics(run_dir, stage) if isinstance(m.get(key), (int, float))]
        if ys:
            ax.plot(range(len(ys)), _moving_average(ys, smooth), label=label)
            drawn = True
    if drawn and any(label for label, _ in runs):
        ax.legend(fontsize=8)
    return drawn


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(rows: list[dict], path: Path, title: str = "", key: str = "success",
                smooth: int = 5) -> Path:
    """Training success per RL iteration (moving average), one line per run."""
    fig, ax = _pyplot().subplots(figsize=(7, 4))
    _plot_metric(ax, [(f"{r['variant']} s{r['seed']}", Path(r["run_dir"])) for r in rows], "rl", key, smooth)
    ax.set_xlabel("RL iteration")
    ax.set_ylabel(f"training {key} (moving average of {smooth})")
    ax.set_title(title)
    return _save(fig, path)


RUN_CURVES = (("sft", "loss", "SFT loss", "SFT step"), ("rl", "success", "RL training success", "RL iteration"),
              ("rl", "reward", "RL reward", "RL iteration"), ("rl", "loss", "RL loss", "RL iteration"))


def plot_run(run_dir: Path, path: Path | None = None, title: str = "", smooth: int = 5) -> Path | None:
    """One run's curves (SFT loss per step; RL training success, reward and loss per
    iteration; moving averages of `smooth`) as run_dir/curves.png; None before any step."""
    run_dir = Path(run_dir)
    panels = [p for p in RUN_CURVES if any(p[1] in m for m in read_metrics(run_dir, p[0]))]
    if not panels:
        return None
    fig, axes = _pyplot().subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (stage, key, label, xlabel) in zip(axes[0], panels):
        _plot_metric(ax, [("", run_dir)], stage, key, smooth)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(xlabel)
    fig.suptitle(f"{title} (moving averages of {smooth})" if title else f"moving averages of {smooth}")
    return _save(fig, path or run_dir / "curves.png")
