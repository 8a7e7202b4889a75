"""Policy and value losses: pure functions on [B, T] tensors, registered by name.

    fn(logprobs, old_logprobs, advantages, mask, **hp) -> (per-token loss, stats)

`aggregate` reduces per-token losses to a scalar. Hyper-parameters come from the
recipe (clip_low, clip_high, dual_clip, ...); a loss ignores the ones it does not use.

Conventions where verl differs (README "Algorithms" has the table):
  rows="all"     seq-mean-* modes divide by every row, so each sequence weighs 1/B
                 whatever the others hold (rl.aggregation_rows); "non_empty" is the
                 default of verl's agg_loss: rows with no policy token are not counted.
  dual_clip      off in the pure function; the recipe's rl.dual_clip defaults to 3,
                 verl's clip_ratio_c.
"""

from __future__ import annotations

import torch

from questline.core.registry import Registry

LOSSES = Registry("policy loss")
register = LOSSES.register


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


AGGREGATION_ROWS = ("all", "non_empty")


def row_count(mask: torch.Tensor, rows: str = "all") -> int:
    """The seq-mean divisor: every row ("all"), or only rows with a policy token
    ("non_empty", verl's agg_loss default)."""
    if rows not in AGGREGATION_ROWS:
        raise ValueError(f"rows must be one of {', '.join(AGGREGATION_ROWS)}, got '{rows}'")
    return int((mask.sum(-1) > 0).sum()) if rows == "non_empty" else mask.shape[0]


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean",
              normaliser: float | None = None, rows: str = "all") -> torch.Tensor:
    """token-mean: sum over all policy tokens / their count.
    seq-mean-token-mean: sum over sequences of each sequence's token mean / row count.
    seq-mean-token-sum: sum over sequences of each sequence's token sum / row count
    (Dr. GRPO uses this with a constant normaliser).
    The row count is `row_count(mask, rows)`. Pass `normaliser` (the token or row
    count of the whole mini-batch) when gradients are accumulated over micro-batches."""
    if mode == "token-mean":
        return (per_token * mask).sum() / (normaliser or mask.sum().clamp(min=1))
    if mode == "seq-mean-token-mean":
        seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    elif mode == "seq-mean-token-sum":
        seq = (per_token * mask).sum(-1)
    else:
        raise ValueError(f"unknown aggregation '{mode}' (allowed: token-mean, seq-mean-token-mean, "
                         "seq-mean-token-sum)")
    return seq.sum() / (normaliser or max(row_count(mask, rows), 1))


def _clip_stats(ratio, clipped_mask, logprobs, old_logprobs, mask) -> dict[str, float]:
    with torch.no_grad():
        return {
            "clip_frac": masked_mean(clipped_mask.float(), mask).item(),
            "ratio_mean": masked_mean(ratio, mask).item(),
            "approx_kl": masked_mean(old_logprobs - logprobs, mask).item(),
        }


@register("ppo_clip")
def ppo_clip(logprobs, old_logprobs, advantages, mask, *, clip_low: float = 0.2,
             clip_high: float = 0.2, dual_clip: float | None = None, **_):
    """PPO clipped surrogate with separate low/high clip (clip_high > clip_low is
    DAPO's clip-higher). dual_clip = c > 1 also bounds the loss of negative-advantage
    tokens by -c * A (Ye et al. 2020), so a huge ratio cannot blow it up."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        loss = torch.where(advantages < 0, torch.minimum(loss, -advantages * dual_clip), loss)
    return loss, _clip_stats(ratio, clipped > unclipped, logprobs, old_logprobs, mask)


@register("gspo")
def gspo(logprobs, old_logprobs, advantages, mask, *, clip_low: float = 3e-4, clip_high: float = 4e-4, **_):
    """GSPO (Zheng et al. 2025), token form: the ratio is the sequence's geometric
    mean ratio s = exp(mean_t (logp - old)), carried on each token as
    sg(s) * p_t / sg(p_t) so token advantages still apply; clipped at sequence level
    (the paper's ranges are ~1e-4, far tighter than PPO's)."""
    log_ratio = (logprobs - old_logprobs) * mask
    seq_log_ratio = log_ratio.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1)
    ratio = torch.exp(seq_log_ratio.detach() + logprobs - logprobs.detach())
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    return loss, _clip_stats(ratio, clipped > unclipped, logprobs, old_logprobs, mask)


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens.
    k1: log ratio; k2: half its square; k3: exp(ref - pi) - (ref - pi) - 1, unbiased
    and >= 0 (Schulman's low-variance estimator)."""
    diff = ref_logprobs - logprobs
    if kind == "k1":
        return -diff
    if kind == "k2":
        return 0.5 * diff ** 2
    if kind == "k3":
        return torch.exp(diff) - diff - 1
    raise ValueError(f"unknown KL estimator '{kind}' (allowed: k1, k2, k3)")


def truncated_importance_weights(old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor,
                                 cap: float = 2.0) -> torch.Tensor:
    """Off-policy correction (truncated IS): min(pi_old / pi_rollout, cap) per token,
    for when the engine that sampled differs from the trainer (other numerics, or a
    stale policy in asynchronous training). Multiply the per-token loss by it."""
    return torch.exp(old_logprobs - rollout_logprobs).clamp(max=cap).detach()


def logprob_mismatch(trainer_logprobs: torch.Tensor, engine_logprobs: torch.Tensor,
                     mask: torch.Tensor) -> dict[str, float]:
    """How far the engine that sampled is from the trainer on the sampled tokens:
    mean and max |logp_engine - logp_trainer| over the masked tokens, and the k3
    estimate of KL(engine || trainer) (the tokens are the engine's samples)."""
    on = mask > 0
    if not bool(on.any()):
        return {"engine_logp_diff_mean": 0.0, "engine_logp_diff_max": 0.0, "engine_kl_k3": 0.0}
    trainer, engine = trainer_logprobs[on].double(), engine_logprobs[on].double()
    diff = (engine - trainer).abs()
    return {"engine_logp_diff_mean": diff.mean().item(), "engine_logp_diff_max": diff.max().item(),
            "engine_kl_k3": kl_penalty(engine, trainer, "k3").mean().item()}


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float | None = 0.2) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token critic loss 0.5 * (V - R)^2; with `clip`, PPO's clipped value loss
    max((V - R)^2, (V_old + clamp(V - V_old, +-clip) - R)^2) / 2."""
    err = (values - returns) ** 2
    if clip is not None:
        clipped = old_values + (values - old_values).clamp(-clip, clip)
        err_clipped = (clipped - returns) ** 2
        with torch.no_grad():
            frac = masked_mean((err_clipped > err).float(), mask).item()
        err = torch.maximum(err, err_clipped)
    else:
        frac = 0.0
    with torch.no_grad():
        stats = {"value_clip_frac": frac, "value_mean": masked_mean(values, mask).item(),
                 "value_error": masked_mean((values - returns).abs(), mask).item()}
    return 0.5 * err, stats
