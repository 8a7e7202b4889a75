"""LoRA vs full fine-tuning: trainable parameters and SFT step time on the same
TravelPlanner-mini oracle episodes (the quickstart world), one torch thread.

    python benchmarks/lora.py            # the xs preset (1M parameters)
    python benchmarks/lora.py --model smollm2-135m-instruct --steps 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from questline.agent import ChatTokens
from questline.data.corpus import oracle_texts
from questline.experiments.recipe import LoraSettings, SFTConfig
from questline.models import build_model, resolve_policy, train_tokenizer
from questline.models.lora import add_lora, trainable_fraction
from questline.rollout import rollout
from questline.train.pipeline import task_sets
from questline.train.rl import rollout_config
from questline.train.sft import train_sft

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def step_seconds(model, demos, pad_id: int, batch: int) -> float:
    """Median seconds per SFT optimizer step (forward, backward, AdamW), the first step left out."""
    cfg = SFTConfig(epochs=1, lr=1e-4, batch_size=batch, micro_batch_size=batch, warmup_ratio=0.0)
    stamps = [time.perf_counter()]
    train_sft(model, demos, cfg, pad_id=pad_id, seed=0, use_autocast=False,
              log=lambda step, metrics: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="xs", help="xs | s | m | smollm2-135m-instruct | an HF dir")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from questline.cli import _recipe
    recipe = _recipe("quickstart", [])
    train, _ = task_sets(recipe)
    tasks = train.batch(0, (args.steps + 1) * args.batch)  # the first step warms up
    if args.model in ("xs", "s", "m"):
        tok = train_tokenizer(oracle_texts(train.batch(0, 300), recipe.env.config), vocab_size=2048)
        base = build_model(args.model, tok, seed=0)
    else:
        base, tok = resolve_policy(args.model)
    chat = ChatTokens(tok)
    demos = rollout(None, chat, tasks, rollout_config(recipe, max_context_tokens=8192), policy="oracle",
                    env_cfg=recipe.env.config)
    mean_len = sum(len(d.ids) for d in demos) / len(demos)
    print(f"{args.model}: {sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters, "
          f"{len(demos)} TravelPlanner-mini oracle episodes of {mean_len:.0f} tokens, batch {args.batch}, 1 thread")
    rows = [("full fine-tuning", None)] + [(f"LoRA r{r} {name}", LoraSettings(r=r, alpha=2 * r, target_modules=mods))
                                           for r, name, mods in ((8, "attention", ATTENTION),
                                                                 (16, "all linear", ALL_LINEAR))]
    full = None
    for label, lora in rows:
        model = copy.deepcopy(base)
        if lora is not None:
            add_lora(model, lora)
        trainable, total = trainable_fraction(model)
        secs = step_seconds(model, demos, chat.eot_id, args.batch)
        full = full or secs
        print(f"  {label:<24} trainable {trainable:>10,} of {total:>11,} ({trainable / total:6.2%})  "
              f"{secs:6.2f} s/step  ({secs / full:.2f}x full)")


if __name__ == "__main__":
    main()
