from questline.algos.advantages import ADVANTAGES, compute_advantages, episode_advantages
from questline.algos.losses import (
           LOSSES,
           aggregate,
           kl_penalty,
           logprob_mismatch,
           masked_mean,
           row_count,
           truncated_importance_weights,
           value_loss,
)

CRITIC_ESTIMATORS = ("gae", "gae_turn")  # estimators that need a learned value model

__all__ = ["ADVANTAGES", "CRITIC_ESTIMATORS", "LOSSES", "aggregate", "compute_advantages", "episode_advantages", "kl_penalty", "logprob_mismatch",
           "masked_mean", "row_count", "truncated_importance_weights", "value_loss"]
