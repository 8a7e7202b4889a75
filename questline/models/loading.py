"""Save and load policies as plain Hugging Face model directories (safetensors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from questline.core.errors import ConfigError

SMOLLM2 = "smollm2-135m-instruct"
PACKAGED = "packaged:"  # a policy shipped in questline/policies/, e.g. packaged:quickstart-sft
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "policies"


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


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def check_policy_dir(path: Path) -> None:
    """A ConfigError naming what a model directory lacks: a JSON config, weights, a tokenizer."""
    where = f"policy {str(path)!r}"
    if not path.is_dir():
        raise ConfigError(f"{where} is not a directory")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where} has no config.json") from None
    except ValueError as e:  # bad JSON or not UTF-8
        raise ConfigError(f"{where}: config.json is not valid JSON ({e})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise ConfigError(f"{where}: config.json has no 'model_type'")
    for kind, names in (("weights", WEIGHT_FILES), ("tokenizer", TOKENIZER_FILES)):
        if not any((path / n).is_file() for n in names):
            raise ConfigError(f"{where} has no {kind} (one of {', '.join(names)})")


def load_policy(
    path: str | Path, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Any local HF causal LM directory -> (model in eval mode, tokenizer).
    A directory that is incomplete or corrupt (e.g. truncated weights) is a ConfigError."""
    offline()
    path = Path(path)
    check_policy_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "mismatched_sizes" in why:
            why = "config.json does not match the shapes of the saved weights"
        raise ConfigError(f"policy {str(path)!r} could not be loaded (corrupt or incomplete?): {why}") from None
    return model.eval(), tokenizer


def resolve_policy(
    spec: str, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`smollm2-135m-instruct`, `packaged:<name>` or a path to a local HF model directory."""
    if spec.lower() == SMOLLM2:
        from questline.models.smollm2 import smollm2_path

        return load_policy(smollm2_path(), dtype=dtype)
    if spec.startswith(PACKAGED):
        name = spec[len(PACKAGED):]
        shipped = sorted(p.name for p in PACKAGED_DIR.iterdir() if p.is_dir()) if PACKAGED_DIR.is_dir() else []
        if name not in shipped:
            raise ConfigError(f"policy: no packaged policy {name!r} (shipped: {', '.join(shipped) or 'none'})")
        return load_policy(PACKAGED_DIR / name, dtype=dtype)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_policy(path, dtype=dtype)
    raise ConfigError(
        f"policy: unknown model {spec!r}; expected {SMOLLM2!r}, '{PACKAGED}<name>' or a local HF "
        "model directory"
    )
