"""The studies' takeaways as sweeps with a verdict: `questline reproduce <id>|all`.

Each file in recipes/takeaways/ is a sweep (base recipe, variants, seeds) plus what
it tests: the claim in one line, what the paper measured, our setting, and one or
more comparisons "variant A vs variant B, expected higher" on held-out success of
each run's final policy. A comparison pools the paired held-out tasks of every seed
(`pooled_paired_interval`) and its verdict is:

- expect `higher`: reproduced (in direction) when the 95% interval of A - B is above 0,
  opposite when it is below 0, inconclusive otherwise;
- expect `not_higher` (a claim that something does not help): opposite when the
  interval is above 0, reproduced when the mean difference is <= 0, inconclusive otherwise;
- either way, two variants that scored the same on every task (an interval of zero
  width) are inconclusive: nothing was measured.

Rows go to <out>/takeaways.json (one entry per takeaway, replaced on each run) and
<out>/takeaways.md, with one PNG per takeaway in <out>/takeaways/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from questline.core import ConfigError
from questline.experiments.recipe import _Strict, explain, read_yaml_mapping
from questline.experiments.sweep import Sweep, diff_cell, sweep_from_mapping

TAKEAWAYS = Path(__file__).resolve().parent.parent / "recipes" / "takeaways"


class Comparison(_Strict):
    # a variant expected higher (or, with not_higher, expected not to be higher); "variant@set"
    # takes its result on the recipe's out-of-domain held-out set `set` (eval.out_of_domain)
    a: str
    b: str
    expect: Literal["higher", "not_higher"] = "higher"
    label: str = ""


class Takeaway(_Strict):
    study: Literal["travelplanner", "practitioner", "planning"]
    claim: str
    paper: str  # what the paper measured, with its number
    setting: str  # ours, in words (env, model, budget)
    comparisons: list[Comparison] = Field(min_length=1)
    toy: list[str] = Field(default_factory=list)  # overrides that make a test-sized run
    sweep: dict  # a sweep file's fields (recipe relative to this file)


def list_takeaways() -> list[str]:
    return sorted(p.stem for p in TAKEAWAYS.glob("*.yaml"))


def takeaway_names(words: list[str]) -> list[str]:
    """Takeaway names from command-line words: names, study names (travelplanner,
    practitioner, planning) or all; an unknown word is a ConfigError before anything runs."""
    studies = {n: load_takeaway(n)[0].study for n in list_takeaways()}
    names = []
    for word in words:
        names += list(studies) if word == "all" else [n for n, s in studies.items() if s == word] or [word]
    for name in names:
        load_takeaway(name)
    return list(dict.fromkeys(names))


def load_takeaway(name: str) -> tuple[Takeaway, Path]:
    path = TAKEAWAYS / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown takeaway '{name}' (questline reproduce --list: {', '.join(list_takeaways())})")
    from pydantic import ValidationError
    try:
        t = Takeaway.model_validate(read_yaml_mapping(path, "takeaway"))
    except ValidationError as e:
        raise ConfigError(explain(e, Takeaway, f"takeaway {path}")) from None
    for c in t.comparisons:
        for side in (c.a, c.b):
            v = side.split("@")[0]
            if v not in t.sweep.get("variants", {}):
                raise ConfigError(f"takeaway {path}: comparison names variant '{v}', which the sweep lacks")
    return t, path


def check_eval_sets(t: Takeaway, sweep: Sweep, where: str) -> None:
    """Every "variant@set" of a comparison names an out-of-domain set its variant's recipe has."""
    from questline.experiments.recipe import load_recipe
    for c in t.comparisons:
        for side in (c.a, c.b):
            v, _, eval_set = side.partition("@")
            if eval_set and v in sweep.variants:
                sets = load_recipe(sweep.recipe, sweep.overrides + sweep.variants[v]).eval.out_of_domain
                if eval_set not in sets:
                    raise ConfigError(f"{where}: comparison '{side}': variant '{v}' has no eval.out_of_domain "
                                      f"set '{eval_set}' (it has: {', '.join(sets) or 'none'})")


def takeaway_sweep(name: str, overrides: list[str] = (), toy: bool = False,
                   seeds: list[int] | None = None, variants: list[str] | None = None) -> tuple[Takeaway, Sweep]:
    """The takeaway and its sweep (validated like any sweep file), named after the takeaway;
    `variants` keeps only those (the comparisons that need others say "not run")."""
    t, path = load_takeaway(name)
    spec = {"name": f"takeaway-{name}", **t.sweep}  # a takeaway may name another's sweep to reuse its runs
    if seeds is not None:
        spec["seeds"] = list(seeds)
    if variants:
        unknown = [v for v in variants if v not in spec["variants"]]
        if unknown:
            raise ConfigError(f"takeaway {name}: no variant {unknown} (it has {', '.join(spec['variants'])})")
        spec["variants"] = {v: spec["variants"][v] for v in variants}
    sweep = sweep_from_mapping(spec, path.parent, (t.toy if toy else []) + list(overrides), f"takeaway {path}")
    check_eval_sets(t, sweep, f"takeaway {path}")
    return t, sweep


def final_stage(run: dict, eval_set: str = "") -> dict:
    """The held-out result of the run's last stage (RL, else SFT), on the in-domain
    held-out set or on the out-of-domain set `eval_set`."""
    stages, at = run.get("stages", {}), f"@{eval_set}" if eval_set else ""
    return stages.get(f"rl{at}") or stages.get(f"sft{at}") or {}


def side_results(rows: list[dict], side: str) -> dict[int, dict[str, float]]:
    """seed -> per-task held-out success of one comparison side ("variant" or "variant@set")."""
    variant, _, eval_set = side.partition("@")
    out = {r["seed"]: final_stage(r, eval_set).get("per_task", {}) for r in rows if r["variant"] == variant}
    return {s: per_task for s, per_task in out.items() if per_task}


def compare(rows: list[dict], c: Comparison) -> dict:
    """A - B on held-out success, pooled over the seeds both sides ran: paired over the
    tasks both played, or unpaired when the two sides ran different tasks (two settings)."""
    from questline.train.evaluate import pooled_paired_interval, pooled_unpaired_interval
    a, b = side_results(rows, c.a), side_results(rows, c.b)
    pairs = [(b[s], a[s]) for s in sorted(set(a) & set(b))]
    head = {"label": c.label or f"{c.a} vs {c.b}", "a": c.a, "b": c.b, "expect": c.expect}
    if not pairs:
        return {**head, "seeds": 0, "verdict": "not run"}
    paired = all(set(pb) == set(pa) for pb, pa in pairs)
    diff, lo, hi = (pooled_paired_interval if paired else pooled_unpaired_interval)(pairs)
    per_seed = [sum(pa.values()) / len(pa) - sum(pb.values()) / len(pb) for pb, pa in pairs]
    return {**head, "seeds": len(pairs), "paired": paired, "diff": diff, "ci": [lo, hi], "per_seed": per_seed,
            "verdict": verdict(c.expect, diff, lo, hi)}


def verdict(expect: str, diff: float, lo: float, hi: float) -> str:
    if hi - lo <= 1e-9 and abs(diff) < 1e-12:
        return "inconclusive"
    if expect == "higher":
        return "reproduced" if lo > 0 else "opposite" if hi < 0 else "inconclusive"
    return "opposite" if lo > 0 else "reproduced" if diff <= 0 else "inconclusive"


def takeaway_row(name: str, t: Takeaway, rows: list[dict], toy: bool, wall: float = 0.0, workers: int = 1) -> dict:
    comps = [compare(rows, c) for c in t.comparisons]
    return {"takeaway": name, "study": t.study, "claim": t.claim, "paper": t.paper, "setting": t.setting,
            "toy": toy, "seeds": sorted({r["seed"] for r in rows}), "comparisons": comps,
            "variants": variant_means(rows, [side for c in t.comparisons for side in (c.a, c.b)]),
            "wall_seconds": wall, "workers": workers}


def variant_means(rows: list[dict], sides: list[str] = ()) -> dict[str, dict]:
    """Per variant (in domain) and per out-of-domain comparison side ("variant@set"): mean
    final held-out success over seeds, and each seed's."""
    out: dict[str, dict] = {}
    keys = list(dict.fromkeys([r["variant"] for r in rows] + [s for s in sides if "@" in s]))
    for key in keys:
        variant, _, eval_set = key.partition("@")
        per_seed = [final_stage(r, eval_set).get("success") for r in rows if r["variant"] == variant]
        per_seed = [s for s in per_seed if s is not None]
        if per_seed:
            out[key] = {"per_seed": per_seed, "mean": sum(per_seed) / len(per_seed)}
    return out


def write_takeaway(row: dict, out: Path) -> Path:
    """Replace this takeaway's entry in out/takeaways.json, rewrite takeaways.md and its PNG."""
    out = Path(out)
    (out / "takeaways").mkdir(parents=True, exist_ok=True)
    store = out / "takeaways.json"
    data = json.loads(store.read_text()) if store.exists() else {}
    data[row["takeaway"]] = row
    store.write_text(json.dumps(data, indent=2, sort_keys=True))
    plot_takeaway(row, out / "takeaways" / f"{row['takeaway']}.png")
    (out / "takeaways.md").write_text(takeaways_markdown(data))
    return out / "takeaways.md"


def plan_text(sweep: Sweep) -> str:
    from questline.experiments.sweep import sweep_plan
    p = sweep_plan(sweep)
    return (f"{len(sweep.variants)} variants x {len(sweep.seeds)} seeds = {p['sft']} SFT + {p['rl']} RL stages"
            + (f" + {p['evaluate_only']} evaluation-only runs" if p["evaluate_only"] else ""))


def rewrite_report(out: Path) -> Path:
    """takeaways.md and the PNGs again from takeaways.json (after a change of format)."""
    out = Path(out)
    store = out / "takeaways.json"
    data = json.loads(store.read_text()) if store.exists() else {}
    (out / "takeaways").mkdir(parents=True, exist_ok=True)
    for row in data.values():
        plot_takeaway(row, out / "takeaways" / f"{row['takeaway']}.png")
    (out / "takeaways.md").write_text(takeaways_markdown(data))
    return out / "takeaways.md"


def takeaways_markdown(data: dict) -> str:
    from questline.train.logging import duration
    lines = ["# The studies' takeaways, reproduced at CPU scale", "",
             "Written by `questline reproduce` (questline/experiments/takeaways.py says how verdicts are "
             "read). Differences are held-out success of the final policy in percentage points, "
             "pooled over the paired held-out tasks of every seed (95% interval). Toy rows are "
             "test-sized runs, not evidence. Wall time counts every invocation of the takeaway's sweep; takeaways "
             "that share a sweep (the planning ones) show its total when each finished.", "",
             "| takeaway | claim | paper | our setting | comparison: A - B, pts [95% CI] (A vs B; per seed) | verdict "
             "| seeds | wall time (processes) |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted(set(data) | set(list_takeaways())):
        if name not in data:  # never run into this report
            t, sweep = takeaway_sweep(name)
            lines.append(f"| {name} | {t.claim} | {t.paper} | {t.setting} | not run into this report yet: "
                         f"{plan_text(sweep)} (`questline reproduce {name}`) | not run | 0 | |")
            continue
        r = data[name]
        for i, c in enumerate(r["comparisons"]):
            means = r["variants"]
            levels = (f"{100 * means[c['a']]['mean']:.1f}% vs {100 * means[c['b']]['mean']:.1f}%; "
                      if c["a"] in means and c["b"] in means else "")  # shows a floor or a ceiling
            cell = f"{c['label']}: not run" if not c["seeds"] else (
                f"{c['label']}: {diff_cell(c['diff'], *c['ci'])} ({levels}per seed "
                + " ".join(f"{d * 100:+.1f}" for d in c["per_seed"])
                + ("" if c.get("paired", True) else "; unpaired: different tasks") + ")")
            head = (f"[{name}](takeaways/{name}.png){' (toy)' if r['toy'] else ''}", r["claim"], r["paper"],
                    r["setting"]) if i == 0 else ("", "", "", "")
            tail = (str(len(r["seeds"])), f"{duration(r['wall_seconds'])} ({r['workers']})") if i == 0 else ("", "")
            lines.append("| " + " | ".join((*head, cell, c["verdict"], *tail)) + " |")
    return "\n".join(lines) + "\n"


def plot_takeaway(row: dict, path: Path) -> Path:
    """Left: mean final held-out success per variant (bars) with each seed's (dots).
    Right: each comparison's pooled difference with its 95% interval and verdict."""
    import textwrap

    from questline.experiments.sweep import _pyplot, _save
    plt = _pyplot()
    names, comps = list(row["variants"]), row["comparisons"]
    fig, (bars, forest) = plt.subplots(1, 2, figsize=(11, max(3.8, 0.9 * len(comps) + 2.2)),
                                       gridspec_kw={"width_ratios": [max(len(names), 2), 5]})
    means = [100 * row["variants"][v]["mean"] for v in names]
    bars.bar(range(len(names)), means, color="#8fb3d9")
    for i, v in enumerate(names):
        ys = [100 * y for y in row["variants"][v]["per_seed"]]
        bars.scatter([i] * len(ys), ys, color="#1f3b5c", s=14, zorder=3)
        bars.text(i, 0.5, f"{means[i]:.1f}", ha="center", va="bottom", fontsize=8, color="#1f3b5c")
    bars.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    bars.set_ylim(0, max([*means, *(100 * y for v in names for y in row["variants"][v]["per_seed"]), 10]) * 1.15)
    bars.set_ylabel("held-out success of the final policy (%)")
    bars.set_title("per variant: mean (bar), each seed (dot)", fontsize=9)
    colours = {"reproduced": "#2a7d3f", "opposite": "#b3261e", "inconclusive": "#6b6b6b", "not run": "#aaaaaa"}
    for k, c in enumerate(comps):
        y = len(comps) - 1 - k
        if c["seeds"]:
            d, (lo, hi) = 100 * c["diff"], (100 * c["ci"][0], 100 * c["ci"][1])
            forest.errorbar(d, y, xerr=[[d - lo], [hi - d]], fmt="o", color=colours[c["verdict"]], capsize=4)
            forest.text(hi, y + 0.18, f" {d:+.1f} [{lo:+.1f}, {hi:+.1f}]: {c['verdict']}", fontsize=8,
                        color=colours[c["verdict"]], va="bottom", ha="right")
        else:
            forest.text(0, y, " not run", fontsize=8, color=colours["not run"], va="center")
    forest.axvline(0, color="black", lw=0.8)
    forest.set_yticks(range(len(comps)), [textwrap.fill(c["label"], 28) for c in reversed(comps)], fontsize=8)
    forest.set_ylim(-0.7, len(comps) - 0.3)
    forest.set_xlabel("A - B, points (pooled over seeds, 95% interval)")
    forest.set_title("comparisons, each with its verdict against the claim", fontsize=9)
    fig.suptitle(f"{row['takeaway']}{' (toy: not evidence)' if row['toy'] else ''}: "
                 f"{textwrap.shorten(row['claim'], 110)}", fontsize=10)
    return _save(fig, path)


def reproduce(name: str, *, root: str | Path = "runs", out: str | Path = "benchmarks/results",
              overrides: list[str] = (), toy: bool = False, seeds: list[int] | None = None,
              variants: list[str] | None = None, workers: int = 1, console=None) -> dict:
    """Run (or resume) a takeaway's sweep and write its row. Returns the row."""
    from questline.experiments.sweep import SweepClock, run_sweep
    t, sweep = takeaway_sweep(name, overrides, toy, seeds, variants)
    rows = run_sweep(sweep, root=root, console=console, workers=workers)
    wall = SweepClock(Path(root) / sweep.name).before  # over every invocation, resumed ones included
    row = takeaway_row(name, t, rows, toy, wall, workers)
    write_takeaway(row, Path(out))
    return row
