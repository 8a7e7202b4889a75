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
