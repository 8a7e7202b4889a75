"""Time of one RL update (GRPO, ppo_clip, gradient accumulation) in one process and
data-parallel over the processes torchrun starts (DDP, then FSDP2), on the same
global batch: 32 rows of 384 tokens, micro-batches of 4, one optimizer step.

    python benchmarks/train_parallel.py [--preset m] [--threads 1]
    GLOO_SOCKET_IFNAME=lo torchrun --nproc_per_node 2 --master_addr 127.0.0.1 benchmarks/train_parallel.py

Each process uses --threads torch threads (1: one core a process, the fair comparison
on a 2-core machine). Prints the median of --repeats timed updates after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from questline.core import Batch
from questline.experiments.recipe import RLConfig, recipe_from_dict
from questline.models.architectures import recipe_model_config
from questline.train.common import TokenLogits, make_optimizer
from questline.train.distributed import SINGLE, Parallel
from questline.train.rl import rl_update

ROWS, LENGTH = 32, 384
CONFIG = RLConfig(micro_batch_size=4, minibatch_size=ROWS, lr=1e-5)


def batch(vocab: int) -> Batch:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (ROWS, LENGTH), generator=g)
    mask = torch.zeros(ROWS, LENGTH)
    rewards = torch.zeros(ROWS, LENGTH)
    for i in range(ROWS):
        for turn in range(4):
            mask[i, 60 + 80 * turn: 80 + 80 * turn] = 1
        rewards[i, 60 + 80 * 3 + 19] = float(i % 2)  # on the last policy token: GRPO has a signal
    return Batch(input_ids=ids, attention_mask=torch.ones(ROWS, LENGTH, dtype=torch.long), loss_mask=mask,
                 old_logprobs=torch.zeros(ROWS, LENGTH), token_rewards=rewards,
                 group_ids=torch.arange(ROWS) // 8)


def timed_updates(model, par: Parallel, repeats: int) -> float:
    trained = par.wrap(TokenLogits(model)) if par.on else model
    opt = make_optimizer(trained, CONFIG.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    times = []
    for _ in range(repeats + 1):
        b = batch(model.config.vocab_size)
        if par.on:
            torch.distributed.barrier()
        t0 = time.perf_counter()
        stats = rl_update(trained, None, opt, sched, b, CONFIG, temperature=1.0, use_autocast=False, parallel=par)
        assert "skipped_update" not in stats
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM
    config, _ = recipe_model_config(recipe_from_dict({"model": {"preset": args.preset, "vocab_size": 2048}}))
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in base.parameters())
    if int(os.environ.get("WORLD_SIZE", 1)) == 1:
        print(f"1 process, {args.threads} thread(s), preset {args.preset} ({n / 1e6:.1f}M): "
              f"{timed_updates(base, SINGLE, args.repeats):.2f} s an update")
        return
    torch.distributed.init_process_group("gloo")
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    for kind in ("ddp", "fsdp2"):
        import copy
        s = timed_updates(copy.deepcopy(base), Parallel(kind, rank, world), args.repeats)
        if rank == 0:
            print(f"{world} processes {kind}, {args.threads} thread(s) each, preset {args.preset} "
                  f"({n / 1e6:.1f}M): {s:.2f} s an update")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
