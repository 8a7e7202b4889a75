"""`questline reproduce`: every takeaway runs at toy size through to its report row,
verdicts follow their rules, and an interrupted reproduce continues where it stopped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from questline.core import ConfigError
from questline.experiments.takeaways import (
    list_takeaways,
    load_takeaway,
    reproduce,
    takeaway_names,
    verdict,
)

STUDIES = {"travelplanner", "practitioner", "planning"}


def test_list_names_every_takeaway_of_the_three_studies():
    out = subprocess.run([sys.executable, "-m", "questline", "reproduce", "--list"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = list_takeaways()
    assert len(names) >= 12 and all(n in out.stdout for n in names)
    assert {load_takeaway(n)[0].study for n in names} == STUDIES


def test_an_unknown_takeaway_is_one_clear_error():
    out = subprocess.run([sys.executable, "-m", "questline", "reproduce", "tp_nope"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "unknown takeaway 'tp_nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_takeaways_are_named_one_by_one_by_study_or_all():
    planning = [n for n in list_takeaways() if n.startswith("planning_")]
    assert takeaway_names(["planning"]) == planning
    assert takeaway_names(["tp_algorithm", "planning", "tp_algorithm"]) == ["tp_algorithm", *planning]
    assert takeaway_names(["all"]) == list_takeaways()
    with pytest.raises(ConfigError, match="unknown takeaway 'nope'"):
        takeaway_names(["planning", "nope"])


@pytest.mark.parametrize("expect,diff,lo,hi,want", [
    ("higher", 0.1, 0.02, 0.18, "reproduced"),
    ("higher", -0.1, -0.18, -0.02, "opposite"),
    ("higher", 0.05, -0.03, 0.13, "inconclusive"),
    ("not_higher", 0.1, 0.02, 0.18, "opposite"),
    ("not_higher", -0.02, -0.1, 0.06, "reproduced"),
    ("not_higher", 0.02, -0.06, 0.1, "inconclusive"),
    ("not_higher", 0.0, 0.0, 0.0, "inconclusive"),  # identical on every task: nothing measured
])
def test_verdict_rules(expect, diff, lo, hi, want):
    assert verdict(expect, diff, lo, hi) == want


@pytest.mark.slow
@pytest.mark.parametrize("name", list_takeaways())
def test_each_takeaway_runs_at_toy_size_to_its_row(name, tmp_path):
    """The first comparison's two variants at toy size (every variant's overrides were
    already validated by loading the sweep); the other comparisons say "not run"."""
    t, _ = load_takeaway(name)
    first = t.comparisons[0]
    sides = {first.a, first.b}  # "variant" or "variant@out-of-domain set"
    ran_variants = list(dict.fromkeys(side.split("@")[0] for side in sides))
    row = reproduce(name, root=tmp_path / "runs", out=tmp_path / "out", toy=True, seeds=[0],
                    variants=ran_variants)
    assert [c["label"] for c in row["comparisons"]] == [c.label or f"{c.a} vs {c.b}" for c in t.comparisons]
    ran = row["comparisons"][0]
    assert ran["seeds"] == 1 and ran["verdict"] in ("reproduced", "opposite", "inconclusive")
    assert all(c["verdict"] == "not run" for c in row["comparisons"][1:]
               if {c["a"].split("@")[0], c["b"].split("@")[0]} - set(ran_variants))
    assert sides <= set(row["variants"]) and {k.split("@")[0] for k in row["variants"]} == set(ran_variants)
    md = (tmp_path / "out" / "takeaways.md").read_text()
    assert f"[{name}](takeaways/{name}.png) (toy)" in md and t.claim in md
    assert (tmp_path / "out" / "takeaways" / f"{name}.png").stat().st_size > 5000


def test_an_interrupted_reproduce_continues_where_it_stopped(tmp_path):
    """SIGKILL at the second run's last RL checkpoint (the first has one iteration); rerunning the command finishes
    the sweep with the row of an uninterrupted one, and the first run is not redone."""
    args = ["reproduce", "planning_sft_priming", "--toy", "--seeds", "0"]

    def run(where: Path, crash: str | None = None):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("QUESTLINE_CRASH_AT", None)
        if crash:
            env["QUESTLINE_CRASH_AT"] = crash
        return subprocess.run([sys.executable, "-m", "questline", *args, "--root", str(where / "runs"),
                               "--out", str(where / "out")], capture_output=True, text=True, env=env, timeout=600)

    killed = run(tmp_path / "a", crash="checkpoint:1")
    assert killed.returncode == -9
    runs = tmp_path / "a" / "runs" / "takeaway-planning_frequency"  # the sweep it shares
    first = runs / "dynamic-s0" / "results.json"
    assert "rl" in json.loads(first.read_text())  # the first variant finished before the kill...
    assert not (runs / "rl-only-s0" / "results.json").exists() or \
        "rl" not in json.loads((runs / "rl-only-s0" / "results.json").read_text())  # ...the second did not
    trained = runs / "dynamic-s0" / "metrics.jsonl"
    before = trained.read_text()
    again = run(tmp_path / "a")
    assert again.returncode == 0, again.stderr[-2000:]
    assert trained.read_text() == before  # not trained again
    assert "cached evaluation" in (runs / "dynamic-s0" / "train.log").read_text()
    whole = run(tmp_path / "b")
    assert whole.returncode == 0, whole.stderr[-2000:]
    rows = [json.loads((tmp_path / d / "out" / "takeaways.json").read_text())["planning_sft_priming"]
            for d in ("a", "b")]
    assert rows[0]["comparisons"] == rows[1]["comparisons"] and rows[0]["variants"] == rows[1]["variants"]


def test_report_is_rewritten_from_the_stored_rows_and_lists_every_takeaway(tmp_path):
    """`questline reproduce --report`: takeaways.md and the PNGs from takeaways.json alone; a
    takeaway never run has a row saying so and what it would train."""
    from questline.cli import main
    t, _ = load_takeaway("planning_steering")
    row = {"takeaway": "planning_steering", "study": t.study, "claim": t.claim, "paper": t.paper,
           "setting": t.setting, "toy": False, "seeds": [0, 1, 2], "wall_seconds": 600.0, "workers": 2,
           "variants": {"dynamic": {"mean": 0.1, "per_seed": [0.1, 0.1, 0.1]},
                        "dynamic-with-plans": {"mean": 0.3, "per_seed": [0.2, 0.3, 0.4]}},
           "comparisons": [{"label": "given plan - alone", "a": "dynamic-with-plans", "b": "dynamic",
                            "expect": "higher", "seeds": 3, "paired": True, "diff": 0.2, "ci": [0.1, 0.3],
                            "per_seed": [0.1, 0.2, 0.3], "verdict": "reproduced"}]}
    (tmp_path / "takeaways.json").write_text(json.dumps({"planning_steering": row}))
    assert main(["reproduce", "--report", "--out", str(tmp_path)]) in (0, None)
    md = (tmp_path / "takeaways.md").read_text()
    assert "given plan - alone: +20.0 [+10.0, +30.0] (30.0% vs 10.0%; per seed +10.0 +20.0 +30.0)" in md
    assert "| reproduced | 3 | 10m00s (2) |" in md
    assert all(name in md for name in list_takeaways())
    assert "| tp_algorithm |" in md and "3 variants x 3 seeds = 3 SFT + 9 RL stages" in md
    assert (tmp_path / "takeaways" / "planning_steering.png").stat().st_size > 5000
