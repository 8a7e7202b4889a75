"""Tiny from-scratch Llama presets, for tests and CPU-sized experiments.

Parameter counts at vocab 1024 (tied embeddings included):
    xs  ~1.0M   4 layers x 128 wide, 4 heads of 32
    s   ~5.1M   6 layers x 256 wide, 8 heads of 32
    m   ~19.8M  6 layers x 512 wide, 8 heads of 64
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from questline.models.tokenizer import end_of_turn_id

PRESETS: dict[str, dict] = {
    "xs": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=384),
    "s": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, intermediate_size=704),
    "m": dict(hidden_size=512, num_hidden_layers=6, num_attention_heads=8, intermediate_size=1408),
}

# Shared by every preset: no dropout, RoPE, tied input/output embeddings.
COMMON: dict = dict(
    max_position_embeddings=2048,
    tie_word_embeddings=True,
    attention_dropout=0.0,
    hidden_act="silu",
    rms_norm_eps=1e-5,
    initializer_range=0.02,
)


def preset_config(preset: str, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; allowed: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    eos = end_of_turn_id(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=p["num_attention_heads"],
        head_dim=p["hidden_size"] // p["num_attention_heads"],
        bos_token_id=tokenizer.bos_token_id,  # None for our tokenizer: there is no BOS
        eos_token_id=eos,
        pad_token_id=pad,
        **p,
        **COMMON,
    )


def build_model(preset: str, tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the same (preset, tokenizer, seed) gives the same weights.
    The global torch RNG is left untouched."""
    config = preset_config(preset, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = config.bos_token_id
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
