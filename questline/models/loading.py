"""Save and load policies as plain Hugging Face model directories (safetensors)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from questline.core.errors import ConfigError

SMOLLM2 = "smollm2-135m-instruct"


def offline() -> None:
    """Never reach a model hub: every load in Questline is from local files.
    Also silences transformers' per-file progress bars (ours show the real work)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()


offline()  # on import: checkpoints are saved and loaded without hub access or noise


def save_policy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)  # transformers 5 always writes safetensors
    # transformers 5 records load-time flags as tokenizer config; keep checkpoints clean.
    for key in ("is_local", "local_files_only"):
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(path)
    return path


def load_policy(
    path: str | Path, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Any local HF causal LM directory -> (model in eval mode, tokenizer)."""
    offline()
    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    return model.eval(), tokenizer


def resolve_policy(
    spec: str, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`smollm2-135m-instruct` or a path to a local HF model directory."""
    if spec.lower() == SMOLLM2:
        from questline.models.smollm2 import smollm2_path

        return load_policy(smollm2_path(), dtype=dtype)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"policy: {str(path)!r} is a directory but has no config.json")
        return load_policy(path, dtype=dtype)
    raise ConfigError(
        f"policy: unknown model {spec!r}; expected {SMOLLM2!r} or a local HF model directory"
    )
