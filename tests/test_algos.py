import math

import pytest
import torch

from questline.algos import ADVANTAGES, LOSSES, aggregate, compute_advantages, kl_penalty


def test_grpo_normalises_within_groups_and_broadcasts_over_policy_tokens():
    rewards = torch.zeros(5, 4)
    rewards[:, -1] = torch.tensor([1.0, 0.0, 0.0, 1.0, 5.0])  # groups: [0,0,0,1,2]
    mask = torch.tensor([[0, 1, 1, 1]] * 5, dtype=torch.float32)
    groups = torch.tensor([0, 0, 0, 1, 2])
    adv, ret = compute_advantages("grpo", rewards, mask, groups)
    s = torch.tensor([1.0, 0.0, 0.0])
    expected = (s - s.mean()) / (s.std() + 1e-6)
    assert torch.allclose(adv[:3, 1], expected)
    assert torch.all(adv[:, 0] == 0)  # not a policy token
    assert torch.allclose(adv[:3, 1:], expected[:, None].expand(3, 3))
    assert torch.all(adv[3:] == 0)  # one-member groups have no baseline -> no signal
    assert ret[4, 1] == 5.0


def test_dr_grpo_skips_std():
    rewards = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    mask = torch.ones(2, 2)
    adv, _ = compute_advantages("dr_grpo", rewards, mask, torch.tensor([0, 0]))
    assert torch.allclose(adv[:, 0], torch.tensor([1.0, -1.0]))


def test_equal_rewards_give_zero_advantage():
    adv, _ = ADVANTAGES["grpo"](torch.ones(4, 3), torch.ones(4, 3), torch.zeros(4, dtype=torch.long))
    assert torch.all(adv == 0)


def test_ppo_clip_matches_hand_computation():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]])) + math.log(0.1)
    old = torch.full((1, 3), math.log(0.1))
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    mask = torch.ones(1, 3)
    loss, stats = LOSSES["ppo_clip"](logp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    # ratio 1.5 with A>0 clipped at 1.28; ratio 0.5 with A<0 clipped at 0.8; ratio 1 unclipped
    assert torch.allclose(loss, torch.tensor([[-1.28, 0.8, -1.0]]), atol=1e-6)
    assert stats["clip_frac"] == pytest.approx(2 / 3)


def test_token_mean_with_global_normaliser_equals_full_batch_mean():
    x = torch.randn(4, 5)
    mask = (torch.rand(4, 5) > 0.3).float()
    full = aggregate(x, mask, "token-mean")
    n = mask.sum()
    parts = aggregate(x[:2], mask[:2], "token-mean", n) + aggregate(x[2:], mask[2:], "token-mean", n)
    assert torch.allclose(full, parts)


def test_kl_k3_is_nonnegative_and_zero_at_equality():
    a, b = torch.randn(100), torch.randn(100)
    assert torch.all(kl_penalty(a, b, "k3") >= 0)
    assert torch.allclose(kl_penalty(a, a, "k3"), torch.zeros(100))


def test_unknown_estimator_names_the_allowed_ones():
    with pytest.raises(KeyError, match="grpo"):
        compute_advantages("nope", torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1))


# ---------------------------------------------------------------- the full suite
from questline.algos.advantages import gae, group_normalise, returns_to_go  # noqa: E402
from questline.algos.losses import truncated_importance_weights, value_loss  # noqa: E402

# Two turns with an observation in between: [prompt, a, a, obs, obs, a, a, pad]
MASK = torch.tensor([[0, 1, 1, 0, 0, 1, 1, 0]], dtype=torch.float32)
TURNS = torch.tensor([[-1, 0, 0, -1, -1, 1, 1, -1]])


def test_returns_to_go_skip_environment_tokens():
    r = torch.zeros(1, 8)
    r[0, 2], r[0, 6] = 0.5, 1.0  # each turn's reward on its last policy token
    g1 = returns_to_go(r, MASK, 1.0)
    assert g1.tolist() == [[0, 1.5, 1.5, 0, 0, 1.0, 1.0, 0]]
    g = returns_to_go(r, MASK, 0.5)
    assert torch.allclose(g, torch.tensor([[0, 0.375, 0.75, 0, 0, 0.5, 1.0, 0]]))


def test_gae_by_hand_bootstraps_across_the_observation():
    mask = torch.tensor([[1, 1, 0, 1]], dtype=torch.float32)
    r = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    v = torch.tensor([[0.2, 0.4, 9.0, 0.5]])  # the env token's value must be ignored
    adv, ret = gae(r, v, mask, gamma=1.0, lam=0.5)
    # t3: 1 - .5 = .5 ; t1: 0 + .5 - .4 + .5*.5 = .35 ; t0: .4 - .2 + .5*.35 = .375
    assert torch.allclose(adv, torch.tensor([[0.375, 0.35, 0.0, 0.5]]))
    assert torch.allclose(ret, torch.tensor([[0.575, 0.75, 0.0, 1.0]]))


def test_gae_lambda1_gamma1_is_return_minus_value():
    torch.manual_seed(0)
    mask = (torch.rand(6, 20) > 0.4).float()
    r = torch.randn(6, 20) * mask
    v = torch.randn(6, 20)
    adv, _ = compute_advantages("gae", r, mask, torch.arange(6), values=v, gamma=1.0, lam=1.0)
    assert torch.allclose(adv, (returns_to_go(r, mask, 1.0) - v) * mask, atol=1e-5)


def test_gae_turn_by_hand():
    r = torch.zeros(1, 8)
    r[0, 2], r[0, 6] = 0.5, 1.0
    v = torch.tensor([[9.0, 0.3, 7.0, 9.0, 9.0, 0.6, 5.0, 9.0]])  # turn values at tokens 1 and 5
    adv, ret = compute_advantages("gae_turn", r, MASK, torch.zeros(1), values=v, turn_ids=TURNS,
                                  gamma=1.0, lam=1.0)
    # turn 1: 1 - .6 = .4 ; turn 0: .5 + .6 - .3 + .4 = 1.2
    assert torch.allclose(adv, torch.tensor([[0, 1.2, 1.2, 0, 0, 0.4, 0.4, 0]]))
    assert torch.allclose(ret, torch.tensor([[0, 1.5, 1.5, 0, 0, 1.0, 1.0, 0]]))


def test_grpo_by_hand_with_unequal_lengths_and_a_flat_group():
    # group 0: three episodes of lengths 3, 1 and 2 policy tokens; group 1: all equal
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]],
                        dtype=torch.float32)
    r = torch.zeros(5, 4)
    r[0, 2], r[3, 1], r[4, 0] = 1.0, 1.0, 1.0
    adv, _ = compute_advantages("grpo", r, mask, torch.tensor([0, 0, 0, 1, 1]))
    s = 1 / math.sqrt(3)  # group std of [1, 0, 0] (unbiased) ; mean 1/3
    assert torch.allclose(adv[0, :3], torch.full((3,), (2 / 3) / s), atol=1e-5)
    assert torch.allclose(adv[1, 0], torch.tensor(-(1 / 3) / s), atol=1e-5)
    assert adv[1, 1:].abs().sum() == 0 and adv[2, 0] == 0
    assert torch.all(adv[3:] == 0)


def test_grpo_advantages_sum_to_zero_per_group():
    torch.manual_seed(1)
    groups = torch.arange(12) // 4
    r = torch.zeros(12, 6)
    r[:, -1] = torch.rand(12)
    adv, _ = compute_advantages("grpo", r, torch.ones(12, 6), groups)
    for g in range(3):
        assert abs(float(adv[groups == g, 0].sum())) < 1e-5


def test_group_normalise_one_member_group_is_zero():
    assert group_normalise(torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0, 1, 1]))[0] == 0


def test_rloo_baseline_excludes_the_sample_itself():
    r = torch.zeros(4, 2)
    r[:, -1] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    adv, _ = compute_advantages("rloo", r, torch.ones(4, 2), torch.zeros(4, dtype=torch.long))
    assert torch.allclose(adv[:, 0], torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3]))
    # changing sample 0's reward leaves its baseline (the others' mean) unchanged
    r2 = r.clone()
    r2[0, -1] = 5.0
    adv2, _ = compute_advantages("rloo", r2, torch.ones(4, 2), torch.zeros(4, dtype=torch.long))
    assert torch.allclose(adv2[0, 0] - 5.0, adv[0, 0] - 1.0)


def test_reinforce_pp_reaches_earlier_turns_and_is_whitened():
    r = torch.zeros(3, 8)
    r[:, 6] = torch.tensor([1.0, 0.0, 0.5])
    mask = MASK.expand(3, 8)
    adv, ret = compute_advantages("reinforce_pp", r, mask, torch.zeros(3, dtype=torch.long), baseline=False)
    assert torch.all(ret[:, 1] == ret[:, 6])  # the final reward reaches turn 0 (no reset at env tokens)
    on = mask > 0
    assert abs(float(adv[on].mean())) < 1e-5 and abs(float(adv[on].std()) - 1) < 1e-4
    assert adv[0, 1] > adv[2, 1] > adv[1, 1]


def test_gigpo_by_hand():
    # two episodes of one task, two turns each: both start in state 0; turn 1 in
    # states 1 (episode 0, which wins) and 2 (episode 1, which fails)
    r = torch.zeros(2, 8)
    r[0, 6] = 1.0
    mask = MASK.expand(2, 8)
    turns = TURNS.expand(2, 8)
    keys = torch.tensor([[-1, 0, 0, -1, -1, 1, 1, -1], [-1, 0, 0, -1, -1, 2, 2, -1]])
    adv, _ = compute_advantages("gigpo", r, mask, torch.zeros(2, dtype=torch.long), step_keys=keys,
                                turn_ids=turns, step_gamma=0.95, step_weight=1.0)
    e = 0.5 / math.sqrt(0.5)  # episode level: [1, 0] normalised
    # step level: anchor state 0 has returns [0.95, 0] -> +-e; states 1 and 2 are alone -> 0
    expected = torch.tensor([[0, 2 * e, 2 * e, 0, 0, e, e, 0], [0, -2 * e, -2 * e, 0, 0, -e, -e, 0]])
    assert torch.allclose(adv, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp", "gigpo", "gae", "gae_turn"])
def test_every_estimator_is_zero_off_policy_tokens_and_finite(name):
    torch.manual_seed(2)
    mask = MASK.expand(4, 8)
    r = torch.zeros(4, 8)
    r[:, 6] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    keys = torch.where(TURNS >= 0, TURNS, -1).expand(4, 8)
    adv, ret = compute_advantages(name, r, mask, torch.tensor([0, 0, 1, 1]), values=torch.rand(4, 8),
                                  turn_ids=TURNS.expand(4, 8), step_keys=keys)
    assert torch.isfinite(adv).all() and torch.isfinite(ret).all()
    assert torch.all(adv[mask == 0] == 0)


def test_dual_clip_bounds_negative_advantage_loss():
    logp = torch.log(torch.tensor([[10.0, 10.0]]))
    old = torch.zeros(1, 2)
    adv = torch.tensor([[-1.0, 1.0]])
    loss, _ = LOSSES["ppo_clip"](logp, old, adv, torch.ones(1, 2), dual_clip=3.0)
    assert torch.allclose(loss, torch.tensor([[3.0, -1.2]]))  # -A * c ; clipped at 1 + 0.2
    no_dual, _ = LOSSES["ppo_clip"](logp, old, adv, torch.ones(1, 2))
    assert no_dual[0, 0] == pytest.approx(10.0)


def test_gspo_uses_the_sequence_geometric_mean_ratio():
    logp = torch.tensor([[0.1, -0.1, 0.3, 0.0]], requires_grad=True)
    old = torch.zeros(1, 4)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    adv = torch.ones(1, 4)
    loss, stats = LOSSES["gspo"](logp, old, adv, mask, clip_low=0.5, clip_high=0.5)
    s = math.exp((0.1 - 0.1 + 0.3) / 3)
    assert torch.allclose(loss[0, :3], torch.full((3,), -s), atol=1e-6)
    assert stats["ratio_mean"] == pytest.approx(s, rel=1e-5)
    aggregate(loss, mask).backward()
    # token form: d loss / d logp_t = -A * s / n_tokens on every token
    assert torch.allclose(logp.grad[0, :3], torch.full((3,), -s / 3), atol=1e-6)
    tight, st = LOSSES["gspo"](logp.detach(), old, adv, mask)  # default range ~1e-4 clips it
    assert st["clip_frac"] == 1.0 and tight[0, 0] == pytest.approx(-(1 + 4e-4))


def test_aggregation_modes_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert aggregate(x, mask, "token-mean") == pytest.approx(10 / 4)
    assert aggregate(x, mask, "seq-mean-token-mean") == pytest.approx((2 + 4) / 2)
    assert aggregate(x, mask, "seq-mean-token-sum") == pytest.approx((6 + 4) / 2)
    with pytest.raises(ValueError, match="seq-mean-token-sum"):
        aggregate(x, mask, "nope")


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([0.0]), torch.tensor([math.log(0.5)])
    d = math.log(0.5)
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(-d)
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(0.5 * d * d)
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(0.5 - d - 1)


def test_truncated_importance_weights_cap():
    w = truncated_importance_weights(torch.log(torch.tensor([0.5, 0.9])), torch.log(torch.tensor([0.1, 0.9])),
                                     cap=2.0)
    assert torch.allclose(w, torch.tensor([2.0, 1.0]))


def test_value_loss_clipping_by_hand():
    v, old, ret = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 1.0]])
    loss, stats = value_loss(v, old, ret, torch.ones(1, 2), clip=0.2)
    # token 0: unclipped (1-2)^2 = 1, clipped (0.2-2)^2 = 3.24 -> max ; token 1: 1 either way
    assert torch.allclose(loss, torch.tensor([[1.62, 0.5]]))
    assert stats["value_clip_frac"] == 0.5
    plain, _ = value_loss(v, old, ret, torch.ones(1, 2), clip=None)
    assert torch.allclose(plain, torch.tensor([[0.5, 0.5]]))


def test_readme_extending_example_registers_a_working_estimator():
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = readme.split("## Extending", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    exec(code, {})
    try:
        r = torch.zeros(3, 2)
        r[:, -1] = torch.tensor([1.0, 0.0, 0.5])
        adv, _ = compute_advantages("max_baseline", r, torch.ones(3, 2), torch.zeros(3, dtype=torch.long))
        assert torch.allclose(adv[:, 0], torch.tensor([0.0, -1.0, -0.5]))
    finally:
        ADVANTAGES.pop("max_baseline", None)


# ---------------------------------------------------------------- verl's conventions
# Each recipe option's verl mode against verl's formula (verl/trainer/ppo/core_algos.py at
# volcengine/verl b178a3c), written out here independently on a small batch.
from questline.experiments.recipe import RLConfig, recipe_from_dict  # noqa: E402
from questline.train.rl import estimator_kwargs, loss_kwargs  # noqa: E402

# groups [0, 0, 0, 1, 2, 2]: group 1 has one member; two turns with an observation between
GROUPS = torch.tensor([0, 0, 0, 1, 2, 2])
SCORES = [1.0, 0.0, 0.5, 0.7, 0.2, 0.9]


def _outcome_batch():
    mask = MASK.expand(6, 8).clone()
    mask[1, 5:7] = 0  # one episode has a single turn
    r = torch.zeros(6, 8)
    for i, s in enumerate(SCORES):
        r[i, int(mask[i].nonzero().max())] = s  # the outcome on the last policy token
    return r, mask


def _rl(*overrides) -> dict:
    return estimator_kwargs(recipe_from_dict({}, list(overrides)).rl)


def _verl_groups(scores):
    """{group: [scores]} as verl's loops build it."""
    by = {}
    for g, s in zip(GROUPS.tolist(), scores):
        by.setdefault(g, []).append(s)
    return by


def _verl_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """verl_F.masked_whiten: (x - mean) / sqrt(unbiased var + 1e-8) over masked entries."""
    vals = x[mask > 0].double()
    mean, var = vals.mean(), vals.var(unbiased=True)
    return ((x.double() - mean) / torch.sqrt(var + 1e-8)).float()


def _verl_grpo(eps: float, norm_std: bool) -> list[float]:
    by, out = _verl_groups(SCORES), []
    for g, s in zip(GROUPS.tolist(), SCORES):
        xs = torch.tensor(by[g], dtype=torch.float64)
        mean, std = (0.0, 1.0) if len(xs) == 1 else (xs.mean().item(), xs.std(unbiased=True).item())
        out.append((s - mean) / (std + eps) if norm_std else s - mean)
    return out


def _verl_rloo() -> list[float]:
    by, out = _verl_groups(SCORES), []
    for g, s in zip(GROUPS.tolist(), SCORES):
        n = len(by[g])
        out.append(s if n == 1 else s - (sum(by[g]) - s) / (n - 1))  # the loop version keeps the raw score
    return out


def _verl_reinforce_pp_baseline(mask) -> torch.Tensor:
    by = _verl_groups(SCORES)
    centred = [s - (0.0 if len(by[g]) == 1 else sum(by[g]) / len(by[g])) for g, s in zip(GROUPS.tolist(), SCORES)]
    return _verl_whiten(torch.tensor(centred)[:, None] * mask, mask)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_singleton_advantage_raw_matches_verl(name):
    r, mask = _outcome_batch()
    adv, _ = compute_advantages(name, r, mask, GROUPS, **_rl("rl.singleton_advantage=raw"))
    if name == "reinforce_pp":
        expected = _verl_reinforce_pp_baseline(mask)
    else:
        per_row = {"grpo": lambda: _verl_grpo(1e-6, True), "dr_grpo": lambda: _verl_grpo(1e-6, False),
                   "rloo": _verl_rloo}[name]()
        expected = torch.tensor(per_row)[:, None].expand(6, 8)
    on = mask > 0
    assert torch.allclose(adv[on], expected[on], atol=1e-6)
    assert adv[3, 1] != 0  # the one-member group keeps its raw score
    if name != "reinforce_pp":  # (its whitening mixes every row)
        default, _ = compute_advantages(name, r, mask, GROUPS, **_rl())
        assert torch.all(default[3] == 0)  # our default: no baseline, no signal
        assert torch.allclose(default[[0, 1, 2, 4, 5]], adv[[0, 1, 2, 4, 5]], atol=1e-6)  # other groups as before


def test_singleton_advantage_rejects_unknown_values():
    with pytest.raises(ValueError, match="zero, raw"):
        compute_advantages("grpo", torch.ones(2, 2), torch.ones(2, 2), torch.tensor([0, 1]), singleton="none")
    with pytest.raises(Exception, match="singleton_advantage"):
        recipe_from_dict({}, ["rl.singleton_advantage=none"])


def test_gigpo_singleton_raw_applies_to_the_episode_term():
    r, mask = _outcome_batch()
    turns = TURNS.expand(6, 8)
    keys = torch.arange(6)[:, None] * 10 + turns  # every step alone in its anchor group: step term 0
    kw = {"step_keys": torch.where(turns >= 0, keys, -1), "turn_ids": turns}
    raw, _ = compute_advantages("gigpo", r, mask, GROUPS, **kw, **_rl("rl.singleton_advantage=raw"))
    on = mask > 0
    assert torch.allclose(raw[on], torch.tensor(_verl_grpo(1e-6, True))[:, None].expand(6, 8)[on], atol=1e-6)


def test_grpo_eps_from_the_recipe_matches_verl():
    r, mask = _outcome_batch()
    adv, _ = compute_advantages("grpo", r, mask, GROUPS, **_rl("rl.grpo_eps=0.5", "rl.singleton_advantage=raw"))
    expected = torch.tensor(_verl_grpo(0.5, True))[:, None].expand(6, 8)
    assert torch.allclose(adv[mask > 0], expected[mask > 0], atol=1e-6)
    assert RLConfig().grpo_eps == 1e-6


def _verl_gae_whitened(r, v, mask, gamma, lam):
    """GAE over each row's policy tokens only (verl skips masked tokens; equal to GAE on
    the row with them removed), then whitened over all policy tokens."""
    adv = torch.zeros_like(r, dtype=torch.float64)
    for i in range(r.shape[0]):
        idx = mask[i].nonzero()[:, 0].tolist()
        running, next_v = 0.0, 0.0
        for t in reversed(idx):
            delta = float(r[i, t]) + gamma * next_v - float(v[i, t])
            running = delta + gamma * lam * running
            next_v = float(v[i, t])
            adv[i, t] = running
    return _verl_whiten(adv, mask)


def test_whiten_advantages_for_gae_matches_verl():
    torch.manual_seed(3)
    r, mask = _outcome_batch()
    v = torch.rand(6, 8)
    kw = _rl("rl.advantage=gae", "rl.whiten_advantages=true", "rl.gamma=0.9", "rl.lam=0.8")
    adv, ret = compute_advantages("gae", r, mask, GROUPS, values=v, **kw)
    on = mask > 0
    assert torch.allclose(adv[on], _verl_gae_whitened(r, v, mask, 0.9, 0.8)[on], atol=1e-5)
    plain, plain_ret = compute_advantages("gae", r, mask, GROUPS, values=v, **_rl("rl.gamma=0.9", "rl.lam=0.8"))
    assert torch.equal(ret, plain_ret)  # value targets are never whitened
    assert not torch.allclose(plain[on], adv[on])  # our default leaves them in reward units
    turn, _ = compute_advantages("gae_turn", r, mask, GROUPS, values=v, turn_ids=TURNS.expand(6, 8), **kw)
    assert abs(float(turn[on].mean())) < 1e-5 and abs(float(turn[on].std()) - 1) < 1e-4


def _verl_seq_mean(x, mask, mode):
    """verl's agg_loss seq-mean modes: the mean over rows with a policy token."""
    total, rows = 0.0, 0
    for i in range(x.shape[0]):
        n = float(mask[i].sum())
        if n == 0:
            continue
        s = float((x[i] * mask[i]).sum())
        total, rows = total + (s / n if mode == "seq-mean-token-mean" else s), rows + 1
    return total / rows


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "seq-mean-token-sum"])
def test_aggregation_rows_non_empty_matches_verl(mode):
    torch.manual_seed(4)
    x = torch.randn(5, 6)
    mask = (torch.rand(5, 6) > 0.4).float()
    mask[1] = 0  # a row with no policy token
    mask[3] = 0
    cfg = recipe_from_dict({}, [f"rl.aggregation={mode}", "rl.aggregation_rows=non_empty"]).rl
    assert float(aggregate(x, mask, mode, rows=cfg.aggregation_rows)) == pytest.approx(_verl_seq_mean(x, mask, mode))
    # ours divides by every row
    assert float(aggregate(x, mask, mode)) == pytest.approx(_verl_seq_mean(x, mask, mode) * 3 / 5)
    # micro-batches with the mini-batch's row count add up to the whole
    from questline.algos import row_count
    n = row_count(mask, "non_empty")
    parts = aggregate(x[:2], mask[:2], mode, n) + aggregate(x[2:], mask[2:], mode, n)
    assert torch.allclose(parts, aggregate(x, mask, mode, rows="non_empty"))
    with pytest.raises(ValueError, match="all, non_empty"):
        row_count(mask, "some")


def test_default_dual_clip_matches_verl_clip_ratio_c():
    # ratios 5, 2.5, 0.5, 5 against advantages -1, -1, 1, 1
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[5.0, 2.5, 0.5, 5.0]]))
    adv = torch.tensor([[-1.0, -1.0, 1.0, 1.0]])
    cfg = RLConfig()
    loss, _ = LOSSES["ppo_clip"](logp, old, adv, torch.ones(1, 4), **loss_kwargs(cfg))
    expected = []
    for ratio, a in zip([5.0, 2.5, 0.5, 5.0], [-1.0, -1.0, 1.0, 1.0]):
        clipped = max(-a * ratio, -a * min(max(ratio, 1 - cfg.clip_low), 1 + cfg.clip_high))
        expected.append(min(clipped, -a * 3.0) if a < 0 else clipped)  # verl: clip_ratio_c = 3
    assert torch.allclose(loss, torch.tensor([expected]), atol=1e-6)
    assert recipe_from_dict({}, ["rl.dual_clip=null"]).rl.dual_clip is None  # plain PPO stays one option away


def test_readme_algorithms_table_names_real_recipe_options():
    import re
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Algorithms", 1)[1].split("\n## ", 1)[0]
    table = section.split("verl", 1)[1]
    named = set(re.findall(r"`rl\.([a-z_]+)", table))
    assert {"singleton_advantage", "grpo_eps", "whiten_advantages", "aggregation_rows", "dual_clip"} <= named
    assert named <= set(RLConfig.model_fields)


def test_aggregation_rows_reaches_the_rl_update(toy_model, toy_tokenizer):
    import copy

    from questline.agent import ChatTokens
    from questline.core import Batch
    from questline.envs import generate_tasks
    from questline.rollout import RolloutConfig, rollout
    from questline.train.common import make_optimizer
    from questline.train.rl import rl_update

    demos = rollout(None, ChatTokens(toy_tokenizer), generate_tasks("toy/maze", 3, "easy", seed=11),
                    RolloutConfig(max_turns=20), policy="oracle")
    for d in demos:
        d.group = 0

    def loss(rows: str) -> float:
        rewards = [[0.0] * len(d.ids) for d in demos]
        rewards[0][demos[0].turns[-1].end - 1] = 1.0
        batch = Batch.from_trajectories(demos, toy_tokenizer.pad_token_id, rewards)
        batch.loss_mask[2] = 0  # a row with no policy token
        cfg = recipe_from_dict({}, ["rl.aggregation=seq-mean-token-sum", f"rl.aggregation_rows={rows}",
                                    "rl.minibatch_size=3", "rl.micro_batch_size=2"]).rl
        model = copy.deepcopy(toy_model)
        opt = make_optimizer(model, cfg.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        return rl_update(model, None, opt, sched, batch, cfg, temperature=1.0, use_autocast=False)["loss"]

    every_row = loss("all")
    assert every_row != 0
    assert loss("non_empty") == pytest.approx(every_row * 3 / 2, rel=1e-5)
