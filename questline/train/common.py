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


def causal_mask(attention_mask):
    """None when every row is right-padded (ones, then zeros): in a causal model a real
    token never attends to the padding after it, so the mask changes nothing for real
    tokens, and without it SDPA takes its causal kernel (BENCHMARKS.md: SFT steps)."""
    if attention_mask is None or attention_mask.shape[1] < 2:
        return attention_mask
    a = attention_mask.bool()
    return None if bool(a[:, 0].all() and (a[:, :-1] >= a[:, 1:]).all()) else attention_mask


def _head_on_selected(model, input_ids, attention_mask, token_mask):
    sel = token_mask[:, 1:].bool()
    attention_mask = causal_mask(attention_mask)
    if hasattr(model, "get_base_model"):  # a peft LoRA policy: its HF model holds the adapter layers
        model = model.get_base_model()
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if base is not None and head is not None:
        hidden = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = head(hidden[:, :-1][sel])
    else:  # a model we cannot split: full logits, then select
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][sel]
    return logits, input_ids[:, 1:][sel], sel


class TokenLogits(torch.nn.Module):
    """A causal LM whose forward is `selected_logits`: the module DDP and FSDP2 wrap,
    so their hooks run around the forward that training uses (questline.train.distributed)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, token_mask):
        return _head_on_selected(self.lm, input_ids, attention_mask, token_mask)


def _is_token_logits(model) -> bool:
    return isinstance(model, TokenLogits) or isinstance(getattr(model, "module", None), TokenLogits)


def selected_logits(model, input_ids, attention_mask, token_mask, use_autocast: bool = False):
    """Logits only where they are needed: for each position t with token_mask[t] = 1
    (t >= 1), the logits that predict input_ids[t]. Returns (logits [N, V] in fp32,
    targets [N], selection [B, T-1]). The output head is applied to the selected
    hidden states only: with a small model and a large vocabulary the head dominates
    the cost, and in agent trajectories most tokens are observations. `model` is an HF
    causal LM or a (DDP / FSDP2-wrapped) TokenLogits."""
    fn = model if _is_token_logits(model) else lambda *a: _head_on_selected(model, *a)
    with autocast(model, use_autocast):
        logits, targets, sel = fn(input_ids, attention_mask, token_mask)
    return logits.float(), targets, sel


def sequence_logprobs(model, input_ids, attention_mask, *, temperature: float = 1.0,
                      use_autocast: bool = False, with_entropy: bool = False, token_mask=None):
    """[B, T] log p(ids[t] | ids[<t]) from logits / temperature, optionally with the
    per-token entropy of that distribution. Computed where token_mask is 1 (default:
    every token after the first); 0 elsewhere."""
    if token_mask is None:
        token_mask = attention_mask
    logits, targets, sel = selected_logits(model, input_ids, attention_mask, token_mask, use_autocast)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp_all = F.log_softmax(logits, -1)
    logp = torch.zeros(input_ids.shape, dtype=logp_all.dtype, device=logp_all.device)
    logp[:, 1:][sel] = logp_all.gather(-1, targets[:, None])[:, 0]
    if not with_entropy:
        return logp, None
    entropy = torch.zeros_like(logp)
    entropy[:, 1:][sel] = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


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


def clip_grad_norm(model, max_norm: float) -> float:
    """Clip the gradients' global norm; -> the norm before clipping. With FSDP2 the
    gradients are sharded DTensors and so is their norm: its full value is returned."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
