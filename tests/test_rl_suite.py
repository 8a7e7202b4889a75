"""The algorithm suite inside the real RL loop: every estimator / loss / batch-shaping
option trains a tiny policy for a few iterations without NaNs, PPO's critic is
checkpointed, and a sweep writes its report and learning curves."""

import json
import math

import pytest
import torch
from PIL import Image

from questline.agent import ChatTokens
from questline.core import Batch
from questline.envs import generate_tasks
from questline.experiments.recipe import recipe_from_dict
from questline.experiments.sweep import load_sweep, run_sweep
from questline.models import build_model
from questline.rollout import RolloutConfig, rollout
from questline.train.pipeline import task_sets
from questline.train.rl import collect, overlong_penalty, temperature_at, train_rl

TINY = {
    "env": {"name": "toy/maze"},
    "data": {"train_size": 24, "mix": {"easy": 1}, "eval_size": 4, "eval_mix": {"easy": 1},
             "tokenizer_corpus_tasks": 24},
    "model": {"preset": "xs", "vocab_size": 400},
    "rl": {"tasks_per_iter": 2, "group_size": 4, "lr": 1e-3, "minibatch_size": 8, "micro_batch_size": 4},
    "rollout": {"max_turns": 4, "max_new_tokens": 4},
    "run": {"checkpoint_every": 1, "progress": False},
}


def tiny_recipe(tmp_path, *overrides):
    data = json.loads(json.dumps(TINY))
    return recipe_from_dict(data, [f"run.dir={tmp_path}", *overrides])


def test_batch_marks_turns_and_shares_state_keys_within_a_group(toy_tokenizer):
    task = generate_tasks("toy/maze", 1, "medium", seed=4)
    trajs = rollout(None, ChatTokens(toy_tokenizer), task, RolloutConfig(max_turns=20), group_size=3,
                    policy="oracle")
    b = Batch.from_trajectories(trajs, toy_tokenizer.pad_token_id)
    for i, tr in enumerate(trajs):
        for k, turn in enumerate(tr.turns):
            assert torch.all(b.turn_ids[i, turn.start:turn.end] == k)
        assert torch.all((b.turn_ids[i] >= 0) == (b.loss_mask[i] > 0))
        assert torch.all((b.step_keys[i] >= 0) == (b.loss_mask[i] > 0))
    # identical (oracle) episodes pass through identical states: same keys turn by turn
    assert torch.equal(b.step_keys[0], b.step_keys[1]) and torch.equal(b.step_keys[1], b.step_keys[2])
    assert len(b.step_keys[0][b.step_keys[0] >= 0].unique()) == len(trajs[0].turns)


@pytest.mark.parametrize("overrides", [
    ["rl.advantage=grpo"],
    ["rl.advantage=dr_grpo", "rl.aggregation=seq-mean-token-sum"],
    ["rl.advantage=rloo", "rl.reward=dense", "rl.returns=to_go"],
    ["rl.advantage=reinforce_pp", "rl.reward=dense"],
    ["rl.advantage=gigpo"],
    ["rl.advantage=gae", "rl.critic.warmup_iters=1"],
    ["rl.advantage=gae_turn", "rl.reward=dense"],
    ["rl.loss=gspo", "rl.ppo_epochs=2", "rl.minibatch_size=4"],
    ["rl.dual_clip=3.0", "rl.kl_coef=0.05", "rl.kl_in=reward", "rl.tis_cap=2.0", "rl.entropy_coef=0.01"],
    ["rl.dynamic_sampling_rounds=2", "rl.overlong_buffer=64", "rl.temperature_end=0.5"],
], ids=lambda o: ",".join(x.split("=")[1] for x in o))
def test_every_option_trains_without_nans(tmp_path, toy_tokenizer, overrides):
    recipe = tiny_recipe(tmp_path, *overrides)
    model = build_model("xs", toy_tokenizer, seed=0).eval()
    before = [p.detach().clone() for p in model.parameters()]
    train, _ = task_sets(recipe)
    done = train_rl(recipe, model, toy_tokenizer, ChatTokens(toy_tokenizer), train, tmp_path, iterations=3)
    assert done == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float)), r
    assert all(torch.isfinite(p).all() for p in model.parameters())
    trained = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    informative = any(r.get("advantage_abs", 0) > 0 for r in rows)
    assert trained == informative or "rl.kl_coef=0.05" in overrides  # updates iff there was signal
    if recipe.rl.needs_critic:
        ckpt = sorted((tmp_path / "checkpoints").iterdir())[-1]
        assert (ckpt / "critic" / "config.json").exists()
        assert any("value_loss" in r for r in rows)


def test_critic_warmup_trains_only_the_critic(tmp_path, toy_tokenizer):
    recipe = tiny_recipe(tmp_path, "rl.advantage=gae", "rl.critic.warmup_iters=5")
    model = build_model("xs", toy_tokenizer, seed=0).eval()
    before = [p.detach().clone() for p in model.parameters()]
    train, _ = task_sets(recipe)
    train_rl(recipe, model, toy_tokenizer, ChatTokens(toy_tokenizer), train, tmp_path, iterations=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_dynamic_sampling_keeps_only_informative_groups(tmp_path, toy_tokenizer):
    recipe = tiny_recipe(tmp_path, "rl.dynamic_sampling_rounds=3", "rl.tasks_per_iter=3",
                         "rollout.temperature=1.5")
    model = build_model("xs", toy_tokenizer, seed=0).eval()
    from questline.inference import HFEngine
    engine = HFEngine(model, toy_tokenizer.pad_token_id)
    train, _ = task_sets(recipe)
    metrics, valid, rewards, trajs = collect(engine, ChatTokens(toy_tokenizer), train, 0, recipe,
                                             RolloutConfig(**recipe.rollout.model_dump()), 0.0)
    groups: dict[int, set] = {}
    for t, r in zip(valid, rewards):
        groups.setdefault(t.group, set()).add(round(sum(r), 9))
    assert len(groups) <= 3 and all(len(v) > 1 for v in groups.values())
    assert 1 <= metrics["sampling_rounds"] <= 4
    assert len(trajs) == 3 * 4 * metrics["sampling_rounds"]


def test_overlong_penalty_and_temperature_schedule(tmp_path):
    class T:
        ids = [0] * 90
    assert overlong_penalty(T, max_tokens=100, buffer=20, penalty=1.0) == pytest.approx(-0.5)
    assert overlong_penalty(T, max_tokens=90, buffer=5, penalty=1.0) == -1.0
    assert overlong_penalty(T, max_tokens=200, buffer=20, penalty=1.0) == 0.0
    recipe = tiny_recipe(tmp_path, "rollout.temperature=1.0", "rl.temperature_end=0.6")
    rcfg = RolloutConfig(**recipe.rollout.model_dump())
    assert temperature_at(rcfg, recipe.rl, 0.0) == 1.0
    assert temperature_at(rcfg, recipe.rl, 0.5) == pytest.approx(0.8)


def test_sweep_shares_sft_and_writes_report(tmp_path):
    (tmp_path / "base.yaml").write_text(json.dumps({**TINY, "budget": {"episodes": 24, "sft_fraction": 0.34},
                                                     "sft": {"epochs": 1, "batch_size": 4}}))
    (tmp_path / "sweep.yaml").write_text(
        "recipe: base.yaml\nname: algos\nseeds: [0]\n"
        "variants:\n  grpo: [rl.advantage=grpo]\n  rloo: [rl.advantage=rloo]\n")
    rows = run_sweep(load_sweep(tmp_path / "sweep.yaml"), root=tmp_path / "runs")
    assert [r["variant"] for r in rows] == ["grpo", "rloo"]
    out = tmp_path / "runs" / "algos"
    assert "| grpo | 0 |" in (out / "report.md").read_text()
    assert Image.open(out / "curves.png").size[0] > 100
    a = (out / "grpo-s0" / "sft" / "model.safetensors").read_bytes()
    assert a == (out / "base-s0" / "sft" / "model.safetensors").read_bytes()
    assert a == (out / "rloo-s0" / "sft" / "model.safetensors").read_bytes()
    assert all(r["rl"] is not None and r["sft"] is not None for r in rows)


def _small_sweep_base(tmp_path) -> None:
    """base.yaml for the sweep tests: the tiny maze, 8 SFT demonstrations + 8 RL episodes."""
    (tmp_path / "base.yaml").write_text(json.dumps({**TINY, "budget": {"episodes": 16, "sft_fraction": 0.5},
                                                     "sft": {"epochs": 1, "batch_size": 4}}))


def test_sweep_in_worker_processes_shares_sft_per_seed(tmp_path):
    """workers=2: each seed's variants start from that seed's shared SFT (they are submitted
    when it is done), and the rows come back in sweep order."""
    _small_sweep_base(tmp_path)
    (tmp_path / "sweep.yaml").write_text(
        "recipe: base.yaml\nname: par\nseeds: [0, 1]\n"
        "variants:\n  grpo: [rl.advantage=grpo]\n  rloo: [rl.advantage=rloo]\n")
    rows = run_sweep(load_sweep(tmp_path / "sweep.yaml"), root=tmp_path / "runs", workers=2)
    assert [(r["variant"], r["seed"]) for r in rows] == [("grpo", 0), ("rloo", 0), ("grpo", 1), ("rloo", 1)]
    out = tmp_path / "runs" / "par"
    for seed in (0, 1):
        base = (out / f"base-s{seed}" / "sft" / "model.safetensors").read_bytes()
        assert all((out / f"{v}-s{seed}" / "sft" / "model.safetensors").read_bytes() == base for v in ("grpo", "rloo"))
    assert (out / "base-s0" / "sft" / "model.safetensors").read_bytes() != \
        (out / "base-s1" / "sft" / "model.safetensors").read_bytes()
    assert all(r["rl"] is not None for r in rows)


def test_an_evaluation_only_variant_evaluates_the_trained_policy_without_training(tmp_path):
    """Two variants that differ only in eval.* share the trained run: the second copies
    its policy and checkpoints and only evaluates (under its own eval settings)."""
    _small_sweep_base(tmp_path)
    (tmp_path / "sweep.yaml").write_text(
        "recipe: base.yaml\nname: ev\nseeds: [0]\n"
        "variants:\n  plain: [rl.lr=1e-3]\n  sampled: [rl.lr=1e-3, eval.sampled=true]\n")
    rows = run_sweep(load_sweep(tmp_path / "sweep.yaml"), root=tmp_path / "runs")
    out = tmp_path / "runs" / "ev"
    trained, evaluated = out / "plain-s0", out / "sampled-s0"
    assert (evaluated / "metrics.jsonl").read_text() == (trained / "metrics.jsonl").read_text()
    assert "RL: resuming from" in (evaluated / "train.log").read_text()  # at its last iteration: nothing to train
    assert (evaluated / "eval_rl_sampled.jsonl").exists() and not (trained / "eval_rl_sampled.jsonl").exists()
    assert [r["variant"] for r in rows] == ["plain", "sampled"] and rows[1]["rl"] is not None


def test_variants_that_train_sft_alike_share_it_group_by_group(tmp_path):
    """Two reward-like variants of one model size share an SFT; a variant with its own
    model trains its own (no base for a group of one)."""
    from questline.experiments.sweep import sweep_plan
    _small_sweep_base(tmp_path)
    (tmp_path / "sweep.yaml").write_text(
        "recipe: base.yaml\nname: gr\nseeds: [0]\nvariants:\n"
        "  a: [model.vocab_size=420, rl.lr=1e-3]\n  b: [model.vocab_size=420, rl.lr=2e-3]\n"
        "  c: [model.vocab_size=440]\n")
    sweep = load_sweep(tmp_path / "sweep.yaml")
    assert sweep_plan(sweep) == {"sft": 2, "rl": 3, "evaluate_only": 0}
    run_sweep(sweep, root=tmp_path / "runs")
    out = tmp_path / "runs" / "gr"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("base")) == ["base-a-s0"]
    shared = (out / "base-a-s0" / "sft" / "model.safetensors").read_bytes()
    assert all((out / f"{v}-s0" / "sft" / "model.safetensors").read_bytes() == shared for v in "ab")
    assert "SFT done, skipped" not in (out / "c-s0" / "train.log").read_text()


def test_share_sft_true_shares_it_across_task_changes_and_reevaluates_it(tmp_path):
    """share_sft: true: variants that change data.* start from the seed's one SFT policy, and
    evaluate it again on their own tasks; a variant that changes SFT itself is refused."""
    _small_sweep_base(tmp_path)
    (tmp_path / "sweep.yaml").write_text(
        "recipe: base.yaml\nname: sh\nseeds: [0]\nshare_sft: true\n"
        "variants:\n  few: [data.train_size=8]\n  many: [data.train_size=24]\n")
    run_sweep(load_sweep(tmp_path / "sweep.yaml"), root=tmp_path / "runs")
    out = tmp_path / "runs" / "sh"
    base = (out / "base-s0" / "sft" / "model.safetensors").read_bytes()
    assert all((out / f"{v}-s0" / "sft" / "model.safetensors").read_bytes() == base for v in ("few", "many"))
    assert "SFT done, skipped" in (out / "few-s0" / "train.log").read_text()
    assert (out / "few-s0" / "eval_sft_greedy.jsonl").exists()  # evaluated again, not copied
    (tmp_path / "bad.yaml").write_text("recipe: base.yaml\nshare_sft: true\nvariants:\n  x: [sft.epochs=2]\n")
    from questline.core import ConfigError
    with pytest.raises(ConfigError, match="variant 'x': share_sft: true, but 'sft.epochs=2' changes what SFT trains"):
        load_sweep(tmp_path / "bad.yaml")


def test_sweep_rejects_a_bad_variant_before_training(tmp_path):
    (tmp_path / "base.yaml").write_text(json.dumps(TINY))
    (tmp_path / "sweep.yaml").write_text("recipe: base.yaml\nvariants:\n  x: [rl.advantage=nope]\n")
    from questline.core import ConfigError
    with pytest.raises(ConfigError, match="unknown advantage estimator 'nope'"):
        load_sweep(tmp_path / "sweep.yaml")


def test_sweep_names_resolve_to_shipped_files(capsys):
    from questline.cli import main, sweep_path
    assert sweep_path("algorithms").name == "algorithms.yaml"
    assert main(["sweep", "no-such-sweep"]) == 2
    assert "sweep file not found: no-such-sweep" in capsys.readouterr().err


def test_a_sweep_clock_carries_its_time_across_invocations(tmp_path):
    from questline.experiments.sweep import SweepClock
    first = SweepClock(tmp_path)
    first.before = 100.0  # as if an earlier invocation had run 100 s
    first.save()
    again = SweepClock(tmp_path)
    assert 100.0 <= again.before < 110.0 and again.seconds >= again.before
