"""A run killed with SIGKILL (during SFT, during RL, while a checkpoint is written)
or left with a truncated checkpoint, a half-written sft/ or torn log lines resumes
from what is intact and ends with exactly the files of an uninterrupted run with
the same seed: metrics, samples, results, tensorboard points, weights."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from questline.core import ConfigError
from questline.models import save_policy
from questline.train.durable import MARKER, atomic_dir, cut_jsonl, dir_problem
from questline.train.logging import MetricsLogger

RECIPE = """
name: resume
seed: 3
env: {name: toy/maze}
data: {train_size: 40, mix: {easy: 1}, eval_size: 4, eval_mix: {easy: 1}, tokenizer_corpus_tasks: 40}
model: {preset: xs, vocab_size: 400}
budget: {episodes: 48, sft_fraction: 0.0}
rl: {tasks_per_iter: 2, group_size: 4, lr: 1.0e-3, minibatch_size: 4, micro_batch_size: 4}
rollout: {max_turns: 4, max_new_tokens: 4}
run: {checkpoint_every: 1, keep_checkpoints: 2, progress: false}
"""
TIMING = {"rollout_s", "iter_s", "gen_seconds", "env_seconds"}


def run_cli(recipe: Path, run_dir: Path, crash_at: str | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "questline.cli", "train", str(recipe), f"run.dir={run_dir}"]
    log = open(log_path(run_dir), "a")  # noqa: SIM115 (lives as long as the child)
    env = {**os.environ, "QUESTLINE_CRASH_AT": crash_at} if crash_at else None
    return subprocess.Popen(cmd, stdout=log, stderr=log, env=env)


def log_path(run_dir: Path) -> Path:
    return run_dir.parent / f"{run_dir.name}.log"


def finish(p: subprocess.Popen, run_dir: Path) -> None:
    code = p.wait(timeout=300)
    assert code == 0, log_path(run_dir).read_text()[-3000:]


def rl_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows if r["stage"] == "rl"]


# ---------------------------------------------------------------- crashes at precise points
# 8 SFT demos (7 succeed: 3 steps), 3 PPO iterations of 4 episodes, a checkpoint after each.
SFT_RECIPE = (RECIPE.replace("budget: {episodes: 48, sft_fraction: 0.0}",
                             "budget: {episodes: 20, sft_fraction: 0.4}\n"
                             "sft: {epochs: 1, batch_size: 2, micro_batch_size: 2}")
              .replace("tasks_per_iter: 2", "tasks_per_iter: 1")
              .replace("rl: {", "rl: {advantage: gae, "))  # PPO: the critic must resume too


def run_files(run_dir: Path) -> dict:
    """What an uninterrupted run leaves, less timing fields."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"metrics": [{k: v for k, v in r.items() if k not in TIMING} for r in rows],
            "samples": [untimed(json.loads(line)) for line in (run_dir / "samples.jsonl").read_text().splitlines()],
            "results": json.loads((run_dir / "results.json").read_text()),
            "tensorboard": {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
                            for tag in acc.Tags()["scalars"] if tag.split("/")[1] not in TIMING},
            "weights": load_file(run_dir / "checkpoints" / "iter-000002" / "model.safetensors"),
            "critic": load_file(run_dir / "checkpoints" / "iter-000002" / "critic" / "model.safetensors")}


def untimed(x):
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMING}
    return [untimed(v) for v in x] if isinstance(x, list) else x


def assert_same_files(a: dict, b: dict) -> None:
    for key in ("metrics", "samples", "results", "tensorboard"):
        assert a[key] == b[key], key
    for key in ("weights", "critic"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(recipe, uninterrupted run dir, its files), shared by the crash tests."""
    root = tmp_path_factory.mktemp("reference")
    recipe = root / "resume.yaml"
    recipe.write_text(SFT_RECIPE)
    run = root / "full"
    finish(run_cli(recipe, run), run)
    files = run_files(run)
    assert [r["step"] for r in files["metrics"] if r["stage"] == "sft"] == [0, 1, 2]
    assert len(files["tensorboard"]["sft/loss"]) == 3 and len(files["tensorboard"]["rl/success"]) == 3
    return recipe, run, files


def kill_then_resume(reference, run: Path, crash_at: str, damage=None) -> str:
    """Kill a run with SIGKILL at `crash_at`, `damage` its files, resume it, check it
    ends with the uninterrupted run's files; -> the resumed run's output."""
    recipe, _, files = reference
    p = run_cli(recipe, run, crash_at)
    assert p.wait(timeout=300) == -signal.SIGKILL, log_path(run).read_text()[-3000:]
    return resume(reference, run, damage)


def resume(reference, run: Path, damage=None) -> str:
    recipe, _, files = reference
    if damage:
        damage(run)
    before = log_path(run).read_text() if log_path(run).exists() else ""
    finish(run_cli(recipe, run), run)
    assert_same_files(files, run_files(run))
    return " ".join(log_path(run).read_text()[len(before):].split())  # rich wraps lines at 80 columns


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_sigkill_during_sft_restarts_sft_and_keeps_only_its_new_rows(reference, tmp_path):
    out = kill_then_resume(reference, tmp_path / "run", "log:sft:1")
    assert "SFT: restarting from step 0" in out and "dropped 2 rows" in out


@pytest.mark.slow
def test_sigkill_during_rl_resumes_from_the_last_checkpoint(reference, tmp_path):
    out = kill_then_resume(reference, tmp_path / "run", "log:rl:1")
    assert "SFT done, skipped" in out
    assert "RL: resuming from checkpoints/iter-000000 (iteration 0)" in out


@pytest.mark.slow
def test_sigkill_while_a_checkpoint_is_written(reference, tmp_path):
    run = tmp_path / "run"
    out = kill_then_resume(reference, run, "checkpoint:2")
    assert "RL: resuming from checkpoints/iter-000001 (iteration 1)" in out
    assert "samples.jsonl: dropped 4 sample trajectories" in out
    assert not list((run / "checkpoints").glob(".tmp-*"))


@pytest.mark.slow
def test_truncated_last_checkpoint_and_torn_log_lines(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference[1], run)

    def damage(run):
        truncate(run / "checkpoints" / "iter-000002" / "model.safetensors")
        for name in ("metrics.jsonl", "samples.jsonl"):
            with (run / name).open("a") as f:
                f.write('{"stage": "rl", "ste')

    out = resume(reference, run, damage)
    assert "RL: skipping checkpoints/iter-000002 (model.safetensors has" in out
    assert "RL: resuming from checkpoints/iter-000001 (iteration 1)" in out
    assert "metrics.jsonl: dropped a torn last line" in out


@pytest.mark.slow
def test_half_written_sft_dir_runs_sft_again(reference, tmp_path):
    damage = lambda run: truncate(run / "sft" / "model.safetensors")  # noqa: E731
    out = kill_then_resume(reference, tmp_path / "run", "log:rl:0", damage)
    assert "sft/ is incomplete (model.safetensors has" in out
    assert "RL: starting from iteration 0 (no intact checkpoint)" in out


# ---------------------------------------------------------------- the pieces, in process
def test_cut_jsonl_drops_rows_past_the_resume_point_and_a_torn_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2}\n{"st')
    assert cut_jsonl(path, lambda r: r["step"] <= 1) == ([{"step": 0}, {"step": 1}], 1, True)
    assert path.read_text() == '{"step": 0}\n{"step": 1}\n'
    path.write_text('{"step": 0}\n{"st\n{"step": 2}\n')  # no kill tears a middle line
    with pytest.raises(ConfigError, match="log.jsonl:2"):
        cut_jsonl(path, lambda r: True)


def test_dir_problem_finds_a_truncated_safetensors_file(tmp_path, toy_model, toy_tokenizer):
    with atomic_dir(tmp_path / "policy") as tmp:
        save_policy(toy_model, toy_tokenizer, tmp)
    assert dir_problem(tmp_path / "policy") is None and not (tmp_path / ".tmp-policy").exists()
    weights = tmp_path / "policy" / "model.safetensors"
    truncate(weights)
    assert dir_problem(tmp_path / "policy").startswith("model.safetensors has")
    (tmp_path / "policy" / MARKER).unlink()  # written before markers: the header says the size
    assert "model.safetensors is truncated" in dir_problem(tmp_path / "policy")
    assert dir_problem(tmp_path / "absent") == "missing"


def test_metrics_logger_resume_keeps_other_stages_tensorboard_points(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    log = MetricsLogger(tmp_path, "sft")
    for step in range(4):
        log.log("sft", step, {"loss": 1.0 / (step + 1)})
    log.close()
    log = MetricsLogger(tmp_path, "rl")
    for step in range(3):
        log.log("rl", step, {"success": step / 2})
        log.samples(step, [{"turns": []}])
    # killed here: nothing flushed; resumed from the checkpoint of iteration 0
    log = MetricsLogger(tmp_path, "rl", resume_after=0)
    log.close()
    assert len(log.notes) == 2
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("sft/loss")] == [0, 1, 2, 3]
    assert [(e.step, e.value) for e in acc.Scalars("rl/success")] == [(0, 0.0)]
    assert (tmp_path / "samples.jsonl").read_text() == '{"iteration": 0, "turns": []}\n'
