"""Training precision from what the hardware runs fast: bf16 autocast or fp32.

On a CPU, bf16 autocast pays only where the CPU has bf16 instructions (AVX512_BF16
or AMX): there it trains ~1.3x faster than fp32 (BENCHMARKS.md). An AVX2-only CPU
emulates bf16, and a forward+backward of the maze policy took ~8 s there against
~1 s in fp32. torch's own `get_cpu_capability()` says only 'AVX512' or 'AVX2', so
the bf16 instructions are read from torch's CPU feature checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BF16_CPU = ("AMX", "AVX512_BF16")  # capabilities with native bf16 instructions


@dataclass(frozen=True)
class Precision:
    name: str  # "bf16" (autocast) or "fp32"
    reason: str

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def to_dict(self) -> dict:
        return {"precision": self.name, "reason": self.reason}


def _cpu_flag(name: str) -> bool:
    check = getattr(torch.cpu, name, None)  # private helpers: absent in some torch versions
    try:
        return bool(check()) if check else False
    except RuntimeError:
        return False


def cpu_capability() -> str:
    """'AMX', 'AVX512_BF16', or torch's capability string ('AVX512', 'AVX2', 'DEFAULT', ...).
    torch's dispatch level caps the answer: with ATEN_CPU_CAPABILITY=avx2 (or a CPU without
    AVX-512) torch runs its AVX2 kernels, which emulate bf16, whatever the CPU's flags say."""
    dispatch = torch.backends.cpu.get_cpu_capability()
    if not dispatch.startswith("AVX512"):
        return dispatch
    if _cpu_flag("_is_amx_tile_supported"):
        return "AMX"
    if _cpu_flag("_is_avx512_bf16_supported"):
        return "AVX512_BF16"
    return dispatch


def choose_precision(setting: str = "auto", device: str = "cpu", capability: str | None = None) -> Precision:
    """`setting` is a recipe's model.precision: 'bf16' or 'fp32' win; 'auto' takes bf16
    on a CUDA device that supports it and on a CPU whose `capability` has bf16
    instructions (read from this CPU when None), else fp32."""
    if setting in ("bf16", "fp32"):
        return Precision(setting, f"model.precision={setting} in the recipe")
    if setting != "auto":
        raise ValueError(f"model.precision: '{setting}' (allowed: auto, bf16, fp32)")
    if device == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return Precision("bf16" if ok else "fp32", f"auto: this GPU {'supports' if ok else 'lacks'} bf16")
    capability = capability if capability is not None else cpu_capability()
    if capability in BF16_CPU:
        return Precision("bf16", f"auto: the CPU has {capability}, native bf16")
    return Precision("fp32", f"auto: the CPU has {capability}, no native bf16: emulated bf16 is several "
                             "times slower")


def model_precision(recipe, model=None) -> Precision:
    """The precision a recipe trains in, on the device `model` lives on (CPU when None)."""
    device = next(model.parameters()).device.type if model is not None else "cpu"
    return choose_precision(recipe.model.precision, device)
