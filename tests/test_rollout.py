"""Token-in-token-out: what the trainer sees is exactly what was sampled plus the
observation suffixes, and the loss mask covers exactly the policy tokens."""

import pytest

from questline.agent import ChatTokens, retokenize_check
from questline.core import Trajectory, Turn
from questline.envs import generate_tasks
from questline.inference import HFEngine
from questline.rollout import RolloutConfig, rollout


def model_rollout(model, tok, env="toy/maze", n=4, group=3, **cfg):
    chat = ChatTokens(tok)
    tasks = generate_tasks(env, n, "medium", seed=7)
    engine = HFEngine(model, tok.pad_token_id)
    cfg = RolloutConfig(**{"max_turns": 6, "max_new_tokens": 8, **cfg})
    return chat, rollout(engine, chat, tasks, cfg, group_size=group, seed=3), engine


def rebuild(chat: ChatTokens, traj: Trajectory) -> list[int]:
    """The ids a trajectory must hold: prompt + per turn (sampled ids, observation suffix)."""
    ids = chat.prompt_ids(traj.system, traj.first_observation)
    for i, turn in enumerate(traj.turns):
        ids += traj.ids[turn.start:turn.end]
        if traj.ids[turn.end - 1] != chat.eot_id:
            ids.append(chat.eot_id)  # a turn cut at max_new_tokens is closed
        if i + 1 < len(traj.turns):
            ids += chat.observation_ids(turn.observation)
    return ids


def test_ids_are_sampled_ids_plus_observation_suffixes(toy_model, toy_tokenizer):
    chat, trajs, _ = model_rollout(toy_model, toy_tokenizer)
    assert len(trajs) == 12 and all(len(t.turns) >= 1 for t in trajs)
    assert any(len(t.turns) > 1 for t in trajs)
    for t in trajs:
        assert t.ids == rebuild(chat, t)
        assert len(t.ids) == len(t.loss_mask) == len(t.logprobs)


def test_loss_mask_covers_exactly_the_policy_tokens(toy_model, toy_tokenizer):
    _, trajs, _ = model_rollout(toy_model, toy_tokenizer)
    for t in trajs:
        policy = set()
        for turn in t.turns:
            policy |= set(range(turn.start, turn.end))
        assert {i for i, m in enumerate(t.loss_mask) if m} == policy
        assert all(lp == 0.0 for i, lp in enumerate(t.logprobs) if i not in policy)
        assert all(lp <= 0.0 for i, lp in enumerate(t.logprobs) if i in policy)


def test_group_members_share_the_start_state(toy_model, toy_tokenizer):
    _, trajs, _ = model_rollout(toy_model, toy_tokenizer, group=4)
    for g in range(4):
        members = [t for t in trajs if t.group == g]
        assert len(members) == 4
        assert len({tuple(t.ids[: t.prompt_len]) for t in members}) == 1


def test_truncation_flags(toy_model, toy_tokenizer):
    _, trajs, _ = model_rollout(toy_model, toy_tokenizer, max_turns=1)
    assert all(t.truncated and t.truncation == "max_turns" for t in trajs if not t.metrics.get("success"))
    _, trajs, _ = model_rollout(toy_model, toy_tokenizer, max_context_tokens=90)
    assert any(t.truncation == "max_tokens" for t in trajs)
    assert all(len(t.ids) <= 90 for t in trajs)


def test_cached_engine_forwards_each_token_once(toy_model, toy_tokenizer):
    _, trajs, engine = model_rollout(toy_model, toy_tokenizer)
    for t in trajs:  # every id up to the last sampled one (never fed) passes through once
        assert t.tokens_forwarded == t.turns[-1].end - 1
    assert engine.tokens_forwarded == sum(t.tokens_forwarded for t in trajs)


@pytest.mark.parametrize("env", ["toy/maze", "toy/shop"])
def test_drift_check_clean_on_trained_tokenizer(toy_tokenizer, env):
    chat = ChatTokens(toy_tokenizer)
    tasks = [t for lvl in ("easy", "hard") for t in generate_tasks(env, 5, lvl, seed=1)]
    for traj in rollout(None, chat, tasks, RolloutConfig(max_turns=30), policy="oracle"):
        assert traj.success
        report = retokenize_check(toy_tokenizer, traj)
        assert report.clean, str(report)


def test_drift_check_reports_a_non_canonical_tokenisation(toy_tokenizer):
    chat = ChatTokens(toy_tokenizer)
    task = generate_tasks("toy/maze", 1, "easy", seed=2)[0]
    traj = rollout(None, chat, [task], RolloutConfig(), policy="oracle")[0]
    turn = traj.turns[0]
    spelled = [toy_tokenizer.convert_tokens_to_ids(c) for c in turn.action] + [chat.eot_id]
    assert spelled != traj.ids[turn.start:turn.end]  # a valid but non-canonical spelling
    bad = Trajectory(task=task, system=traj.system, first_observation=traj.first_observation,
                     ids=traj.ids[:turn.start] + spelled, turns=[Turn(turn.action, "", 0.0, turn.start,
                                                                     turn.start + len(spelled))])
    report = retokenize_check(toy_tokenizer, bad)
    assert not report.clean and report.first_mismatch == turn.start


def test_drift_check_clean_on_smollm2_tokenizer():
    from questline.models import smollm2_path
    try:
        path = smollm2_path()
    except Exception as e:  # package not installed
        pytest.skip(f"SmolLM2 unavailable: {e}")
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    chat = ChatTokens(tok)
    for env in ("toy/maze", "toy/shop"):
        tasks = generate_tasks(env, 4, "hard", seed=5)
        for traj in rollout(None, chat, tasks, RolloutConfig(max_turns=30), policy="oracle"):
            report = retokenize_check(tok, traj)
            assert report.clean, str(report)
