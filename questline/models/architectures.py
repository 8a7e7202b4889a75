"""The public configurations of the models the GPU recipes name (from each model's
config.json on its model card), so `--dry-run` knows a model without its weights.
Only shapes: a model is built from them on the meta device, which holds no data."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

from questline.core import ConfigError

_QWEN = dict(rms_norm_eps=1e-6, rope_theta=1e6, hidden_act="silu")
ARCHITECTURES: dict[str, dict] = {  # name -> config.json fields
    "Qwen2.5-1.5B-Instruct": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960,
                                  num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                                  vocab_size=151936, tie_word_embeddings=True,
                                  max_position_embeddings=32768, **_QWEN),
    "Qwen2.5-3B-Instruct": dict(model_type="qwen2", hidden_size=2048, intermediate_size=11008,
                                num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                                vocab_size=151936, tie_word_embeddings=True,
                                max_position_embeddings=32768, **_QWEN),
    "Qwen2.5-7B-Instruct": dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944,
                                num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                vocab_size=152064, tie_word_embeddings=False,
                                max_position_embeddings=32768, **_QWEN),
    "Qwen3-8B": dict(model_type="qwen3", hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                     tie_word_embeddings=False, max_position_embeddings=40960, **_QWEN),
}
PUBLISHED_PARAMS = {  # the model cards' totals
    "Qwen2.5-1.5B-Instruct": 1.54e9, "Qwen2.5-3B-Instruct": 3.09e9, "Qwen2.5-7B-Instruct": 7.61e9,
    "Qwen3-8B": 8.2e9}


def architecture_config(name: str) -> PretrainedConfig:
    fields = dict(ARCHITECTURES[name])
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def known_architecture(path: str) -> str | None:
    """The table's name for a model directory ('/models/qwen2.5-7b-instruct' -> 'Qwen2.5-7B-Instruct')."""
    base = Path(path).name.lower()
    return next((name for name in ARCHITECTURES if name.lower() == base), None)


def recipe_model_config(recipe) -> tuple[PretrainedConfig, str]:
    """(model config, where it came from) for a recipe, without loading weights: the
    config.json of model.path when it is there, else the public table by the directory's
    name, else the preset's Llama config."""
    m = recipe.model
    if m.path:
        config_file = Path(m.path).expanduser() / "config.json"
        if config_file.is_file():
            data = json.loads(config_file.read_text(encoding="utf-8"))
            return AutoConfig.for_model(data.pop("model_type"), **data), str(config_file)
        name = known_architecture(m.path)
        if name is None:
            raise ConfigError(f"model.path: {m.path!r} has no config.json and is not a known architecture "
                              f"(known: {', '.join(ARCHITECTURES)})")
        return architecture_config(name), f"the public config of {name} (no weights at {m.path})"
    from transformers import LlamaConfig

    from questline.models.presets import COMMON, PRESETS
    p = PRESETS[m.preset]
    return (LlamaConfig(vocab_size=m.vocab_size, num_key_value_heads=p["num_attention_heads"],
                        head_dim=p["hidden_size"] // p["num_attention_heads"], **p, **COMMON),
            f"preset {m.preset}")


def meta_model(config: PretrainedConfig) -> torch.nn.Module:
    """The model on the meta device: every parameter's shape, no memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def count_params(config) -> int:
    """Parameters of a Llama / Qwen2 / Qwen3 decoder from its config (embeddings tied or
    not, Qwen2's q/k/v biases, Qwen3's q/k norms), without building it."""
    h, i, n_layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    q = config.num_attention_heads * head_dim(config)
    kv = config.num_key_value_heads * head_dim(config)
    attn = h * q + 2 * h * kv + q * h
    if config.model_type == "qwen2":
        attn += q + 2 * kv  # biases on q, k, v
    if config.model_type == "qwen3":
        attn += 2 * head_dim(config)  # RMSNorm on q and k
    layer = attn + 3 * h * i + 2 * h  # gate, up, down; two RMSNorms
    embeddings = v * h * (1 if config.tie_word_embeddings else 2)
    return n_layers * layer + embeddings + h  # + the final norm
