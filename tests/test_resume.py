"""A run killed with SIGKILL resumes from its last checkpoint and produces exactly
the metrics and weights of an uninterrupted run with the same seed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

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
TIMING = {"rollout_s", "iter_s"}


def run_cli(recipe: Path, run_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "questline.cli", "train", str(recipe), f"run.dir={run_dir}"]
    log = open(run_dir.parent / f"{run_dir.name}.log", "a")  # noqa: SIM115 (lives as long as the child)
    return subprocess.Popen(cmd, stdout=log, stderr=log)


def finish(p: subprocess.Popen, run_dir: Path) -> None:
    code = p.wait(timeout=300)
    assert code == 0, (run_dir.parent / f"{run_dir.name}.log").read_text()[-3000:]


def rl_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows if r["stage"] == "rl"]


@pytest.mark.slow
@pytest.mark.parametrize("advantage", ["grpo", "gae"])  # gae: PPO, so the critic must resume too
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, advantage):
    recipe = tmp_path / "resume.yaml"
    recipe.write_text(RECIPE.replace("rl: {", f"rl: {{advantage: {advantage}, "))
    full, killed = tmp_path / "full", tmp_path / "killed"

    finish(run_cli(recipe, full), full)

    p = run_cli(recipe, killed)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "iter-000002").exists():
        assert p.poll() is None, "run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done_before = len(rl_rows(killed))
    assert done_before < 6, "the kill came too late to test anything"

    finish(run_cli(recipe, killed), killed)

    a, b = rl_rows(full), rl_rows(killed)
    assert [r["step"] for r in b] == list(range(6))
    assert a == b  # bit-identical metrics, not just close
    wa = load_file(full / "checkpoints" / "iter-000005" / "model.safetensors")
    wb = load_file(killed / "checkpoints" / "iter-000005" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    if advantage == "gae":
        ca = load_file(full / "checkpoints" / "iter-000005" / "critic" / "model.safetensors")
        cb = load_file(killed / "checkpoints" / "iter-000005" / "critic" / "model.safetensors")
        assert all(torch.equal(ca[k], cb[k]) for k in ca)
    assert json.loads((full / "results.json").read_text())["rl"] == \
        json.loads((killed / "results.json").read_text())["rl"]
