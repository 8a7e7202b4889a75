"""LoRA training with peft (`model.lora` in a recipe; null = full fine-tuning).

Each training stage adds a fresh adapter to the policy it starts from (SFT: the
initial model; RL: the SFT policy), and only the adapter trains: the base weights
stay byte-identical. peft injects the adapter layers into the HF model in place,
so the rest of Questline (engine, log-probabilities, optimiser) keeps using that
same model object; the `PeftModel` wrapper is kept for saving and for switching the
adapter off. The KL reference is the policy with its adapter switched off
(`adapter_off`): the stage's starting policy, without a second copy in memory.

A policy directory written with LoRA (`sft/`, `checkpoints/iter-N/`) is a plain HF
model with the adapter merged in, so `questline eval --policy <dir>` loads it like
any other, plus `adapter/` in peft's format (adapter_config.json +
adapter_model.safetensors), relative to the stage's base policy (`init/` for SFT,
`sft/` for RL). Resuming RL loads the base and then the adapter from `adapter/`:
the merged weights are never trained on.
"""

from __future__ import annotations

import copy
import sys
from contextlib import nullcontext
from pathlib import Path

from questline.core import ConfigError

ADAPTER_DIR = "adapter"


def add_lora(model, lora, seed: int = 0):
    """Wrap `model` (an HF causal LM) with a fresh LoRA adapter (initialised from `seed`;
    the global torch RNG is left untouched); `lora` is a recipe's LoraSettings. Only the
    adapter's parameters require gradients afterwards. Returns the PeftModel; `model`
    itself now holds the adapter layers."""
    import torch
    peft = _peft()
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in present]
    if missing:
        raise ConfigError(f"model.lora.target_modules: {missing} not in this model "
                          f"(its linear layers: {', '.join(sorted(linear_names(model)))})")
    cfg = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                          target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return peft.get_peft_model(model, cfg)


def linear_names(model) -> set[str]:
    import torch
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def is_lora(model) -> bool:
    peft = sys.modules.get("peft")  # never imported: no model is a peft model (and peft is optional)
    return peft is not None and isinstance(model, peft.PeftModel)


def _peft():
    try:
        import peft
    except ImportError:
        raise ConfigError("model.lora needs peft: pip install 'questline[lora]'") from None
    return peft


def adapter_off(model):
    """A context in which a LoRA policy computes as its base (a no-op for other models)."""
    return model.disable_adapter() if is_lora(model) else nullcontext()


def trainable_fraction(model) -> tuple[int, int]:
    """(trainable parameters, all parameters)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_adapter(model, directory: str | Path) -> Path:
    """Write the adapter in peft's format (adapter_config.json + adapter_model.safetensors),
    which vLLM hot-loads (`--enable-lora`, `POST /v1/load_lora_adapter`; its rank must be
    at most the server's --max-lora-rank, 16 by default). Returns the directory."""
    directory = Path(directory)
    model.save_pretrained(directory, save_embedding_layers=False)
    return directory


def merged_copy(model):
    """The HF model with the adapter merged into the weights (the policy as a plain
    HF model); `model` keeps training unchanged."""
    return copy.deepcopy(model).merge_and_unload()


def load_adapter_weights(model, directory: str | Path) -> None:
    """Copy the adapter saved in `directory` into a LoRA policy of the same shape."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    path = Path(directory) / "adapter_model.safetensors"
    if not path.is_file():
        raise ConfigError(f"{directory}: no LoRA adapter (adapter_model.safetensors); the checkpoint was "
                          "written without model.lora, so resume it without model.lora")
    result = set_peft_model_state_dict(model, load_file(path))
    if result.unexpected_keys:
        raise ConfigError(f"{directory}: the adapter does not fit this model.lora ({result.unexpected_keys[:3]})")
