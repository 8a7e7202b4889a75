from questline.algos.advantages import ADVANTAGES, compute_advantages
from questline.algos.losses import LOSSES, aggregate, kl_penalty, masked_mean

__all__ = ["ADVANTAGES", "LOSSES", "aggregate", "compute_advantages", "kl_penalty", "masked_mean"]
