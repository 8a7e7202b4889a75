"""Real training steps on a tiny model: SFT learns, and the RL update moves
probability toward rewarded episodes and away from unrewarded ones."""

import copy

import torch

from questline.agent import ChatTokens
from questline.core import Batch
from questline.envs import generate_tasks
from questline.experiments.recipe import RLConfig, SFTConfig
from questline.models.precision import choose_precision
from questline.rollout import RolloutConfig, rollout
from questline.train.common import causal_mask, make_optimizer, pad_batch, selected_logits
from questline.train.rl import batch_logprobs, rl_update
from questline.train.sft import sft_loss_sum, train_sft

NATIVE_BF16 = choose_precision().bf16  # bf16 only where the CPU runs it natively (emulated: several x slower)


def oracle_demos(tok, n=16):
    tasks = generate_tasks("toy/maze", n, "easy", seed=11)
    return rollout(None, ChatTokens(tok), tasks, RolloutConfig(max_turns=20), policy="oracle")


def test_sft_loss_is_on_policy_tokens_only(toy_model, toy_tokenizer):
    demos = oracle_demos(toy_tokenizer, 4)
    ids, attn, mask = pad_batch(demos, toy_tokenizer.pad_token_id)
    _, n = sft_loss_sum(toy_model, ids, attn, mask, False)
    assert n == sum(sum(d.loss_mask[1:]) for d in demos)
    # changing an observation token never changes the loss on earlier policy tokens
    # and a label that is not a policy token never counts
    ids2 = ids.clone()
    obs_pos = [i for i, m in enumerate(demos[0].loss_mask) if not m][-1]
    ids2[0, obs_pos] = (ids2[0, obs_pos] + 1) % len(toy_tokenizer)
    loss_a, _ = sft_loss_sum(toy_model, ids[:1, : obs_pos + 1], attn[:1, : obs_pos + 1], mask[:1, : obs_pos + 1], False)
    loss_b, _ = sft_loss_sum(toy_model, ids2[:1, : obs_pos + 1], attn[:1, : obs_pos + 1], mask[:1, : obs_pos + 1], False)
    assert torch.allclose(loss_a, loss_b)


def test_sft_learns_the_demonstrations(toy_model, toy_tokenizer):
    model = copy.deepcopy(toy_model)
    demos = oracle_demos(toy_tokenizer, 32)
    cfg = SFTConfig(epochs=6, lr=3e-3, batch_size=8, micro_batch_size=4)
    losses = train_sft(model, demos, cfg, pad_id=toy_tokenizer.pad_token_id, seed=0, use_autocast=NATIVE_BF16)
    assert len(losses) == 24
    assert losses[-1] < 0.5 * losses[0]


def test_rl_update_moves_toward_rewarded_episodes(toy_model, toy_tokenizer):
    model = copy.deepcopy(toy_model)
    demos = oracle_demos(toy_tokenizer, 2)
    demos[0].group = demos[1].group = 0
    rewards = [[0.0] * len(demos[0].ids), [0.0] * len(demos[1].ids)]
    rewards[0][demos[0].turns[-1].end - 1] = 1.0  # the first episode is the good one
    batch = Batch.from_trajectories(demos, toy_tokenizer.pad_token_id, rewards)
    before = batch_logprobs(model, batch, 2, 1.0, False)
    cfg = RLConfig(lr=1e-4, minibatch_size=2, micro_batch_size=1)
    opt = make_optimizer(model, cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    stats = rl_update(model, None, opt, sched, batch, cfg, temperature=1.0, use_autocast=False)
    after = batch_logprobs(model, batch, 2, 1.0, False)
    gain = ((after - before) * batch.loss_mask).sum(-1)
    # the surrogate objective sum(A * log p) went up: the rewarded episode gained
    # relative to the unrewarded one (shared tokens such as <|im_end|> move both)
    assert batch.advantages[0].sum() > 0 > batch.advantages[1].sum()
    assert float(((after - before) * batch.advantages).sum()) > 0
    assert gain[0] > gain[1]
    assert stats["ratio_mean"] == 1.0 and stats["clip_frac"] == 0.0  # exactly on-policy


def test_paired_interval_by_hand_and_tighter_than_unpaired():
    from questline.train.evaluate import diff_interval, paired_diff_interval
    mean, lo, hi = paired_diff_interval({"a": 1, "b": 0, "c": 0, "d": 1}, {"a": 1, "b": 1, "c": 0, "d": 1, "e": 1})
    assert mean == 0.25 and abs(lo - (0.25 - 0.49)) < 1e-9 and abs(hi - 0.74) < 1e-9  # sd 0.5, n 4
    # 200 tasks: RL solves the 60 SFT solves plus 10 more -> paired CI excludes 0, unpaired does not
    before = {str(i): float(i < 60) for i in range(200)}
    after = {str(i): float(i < 70) for i in range(200)}
    _, plo, _ = paired_diff_interval(before, after)
    ulo, _ = diff_interval(0.3, 200, 0.35, 200)
    assert plo > 0 > ulo


def test_eval_cli_writes_episodes_and_compares_paired(tmp_path, toy_model, toy_tokenizer, capsys):
    from questline.cli import main
    from questline.data.io import read_jsonl
    from questline.models import save_policy
    save_policy(toy_model, toy_tokenizer, tmp_path / "policy")
    oracle = tmp_path / "oracle.jsonl"
    assert main(["eval", "toy/maze", "data.eval_size=4", "--agent", "oracle", "--out", str(oracle)]) == 0
    rows = read_jsonl(oracle)
    assert len(rows) == 4 and all(r["metrics"]["success"] == 1.0 for r in rows)
    capsys.readouterr()
    # an untrained model against the oracle's episodes: the same 4 tasks, paired
    assert main(["eval", "toy/maze", "data.eval_size=4", "--policy", str(tmp_path / "policy"),
                 "--against", str(oracle)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if str(oracle) in x)
    assert "paired over 4 tasks" in line and "100.0% there" in line
    success = float(out.split("success")[1].split("%")[0]) / 100
    assert f"{success - 1:+.1%}" in line
    assert main(["eval", "toy/maze", "--agent", "oracle", "--against", str(tmp_path / "nope.jsonl")]) == 2
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    assert main(["eval", "toy/maze", "--agent", "oracle", "--against", str(tmp_path / "bad.jsonl")]) == 2


def test_right_padded_batches_train_without_the_mask_and_give_the_same_logits(toy_model):
    """Training drops the attention mask of right-padded rows (SDPA's causal kernel): the
    selected logits equal those computed with the mask; left padding keeps it."""
    lengths = [12, 7, 10]
    ids = torch.randint(3, 60, (3, 12), generator=torch.Generator().manual_seed(0))
    attn = (torch.arange(12)[None] < torch.tensor(lengths)[:, None]).long()
    assert causal_mask(attn) is None and causal_mask(torch.ones(2, 5)) is None
    left = attn.flip(1)
    assert causal_mask(left) is left
    token_mask = attn.float()
    with torch.no_grad():
        dropped, targets, sel = selected_logits(toy_model, ids, attn, token_mask)
        kept = toy_model(input_ids=ids, attention_mask=attn).logits[:, :-1][sel]
    assert targets.numel() == sum(lengths) - 3
    assert torch.allclose(dropped, kept, atol=1e-5)
