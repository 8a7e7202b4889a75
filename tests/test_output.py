"""What a run shows and writes: progress without a terminal, the run's train.log and
curves.png, streamed `eval --out`, infra failures named, 80-column tables, intervals
of zero width, no transformers deprecation warning, and the precision choice."""

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml
from rich.console import Console

from questline.experiments.recipe import recipe_from_dict
from questline.models import precision as prec
from questline.models.precision import choose_precision
from questline.train.evaluate import EvalResult, interval_text, paired_diff_interval
from questline.train.logging import progress_bar, progress_line


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def plain_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False, width=120)


# ---------------------------------------------------------------- progress
def test_progress_without_a_terminal_prints_plain_lines_and_logs_them(tmp_path):
    console, log, clock = plain_console(), tmp_path / "train.log", Clock()
    with progress_bar(console=console, log=log) as bar:
        bar.get_time = clock
        job = bar.add_task("sft", total=100, info="")
        for step in range(1, 101):
            clock.t += 1.0  # 1 s per step: every 5% (5 s) is also the minimum gap
            bar.update(job, completed=step, info=f"loss {1 / step:.3f}")
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 20  # every 5%, the last included
    assert lines[0] == "sft: 5/100 (5%)  loss 0.200  elapsed 0m05s  ETA 1m35s"
    assert lines[-1] == "sft: 100/100 (100%)  loss 0.010  elapsed 1m40s"
    logged = log.read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in logged] == lines  # timestamp, then the same line
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  sft: 5/100", logged[0])


def test_progress_lines_are_spaced_in_time_and_say_a_slow_stage_is_alive():
    console, clock = plain_console(), Clock()
    with progress_bar(console=console) as bar:
        bar.get_time = clock
        fast = bar.add_task("eval", total=1000, info="")
        for _ in range(1000):  # 1000 steps in 10 s: at most one line per 5 s, plus the last
            clock.t += 0.01
            bar.advance(fast)
        slow = bar.add_task("rl", total=3, info="")
        clock.t += 31  # a long first iteration: a line every 30 s, moving or not
        bar._maybe_line(slow)
    lines = console.file.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["eval", "eval", "rl"]  # at 5 s, then done at 10 s
    assert "elapsed 0m05s" in lines[0] and lines[1].startswith("eval: 1000/1000 (100%)  elapsed 0m10s")
    assert lines[-1].startswith("rl: 0/3 (0%)  elapsed 0m31s")


def test_progress_on_a_terminal_draws_the_bar_and_still_logs(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress_bar(console=console, log=tmp_path / "x.log") as bar:
        job = bar.add_task("rl", total=2, info="")
        bar.update(job, completed=2, info="success 0.50")
    assert "rl: 2/2" not in out.getvalue() and "━" in out.getvalue()
    assert "rl: 2/2 (100%)  success 0.50" in (tmp_path / "x.log").read_text()


def test_progress_line_without_a_total():
    assert progress_line("sft", 3, None, "loss 2.000", 75) == "sft: 3  loss 2.000  elapsed 1m15s"
    assert progress_line("rl", 1, 4, "", 4000).endswith("elapsed 1h06m  ETA 3h20m")


TINY = {  # every stage, as small as it gets: 4 SFT demos (2 steps), 1 RL iteration, 2 held-out tasks
    "env": {"name": "toy/maze"},
    "data": {"train_size": 12, "mix": {"easy": 1}, "eval_size": 2, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 12},
    "model": {"preset": "xs", "vocab_size": 400},
    "budget": {"episodes": 8, "sft_fraction": 0.5},
    "sft": {"epochs": 1, "batch_size": 2, "micro_batch_size": 2},
    "rl": {"tasks_per_iter": 1, "group_size": 4, "minibatch_size": 4, "micro_batch_size": 4},
    "rollout": {"max_turns": 3, "max_new_tokens": 3},
}


def test_pipeline_without_a_terminal_shows_progress_and_writes_log_curves_and_precision(tmp_path, monkeypatch):
    from questline.train.pipeline import Pipeline
    monkeypatch.setattr(prec, "cpu_capability", lambda: "AVX2")
    console = plain_console()
    results = Pipeline(recipe_from_dict(TINY, [f"run.dir={tmp_path}"]), console).run()
    shown = console.file.getvalue()
    for stage in (r"eval untrained \(greedy\): 2/2 \(100%\)", r"sft demos: 4/4 \(100%\)",
                  r"sft: (\d)/\1 \(100%\)  loss \d\.\d{3}  elapsed", r"rl: 1/1 \(100%\)  success",
                  r"eval rl \(greedy\): 2/2 \(100%\)"):
        assert re.search(stage, shown), stage
    log = (tmp_path / "train.log").read_text()
    assert re.search(r"sft: (\d)/\1 \(100%\)", log) and "precision: training in fp32 (auto: the CPU has AVX2" in log
    assert "held-out" in log  # what `say` shows goes there too, markup stripped
    assert results["precision"]["precision"] == "fp32"
    assert json.loads((tmp_path / "results.json").read_text())["precision"]["precision"] == "fp32"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- precision
@pytest.mark.parametrize("capability,expected", [("AVX2", "fp32"), ("AVX512", "fp32"), ("DEFAULT", "fp32"),
                                                 ("AVX512_BF16", "bf16"), ("AMX", "bf16")])
def test_auto_precision_follows_the_cpu_capability(capability, expected):
    assert choose_precision("auto", "cpu", capability).name == expected


def test_recipe_precision_override_wins_and_auto_reads_this_cpu(monkeypatch):
    assert choose_precision("bf16", "cpu", "AVX2").name == "bf16"
    assert choose_precision("fp32", "cpu", "AMX").name == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert prec.cpu_capability() == "AVX2" and choose_precision().name == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert prec.cpu_capability() == "AVX2" and choose_precision().name == "fp32"  # torch runs AVX2 kernels
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert prec.cpu_capability() == "AVX512_BF16" and choose_precision().name == "bf16"


def test_auto_precision_is_fp32_when_torch_is_held_to_avx2():
    """ATEN_CPU_CAPABILITY=avx2 makes torch use its AVX2 kernels (bf16 emulated) on any CPU:
    the way benchmarks/precision.py --avx2 stands in for an AVX2-only machine."""
    code = ("from questline.models.precision import cpu_capability, choose_precision; "
            "print(cpu_capability(), choose_precision().name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}).stdout.split()
    assert out[1] == "fp32" and out[0] in ("AVX2", "DEFAULT")


def test_recipe_precision_field_and_the_old_autocast_flag():
    assert recipe_from_dict({}).model.precision == "auto"
    assert recipe_from_dict({"model": {"precision": "fp32"}}).model.precision == "fp32"
    assert recipe_from_dict({"model": {"autocast": False}}).model.precision == "fp32"  # recipes from before
    with pytest.raises(Exception, match="precision"):
        recipe_from_dict({"model": {"precision": "fp16"}})


def test_rl_trains_in_the_chosen_precision(tmp_path, monkeypatch, toy_model, toy_tokenizer):
    from questline.agent import ChatTokens
    from questline.train import rl
    from questline.train.pipeline import task_sets
    recipe = recipe_from_dict({**TINY, "rollout": {"max_turns": 1, "max_new_tokens": 2}})
    seen = []
    monkeypatch.setattr(rl, "rl_update", lambda *a, **kw: seen.append(kw["use_autocast"]) or {})
    for capability in ("AVX2", "AMX"):
        monkeypatch.setattr(prec, "cpu_capability", lambda c=capability: c)
        rl.train_rl(recipe, toy_model, toy_tokenizer, ChatTokens(toy_tokenizer), task_sets(recipe)[0],
                    tmp_path / capability, iterations=1)
    assert seen == [False, True]


# ---------------------------------------------------------------- evaluation output
def test_eval_streams_episodes_to_out_and_names_infra_failures(tmp_path, capsys):
    from questline.cli import main
    recipe = {"env": {"name": "travelplanner", "config": {
        "world": "mini", "days": [3], "faults": {"rate": 0.2, "kinds": ["timeout"], "exclude_infra": True}}},
        "data": {"train_size": 4, "eval_size": 6, "mix": {"easy": 1}, "eval_mix": {"easy": 1},
                 "tokenizer_corpus_tasks": 4}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "eps.jsonl"
    assert main(["eval", str(path), "--agent", "oracle", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "eval oracle agent: 6/6 (100%)" in shown  # stdout is not a terminal: plain progress lines
    m = re.search(r"n=(\d) \((\d) infra failures left out\)", shown)
    assert m and int(m[1]) + int(m[2]) == 6 and int(m[2]) > 0, shown
    assert f"{m[2]} of 6 episodes left out as infrastructure failures" in shown and "timed out" in shown
    assert f"6 held-out tasks, {m[1]} scored" in " ".join(shown.split())  # the table's title (wrapped)
    assert len(out.read_text().splitlines()) == 6


def test_evaluate_writes_each_episode_as_it_finishes(tmp_path, toy_tokenizer):
    from questline.agent import ChatTokens
    from questline.envs import generate_tasks
    from questline.rollout import RolloutConfig
    from questline.train.evaluate import episode_writer, evaluate
    path, lines_then = tmp_path / "eps.jsonl", []
    tasks = generate_tasks("toy/maze", 5, "medium", seed=1) + generate_tasks("toy/maze", 5, "easy", seed=1)
    with episode_writer(path) as write:
        def on_episode(traj):
            write(traj)
            lines_then.append(len(path.read_text().splitlines()))  # on disk already
        res, trajs = evaluate(None, ChatTokens(toy_tokenizer), tasks, RolloutConfig(max_turns=30),
                              policy="oracle", on_episode=on_episode)
    assert lines_then == list(range(1, 11)) and res.n == 10
    assert sorted(json.loads(line)["task"]["id"] for line in path.read_text().splitlines()) == \
        sorted(t.id for t in tasks)


# ---------------------------------------------------------------- tables and intervals
def test_a_paired_difference_without_spread_says_so():
    same = {"a": 1.0, "b": 0.0, "c": 1.0}
    diff, lo, hi = paired_diff_interval(same, same)
    assert interval_text(diff, lo, hi) == "no spread: every task scored the same in both"
    up = paired_diff_interval({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0})
    assert interval_text(*up) == "no spread: every task moved by +100.0%"
    assert interval_text(0.05, -0.01, 0.11) == "95% CI [-1.0%, +11.0%]"
    from questline.experiments.sweep import diff_cell
    assert diff_cell(0.0, 0.0, 0.0) == "+0.0 (no spread)" and diff_cell(0.093, 0.038, 0.149) == "+9.3 [+3.8, +14.9]"


def render(table, width=80) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(table)
    return console.file.getvalue()


def test_metric_tables_fit_80_columns_whole():
    from questline.train.pipeline import METRIC_NAMES, env_metrics_table
    tp = {"delivery_rate": 1.0, "commonsense_micro": 0.756, "commonsense_macro": 0.1, "hard_micro": 0.45,
          "hard_macro": 0.3, "final_pass": 0.033}
    rows = [(s, EvalResult(30, 0.1, 0, 1, 0, 0, 0, 0, env_metrics=tp)) for s in ("untrained", "sft", "rl")]
    text = render(env_metrics_table(rows, "travelplanner: 30 held-out tasks"))
    assert "…" not in text and all(METRIC_NAMES[k] in text for k in tp) and "75.6%" in text
    assert Console(width=300).measure(env_metrics_table(rows, "t")).maximum <= 80


def test_sweep_tables_fit_80_columns_whole(tmp_path):
    from questline.experiments.sweep import Sweep, write_report
    stage = {"success": 0.5, "score": 0.4, "env_metrics": {"progression": 0.3},
             "planning": {"plan_frequency": 0.25, "tokens_per_episode": 1234.5, "plan_tokens_per_episode": 123.4}}
    rows = [{"variant": v, "seed": 0, "run_dir": str(tmp_path), "sft": 0.547, "rl": 0.64, "diff": 0.093,
             "diff_ci": [0.038, 0.149], "rl_seconds": 12345.0, "stages": {"sft": stage, "rl": stage}}
            for v in ("reinforce_pp", "hard-only-1k")]  # the longest variant names in recipes/sweeps
    console = Console(file=io.StringIO(), width=80, force_terminal=False)
    write_report(Sweep(recipe="x", name="s", variants={"a": []}, report="planning"), rows, tmp_path, console)
    text = console.file.getvalue()
    assert "…" not in text and "reinforce_pp" in text and "+9.3 [+3.8, +14.9]" in text and "1234.5" in text


# ---------------------------------------------------------------- engine
def test_engine_passes_the_cache_without_the_deprecated_argument(toy_model, toy_tokenizer):
    import transformers.utils.logging as hf_logging

    from questline.inference import HFEngine, SamplingParams
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    hf_logging.get_logger("transformers").addHandler(handler)
    hf_logging.warning_once.cache_clear()  # a warning shown earlier in this process shows again
    try:
        engine = HFEngine(toy_model, toy_tokenizer.pad_token_id)
        engine.generate([[5, 6, 7], [8, 9]], SamplingParams(0.0, 1.0, 4, ()), ["a", "b"])
        engine.generate([[5, 6, 7, 1, 2], [8, 9, 3]], SamplingParams(0.0, 1.0, 4, ()), ["a", "b"])
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert not [r for r in records if "deprecated" in r.getMessage()]


def test_seed_summary_pools_paired_tasks_over_seeds(tmp_path):
    """Three seeds, each with its own held-out tasks: RL - SFT is pooled over all (seed, task)
    pairs, tasks that share an id across seeds stay apart, and seeds that gained are counted."""
    from questline.experiments.sweep import Sweep, seed_summary, write_report
    from questline.train.evaluate import pooled_paired_interval

    def run(seed, sft, rl):
        before = {f"t{i}": float(i < sft) for i in range(10)}
        after = {f"t{i}": float(i < rl) for i in range(10)}
        return {"variant": "quickstart", "seed": seed, "run_dir": str(tmp_path), "sft": sft / 10, "rl": rl / 10,
                "diff": (rl - sft) / 10, "diff_ci": [0.0, 0.2], "rl_seconds": 1.0,
                "stages": {"sft": {"per_task": before}, "rl": {"per_task": after}}}

    rows = [run(0, 4, 6), run(1, 5, 4), run(2, 3, 5)]
    (s,) = seed_summary(rows)
    assert s["seeds"] == 3 and s["gaining"] == 2 and abs(s["diff"] - 0.1) < 1e-12
    assert s["per_seed"] == [0.2, -0.1, 0.2] and abs(s["sft"] - 0.4) < 1e-12
    diff, lo, hi = pooled_paired_interval([(r["stages"]["sft"]["per_task"], r["stages"]["rl"]["per_task"])
                                           for r in rows])
    assert (diff, lo, hi) == (s["diff"], *s["diff_ci"]) and lo < diff < hi
    assert seed_summary(rows[:1]) == []  # one seed: nothing to pool
    console = Console(file=io.StringIO(), width=80, force_terminal=False)
    write_report(Sweep(recipe="x", name="s", variants={"quickstart": []}), rows, tmp_path, console)
    text = console.file.getvalue().split("report:")[0]
    assert "…" not in text and "2/3" in text and "-10.0" in text
    md = (tmp_path / "report.md").read_text()
    assert "held-out success" in md or "| variant | seed |" in md
    assert "| variant | seeds |" in md and "2/3" in md
    assert json.loads((tmp_path / "report.json").read_text())["over_seeds"][0]["gaining"] == 2
