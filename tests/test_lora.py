"""LoRA (`model.lora`, peft): only the adapter trains, in SFT and RL; the loss goes
down; checkpoints are merged HF policies with the adapter in adapter/ (peft's
format); a stopped LoRA run resumes exactly; the KL reference is the policy with
its adapter switched off."""

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from questline.agent import ChatTokens
from questline.core import ConfigError
from questline.data import split_budget
from questline.envs import generate_tasks
from questline.experiments.recipe import load_recipe, recipe_from_dict
from questline.models import load_policy
from questline.models.lora import adapter_off, add_lora, save_adapter, trainable_fraction
from questline.rollout import RolloutConfig, rollout
from questline.train.common import pad_batch, sequence_logprobs
from questline.train.pipeline import Pipeline
from questline.train.sft import train_sft

LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
RECIPE = {
    "name": "lora", "seed": 3, "env": {"name": "toy/maze"},
    "data": {"train_size": 40, "mix": {"easy": 1}, "eval_size": 4, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 40},
    "model": {"lora": LORA},  # model.path: `pretrained`
    "budget": {"episodes": 24, "sft_fraction": 0.5},
    "sft": {"epochs": 1, "lr": 1.0e-2, "batch_size": 4, "micro_batch_size": 4},
    "rl": {"reward": "dense", "tasks_per_iter": 1, "group_size": 4, "lr": 1.0e-2, "minibatch_size": 4,
           "micro_batch_size": 4, "kl_coef": 0.1},
    "rollout": {"max_turns": 6, "max_new_tokens": 4},
    "run": {"checkpoint_every": 1, "keep_checkpoints": 3, "progress": False},
}


def base_weights(model) -> dict[str, torch.Tensor]:
    """Every weight that is not the adapter's, by its name in the plain HF model."""
    return {k.replace(".base_layer", ""): v.clone() for k, v in model.state_dict().items() if "lora_" not in k}


def test_lora_sft_trains_only_the_adapter_and_the_loss_goes_down(toy_tokenizer):
    from questline.experiments.recipe import LoraSettings, SFTConfig
    from questline.models import build_model
    model = build_model("xs", toy_tokenizer, seed=0)
    before = base_weights(model)
    chat = ChatTokens(toy_tokenizer)
    demos = rollout(None, chat, generate_tasks("toy/maze", 16, "easy", seed=2), RolloutConfig(max_turns=8),
                    policy="oracle")
    peft = add_lora(model, LoraSettings(**LORA), seed=1)
    trainable, total = trainable_fraction(model)
    assert 0 < trainable < 0.05 * total
    losses = train_sft(model, demos, SFTConfig(epochs=6, lr=1e-2, batch_size=8, micro_batch_size=8),
                       pad_id=chat.eot_id, seed=0, use_autocast=False)
    assert losses[-1] < 0.85 * losses[0], losses
    after = base_weights(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)  # B starts at 0
    ids, attn, _ = pad_batch(demos[:2], chat.eot_id)
    with adapter_off(peft):  # switched off, the policy computes as its base
        off = sequence_logprobs(model, ids, attn)[0]
    plain = build_model("xs", toy_tokenizer, seed=0)
    assert torch.allclose(off, sequence_logprobs(plain, ids, attn)[0], atol=1e-6)
    assert not torch.allclose(off, sequence_logprobs(model, ids, attn)[0], atol=1e-3)


def test_an_unknown_target_module_is_a_clear_error(toy_model):
    import copy

    from questline.experiments.recipe import LoraSettings
    with pytest.raises(ConfigError, match=r"\['qkv'\] not in this model \(its linear layers: .*q_proj"):
        add_lora(copy.deepcopy(toy_model), LoraSettings(target_modules=["qkv"]))


def test_lora_recipe_fields_are_strict():
    with pytest.raises(ConfigError, match="model.lora.rank: unknown field"):
        recipe_from_dict(RECIPE, ["model.lora.rank=4"])
    assert recipe_from_dict(RECIPE, ["model.lora=null"]).model.lora is None


def stage_rows(run: Path, stage: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows if r["stage"] == stage]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """An xs model fully fine-tuned on maze demonstrations: LoRA adapts pretrained models
    (a from-scratch model's random, frozen tied embeddings cap what an adapter can learn)."""
    from questline.data.corpus import oracle_texts
    from questline.experiments.recipe import SFTConfig
    from questline.models import build_model, save_policy, train_tokenizer
    tasks = generate_tasks("toy/maze", 20, "easy", seed=2)
    tok = train_tokenizer(oracle_texts(tasks), vocab_size=400)
    chat = ChatTokens(tok)
    model = build_model("xs", tok, seed=0)
    demos = rollout(None, chat, tasks, RolloutConfig(max_turns=8), policy="oracle")
    train_sft(model, demos, SFTConfig(epochs=6, lr=5e-3, batch_size=4, micro_batch_size=4), pad_id=chat.eot_id,
              seed=0, use_autocast=False)
    return save_policy(model, tok, tmp_path_factory.mktemp("pretrained") / "xs")


def run_pipeline(run: Path, base: Path, stop_rl_after: int | None = None) -> dict:
    recipe = recipe_from_dict(RECIPE, [f"run.dir={run}", f"model.path={base}"])
    p = Pipeline(recipe, Console(file=io.StringIO()))
    if stop_rl_after is None:
        return p.run()
    n_sft, n_rl = split_budget(recipe.budget.episodes, recipe.budget.sft_fraction)
    p.sft(n_sft)
    p.rl(n_rl, stop_after=stop_rl_after)
    return {}


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, pretrained):
    run = tmp_path_factory.mktemp("lora") / "run"
    run_pipeline(run, pretrained)
    return run


def test_a_lora_run_writes_merged_policies_with_peft_adapters(lora_run):
    sft, last = lora_run / "sft", lora_run / "checkpoints" / "iter-000002"
    for d in (sft, last):
        assert (d / "adapter" / "adapter_config.json").is_file() and (d / "adapter" / "adapter_model.safetensors").is_file()
        assert "adapter/adapter_model.safetensors" in json.loads((d / "complete.json").read_text())["files"]
        config = json.loads((d / "adapter" / "adapter_config.json").read_text())
        assert (config["r"], config["lora_alpha"], config["peft_type"]) == (4, 8, "LORA")
        assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    # RL trained only its adapter: sft/ + the checkpoint's adapter, merged, is the checkpoint
    from peft import PeftModel
    base, _ = load_policy(sft)
    merged = PeftModel.from_pretrained(base, last / "adapter").merge_and_unload().state_dict()
    saved = load_file(last / "model.safetensors")
    assert all(torch.allclose(merged[k], saved[k], atol=1e-6) for k in saved)
    assert not torch.equal(saved["model.layers.0.self_attn.q_proj.weight"],
                           load_file(sft / "model.safetensors")["model.layers.0.self_attn.q_proj.weight"])
    # and SFT trained only its own: init/ + sft/adapter is sft/
    init, _ = load_policy(lora_run / "init")
    merged = PeftModel.from_pretrained(init, sft / "adapter").merge_and_unload().state_dict()
    assert all(torch.allclose(merged[k], v, atol=1e-6) for k, v in load_file(sft / "model.safetensors").items())
    rl = stage_rows(lora_run, "rl")
    assert len(rl) == 3 and any(r.get("kl", 0) > 0 for r in rl)  # the reference is the adapter-free SFT policy


def test_a_stopped_lora_run_resumes_exactly(lora_run, pretrained, tmp_path):
    run = tmp_path / "run"
    run_pipeline(run, pretrained, stop_rl_after=1)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["iter-000000"]
    run_pipeline(run, pretrained)
    assert stage_rows(run, "rl") == stage_rows(lora_run, "rl")
    a = load_file(lora_run / "checkpoints" / "iter-000002" / "adapter" / "adapter_model.safetensors")
    b = load_file(run / "checkpoints" / "iter-000002" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_loads_a_lora_checkpoint_as_an_hf_policy(lora_run, capsys):
    from questline.cli import main
    ckpt = lora_run / "checkpoints" / "iter-000002"
    assert main(["eval", "toy/maze", "--policy", str(ckpt), "data.eval_size=2", "rollout.max_turns=3"]) == 0
    assert "success" in capsys.readouterr().out


def test_save_adapter_writes_what_vllm_loads(toy_model, tmp_path):
    import copy

    from questline.experiments.recipe import LoraSettings
    peft = add_lora(copy.deepcopy(toy_model), LoraSettings(r=16))
    out = save_adapter(peft, tmp_path / "a")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    keys = load_file(out / "adapter_model.safetensors")
    assert keys and all(".lora_A.weight" in k or ".lora_B.weight" in k for k in keys)
    assert json.loads((out / "adapter_config.json").read_text())["modules_to_save"] is None


def test_the_smollm2_lora_recipe_loads():
    from questline.cli import recipe_path
    recipe = load_recipe(recipe_path("smollm2/tp_lora"))
    assert recipe.model.path == "smollm2-135m-instruct" and recipe.model.lora is not None
    assert recipe.env.name == "travelplanner"
