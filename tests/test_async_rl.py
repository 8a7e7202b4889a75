"""Asynchronous RL (`rl.async`): the rollout of iteration k+1 overlaps the update of
iteration k, sampled from a snapshot of the policy one version old (staleness 1),
corrected by truncated importance weights; max_staleness 0 is the synchronous run;
a stopped run resumes; the recipe fields are validated."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

from questline.agent import ChatTokens
from questline.core import ConfigError
from questline.experiments.recipe import dump_recipe, load_recipe, recipe_from_dict
from questline.models import build_model
from questline.train import rl
from questline.train.pipeline import task_sets

TINY = {
    "env": {"name": "toy/maze"},
    "data": {"train_size": 24, "mix": {"easy": 1}, "eval_size": 4, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 24},
    # fp32 training, as the engine generates on a CPU: bf16 autocast (picked on CPUs with native
    # bf16) moves the trainer's logprobs ~3e-3 from the engine's, and these tests compare them
    "model": {"preset": "xs", "vocab_size": 400, "precision": "fp32"},
    # invalid-action penalties and an entropy bonus: every iteration updates the policy
    "rl": {"tasks_per_iter": 2, "group_size": 4, "lr": 1e-3, "minibatch_size": 8, "micro_batch_size": 4,
           "tis_cap": 2.0, "invalid_penalty": 0.1, "entropy_coef": 0.01},
    "rollout": {"max_turns": 4, "max_new_tokens": 8},
    "run": {"checkpoint_every": 1, "progress": False},
}
TIMING = {"rollout_s", "iter_s", "rollout_wait_s", "time"}


def run(tmp_path, toy_tokenizer, *overrides, iterations=4, stop_after=None):
    """-> (metrics rows without timing, the trained model)."""
    recipe = recipe_from_dict(TINY, [f"run.dir={tmp_path}", *overrides])
    model = build_model("xs", toy_tokenizer, seed=0).eval()
    train, _ = task_sets(recipe)
    done = rl.train_rl(recipe, model, toy_tokenizer, ChatTokens(toy_tokenizer), train, tmp_path,
                       iterations=iterations, stop_after=stop_after)
    assert done == (iterations if stop_after is None else min(iterations, stop_after))
    return rows(tmp_path), model


def rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def no_rollout_thread() -> bool:
    return not any(t.name == "questline-rollouts" for t in threading.enumerate())


def test_async_samples_one_version_behind_with_importance_weights(tmp_path, toy_tokenizer):
    metrics, _ = run(tmp_path, toy_tokenizer, "rl.async=true")
    assert [r["step"] for r in metrics] == [0, 1, 2, 3]
    assert [r["staleness"] for r in metrics] == [0, 1, 1, 1]
    assert all("tis_weight" in r and "skipped_update" not in r for r in metrics)
    # the first batch is on-policy; later ones come from the policy before the last update
    assert metrics[0]["engine_logp_diff_max"] < 1e-4
    assert all(r["engine_logp_diff_max"] > 1e-3 for r in metrics[1:])
    assert any(abs(r["tis_weight"] - 1.0) > 1e-4 for r in metrics[1:])
    assert no_rollout_thread()


def test_max_staleness_bounds_how_far_rollouts_run_ahead(tmp_path, toy_tokenizer):
    metrics, _ = run(tmp_path, toy_tokenizer, "rl.async=true", "rl.max_staleness=2", iterations=5)
    staleness = [r["staleness"] for r in metrics]
    assert staleness[0] == 0 and staleness[1] == 1 and max(staleness) <= 2
    assert no_rollout_thread()


def test_max_staleness_0_is_the_synchronous_run(tmp_path, toy_tokenizer):
    sync, sync_model = run(tmp_path / "sync", toy_tokenizer)
    lockstep, lockstep_model = run(tmp_path / "async0", toy_tokenizer, "rl.async=true", "rl.max_staleness=0")
    assert [r.pop("staleness") for r in lockstep] == [0, 0, 0, 0]
    assert lockstep == sync
    assert all(torch.equal(a, b) for a, b in zip(sync_model.state_dict().values(),
                                                 lockstep_model.state_dict().values()))


def test_async_run_stopped_then_resumed(tmp_path, toy_tokenizer):
    """The rollout in flight at the stop is redone from the checkpoint's weights."""
    first, _ = run(tmp_path, toy_tokenizer, "rl.async=true", stop_after=2)
    assert [r["staleness"] for r in first] == [0, 1]
    assert no_rollout_thread()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir())[-1] == "iter-000001"
    metrics, _ = run(tmp_path, toy_tokenizer, "rl.async=true", iterations=4)
    assert [r["step"] for r in metrics] == [0, 1, 2, 3]
    assert [r["staleness"] for r in metrics] == [0, 1, 0, 1]
    assert metrics[:2] == first


def test_async_run_killed_then_resumed(tmp_path):
    """SIGKILL once iteration 2's metrics are written, before its checkpoint (the rollout of
    iteration 3 in flight): the rerun resumes from iteration 1's checkpoint and redoes
    iteration 2's rollout from those weights."""
    import yaml
    data = json.loads(json.dumps(TINY))
    data.update(name="async", budget={"episodes": 32, "sft_fraction": 0.0})
    data["rl"]["async"] = True
    recipe = tmp_path / "async.yaml"
    recipe.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"

    def train(crash_at=None):
        env = {**os.environ, "OMP_NUM_THREADS": "1", **({"QUESTLINE_CRASH_AT": crash_at} if crash_at else {})}
        cmd = [sys.executable, "-m", "questline.cli", "train", str(recipe), f"run.dir={run_dir}"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    killed = train("log:rl:2")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert [r["staleness"] for r in rows(run_dir)] == [0, 1, 1]
    done = train()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    metrics = [r for r in rows(run_dir) if r["stage"] == "rl"]
    assert [r["step"] for r in metrics] == [0, 1, 2, 3]
    assert [r["staleness"] for r in metrics] == [0, 1, 0, 1]
    assert "rl" in json.loads((run_dir / "results.json").read_text())  # evaluated after RL


def test_async_with_lora(tmp_path, toy_tokenizer):
    metrics, _ = run(tmp_path, toy_tokenizer, "rl.async=true", "model.lora={r: 4}", iterations=3)
    assert [r["staleness"] for r in metrics] == [0, 1, 1]
    assert all(r["engine_logp_diff_max"] > 0 for r in metrics[1:])


def test_a_failing_rollout_reaches_the_trainer(tmp_path, toy_tokenizer, monkeypatch):
    real = rl.collect

    def collect(engine, chat, taskset, it, *args):
        if it == 2:
            raise RuntimeError("env exploded at iteration 2")
        return real(engine, chat, taskset, it, *args)

    monkeypatch.setattr(rl, "collect", collect)
    with pytest.raises(RuntimeError, match="iteration 2"):
        run(tmp_path, toy_tokenizer, "rl.async=true")
    assert [r["step"] for r in rows(tmp_path)] == [0, 1]
    assert no_rollout_thread()


def test_recipe_fields(tmp_path):
    with pytest.raises(ConfigError, match=r"rl\.async.*rl\.tis_cap"):
        recipe_from_dict(TINY, ["rl.async=true", "rl.tis_cap=null"])
    with pytest.raises(ConfigError, match=r"rl\.max_staleness"):
        recipe_from_dict(TINY, ["rl.max_staleness=-1"])
    with pytest.raises(ConfigError, match=r"rl\.async"):
        recipe_from_dict(TINY, ["rl.async=maybe"])
    with pytest.raises(ConfigError, match=r"rl\.asynk: unknown field \(did you mean 'async'\?\)"):
        recipe_from_dict(TINY, ["rl.asynk=true"])
    recipe = recipe_from_dict(TINY, ["rl.async=true", "rl.max_staleness=2"])
    assert recipe.rl.async_ and recipe.rl.max_staleness == 2
    assert not recipe_from_dict(TINY).rl.async_  # synchronous by default
    dump_recipe(recipe, tmp_path / "r.yaml")  # written as `async`, read back the same
    assert "async: true" in (tmp_path / "r.yaml").read_text()
    assert load_recipe(tmp_path / "r.yaml") == recipe
