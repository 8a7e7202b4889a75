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
choice. The report is a table (held-out success, RL - SFT with its 95% interval,
RL wall time) printed and written to report.md/json, plus learning curves as PNG.

`report: planning` (recipes/sweeps/planning.yaml) adds the planning comparison:
per variant and stage (SFT-only, SFT+RL) the held-out progression (an env metric
named `progression` when there is one, else success), score, planning frequency,
policy tokens and plan tokens per episode, as planning.md and planning.png.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import Field
from rich.console import Console
from rich.table import Table

from questline.core import ConfigError
from questline.experiments.recipe import _Strict, explain, load_recipe, read_yaml_mapping

RL_TIME = ("rl.", "rollout.", "eval.", "run.")  # overrides that keep the SFT stage shareable


class Sweep(_Strict):
    recipe: str
    name: str = "sweep"
    overrides: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    variants: dict[str, list[str]]
    report: Literal["success", "planning"] = "success"


def load_sweep(path: str | Path, extra: list[str] = ()) -> Sweep:
    from pydantic import ValidationError
    path = Path(path)
    try:
        sweep = Sweep.model_validate(read_yaml_mapping(path, "sweep"))
    except ValidationError as e:
        raise ConfigError(explain(e, Sweep, f"sweep {path}")) from None
    sweep.overrides = list(sweep.overrides) + list(extra)
    base = Path(sweep.recipe)
    if not base.is_absolute() and not base.exists():
        base = path.parent / sweep.recipe
    sweep.recipe = str(base)
    for variant, ovs in sweep.variants.items():  # fail before any training on a bad variant
        try:
            load_recipe(sweep.recipe, sweep.overrides + ovs + [f"name={sweep.name}-{variant}"])
        except ConfigError as e:
            raise ConfigError(f"sweep {path}, variant '{variant}': {e}") from None
    return sweep


def _shares_sft(sweep: Sweep) -> bool:
    return all(o.split("=", 1)[0].startswith(RL_TIME) for ovs in sweep.variants.values() for o in ovs)


def run_sweep(sweep: Sweep, root: str | Path = "runs", console: Console | None = None) -> list[dict]:
    from questline.train.pipeline import Pipeline
    console = console or Console()
    out_dir = Path(root) / sweep.name
    out_dir.mkdir(parents=True, exist_ok=True)
    shared = _shares_sft(sweep)
    rows = []
    for seed in sweep.seeds:
        common = sweep.overrides + [f"seed={seed}"]
        base_dir = out_dir / f"base-s{seed}"
        if shared:
            recipe = load_recipe(sweep.recipe, common + [f"name=base-s{seed}", f"run.dir={base_dir}"])
            Pipeline(recipe, console).run(("sft",))
        for variant, ovs in sweep.variants.items():
            run_dir = out_dir / f"{variant}-s{seed}"
            recipe = load_recipe(sweep.recipe, common + ovs + [f"name={variant}-s{seed}", f"run.dir={run_dir}"])
            if shared:
                _seed_from_base(base_dir, run_dir)
            console.rule(f"{sweep.name}: {variant} (seed {seed})")
            t0 = time.perf_counter()
            results = Pipeline(recipe, console).run(("sft", "rl"))
            rows.append(_row(variant, seed, run_dir, results, time.perf_counter() - t0))
    write_report(sweep, rows, out_dir, console)
    return rows


def _seed_from_base(base_dir: Path, run_dir: Path) -> None:
    """Start a variant from the shared base: same initial policy, SFT policy and
    their evaluations (results.json keeps only those stages)."""
    if (run_dir / "results.json").exists():
        return  # already started (resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("init", "sft"):
        if (base_dir / sub).exists() and not (run_dir / sub).exists():
            shutil.copytree(base_dir / sub, run_dir / sub)
    results = json.loads((base_dir / "results.json").read_text())
    keep = {k: v for k, v in results.items() if k in ("untrained", "sft")}
    (run_dir / "results.json").write_text(json.dumps(keep, indent=2))


def _row(variant: str, seed: int, run_dir: Path, results: dict, wall: float) -> dict:
    rl_s = sum(m.get("iter_s", 0.0) for m in read_metrics(run_dir, "rl"))
    g = lambda stage: results.get(stage, {}).get("greedy", {})  # noqa: E731
    diff = results.get("rl_minus_sft", {})
    return {"variant": variant, "seed": seed, "run_dir": str(run_dir),
            "stages": {st: g(st) for st in ("sft", "rl") if g(st)},
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


def write_report(sweep: Sweep, rows: list[dict], out_dir: Path, console: Console) -> None:
    cells = []
    for r in rows:
        lo, hi = r["diff_ci"]
        verdict = "-" if lo is None else ("better" if lo > 0 else "worse" if hi < 0 else "within noise")
        d = "-" if r["diff"] is None else f"{r['diff']:+.1%} [{lo:+.1%}, {hi:+.1%}]"
        cells.append((r["variant"], str(r["seed"]), _pct(r["sft"]), _pct(r["rl"]), d, verdict,
                      f"{r['rl_seconds']:.0f}"))
    cols = ("variant", "seed", "SFT", "RL", "RL - SFT [95% CI]", "verdict", "RL time (s)")
    _write_table(f"{sweep.name}: held-out success (greedy)", cols, cells, out_dir / "report.md", console)
    (out_dir / "report.json").write_text(json.dumps(rows, indent=2))
    png = plot_curves(rows, out_dir / "curves.png", title=sweep.name)
    console.print(f"report: {out_dir / 'report.md'}, curves: {png}")
    if sweep.report == "planning":
        write_planning_report(sweep, rows, out_dir, console)


def _write_table(title: str, cols: tuple[str, ...], cells: list[tuple[str, ...]], md_path: Path,
                 console: Console) -> None:
    """Print a rich table and write the same rows as a markdown table."""
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in cells:
        table.add_row(*row)
        md.append("| " + " | ".join(row) + " |")
    console.print(table)
    md_path.write_text("\n".join(md) + "\n")


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
    cols = ("variant", "seed", "stage", "progression", "score", "plan freq", "tokens/episode", "plan tokens/episode")
    cells = [(r["variant"], str(r["seed"]), r["stage"], f"{r['progression']:.3f}", f"{r['score']:.3f}",
              f"{r['plan_frequency']:.2f}", f"{r['tokens_per_episode']:.1f}", f"{r['plan_tokens_per_episode']:.1f}")
             for r in prow]
    _write_table(f"{sweep.name}: planning comparison (held-out, greedy; progression = success where the env "
                 "has no progression metric)", cols, cells, out_dir / "planning.md", console)
    (out_dir / "planning.json").write_text(json.dumps(prow, indent=2))
    png = plot_planning(prow, out_dir / "planning.png", title=sweep.name)
    console.print(f"planning report: {out_dir / 'planning.md'}, plot: {png}")
    return png


def plot_planning(prow: list[dict], path: Path, title: str = "") -> Path:
    """Bars per variant (SFT and SFT+RL side by side, means over seeds): progression,
    planning frequency and plan tokens per episode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(rows: list[dict], path: Path, title: str = "", key: str = "success",
                smooth: int = 5) -> Path:
    """Training success per RL iteration (moving average), one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ys = [m.get(key, 0.0) for m in read_metrics(Path(r["run_dir"]), "rl")]
        if not ys:
            continue
        avg = [sum(ys[max(0, i - smooth + 1):i + 1]) / len(ys[max(0, i - smooth + 1):i + 1]) for i in range(len(ys))]
        ax.plot(range(len(avg)), avg, label=f"{r['variant']} s{r['seed']}")
    ax.set_xlabel("RL iteration")
    ax.set_ylabel(f"training {key} (moving average of {smooth})")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
