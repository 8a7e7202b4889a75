"""Policies: a tiny byte-level BPE tokenizer, from-scratch Llama presets,
HF-format save/load, and SmolLM2-135M-Instruct loaded offline from a GGUF."""

from questline.models.loading import SMOLLM2, load_policy, resolve_policy, save_policy
from questline.models.presets import PRESETS, build_model, count_parameters
from questline.models.smollm2 import load_smollm2, smollm2_path
from questline.models.tokenizer import CHAT_TEMPLATE, chat_ids, end_of_turn_id, train_tokenizer

__all__ = [
    "CHAT_TEMPLATE", "PRESETS", "SMOLLM2",
    "build_model", "chat_ids", "count_parameters", "end_of_turn_id", "load_policy",
    "load_smollm2", "resolve_policy", "save_policy", "smollm2_path", "train_tokenizer",
]
