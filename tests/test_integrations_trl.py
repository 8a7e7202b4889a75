"""Questline environments in TRL's GRPOTrainer (questline.integrations.trl), against the
installed TRL: tool envs for `environment_factory`, `QuestlineRollout` for `rollout_func`,
Questline's rewards, and the README's TRL example."""

import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("trl")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from transformers.utils import get_json_schema  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling  # noqa: E402

from questline.envs import generate_tasks, make  # noqa: E402
from questline.integrations.trl import (  # noqa: E402
    QuestlineRollout,
    ShopTools,
    SweTools,
    TravelPlannerTools,
    questline_reward,
    task_dataset,
    tool_calling_tokenizer,
)
from questline.models import build_model, train_tokenizer  # noqa: E402
from questline.rewards import shape_rewards  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
TP_CFG = dict(world="mini", render="compact", days=[3])
TP_TOOLS = ("FlightSearch", "GoogleDistanceMatrix", "AccommodationSearch", "RestaurantSearch",
            "AttractionSearch", "CitySearch", "NotebookWrite", "answer")
DAY_KEYS = ("transportation", "breakfast", "attraction", "lunch", "dinner", "accommodation")


def grpo_args(tmp_path, **kw) -> GRPOConfig:
    return GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
                      max_steps=2, use_cpu=True, report_to="none", logging_steps=1, save_strategy="no",
                      beta=0.0, learning_rate=1e-3, bf16=False, **kw)


def tools_of(env) -> list:
    return [getattr(env, name) for name in TP_TOOLS]


def replay(task, actions: list[str]):
    """The env's own metrics for these actions, in a fresh TravelPlanner env."""
    env = make("travelplanner", **{**TP_CFG, "syntax": "json"})
    env.reset(task)
    for action in actions:
        step = env.step(action)
        if step.done:
            return step.info["metrics"]
    return env.metrics()


# ---------------------------------------------------------------- template and tool envs
def test_preset_template_supports_tool_calling(toy_tokenizer):
    tok = tool_calling_tokenizer(toy_tokenizer)
    assert supports_tool_calling(tok) and is_chat_template_prefix_preserving(tok)
    chat = [{"role": "user", "content": "Hi"}]
    env = TravelPlannerTools(**TP_CFG)
    text = tok.apply_chat_template(chat, tools=tools_of(env), tokenize=False, add_generation_prompt=True)
    assert '"name": "GoogleDistanceMatrix"' in text and text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    prefix = tok.apply_chat_template(chat, tokenize=True, return_dict=False, add_generation_prompt=True)
    reply = '<tool_call>\n{"name": "CitySearch", "arguments": {"state": "Ohio"}}\n</tool_call><|im_end|>'
    parsed = tok.parse_response(tok.encode(reply), prefix=prefix)
    assert parsed["tool_calls"][0]["function"] == {"name": "CitySearch", "arguments": {"state": "Ohio"}}


def test_tool_envs_step_the_questline_env():
    task = generate_tasks("travelplanner", 1, "easy", seed=0, **TP_CFG)[0]
    env = TravelPlannerTools(**TP_CFG)
    for fn in tools_of(env):  # TRL builds each tool's schema from its hints and docstring
        assert get_json_schema(fn)["function"]["name"] == fn.__name__
    assert "Query:" in env.reset(json.dumps(task.to_dict()))
    assert "not valid city" in env.AccommodationSearch(city="Atlantis")  # the env's own error message
    q = task.spec
    assert "cost" in env.GoogleDistanceMatrix(origin=q["org"], destination=q["dest"], mode="self-driving")
    assert env.answer(plan=[{"days": 1, "current_city": q["dest"], **dict.fromkeys(DAY_KEYS, "-")}]) == "Plan received."
    with pytest.raises(RuntimeError, match="ended"):
        env.CitySearch(state="Ohio")
    traj = env._finish([])
    assert [t.info.get("invalid_action", False) for t in traj.turns] == [True, False, False]
    assert traj.metrics["delivered"] == 1.0
    assert traj.metrics == {**replay(task, [t.action for t in traj.turns]), "turns": 3.0}

    shop = ShopTools()
    shop_task = generate_tasks("toy/shop", 1, "easy", seed=0)[0]
    shop.reset(shop_task.to_dict())
    item, _ = shop_task.spec["order"][0]
    price = shop_task.spec["prices"][shop_task.spec["city"]][item]
    assert shop.price(item=item, city=shop_task.spec["city"]).endswith(f": {price}")
    trajectory = shop._finish([{"role": "assistant", "content": f"answer[{price}]"}])  # a final reply is judged
    assert trajectory.metrics["success"] == 1.0
    assert questline_reward("sparse")([[]], environments=[shop]) == [1.0]


def test_swe_tools_call_the_sandboxed_env():
    task = generate_tasks("swe", 1, "easy", seed=0)[0]
    env = SweTools()
    for name in ("ls", "view", "search", "replace", "insert", "create", "run_tests", "submit"):
        assert get_json_schema(getattr(env, name))["function"]["name"] == name
    assert env.reset(task.to_dict()).startswith("Issue:")
    assert task.spec["files"][0] in env.ls()
    assert env.view(path="nope.py").startswith("Error: 'nope.py' does not exist")
    assert [t.action for t in env._turns] == ['<tool_call>{"name": "ls", "arguments": {"path": "."}}</tool_call>',
                                              '<tool_call>{"name": "view", "arguments": {"path": "nope.py"}}</tool_call>']
    env._env.close()


# ---------------------------------------------------------------- environment_factory
def demo_bias(tok, msgs: list[dict], tools: list, strength: float = 40.0) -> list:
    """Test scaffold in place of a trained policy: a `sequence_bias` (transformers' logits
    processor, passed through GRPOConfig.generation_kwargs) that makes the tiny random
    model write the assistant turns of `msgs`: each id gets +strength after the shortest
    context that determines it. The tool calls, their results and the judging are real."""
    ids = tok.apply_chat_template(msgs, tools=tools, tokenize=True, return_dict=False)
    start = len(tok.apply_chat_template(msgs[:1], tools=tools, tokenize=True, return_dict=False,
                                        add_generation_prompt=True))
    for k in range(2, 64):
        nxt: dict[tuple, int] = {}
        if all(nxt.setdefault(tuple(ids[i - k:i]), ids[i]) == ids[i] for i in range(start, len(ids))):
            return [[list(ctx) + [t], strength] for ctx, t in nxt.items()]
    raise AssertionError("demo is ambiguous")


@pytest.mark.slow
def test_grpo_environment_factory_travelplanner(tmp_path):
    task = generate_tasks("travelplanner", 1, "easy", seed=0, **TP_CFG)[0]
    q = task.spec
    probe = TravelPlannerTools(**TP_CFG)
    obs = probe.reset(json.dumps(task.to_dict()))
    call = {"name": "GoogleDistanceMatrix", "arguments": {"origin": q["org"], "destination": q["dest"],
                                                          "mode": "self-driving"}}
    plan = json.dumps([{"days": 1, "current_city": q["dest"], **dict.fromkeys(DAY_KEYS, "-")}])
    msgs = [{"role": "user", "content": obs},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]},
            {"role": "tool", "name": call["name"], "content": probe.GoogleDistanceMatrix(**call["arguments"])},
            {"role": "assistant", "content": f"<answer>{plan}</answer>"}]
    text = train_tokenizer(["x"], vocab_size=300).apply_chat_template(msgs, tools=tools_of(probe), tokenize=False)
    tok = tool_calling_tokenizer(train_tokenizer([text] * 4, vocab_size=1024))
    model = build_model("xs", tok, seed=0)

    made, scored = [], []
    reward_fn = questline_reward("tp_sum")

    def factory():
        made.append(TravelPlannerTools(**TP_CFG))
        return made[-1]

    def tp_sum(**kw):
        rewards = reward_fn(**kw)
        scored.extend(zip([env._trajectory for env in kw["environments"]], rewards))
        return rewards

    args = grpo_args(tmp_path, max_completion_length=160,
                     generation_kwargs={"sequence_bias": demo_bias(tok, msgs, tools_of(probe))})
    trainer = GRPOTrainer(model=model, reward_funcs=[tp_sum], args=args, train_dataset=task_dataset([task, task]),
                          processing_class=tok, environment_factory=factory)
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(scored) == 4  # 2 steps x 2 generations
    for traj, reward in scored:
        assert traj.turns[0].action.startswith('<tool_call>{"name": "GoogleDistanceMatrix"')  # TRL called the tool
        assert "cost" in traj.turns[0].observation
        assert traj.metrics["delivered"] == 1.0  # the final reply's plan went to the evaluator
        metrics = replay(task, [t.action for t in traj.turns])
        assert traj.metrics == {**metrics, "turns": 2.0}
        assert reward == pytest.approx(shape_rewards("tp_sum", traj)[-1]) and 0 < reward < 1
    logged = [h["rewards/tp_sum/mean"] for h in trainer.state.log_history if "rewards/tp_sum/mean" in h]
    assert logged == pytest.approx([r for _, r in scored[::2]])
    assert all(h.get("tools/call_frequency") == 1.0 for h in trainer.state.log_history if "loss" in h)


# ---------------------------------------------------------------- rollout_func (README)
@pytest.mark.slow
def test_readme_trl_example_runs_rollout_func_on_maze(tmp_path, monkeypatch):
    section = README.read_text().split("### TRL", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    trainer, rollout = ns["trainer"], ns["rollout"]
    assert trainer.state.global_step == 2

    # One more batch through TRL's generation step: Questline's ids exactly as sampled, and
    # TRL takes env_mask as its mask of the policy's tokens.
    prompts = [row["prompt"] for row in trainer.train_dataset][:2]
    prompt_ids, completion_ids, mask, _, logprobs, extra, *_ = trainer._generate(prompts)
    for i, traj in enumerate(extra["trajectory"]):
        n = traj.prompt_len
        assert prompt_ids[i] + completion_ids[i] == traj.ids
        assert mask[i] == traj.loss_mask[n:] and logprobs[i] == traj.logprobs[n:]
        assert 0 < sum(mask[i]) < len(mask[i]) and len(traj.turns) >= 1
        assert traj.tokens_forwarded in (len(traj.ids) - 1, len(traj.ids) - 2)  # KV cache kept across turns
    assert isinstance(rollout, QuestlineRollout)
    rewards = questline_reward("score")(completions=[None] * 2, trajectory=extra["trajectory"])
    assert rewards == [traj.metrics["score"] for traj in extra["trajectory"]]
