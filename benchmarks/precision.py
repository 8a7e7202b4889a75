"""SFT step time in fp32 vs bf16 autocast, at 1 and 2 torch threads, on quickstart-shaped
batches (preset xs, vocabulary 2048, 8 rows of ~980 tokens: what `make demo`'s SFT runs),
and the precision `model.precision: auto` picks on this CPU.

On a CPU with native bf16 (AVX512_BF16 or AMX) bf16 should win; on an AVX2-only CPU it
is emulated and fp32 should win, which is why `auto` reads the CPU's features.

    python benchmarks/precision.py            # 6 timed steps per setting, best of 3 repeats
    python benchmarks/precision.py --avx2     # the same with torch, oneDNN and MKL held to AVX2:
                                              # an AVX2-only CPU's kernels, on this machine
    python benchmarks/precision.py --padding  # fp32, right-padded rows of the quickstart's demo
                                              # lengths: attention mask kept vs dropped (causal)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from common import load_average
from transformers import LlamaConfig, LlamaForCausalLM

from questline.models.precision import choose_precision, cpu_capability
from questline.models.presets import COMMON, PRESETS
from questline.train import common as train_common
from questline.train.common import make_optimizer
from questline.train.sft import sft_loss_sum

# What an AVX2-only CPU runs: torch's dispatch, oneDNN's and MKL's kernels, all held to AVX2.
# They are read at start-up, so --avx2 runs this script again with them set.
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def xs_model(vocab_size: int = 2048) -> LlamaForCausalLM:
    """The xs preset's architecture at the quickstart's vocabulary size."""
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, num_key_value_heads=PRESETS["xs"]["num_attention_heads"],
                                        head_dim=PRESETS["xs"]["hidden_size"] // PRESETS["xs"]["num_attention_heads"],
                                        pad_token_id=0, eos_token_id=2, **PRESETS["xs"], **COMMON))


# 8 demo lengths drawn from the quickstart's 400 demonstrations (909 to 1230 tokens, mean 975)
DEMO_LENGTHS = [975, 1100, 930, 1010, 960, 1230, 920, 990]


def step_seconds(bf16: bool, threads: int, steps: int, repeats: int, padded: bool = False) -> float:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    model = xs_model().train()
    opt = make_optimizer(model, 1e-3)
    lengths = DEMO_LENGTHS if padded else [980] * 8
    ids = torch.randint(3, 2048, (8, max(lengths)), generator=g)
    attn = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).long()
    mask = (torch.rand(ids.shape, generator=g) < 0.27).long() * attn  # ~260 of ~980 tokens are the policy's
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            loss, n = sft_loss_sum(model, ids, attn, mask, bf16)
            (loss / n).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--avx2", action="store_true", help="hold torch, oneDNN and MKL to AVX2 kernels")
    ap.add_argument("--padding", action="store_true", help="padded rows: attention mask kept vs dropped")
    args = ap.parse_args()
    if args.padding:
        return padding(args.steps, args.repeats)
    if args.avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        argv = [a for a in sys.argv if a != "--avx2"]
        os.execve(sys.executable, [sys.executable, *argv], {**os.environ, **AVX2_ONLY})
    print(f"cpu capability: {cpu_capability()}; auto picks: {choose_precision('auto')}; {load_average()}")
    step_seconds(False, 2, 1, 1)  # warm-up
    rows = {(p, t): step_seconds(p == "bf16", t, args.steps, args.repeats)
            for p in ("fp32", "bf16") for t in (1, 2)}
    base = rows[("fp32", 2)]
    print("| precision | threads | s per SFT step (8 x 980 tokens) | vs fp32 at 2 threads |")
    print("|---|---:|---:|---:|")
    for (p, t), s in rows.items():
        print(f"| {p} | {t} | {s:.3f} | {base / s:.2f}x |")
    print(f"300 quickstart SFT steps: fp32 {300 * base / 60:.1f} min, bf16 {300 * rows[('bf16', 2)] / 60:.1f} min"
          f" (2 threads); {load_average()}")


def padding(steps: int, repeats: int) -> None:
    """Right-padded rows: training drops the mask (questline.train.common.causal_mask); the
    baseline keeps it, as HF does when given one. Alternated, best of `repeats`."""
    print(f"cpu capability: {cpu_capability()}; fp32, 2 threads; {load_average()}")
    causal = train_common.causal_mask
    best = {"mask kept": float("inf"), "mask dropped (causal)": float("inf")}
    for _ in range(repeats):
        for name in best:
            train_common.causal_mask = (lambda a: a) if name == "mask kept" else causal
            best[name] = min(best[name], step_seconds(False, 2, steps, 1, padded=True))
    train_common.causal_mask = causal
    base = best["mask kept"]
    print(f"| attention on 8 right-padded rows ({min(DEMO_LENGTHS)}-{max(DEMO_LENGTHS)} tokens) | s per SFT step | speed-up |")
    print("|---|---:|---:|")
    for name, s in best.items():
        print(f"| {name} | {s:.3f} | {base / s:.2f}x |")
    print(load_average())


if __name__ == "__main__":
    main()
