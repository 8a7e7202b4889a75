"""Peak memory and time of the HF engine's prefill: every position's logits (the old
behaviour) vs the last position's only (`logits_to_keep=1`). The logits of a prefill
are batch x prompt length x vocabulary floats: with SmolLM2's 49,152-token vocabulary
that is the biggest tensor of the call.

    python benchmarks/prefill_memory.py                 # SmolLM2-135M, 16 prompts x 512 tokens
    python benchmarks/prefill_memory.py --batch 32 --tokens 256

Each mode runs in a fresh process (peak RSS is a process-wide high-water mark).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(mode: str, batch: int, tokens: int) -> dict:
    import torch

    from questline.inference import HFEngine, SamplingParams
    from questline.models import resolve_policy
    torch.set_num_threads(2)
    model, tok = resolve_policy("smollm2-135m-instruct")
    engine = HFEngine(model.eval(), tok.pad_token_id or 0, reuse_cache=False)
    if mode == "all":
        engine._last_logits = {}  # every position's logits, as before
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 40000, (tokens - i,), generator=g).tolist() for i in range(batch)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    with torch.no_grad():
        out = engine.generate(prompts, SamplingParams(max_new_tokens=1, temperature=0.0))
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "peak_mib": peak / 1024, "prefill_mib": (peak - before) / 1024, "seconds": secs,
            "first_tokens": [g.ids[0] for g in out]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--mode", choices=["all", "last"])  # internal: one measurement
    a = ap.parse_args()
    if a.mode:
        print(json.dumps(measure(a.mode, a.batch, a.tokens)))
        return
    runs = {}
    for mode in ("all", "last"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--batch", str(a.batch), "--tokens",
                              str(a.tokens)], capture_output=True, text=True, check=True)
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs["all"]["first_tokens"] == runs["last"]["first_tokens"], "the two modes disagree"
    print(f"SmolLM2-135M prefill, {a.batch} prompts of {a.tokens - a.batch + 1}-{a.tokens} tokens, 2 threads")
    print("| logits kept | peak RSS (MiB) | prefill's growth (MiB) | seconds |")
    print("|---|---:|---:|---:|")
    for mode, label in (("all", "every position"), ("last", "last position")):
        r = runs[mode]
        print(f"| {label} | {r['peak_mib']:.0f} | {r['prefill_mib']:.0f} | {r['seconds']:.2f} |")
    print(f"growth ratio: {runs['all']['prefill_mib'] / max(runs['last']['prefill_mib'], 1):.1f}x less memory, "
          f"time ratio {runs['all']['seconds'] / runs['last']['seconds']:.2f}x (same first tokens)")


if __name__ == "__main__":
    main()
