"""Where models and batches live: a recipe's `model.device`.

auto  CUDA when torch sees a GPU (under torchrun the process's own, cuda:LOCAL_RANK), else CPU
cpu, cuda, cuda:N  as torch names them
meta  tensors with shapes and no data: instantiating a 7B model costs nothing, so
      `--dry-run` counts parameters and estimates memory without the weights
"""

from __future__ import annotations

import os
import re

import torch

from questline.core import ConfigError

_SETTING = re.compile(r"^(auto|cpu|meta|cuda(:\d+)?)$")


def check_device_setting(setting: str) -> str:
    if not _SETTING.match(setting):
        raise ValueError(f"'{setting}' is not a device (allowed: auto, cpu, cuda, cuda:N, meta)")
    return setting


def resolve_device(setting: str = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device a recipe's `model.device` names on this machine. `local_rank`
    (torchrun's LOCAL_RANK when None) picks the GPU of this process for auto/cuda."""
    check_device_setting(setting)
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"model.device: '{setting}' but torch sees no CUDA device "
                              f"(torch {torch.__version__}; use auto or cpu)")
        index = int(setting.split(":")[1]) if ":" in setting else local_rank
        if index >= torch.cuda.device_count():
            raise ConfigError(f"model.device: cuda:{index}, but torch sees {torch.cuda.device_count()} GPU(s)")
        return torch.device("cuda", index)
    return torch.device(setting)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
