from questline.rewards.shaping import REWARDS, shape_rewards

__all__ = ["REWARDS", "shape_rewards"]
