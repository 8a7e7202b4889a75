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
