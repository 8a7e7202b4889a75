"""Advantage estimators: pure functions on token-level [B, T] tensors, registered by name.

    fn(token_rewards, mask, group_ids, *, values=None, turn_ids=None, step_keys=None, **hp)
        -> (advantages, returns)     both [B, T], zero outside `mask`

token_rewards  each turn's reward on its last policy token (0 elsewhere)
mask           1 on policy tokens, 0 on prompt / observation / padding tokens
group_ids      [B] samples of the same task share an id (group baselines)
values         [B, T] critic values, V(state before token t) (gae only)
turn_ids       [B, T] index of the turn a policy token belongs to, -1 elsewhere
step_keys      [B, T] id of the environment state the turn was taken in, -1 elsewhere (gigpo)
hp             hyper-parameters from the recipe (gamma, lam, norm_std, ...); an
               estimator takes the ones it needs and ignores the rest (**_).

Environment tokens are skipped, not zeroed: returns and GAE run over the policy
tokens as if the observations between turns were not there (equal to plain GAE on
the sequence with environment tokens removed), so a reward at the end reaches
every earlier turn. (verl's REINFORCE++ instead resets its running return at
every masked token; in multi-turn episodes that gives earlier turns return 0.)

Conventions where verl differs (README "Algorithms" has the table), each a recipe
option passed here as a hyper-parameter:
  singleton="zero"   a one-member group has no baseline and gets advantage 0 (grpo,
                     dr_grpo, rloo, reinforce_pp before whitening, gigpo's episode
                     term); "raw" is verl's: baseline 0 (and std 1), the raw score.
  eps=1e-6           GRPO's (std + eps) (rl.grpo_eps).
  whiten=False       gae / gae_turn advantages are not whitened; True is verl's
                     masked whitening over the batch's policy tokens.
"""

from __future__ import annotations

import torch

from questline.core.registry import Registry

ADVANTAGES = Registry("advantage estimator")
register = ADVANTAGES.register


def compute_advantages(name: str, token_rewards, mask, group_ids, **kw):
    return ADVANTAGES.get(name)(token_rewards, mask, group_ids, **kw)


def episode_advantages(name: str, token_rewards, mask, group_ids, episode_ids, row_turns, *,
                       values=None, step_keys=None, **kw):
    """Window context: rows are single turns of episodes. Each episode is folded into
    a sequence with one "token" per turn (the row's summed reward, value at the row's
    first policy token, the row's step key), the estimator runs on those [E, K]
    sequences exactly as on a full-context episode, and each turn's advantage and
    return are spread over its row's policy tokens. So group baselines are over
    episodes (never weighted by their number of turns) and each turn's reward still
    sits on the last token of its row. Token-level `gae` becomes turn-level (the
    same as `gae_turn`); `reinforce_pp` whitens over turns instead of tokens."""
    n_ep = int(episode_ids.max()) + 1 if len(episode_ids) else 0
    k = int(row_turns.max()) + 1 if len(row_turns) else 0
    on = mask > 0
    first = on & ~torch.nn.functional.pad(on[:, :-1], (1, 0), value=False)
    turn_rew = torch.zeros(n_ep, k)
    turn_mask = torch.zeros(n_ep, k)
    turn_val = torch.zeros(n_ep, k)
    turn_key = torch.full((n_ep, k), -1, dtype=torch.long)
    turn_rew[episode_ids, row_turns] = (token_rewards * on).sum(-1)
    turn_mask[episode_ids, row_turns] = on.any(-1).float()
    if values is not None:
        turn_val[episode_ids, row_turns] = (values * first).sum(-1)
    if step_keys is not None:
        turn_key[episode_ids, row_turns] = torch.where(on, step_keys, -1).max(-1).values
    groups = torch.zeros(n_ep, dtype=torch.long)
    groups[episode_ids] = group_ids
    turn_ids = torch.where(turn_mask > 0, torch.arange(k)[None].expand(n_ep, k), -1)
    adv, ret = compute_advantages(name, turn_rew, turn_mask, groups, values=turn_val if values is not None else None,
                                  turn_ids=turn_ids, step_keys=turn_key, **kw)
    spread = lambda x: x[episode_ids, row_turns][:, None] * on  # noqa: E731
    return spread(adv), spread(ret)


# ----------------------------------------------------------------- building blocks
def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G_t = r_t + gamma * G_(next policy token); environment tokens are skipped."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        on = mask[:, t] > 0
        running = torch.where(on, rewards[:, t] + gamma * running, running)
        out[:, t] = torch.where(on, running, torch.zeros_like(running))
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over policy tokens only: the next value of a
    turn's last token is the value at the next turn's first policy token
    (bootstrapping across the observation), and 0 after the episode's last token.
    Returns (advantages, returns = advantages + values)."""
    adv = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        on = mask[:, t] > 0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = torch.where(on, delta + gamma * lam * running, running)
        next_value = torch.where(on, values[:, t], next_value)
        adv[:, t] = torch.where(on, running, torch.zeros_like(running))
    return adv, (adv + values) * mask


def group_stats(x: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample (group mean, group std, group size) of the per-sample values `x` [B].
    std is the unbiased sample std (0 for one-member groups)."""
    _, inv = group_ids.unique(return_inverse=True)
    n_groups = int(inv.max()) + 1 if len(inv) else 0
    count = torch.zeros(n_groups).index_add_(0, inv, torch.ones_like(x))
    mean = torch.zeros(n_groups).index_add_(0, inv, x) / count
    sq = torch.zeros(n_groups).index_add_(0, inv, (x - mean[inv]) ** 2)
    std = (sq / (count - 1).clamp(min=1)).sqrt()
    return mean[inv], std[inv], count[inv]


SINGLETON = ("zero", "raw")


def singleton_kept(count: torch.Tensor, singleton: str = "zero") -> torch.Tensor:
    """[B] bool: which samples keep their advantage given their group sizes `count`.
    "zero": a one-member group has no baseline, so it carries no signal (advantage 0);
    "raw": verl's convention, every sample is kept (its baseline is 0)."""
    if singleton not in SINGLETON:
        raise ValueError(f"singleton must be one of {', '.join(SINGLETON)}, got '{singleton}'")
    return (count > 1) | (singleton == "raw")


def group_baseline(scores: torch.Tensor, group_ids: torch.Tensor, singleton: str = "zero"):
    """Per-sample (group mean, group std, kept) for group baselines; with
    singleton="raw" a one-member group has mean 0 and std 1 (verl's GRPO)."""
    mean, std, count = group_stats(scores, group_ids)
    alone = count < 2
    return mean.masked_fill(alone, 0.0), std.masked_fill(alone, 1.0), singleton_kept(count, singleton)


def group_normalise(scores: torch.Tensor, group_ids: torch.Tensor, *, norm_std: bool = True,
                    eps: float = 1e-6, singleton: str = "zero") -> torch.Tensor:
    """score - group mean, divided by (group std + eps) when norm_std.

    A group with one member gets advantage 0 (singleton="zero"): it has no baseline,
    so it carries no signal; singleton="raw" gives it its raw score / (1 + eps), as
    verl does. A group whose scores are all equal gets 0.
    """
    mean, std, kept = group_baseline(scores, group_ids, singleton)
    adv = scores - mean
    if norm_std:
        adv = adv / (std + eps)
    return torch.where(kept, adv, torch.zeros_like(adv))


def _episode_return(returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The return at each episode's first policy token: [B]."""
    first = (mask > 0).float().argmax(-1)
    return returns.gather(1, first[:, None])[:, 0] * (mask.sum(-1) > 0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = mask.sum().clamp(min=1)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / (n - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + eps) * mask


# ----------------------------------------------------------------- estimators
def _token_returns(token_rewards, mask, returns: str, gamma: float):
    """(per-token return [B, T], episode return [B]) for the Monte-Carlo estimators.
    returns="episode": every policy token carries the episode's total reward (the
    published GRPO/RLOO outcome form); "to_go": each token carries its discounted
    return-to-go, so with dense turn rewards a turn is credited only with what follows."""
    if returns not in ("episode", "to_go"):
        raise ValueError(f"returns must be 'episode' or 'to_go', got '{returns}'")
    rtg = returns_to_go(token_rewards, mask, gamma if returns == "to_go" else 1.0)
    episode = _episode_return(rtg, mask)
    per_token = rtg if returns == "to_go" else episode[:, None] * mask
    return per_token, episode


@register("grpo")
def grpo(token_rewards, mask, group_ids, *, returns: str = "episode", gamma: float = 1.0,
         norm_std: bool = True, eps: float = 1e-6, singleton: str = "zero", **_):
    """Group-relative: return minus the group mean of the episode returns, divided by
    their (group std + eps) (skipped where that std is 0: with episode returns such a
    group is flat and gets 0). One-member groups get 0, or with singleton="raw" their
    raw return / (1 + eps) as in verl."""
    per_token, episode = _token_returns(token_rewards, mask, returns, gamma)
    mean, std, kept = group_baseline(episode, group_ids, singleton)
    adv = per_token - mean[:, None]
    if norm_std:
        adv = adv / torch.where(std > 0, std + eps, torch.ones_like(std))[:, None]
    adv = torch.where(kept[:, None], adv, torch.zeros_like(adv)) * mask
    return adv, per_token


@register("dr_grpo")
def dr_grpo(token_rewards, mask, group_ids, *, returns: str = "episode", gamma: float = 1.0,
            singleton: str = "zero", **_):
    """Dr. GRPO: GRPO without the std division (pair with seq-mean-token-sum)."""
    return grpo(token_rewards, mask, group_ids, returns=returns, gamma=gamma, norm_std=False, singleton=singleton)


@register("rloo")
def rloo(token_rewards, mask, group_ids, *, returns: str = "episode", gamma: float = 1.0,
         singleton: str = "zero", **_):
    """REINFORCE leave-one-out: baseline = mean episode return of the *other* samples
    of the group, i.e. A = G_i - (sum_group - G_i) / (n - 1). One-member groups get
    0, or with singleton="raw" their raw return (verl's loop version)."""
    per_token, episode = _token_returns(token_rewards, mask, returns, gamma)
    mean, _, count = group_stats(episode, group_ids)
    baseline = torch.where(count > 1, (mean * count - episode) / (count - 1).clamp(min=1), 0.0)
    kept = singleton_kept(count, singleton)
    adv = torch.where(kept[:, None], per_token - baseline[:, None], torch.zeros_like(per_token)) * mask
    return adv, per_token


@register("reinforce_pp")
def reinforce_pp(token_rewards, mask, group_ids, *, gamma: float = 1.0, baseline: bool = True,
                 singleton: str = "zero", **_):
    """REINFORCE++: discounted returns-to-go, optionally minus the group mean episode
    return (REINFORCE++-baseline), whitened over all policy tokens of the batch. With
    the baseline, a one-member group is 0 before whitening, or with singleton="raw"
    keeps its raw return (verl: baseline 0)."""
    rtg = returns_to_go(token_rewards, mask, gamma)
    adv = rtg
    if baseline:
        mean, _, kept = group_baseline(_episode_return(rtg, mask), group_ids, singleton)
        adv = torch.where(kept[:, None], rtg - mean[:, None], torch.zeros_like(rtg))
    return masked_whiten(adv, mask), rtg


@register("gae")
def gae_token(token_rewards, mask, group_ids, *, values=None, gamma: float = 1.0, lam: float = 1.0,
              whiten: bool = False, **_):
    """PPO's estimator with a learned critic, per policy token. whiten=True whitens
    the advantages over the batch's policy tokens (verl); returns are left as they are."""
    if values is None:
        raise ValueError("advantage 'gae' needs critic values (set rl.critic)")
    adv, ret = gae(token_rewards, values, mask, gamma, lam)
    return (masked_whiten(adv, mask) if whiten else adv), ret


@register("gae_turn")
def gae_turn(token_rewards, mask, group_ids, *, values=None, turn_ids=None, gamma: float = 1.0,
             lam: float = 1.0, whiten: bool = False, **_):
    """GAE over turns: one value per turn (the critic's value at the turn's first
    policy token, i.e. of the state the action was chosen in), the turn's summed
    reward, and the turn's advantage broadcast over its tokens (whitened over
    policy tokens with whiten=True)."""
    if values is None or turn_ids is None:
        raise ValueError("advantage 'gae_turn' needs critic values and turn ids")
    turn_mask, turn_rew, turn_val = _per_turn(token_rewards, values, mask, turn_ids)
    adv_t, ret_t = gae(turn_rew, turn_val, turn_mask, gamma, lam)
    adv = _broadcast(adv_t, turn_ids, mask)
    return (masked_whiten(adv, mask) if whiten else adv), _broadcast(ret_t, turn_ids, mask)


@register("gigpo")
def gigpo(token_rewards, mask, group_ids, *, step_keys=None, turn_ids=None, step_gamma: float = 0.95,
          step_weight: float = 1.0, norm_std: bool = True, eps: float = 1e-6, singleton: str = "zero", **_):
    """GiGPO (Feng et al. 2025): the episode-level GRPO advantage plus a step-level
    advantage. Steps taken in the same environment state (same key) across a group's
    episodes form an anchor group; a step's score is its discounted return (gamma per
    turn) and is normalised within its anchor group. A = A_episode + w * A_step."""
    if step_keys is None or turn_ids is None:
        raise ValueError("advantage 'gigpo' needs step keys and turn ids (envs put 'state_key' in info)")
    episode = group_normalise(_episode_return(returns_to_go(token_rewards, mask, 1.0), mask), group_ids,
                              norm_std=norm_std, eps=eps, singleton=singleton)
    turn_mask, turn_rew, _ = _per_turn(token_rewards, torch.zeros_like(token_rewards), mask, turn_ids)
    turn_ret = returns_to_go(turn_rew, turn_mask, step_gamma)
    keys = _per_turn_keys(step_keys, turn_ids, turn_mask)
    on = turn_mask > 0
    step_adv = torch.zeros_like(turn_ret)
    if on.any():
        anchors = keys[on]
        step_adv[on] = group_normalise(turn_ret[on], anchors, norm_std=norm_std, eps=eps)
    adv = episode[:, None] * mask + step_weight * _broadcast(step_adv, turn_ids, mask)
    return adv, _broadcast(turn_ret, turn_ids, mask)


# ----------------------------------------------------------------- turn helpers
def _num_turns(turn_ids: torch.Tensor) -> int:
    return int(turn_ids.max()) + 1 if turn_ids.numel() and turn_ids.max() >= 0 else 0


def _per_turn(token_rewards, values, mask, turn_ids):
    """[B, K] turn mask, summed turn rewards and the value at each turn's first token."""
    b, k = token_rewards.shape[0], max(_num_turns(turn_ids), 1)
    on = (mask > 0) & (turn_ids >= 0)
    idx = turn_ids.clamp(min=0)
    turn_rew = torch.zeros(b, k).scatter_add_(1, idx, token_rewards * on)
    turn_mask = torch.zeros(b, k).scatter_add_(1, idx, on.float()).clamp(max=1)
    # a turn's policy tokens are contiguous: its first one follows a token of another turn
    prev = torch.nn.functional.pad(turn_ids[:, :-1], (1, 0), value=-1)
    first = on & (turn_ids != prev)
    turn_val = torch.zeros(b, k).scatter_add_(1, idx, values * first)
    return turn_mask, turn_rew, turn_val


def _per_turn_keys(step_keys, turn_ids, turn_mask):
    """[B, K] step key of each turn (-1 where no turn); keys are global ids."""
    keys = torch.full(turn_mask.shape, -1, dtype=torch.long)
    on = turn_ids >= 0
    keys[on.nonzero(as_tuple=True)[0], turn_ids[on]] = step_keys[on].long()
    return keys


def _broadcast(per_turn: torch.Tensor, turn_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-turn values [B, K] -> per-token [B, T] on each turn's policy tokens."""
    out = per_turn.gather(1, turn_ids.clamp(min=0))
    return out * ((turn_ids >= 0) & (mask > 0))
