"""Dynamic planning agent mode and the window context: parser, plan memory,
strategies, plan cost, metrics, token-in-token-out per turn, training on rows with
episode-level baselines, two environments with no env-specific code, steering."""

import json
import math

import pytest
import torch

from questline.agent import ChatTokens
from questline.agent.planning import (
    PlanningConfig,
    PlanTracker,
    aggregate_planning,
    parse_reply,
    planning_metrics,
)
from questline.algos import episode_advantages
from questline.core import Batch
from questline.envs import generate_tasks, make
from questline.experiments.recipe import RLConfig, SFTConfig, recipe_from_dict
from questline.inference import HFEngine
from questline.models import build_model
from questline.models.precision import choose_precision
from questline.rollout import RolloutConfig, rollout
from questline.train.rl import episode_rewards, train_rl
from questline.train.sft import train_sft

NATIVE_BF16 = choose_precision().bf16  # bf16 only where the CPU runs it natively (emulated: several x slower)


def window_cfg(strategy="dynamic", **kw):
    return RolloutConfig(**{"max_turns": 30, "max_new_tokens": 6, "context": "window",
                            "planning": PlanningConfig(strategy, k=2, max_plan_tokens=12), **kw})


# ------------------------------------------------------------------ parser and memory
def test_parser_plan_then_action_action_alone_and_malformed():
    r = parse_reply("<plan>go north, then east</plan>\nnorth")
    assert (r.plan, r.action.strip(), r.error) == ("go north, then east", "north", "")
    assert parse_reply("east") == parse_reply("east") and parse_reply("east").plan is None
    assert parse_reply("east").action == "east" and not parse_reply("east").error
    for bad, why in [("<plan>north, east", "never closed"), ("north</plan> east", "without"),
                     ("north <plan>a</plan>", "must come first"), ("<plan>a</plan><plan>b</plan> x", "more than one"),
                     ("<plan>a</plan>  ", "no action")]:
        r = parse_reply(bad)
        assert r.action == "" and why in r.error, (bad, r)


def test_plan_memory_keeps_only_the_latest_plan():
    t = PlanTracker(PlanningConfig("dynamic"))
    t.accept(0, "", "<plan>A</plan>\nnorth", 3)
    assert t.window_text("obs", 1) == "Current plan (made 1 steps ago): A\n\nobs"
    t.accept(1, "", "east", 0)  # no plan: A stays in force
    t.accept(2, "", "<plan>B</plan>\nsouth", 3)
    text = t.window_text("obs", 3)
    assert "B" in text and "A" not in text and text.count("Current plan") == 1


def test_window_rows_show_only_the_latest_plan_on_real_episodes(toy_tokenizer):
    chat = ChatTokens(toy_tokenizer)
    tasks = generate_tasks("toy/maze", 4, "medium", seed=3)
    for traj in rollout(None, chat, tasks, window_cfg(), policy="oracle"):
        latest = None
        for row, turn in zip(traj.rows(), traj.turns):
            prompt = toy_tokenizer.decode(row.ids[:row.turns[0].start])
            assert prompt.count("Current plan") == (latest is not None)
            if latest is not None:
                assert f"ago): {latest}\n" in prompt
            latest = turn.info.get("plan", latest)


# ------------------------------------------------------------------ strategies
def test_strategy_rules_and_enforcement():
    always, every, never, dyn = (PlanningConfig(s, k=3) for s in ("always", "every_k", "never", "dynamic"))
    assert [always.must_plan(t) for t in range(3)] == [True] * 3
    assert [every.must_plan(t) for t in range(7)] == [True, False, False, True, False, False, True]
    assert not any(never.may_plan(t) or dyn.must_plan(t) for t in range(5)) and dyn.may_plan(4)
    t = PlanTracker(every)
    assert t.prefix(0) == "<plan>" and t.prefix(1) == ""
    action, info = t.accept(1, "", "<plan>X</plan>\nnorth", 4)  # not allowed here: ignored, counted
    assert action.strip() == "north" and "plan" not in info and info["plan_violation"] and t.plan is None
    action, info = t.accept(3, "<plan>", "Y</plan>\neast", 4)
    assert t.plan == "Y" and info["plan_tokens"] == 4 and action.strip() == "east"
    n = PlanTracker(never)
    action, info = n.accept(0, "", "<plan>Z</plan>\nwest", 5)
    assert n.plan is None and "plan_violation" in info and action.strip() == "west"


@pytest.mark.parametrize("strategy", ["always", "every_k", "never", "dynamic"])
def test_each_strategy_in_model_rollouts(toy_model, toy_tokenizer, strategy):
    """An untrained model: forced prefixes sit in the prompt, plans are accepted only
    where the strategy allows, and every turn is accounted for."""
    chat = ChatTokens(toy_tokenizer)
    tasks = generate_tasks("toy/maze", 3, "easy", seed=5)
    cfg = window_cfg(strategy, max_turns=4, temperature=1.0)
    open_ids = toy_tokenizer.encode("<plan>", add_special_tokens=False)
    for traj in rollout(HFEngine(toy_model, toy_tokenizer.pad_token_id), chat, tasks, cfg, seed=1):
        for k, (row, turn) in enumerate(zip(traj.rows(), traj.turns)):
            prompt = row.ids[:row.turns[0].start]
            forced = cfg.planning.must_plan(k)
            assert (prompt[-len(open_ids):] == open_ids) == forced
            if "plan" in turn.info:
                assert cfg.planning.may_plan(k)
        assert traj.metrics["turns"] == len(traj.turns) and 0 <= traj.metrics["plan_frequency"] <= 1


# ------------------------------------------------------------------ cost and metrics
def test_plan_cost_reaches_the_reward(toy_tokenizer):
    chat = ChatTokens(toy_tokenizer)
    tasks = generate_tasks("toy/maze", 2, "medium", seed=8)
    cfg = window_cfg("always")
    trajs = rollout(None, chat, tasks, cfg, policy="oracle")
    rl = RLConfig(reward="dense")
    free = episode_rewards(trajs, rl, cfg, 0.0)
    costly = episode_rewards(trajs, rl, window_cfg("always", planning=PlanningConfig("always", plan_cost=0.01)), 0.0)
    for t, a, b in zip(trajs, free, costly):
        assert all(turn.info["plan_tokens"] > 0 for turn in t.turns)
        assert b == pytest.approx([x - 0.01 * turn.info["plan_tokens"] for x, turn in zip(a, t.turns)])
    batch = Batch.from_episode_rows(trajs, toy_tokenizer.pad_token_id, costly)
    assert batch.token_rewards.sum().item() == pytest.approx(sum(map(sum, costly)), abs=1e-5)


def test_planning_metrics_arithmetic():
    infos = [{"plan": "a", "plan_source": "agent", "plan_tokens": 6}, {"plan_tokens": 0},
             {"plan_tokens": 0, "plan_violation": "x"}, {"plan": "b", "plan_source": "agent", "plan_tokens": 4},
             {"plan_tokens": 0}, {"plan": "h", "plan_source": "given", "plan_tokens": 0}, {"plan_tokens": 0}]
    m = planning_metrics(infos, policy_tokens=40)
    assert m["plans"] == 2 and m["plan_frequency"] == pytest.approx(2 / 7)
    assert m["plan_tokens"] == 10 and m["plan_length"] == 5
    assert m["plan_steps"] == pytest.approx((3 + 2) / 2)  # a: turns 0-2, b: 3-4 (the given plan ends it)
    assert m["plan_violations"] == 1 and m["policy_tokens"] == 40
    other = planning_metrics([{"plan_tokens": 0}] * 3, policy_tokens=9)
    agg = aggregate_planning([m, other])
    assert agg["plan_frequency"] == pytest.approx(2 / 10) and agg["plan_length"] == 5
    assert agg["plan_steps"] == 2.5 and agg["tokens_per_episode"] == pytest.approx(24.5)
    assert agg["plan_tokens_per_episode"] == 5 and aggregate_planning([{"success": 1.0}]) == {}


# ------------------------------------------------------------------ window context
class RecordingEngine(HFEngine):
    def generate(self, prompts, params, sessions=None, seed=None):
        self.seen = getattr(self, "seen", []) + [list(p) for p in prompts]
        out = super().generate(prompts, params, sessions, seed)
        self.sampled = getattr(self, "sampled", []) + [(g.ids, g.logprobs) for g in out]
        return out


def test_window_mode_is_token_in_token_out(toy_model, toy_tokenizer):
    chat = ChatTokens(toy_tokenizer)
    engine = RecordingEngine(toy_model, toy_tokenizer.pad_token_id)
    tasks = generate_tasks("toy/maze", 3, "medium", seed=2)
    trajs = rollout(engine, chat, tasks, window_cfg("dynamic", max_turns=5), seed=4)
    calls = [(p, ids, lps) for p, (ids, lps) in zip(engine.seen, engine.sampled)]
    stored = []
    for t in trajs:
        assert t.windowed and len(t.row_starts) == len(t.turns)
        for row in t.rows():
            turn = row.turns[0]
            # the prompt the engine saw, then the ids it sampled and their logprobs, as they are
            stored.append((row.ids[:turn.start], row.ids[turn.start:turn.end], row.logprobs[turn.start:turn.end]))
            assert [i for i, m in enumerate(row.loss_mask) if m] == list(range(turn.start, turn.end))
    key = lambda c: (c[0], c[1])  # noqa: E731
    assert sorted(stored, key=key) == sorted(calls, key=key) and len(stored) > len(trajs)


def test_episode_level_baseline_by_hand():
    # one group, two episodes: A has 1 turn (reward 1), B has 3 turns (rewards 0, 0, 0.5)
    mask = torch.tensor([[0, 1, 1, 0]] * 4, dtype=torch.float32)
    rew = torch.zeros(4, 4)
    rew[0, 2], rew[3, 2] = 1.0, 0.5
    episode, turns, groups = torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 1, 2]), torch.zeros(4, dtype=torch.long)
    adv, _ = episode_advantages("grpo", rew, mask, groups, episode, turns)
    mean, std = 0.75, math.sqrt(((1 - 0.75) ** 2 + (0.5 - 0.75) ** 2) / 1)  # over episodes, not turns
    want = torch.tensor([(1 - mean) / std] + [(0.5 - mean) / std] * 3)
    assert torch.allclose(adv[:, 1], want, atol=1e-4) and torch.allclose(adv[:, 2], want, atol=1e-4)
    assert torch.all(adv[:, [0, 3]] == 0)
    adv, _ = episode_advantages("rloo", rew, mask, groups, episode, turns)
    assert torch.allclose(adv[:, 1], torch.tensor([0.5, -0.5, -0.5, -0.5]))
    adv, ret = episode_advantages("rloo", rew, mask, groups, episode, turns, returns="to_go")
    assert torch.allclose(ret[:, 1], torch.tensor([1.0, 0.5, 0.5, 0.5]))
    values = torch.zeros(4, 4)
    values[:, 1] = torch.tensor([0.2, 0.1, 0.3, 0.4])  # V at each row's first policy token
    adv, ret = episode_advantages("gae", rew, mask, groups, episode, turns, values=values)  # over turns
    assert torch.allclose(adv[:, 1], torch.tensor([1 - 0.2, 0.5 - 0.1, 0.5 - 0.3, 0.5 - 0.4]))  # lam 1: G - V
    assert torch.allclose(ret[:, 2], torch.tensor([1.0, 0.5, 0.5, 0.5]))


def test_window_mode_trains_sft_and_rl_without_nans(tmp_path, toy_tokenizer):
    chat = ChatTokens(toy_tokenizer)
    model = build_model("xs", toy_tokenizer, seed=0)
    demos = rollout(None, chat, generate_tasks("toy/maze", 16, "easy", seed=1), window_cfg(), policy="oracle")
    losses = train_sft(model, demos, SFTConfig(epochs=4, batch_size=8, micro_batch_size=8),
                       pad_id=toy_tokenizer.pad_token_id, seed=0, use_autocast=NATIVE_BF16)
    assert len(losses) == 4 * (sum(len(d.turns) for d in demos) // 8) and all(map(math.isfinite, losses))
    assert losses[-1] < 0.5 * losses[0]
    recipe = recipe_from_dict({
        "env": {"name": "toy/maze"}, "model": {"preset": "xs"},
        "data": {"train_size": 12, "mix": {"easy": 1}, "eval_size": 2, "eval_mix": {"easy": 1}},
        "rl": {"tasks_per_iter": 3, "group_size": 4, "lr": 1e-3, "advantage": "gigpo", "reward": "dense",
               "invalid_penalty": 0.1, "minibatch_size": 4},
        "rollout": {"max_turns": 4, "max_new_tokens": 4, "context": "window"},
        "planning": {"strategy": "dynamic", "plan_cost": 0.01, "max_plan_tokens": 8},
        "run": {"dir": str(tmp_path), "progress": False}})
    from questline.train.pipeline import task_sets
    train, _ = task_sets(recipe)
    before = [p.detach().clone() for p in model.parameters()]
    assert train_rl(recipe, model, toy_tokenizer, chat, train, tmp_path, iterations=3) == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    assert all("plan_frequency" in r and "tokens_per_episode" in r for r in rows)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all("lr" in r for r in rows)  # every iteration reached the update
    trained = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert trained and any(r.get("advantage_abs", 0) > 0 for r in rows)  # the plan cost differs within groups


# ------------------------------------------------------------------ any environment
@pytest.mark.parametrize("env", ["toy/maze", "toy/shop"])
@pytest.mark.parametrize("context", ["full", "window"])
def test_planning_works_on_two_envs_without_env_code(toy_tokenizer, env, context):
    chat = ChatTokens(toy_tokenizer)
    tasks = [t for lvl in ("medium", "hard") for t in generate_tasks(env, 4, lvl, seed=6)]
    cfg = window_cfg("dynamic", context=context, planning=PlanningConfig("dynamic", extra_rate=0.3))
    trajs = rollout(None, chat, tasks, cfg, policy="oracle")
    assert all(t.success for t in trajs)  # plans never get in the way of the actions
    agg = aggregate_planning([t.metrics for t in trajs])
    assert 0 < agg["plan_frequency"] < 1 and agg["plan_length"] > 0  # a mix of planning and plain steps
    assert agg["plan_steps"] > 1
    plans = [turn.info["plan"] for t in trajs for turn in t.turns if "plan" in turn.info]
    first = make(env)
    first.reset(tasks[0])
    assert plans[0].startswith(first.oracle_action())  # written from the oracle's own future


def test_gen_data_cli_writes_planning_chats(tmp_path, capsys):
    from questline.cli import main
    out = tmp_path / "plans.jsonl"
    assert main(["gen-data", "toy/maze", "rollout.context=window", "--out", str(out), "--n", "5",
                 "--planning", "dynamic"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(r["metrics"]["success"] == 1 for r in rows)
    replies = [m["content"] for r in rows for row in r["rows"] for m in row if m["role"] == "assistant"]
    assert any(x.startswith("<plan>") for x in replies) and any("<plan>" not in x for x in replies)
    assert "dynamic planning" in capsys.readouterr().out


# ------------------------------------------------------------------ steering
def test_a_given_plan_steers_an_sft_agent():
    """SFT on synthetic planning demos, then the first move of held-out mazes with and
    without a person's plan that names an open exit the oracle would not take."""
    from questline.agent.plan_synth import synthetic_texts
    from questline.data.corpus import oracle_texts
    from questline.envs.toy.maze import MOVES
    from questline.models import train_tokenizer
    torch.manual_seed(0)
    pcfg = PlanningConfig("dynamic", max_plan_tokens=16)
    train = generate_tasks("toy/maze", 120, "easy", seed=1)
    tok = train_tokenizer(oracle_texts(train[:60]) + synthetic_texts(train[:60], pcfg), vocab_size=400)
    chat = ChatTokens(tok)
    cfg = RolloutConfig(max_turns=12, max_new_tokens=4, planning=pcfg)
    demos = rollout(None, chat, train, cfg, policy="oracle")
    model = build_model("xs", tok, seed=0)
    train_sft(model, demos, SFTConfig(epochs=4, lr=3e-3, batch_size=16, micro_batch_size=16),
              pad_id=tok.pad_token_id, seed=0, use_autocast=NATIVE_BF16)
    engine = HFEngine(model.eval(), tok.pad_token_id)
    by_dir: dict[str, list] = {}
    for task in generate_tasks("toy/maze", 40, "easy", seed=99):
        env = make("toy/maze")
        env.reset(task)
        (r, c), best = env.pos, env.oracle_action()
        other = [n for n, (_, _, bit) in MOVES.items() if env.cells[r][c] & bit and n != best]
        if other:
            by_dir.setdefault(other[0], []).append(task)
    from dataclasses import replace
    first = replace(cfg, max_turns=1, temperature=0.0)
    steered = plain = n = 0
    for d, tasks in by_dir.items():
        move = lambda t: t.turns[0].info and t.turns[0].action.strip().splitlines()[-1].strip()  # noqa: E731
        steered += sum(move(t) == d for t in rollout(engine, chat, tasks, first, given_plan=f"{d}, {d}, {d}"))
        plain += sum(move(t) == d for t in rollout(engine, chat, tasks, first))
        n += len(tasks)
    assert n >= 30
    assert steered >= plain + 5 and steered / n >= 0.15, (steered, plain, n)


def test_planning_on_crafter_with_subgoal_plans(toy_tokenizer):
    pytest.importorskip("crafter")
    chat = ChatTokens(toy_tokenizer)
    tasks = generate_tasks("crafter", 1, "easy", seed=1, length=40)
    cfg = window_cfg("dynamic", max_turns=40, max_context_tokens=8192)
    traj = rollout(None, chat, tasks, cfg, policy="oracle", env_cfg={"length": 40})[0]
    plans = [turn.info["plan"] for turn in traj.turns if "plan" in turn.info]
    assert plans and any(", then " in p for p in plans)  # the expert's upcoming subgoals
    assert 0 < traj.metrics["plan_frequency"] < 1 and traj.metrics["progression"] > 0


def test_play_takes_typed_plans_and_actions(toy_model, toy_tokenizer):
    from questline.rollout.play import play_episode
    chat = ChatTokens(toy_tokenizer)
    task = generate_tasks("toy/maze", 1, "hard", seed=3)[0]
    typed = iter(["plan: north, then east", "south", "", "quit"])
    shown: list[str] = []
    traj = play_episode(HFEngine(toy_model, toy_tokenizer.pad_token_id), chat, task, window_cfg("dynamic"),
                        read=lambda _: next(typed), write=shown.append)
    t0, t1 = traj.turns[0], traj.turns[1]
    assert t0.action.startswith("<plan>north, then east</plan>\n") and t0.info["plan_source"] == "given"
    assert t0.info["plan_tokens"] == 0  # a person's plan costs the agent nothing
    assert t1.action == "south" and len(traj.turns) == 3
    row1 = toy_tokenizer.decode(traj.rows()[1].ids)
    assert "Current plan (made 1 steps ago): north, then east" in row1
    assert shown[0].startswith(f"[task {task.id}]")


def test_eval_cli_with_and_without_a_plan(tmp_path, toy_model, toy_tokenizer, capsys):
    from questline.cli import main
    from questline.models import save_policy
    save_policy(toy_model, toy_tokenizer, tmp_path / "policy")
    (tmp_path / "plan.txt").write_text("north, north, east\n")
    assert main(["eval", "toy/maze", "data.eval_size=3", "rollout.context=window", "planning.strategy=dynamic",
                 "--policy", str(tmp_path / "policy"), "--plan", str(tmp_path / "plan.txt")]) == 0
    out = capsys.readouterr().out
    assert "+ given plan on toy/maze" in out and out.count("planning: plan frequency") == 2
    assert main(["eval", "toy/maze", "--policy", str(tmp_path / "policy"), "--plan", "nope.txt"]) == 2


def test_planning_report_table_markdown_and_png(tmp_path):
    from types import SimpleNamespace

    from rich.console import Console

    from questline.experiments.sweep import write_planning_report
    rows = [{"variant": v, "seed": 0, "stages": {
        stage: {"success": 0.5, "score": 0.4, "env_metrics": {"progression": prog},
                "planning": {"plan_frequency": freq, "tokens_per_episode": 90.0, "plan_tokens_per_episode": 30.0 * freq}}
        for stage, prog, freq in (("sft", 0.2, 0.5), ("rl", 0.3, 0.25))}} for v in ("dynamic", "always")]
    png = write_planning_report(SimpleNamespace(name="p"), rows, tmp_path, Console(file=open(tmp_path / "log", "w")))
    md = (tmp_path / "planning.md").read_text().splitlines()
    assert md[0].startswith("| variant | seed | stage | progression") and len(md) == 2 + 4
    assert "| dynamic | 0 | SFT+RL | 0.300 | 0.400 | 0.25 | 90.0 | 7.5 |" in md
    assert png.exists() and png.stat().st_size > 1000


def test_expert_plans_steer_each_episode_from_its_own_task(toy_tokenizer):
    """eval.steer: expert: every episode starts from its task's expert plan (the next
    oracle moves from the start), placed in context before the policy's first action."""
    from questline.agent.plan_synth import expert_plan
    chat = ChatTokens(toy_tokenizer)
    engine = HFEngine(build_model("xs", toy_tokenizer, seed=0).eval(), toy_tokenizer.pad_token_id)
    tasks = generate_tasks("toy/maze", 6, "medium", seed=5)
    cfg = RolloutConfig(max_turns=1, max_new_tokens=4, temperature=0.0, planning=PlanningConfig("dynamic"))
    trajs = rollout(engine, chat, tasks, cfg, given_plan=expert_plan)
    for task, traj in zip(tasks, trajs):
        env = make("toy/maze")
        env.reset(task)
        want = expert_plan(env)
        assert len(want.split(", ")) == 3  # the oracle's next three moves
        assert traj.turns[0].action.startswith(f"<plan>{want}</plan>")
    assert len({t.turns[0].action.split("</plan>")[0] for t in trajs}) > 1  # a plan per task


def test_eval_steer_needs_local_envs():
    from questline.core import ConfigError
    with pytest.raises(ConfigError, match="eval.steer: the expert's plan reads the environment"):
        recipe_from_dict({"env": {"name": "toy/maze"}, "model": {"preset": "xs"}},
                         ["eval.steer=expert", "rollout.workers=2"])
