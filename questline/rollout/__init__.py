from questline.rollout.runner import RolloutConfig, rollout

__all__ = ["RolloutConfig", "rollout"]
