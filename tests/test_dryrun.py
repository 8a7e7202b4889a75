"""Devices and `questline train <recipe> --dry-run`: GPU recipes validated here, without
their weights or their GPUs (the model built on the meta device)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from questline.cli import RECIPES, main
from questline.core import ConfigError
from questline.experiments.recipe import load_recipe, recipe_from_dict
from questline.models.architectures import (
    ARCHITECTURES,
    PUBLISHED_PARAMS,
    architecture_config,
    count_params,
    meta_model,
    recipe_model_config,
)
from questline.models.device import resolve_device
from questline.models.memory import estimate_memory
from questline.models.presets import count_parameters

GPU_RECIPES = sorted((RECIPES / "gpu").glob("*.yaml"))


def test_there_are_gpu_recipes_for_every_setting_the_issue_names():
    names = {p.stem for p in GPU_RECIPES}
    assert {"travelplanner_qwen2.5_1.5b", "travelplanner_qwen2.5_3b", "travelplanner_qwen2.5_7b",
            "textworld_ppo_qwen2.5_1.5b", "alfworld_ppo_qwen2.5_7b", "swe_grpo_qwen3_8b"} <= names


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.stem)
def test_every_gpu_recipe_passes_dry_run(path, capsys):
    assert main(["train", f"gpu/{path.stem}", "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    recipe = load_recipe(path)
    assert f"{recipe.train.gpus} GPU(s) x {recipe.train.gpu_memory_gib} GiB" in out
    assert "training fits" in out and "meta device" in out


def test_dry_run_fails_with_the_table_when_training_does_not_fit(capsys):
    assert main(["train", "gpu/travelplanner_qwen2.5_7b", "--dry-run", "--world-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "training does not fit" in err and "AdamW moments fp32" in err


def test_travelplanner_recipes_follow_star_scale_and_rewards():
    r7, r3, r15 = (load_recipe(RECIPES / "gpu" / f"travelplanner_qwen2.5_{s}.yaml") for s in ("7b", "3b", "1.5b"))
    for r in (r7, r3, r15):
        assert (r.rl.advantage, r.rl.group_size, r.data.train_size, r.data.mix) == (
            "grpo", 8, 1000, {"easy": 4, "medium": 3, "hard": 3})
    assert r7.rl.reward == "tp_sum" and r15.rl.reward == r3.rl.reward == "tp_curriculum"


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_parameter_count_from_the_config_matches_the_meta_model_and_the_model_card(name):
    config = architecture_config(name)
    model = meta_model(config)
    assert next(model.parameters()).device.type == "meta"
    assert count_params(config) == count_parameters(model)
    assert count_parameters(model) == pytest.approx(PUBLISHED_PARAMS[name], rel=0.005)


def test_the_estimator_matches_a_meta_instantiation_of_a_preset_and_shards_with_fsdp2():
    recipe = recipe_from_dict({"model": {"preset": "s", "vocab_size": 2048}})
    config, source = recipe_model_config(recipe)
    n = count_parameters(meta_model(config))
    assert source == "preset s" and count_params(config) == n
    ddp = estimate_memory(config, n, recipe, world=4)
    rows = {name: b for _, name, b in ddp.rows}
    assert rows["policy weights fp32 (whole on every rank)"] == 4 * n
    fsdp = estimate_memory(config, n, recipe_from_dict({"model": {"preset": "s", "vocab_size": 2048},
                                                        "train": {"parallel": "fsdp2"}}), world=4)
    rows = {name: b for _, name, b in fsdp.rows}
    assert rows["policy weights fp32/4 (FSDP2)"] == n and rows["AdamW moments fp32"] == 2 * n
    assert fsdp.peak < ddp.peak + 4 * n  # shards save more than the engine's plain copy costs


def test_async_rl_counts_the_snapshot_and_the_overlapping_kv_cache():
    base = {"model": {"preset": "s", "vocab_size": 2048}, "rl": {"tis_cap": 2.0}}
    config, _ = recipe_model_config(recipe_from_dict(base))
    n = count_parameters(meta_model(config))
    sync = estimate_memory(config, n, recipe_from_dict(base))
    overlapped = estimate_memory(config, n, recipe_from_dict(base, ["rl.async=true"]))
    assert overlapped.training == sync.training + 8 * n + sync.total("rollout")  # the KV cache during training
    vllm = estimate_memory(config, n, recipe_from_dict(base, ["rl.async=true", "engine.kind=vllm"]))
    assert vllm.training == sync.training + 8 * n


def test_model_path_with_a_config_json_is_read_without_weights(tmp_path, toy_model):
    toy_model.config.save_pretrained(tmp_path)
    recipe = recipe_from_dict({"model": {"preset": None, "path": str(tmp_path)}})
    config, source = recipe_model_config(recipe)
    assert source.endswith("config.json") and count_params(config) == count_parameters(toy_model)
    with pytest.raises(ConfigError, match="not a known architecture"):
        recipe_model_config(recipe_from_dict({"model": {"preset": None, "path": str(tmp_path / "nope")}}))


# ------------------------------------------------------------------ devices
def test_model_device_setting_is_checked_and_resolved():
    with pytest.raises(ConfigError, match="model.device: 'gpu' is not a device"):
        recipe_from_dict({"model": {"device": "gpu"}})
    assert recipe_from_dict({"model": {"device": "cuda:1"}}).model.device == "cuda:1"
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("meta") == torch.device("meta")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="sees no CUDA device"):
            resolve_device("cuda")


def test_training_on_the_meta_device_is_refused_with_a_pointer_to_dry_run():
    from questline.train.distributed import init_parallel
    with pytest.raises(ConfigError, match="--dry-run"):
        init_parallel(recipe_from_dict({"model": {"device": "meta"}}))


def test_rl_update_keeps_batches_on_the_models_device(toy_model):
    """The device-agnostic path on an explicit device: a batch built on the CPU is moved
    to where the model is (meta here: shapes only, so only up to the first data-dependent op)."""
    from distributed_worker import step_batch

    from questline.experiments.recipe import RLConfig
    from questline.train.rl import rl_update
    model = meta_model(toy_model.config)
    batch = step_batch(toy_model.config.vocab_size)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises((NotImplementedError, RuntimeError)):  # boolean-mask selection needs data
        rl_update(model, None, opt, sched, batch, RLConfig(micro_batch_size=2), temperature=1.0,
                  use_autocast=False)
    assert batch.input_ids.device.type == "meta" and batch.loss_mask.device.type == "meta"


def test_python_dash_m_questline_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "questline", "--version"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("questline ")


