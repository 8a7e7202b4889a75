"""Reward schemes over constraint metrics, as in the TravelPlanner RL studies.

They read the per-episode metrics a constraint-judged environment reports
(TravelPlanner's evaluator): delivered, commonsense_micro, hard_micro,
commonsense_macro, hard_macro, final_pass. The reward sits on the last turn.

tp_success     final pass, 0/1 (STAR's SUCCESS)
tp_sum         mean of the five sub-metrics: dense (STAR's SUM)
tp_macro       mean of the commonsense and hard macro passes: semi-sparse (STAR's MACRO)
tp_curriculum  SUM moving to SUCCESS over training: weight on SUCCESS rises linearly
               from 0 at progress `start` to 1 at `end` (STAR's CURRICULUM)
tp_staged      Planner-R1: weights over [schema, commonsense micro, hard micro,
               commonsense macro, hard macro, pass], changed in stages; the reward
               is the weighted mean. Default stages: all 1 (dense), then the macro
               terms and pass, then pass only, switching at 1/3 and 2/3 of training.

Every scheme takes `format_penalty`: an undelivered or malformed plan gets
-format_penalty (default 0: STAR gives format errors reward 0).
"""

from __future__ import annotations

from questline.core import Trajectory
from questline.rewards.shaping import _final, register

SUB_METRICS = ("commonsense_micro", "hard_micro", "commonsense_macro", "hard_macro", "final_pass")
STAGED_TERMS = ("delivered",) + SUB_METRICS
DEFAULT_STAGES = (
    {"until": 1 / 3, "weights": [1, 1, 1, 1, 1, 1]},
    {"until": 2 / 3, "weights": [0, 0, 0, 1, 1, 1]},
    {"until": 1.0, "weights": [0, 0, 0, 0, 0, 1]},
)


def _metric(traj: Trajectory, key: str) -> float:
    return float(traj.metrics.get(key, 0.0))


def _reward(traj: Trajectory, value: float, format_penalty: float) -> list[float]:
    if not _metric(traj, "delivered"):
        value = -format_penalty
    return _final(traj, value)


def sum_value(traj: Trajectory) -> float:
    return sum(_metric(traj, k) for k in SUB_METRICS) / len(SUB_METRICS)


@register("tp_success")
def tp_success(traj: Trajectory, progress: float = 0.0, format_penalty: float = 0.0) -> list[float]:
    return _reward(traj, _metric(traj, "final_pass"), format_penalty)


@register("tp_sum")
def tp_sum(traj: Trajectory, progress: float = 0.0, format_penalty: float = 0.0) -> list[float]:
    return _reward(traj, sum_value(traj), format_penalty)


@register("tp_macro")
def tp_macro(traj: Trajectory, progress: float = 0.0, format_penalty: float = 0.0) -> list[float]:
    value = (_metric(traj, "commonsense_macro") + _metric(traj, "hard_macro")) / 2
    return _reward(traj, value, format_penalty)


@register("tp_curriculum")
def tp_curriculum(traj: Trajectory, progress: float = 0.0, format_penalty: float = 0.0,
                  start: float = 0.0, end: float = 1.0) -> list[float]:
    w = min(max((progress - start) / max(end - start, 1e-9), 0.0), 1.0)
    value = (1 - w) * sum_value(traj) + w * _metric(traj, "final_pass")
    return _reward(traj, value, format_penalty)


def stage_weights(stages, progress: float) -> list[float]:
    for stage in stages:
        if progress < stage["until"]:
            return list(stage["weights"])
    return list(stages[-1]["weights"])


@register("tp_staged")
def tp_staged(traj: Trajectory, progress: float = 0.0, format_penalty: float = 0.0,
              stages=DEFAULT_STAGES) -> list[float]:
    weights = stage_weights(stages, progress)
    if len(weights) != len(STAGED_TERMS) or sum(weights) <= 0:
        raise ValueError(f"tp_staged: each stage needs {len(STAGED_TERMS)} weights with a positive sum "
                         f"over {list(STAGED_TERMS)}, got {weights}")
    value = sum(w * _metric(traj, k) for w, k in zip(weights, STAGED_TERMS)) / sum(weights)
    return _reward(traj, value, format_penalty)
