from questline.rewards import constraints  # noqa: F401  (registers the tp_* schemes)
from questline.rewards.shaping import REWARDS, check_reward_args, shape_rewards

__all__ = ["REWARDS", "check_reward_args", "shape_rewards"]
