"""Pieces shared by SFT and RL: log-probabilities, schedules, optimiser, autocast."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from questline.core import Trajectory


def autocast(model, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    device = next(model.parameters()).device.type
    return torch.autocast(device, dtype=torch.bfloat16)


def sequence_logprobs(model, input_ids, attention_mask, *, temperature: float = 1.0,
                      use_autocast: bool = False, with_entropy: bool = False):
    """[B, T] log p(ids[t] | ids[<t]) (0 at t = 0), from logits / temperature,
    optionally with the per-token entropy of that distribution."""
    with autocast(model, use_autocast):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    logits = logits[:, :-1].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp_all = F.log_softmax(logits, -1)
    logp = logp_all.gather(-1, input_ids[:, 1:, None])[..., 0]
    logp = F.pad(logp, (1, 0))
    if not with_entropy:
        return logp, None
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, F.pad(entropy, (1, 0))


def pad_batch(trajs: list[Trajectory], pad_id: int):
    """(input_ids, attention_mask, loss_mask) right-padded tensors for trajectories."""
    t = max(len(tr.ids) for tr in trajs)
    ids = torch.full((len(trajs), t), pad_id, dtype=torch.long)
    attn = torch.zeros((len(trajs), t), dtype=torch.long)
    mask = torch.zeros((len(trajs), t))
    for i, tr in enumerate(trajs):
        ids[i, : len(tr.ids)] = torch.tensor(tr.ids)
        attn[i, : len(tr.ids)] = 1
        mask[i, : len(tr.ids)] = torch.tensor(tr.loss_mask, dtype=torch.float32)
    return ids, attn, mask


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up, then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_constant(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup else 1.0


def make_optimizer(model, lr: float, weight_decay: float = 0.0, eps: float = 1e-8,
                   betas: tuple[float, float] = (0.9, 0.95)) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
