"""Supervised fine-tuning on demonstration trajectories: next-token loss on the
policy tokens only (the loss mask), token-mean over each optimizer step,
gradient accumulation over micro-batches, warm-up + cosine schedule."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from questline.core import Trajectory, derive_seed
from questline.models.device import model_device
from questline.train.common import (
    TokenLogits,
    clip_grad_norm,
    make_optimizer,
    pad_batch,
    selected_logits,
    warmup_cosine,
)
from questline.train.distributed import SINGLE, Parallel


def sft_loss_sum(model, ids, attn, mask, use_autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of next-token NLL over policy tokens, number of those tokens)."""
    logits, targets, sel = selected_logits(model, ids, attn, mask, use_autocast)
    return F.cross_entropy(logits, targets, reduction="sum"), sel.sum()


def train_sft(model, demos: list[Trajectory], cfg, *, pad_id: int, seed: int, use_autocast: bool,
              log=None, progress=None, parallel: Parallel = SINGLE,
              gradient_checkpointing: bool = False) -> list[float]:
    """`cfg` is a recipe's SFTConfig. `log(step, metrics)` is called per optimizer step.
    Returns the loss per step. Window-context episodes train as one row per turn
    (`batch_size` then counts rows). With several processes every rank calls this with
    the same demos and trains on its share of each step's rows (questline.train.distributed)."""
    par = parallel
    demos = [row for d in demos for row in d.rows()]
    if not demos:  # nothing to imitate: the model stays as it is (the caller says so)
        return []
    steps_per_epoch = max(1, len(demos) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trained = par.wrap(TokenLogits(model)) if par.on else model
    par.park(model, keep=par.main)
    opt = make_optimizer(trained, cfg.lr, cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, total, warmup, cfg.min_lr_ratio))
    trained.train()
    device = model_device(model)
    losses, step = [], 0
    for epoch in range(cfg.epochs):
        order = list(range(len(demos)))
        random.Random(derive_seed(seed, "sft-epoch", epoch)).shuffle(order)
        for s in range(steps_per_epoch):
            batch = [demos[i] for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
            n_tokens = sum(sum(tr.loss_mask[1:]) for tr in batch)
            total_loss = torch.zeros((), dtype=torch.float64)
            parts = par.micro_batches(len(batch), cfg.micro_batch_size)
            for k, (rows, weight) in enumerate(parts):
                ids, attn, mask = (x.to(device) for x in pad_batch(batch[rows.start:rows.stop], pad_id))
                with par.accumulate([trained], sync=k == len(parts) - 1):
                    loss_sum, _ = sft_loss_sum(trained, ids, attn, mask, use_autocast)
                    (loss_sum * (weight * par.loss_scale) / n_tokens).backward()
                total_loss += weight * loss_sum.item() / n_tokens
            total_loss = float(par.all_sum(total_loss))
            grad_norm = clip_grad_norm(trained, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(total_loss)
            if log:
                log(step, {"loss": total_loss, "grad_norm": grad_norm,
                           "lr": sched.get_last_lr()[0], "epoch": epoch})
            if progress:
                progress(step, total, f"loss {total_loss:.3f}")
            step += 1
    trained.eval()
    par.sync(trained, model)
    if gradient_checkpointing:
        model.gradient_checkpointing_disable()
    return losses
