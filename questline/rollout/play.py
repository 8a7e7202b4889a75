"""Interactive play (`questline play`): a person watches a policy act and, at any
step, types a plan (steering: it is placed in context as the current plan and the
model writes the action under it) or an action of their own.

    <enter>        the model acts
    plan: <text>   the model acts under this plan
    <action>       this action is taken instead of the model's
    quit           stop the episode
"""

from __future__ import annotations

from collections.abc import Callable

from questline.agent import ChatTokens
from questline.agent.planning import PlanningConfig, PlanTracker
from questline.core import Task, Trajectory, derive_seed
from questline.inference import Generation, SamplingParams
from questline.rollout.runner import RolloutConfig, _play_turn, prepare_turn, start_episode


def play_episode(engine, chat: ChatTokens, task: Task, cfg: RolloutConfig, *, read: Callable[[str], str],
                 write: Callable[[str], None], env_cfg: dict | None = None, seed: int = 0) -> Trajectory:
    e = start_episode(task, 0, 0, chat, cfg, seed=seed, env_cfg=env_cfg)
    if e.traj.done:
        write(f"the environment failed to start: {e.traj.infra_error}")
        return e.traj
    if e.planner is None:  # typed plans need a plan memory even when planning is off
        e.planner = PlanTracker(PlanningConfig("never"))
    write(f"[task {task.id}]\n{e.obs}")
    turn = 0
    while not e.traj.done:
        line = read(f"step {turn} (enter = model, 'plan: ...', an action, or 'quit')> ").strip()
        if line == "quit":
            break
        human = bool(line) and not line.lower().startswith("plan:")
        if line.lower().startswith("plan:"):
            e.planner.give(line[5:])
        prompt = prepare_turn(e, chat, cfg, turn, forced=not human)
        if human:
            ids = chat.action_ids(line)
            gen = Generation(ids, [0.0] * len(ids), "stop")
        else:
            budget = e.planner.max_new_tokens(turn, cfg.max_new_tokens)
            params = SamplingParams(cfg.temperature, cfg.top_p, budget, (chat.eot_id,))
            gen = engine.generate([prompt], params, None, seed=derive_seed(seed, "play", turn))[0]
        _play_turn(e, chat, gen, 0.0, cfg, turn)
        last = e.traj.turns[-1]
        plan = f"  (plan: {e.planner.plan})" if e.planner.plan else ""
        write(f"{'you' if human else 'model'}: {last.action.strip()}{plan}\n{last.observation}")
        turn += 1
    if e.traj.metrics:
        write("episode: " + ", ".join(f"{k} {v:g}" for k, v in e.traj.metrics.items()))
    return e.traj
