"""Policy losses: pure functions on [B, T] tensors, registered by name.

Signature: fn(logprobs, old_logprobs, advantages, mask, **kw) -> (per-token loss, stats);
`aggregate` reduces per-token losses to a scalar.
"""

from __future__ import annotations

import torch

from questline.core.registry import Registry

LOSSES = Registry("policy loss")
register = LOSSES.register


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean",
              normaliser: float | None = None) -> torch.Tensor:
    """token-mean: sum over all policy tokens / their count (pass `normaliser`, the
    count over the whole mini-batch, when gradients are accumulated over micro-batches).
    seq-mean-token-mean: mean over sequences of each sequence's token mean.
    seq-mean-token-sum: mean over sequences of each sequence's token sum (Dr. GRPO
    uses this with a constant normaliser)."""
    if mode == "token-mean":
        return (per_token * mask).sum() / (normaliser or mask.sum().clamp(min=1))
    if mode == "seq-mean-token-mean":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    if mode == "seq-mean-token-sum":
        return (per_token * mask).sum(-1).mean()
    raise ValueError(f"unknown aggregation '{mode}'")


@register("ppo_clip")
def ppo_clip(logprobs, old_logprobs, advantages, mask, *, clip_low: float = 0.2,
             clip_high: float = 0.2):
    """PPO clipped surrogate; clip_high > clip_low is DAPO's clip-higher."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    with torch.no_grad():
        stats = {
            "clip_frac": masked_mean((clipped > unclipped).float(), mask).item(),
            "ratio_mean": masked_mean(ratio, mask).item(),
            "approx_kl": masked_mean(old_logprobs - logprobs, mask).item(),
        }
    return loss, stats


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens.
    k1: log ratio; k3: exp(ref - pi) - (ref - pi) - 1, unbiased and >= 0 (Schulman)."""
    diff = ref_logprobs - logprobs
    if kind == "k1":
        return -diff
    if kind == "k3":
        return torch.exp(diff) - diff - 1
    raise ValueError(f"unknown KL estimator '{kind}' (allowed: k1, k3)")
