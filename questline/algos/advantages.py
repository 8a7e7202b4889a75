"""Advantage estimators: pure functions on [B, T] tensors, registered by name.

Signature: fn(token_rewards, mask, group_ids, values=None, step_keys=None, **kw)
-> (advantages, returns), both [B, T] and zero outside `mask` (the policy tokens).
"""

from __future__ import annotations

import torch

from questline.core.registry import Registry

ADVANTAGES = Registry("advantage estimator")
register = ADVANTAGES.register


def compute_advantages(name: str, token_rewards, mask, group_ids, **kw):
    return ADVANTAGES.get(name)(token_rewards, mask, group_ids, **kw)


def group_normalise(scores: torch.Tensor, group_ids: torch.Tensor, *, norm_std: bool = True,
                    eps: float = 1e-6) -> torch.Tensor:
    """score - group mean, divided by (group std + eps) when norm_std.

    A group with one member gets advantage 0: it has no baseline, so it carries no
    signal. (verl returns the raw score there; we deliberately do not, see README.)
    std is the unbiased sample std, as in verl and the GRPO paper.
    """
    adv = torch.zeros_like(scores)
    for g in group_ids.unique():
        idx = group_ids == g
        if idx.sum() < 2:
            continue
        s = scores[idx]
        centred = s - s.mean()
        adv[idx] = centred / (s.std() + eps) if norm_std else centred
    return adv


@register("grpo")
def grpo(token_rewards, mask, group_ids, values=None, step_keys=None, *, norm_std: bool = True,
         eps: float = 1e-6):
    """Outcome advantage: the episode's total reward, normalised within its group
    (samples of the same task) and broadcast over the episode's policy tokens."""
    scores = (token_rewards * mask).sum(-1)
    adv = group_normalise(scores, group_ids, norm_std=norm_std, eps=eps)
    return adv[:, None] * mask, scores[:, None] * mask


@register("dr_grpo")
def dr_grpo(token_rewards, mask, group_ids, values=None, step_keys=None, **kw):
    """Dr. GRPO: GRPO without the std division (pair with token-sum aggregation)."""
    return grpo(token_rewards, mask, group_ids, norm_std=False)
