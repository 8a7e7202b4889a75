"""The verifiers (0.4, `verifiers.v1`) adapter plays real Questline episodes against a
scripted OpenAI-style client; its rewards are Questline's evaluator results."""

import asyncio
import re
import socket
from pathlib import Path

import pytest

pytest.importorskip("verifiers.v1")

from openai.types.chat import ChatCompletion  # noqa: E402

from questline.envs import generate_tasks, make  # noqa: E402
from questline.integrations import verifiers as qv  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
TP_MINI = {"world": "mini", "days": [3]}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """verifiers talks HTTP (agent -> interception server -> model endpoint): all of it
    must stay on 127.0.0.1 (no Prime sandbox, tunnel or inference endpoint)."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a connection off this host: {address}")
        return connect(sock, address)
    monkeypatch.setattr(socket.socket, "connect", guarded)


class ScriptedClient:
    """An in-process stand-in for `openai.OpenAI`: `chat.completions.create` answers
    with the oracle's next action (after any `bad` actions), read off a shadow copy of
    the env it steps alongside; it never opens a socket."""

    def __init__(self, env: str, env_config: dict, difficulty: str = "easy", bad: tuple[str, ...] = ()):
        self.shadow = make(env, **env_config)
        self.shadow.reset(generate_tasks(env, 1, difficulty, 0, **env_config)[0])
        self.bad = list(bad)
        self.chat = self.completions = self
        self.requests: list[dict] = []
        self.observations: list[str] = []  # what the shadow env answered to each action
        self.final_metrics: dict | None = None

    def create(self, **request) -> ChatCompletion:
        self.requests.append(request)
        action = self.bad.pop(0) if self.bad else self.shadow.oracle_action()
        step = self.shadow.step(action)
        self.observations.append(step.observation)
        if step.done:
            self.final_metrics = step.info["metrics"]
        return ChatCompletion.model_validate({
            "id": f"scripted-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": action}}],
        })


def play(client: ScriptedClient, env: str, env_config: dict | None = None, difficulty: str = "easy", **player):
    async def main():
        venv = qv.make_env(env, env_config, n=1, difficulty=difficulty, **player)
        async with qv.serve_client(client) as endpoint:
            return await qv.run_episodes(venv, "scripted", endpoint)
    (episode,) = asyncio.run(main())
    assert episode.ok, episode.errors
    (trace,) = episode.traces
    return trace


def test_taskset_rows_are_the_envs_tasks():
    env = qv.make_env("toy/maze", n=3)
    rows = list(env.taskset)
    tasks = generate_tasks("toy/maze", 3, "easy", 0)
    maze = make("toy/maze")
    assert [r.data.id for r in rows] == [t.id for t in tasks]
    assert rows[0].data.prompt == maze.reset(tasks[0])
    assert rows[0].data.system_prompt == maze.instructions
    assert rows[0].data.info["task"] == tasks[0].to_dict()


def test_maze_oracle_rollout_reward_is_the_envs_success():
    client = ScriptedClient("toy/maze", {})
    trace = play(client, "toy/maze")
    assert client.final_metrics["success"] == 1.0
    assert trace.reward == 1.0 and trace.rewards["success"].score == 1.0
    assert trace.metrics == pytest.approx(client.final_metrics)
    assert trace.num_turns == len(client.requests)


def test_travelplanner_mini_oracle_rollout_scores_questlines_evaluator():
    client = ScriptedClient("travelplanner", TP_MINI)
    trace = play(client, "travelplanner", TP_MINI)
    m = client.final_metrics  # the env's evaluator on the delivered plan
    assert m["final_pass"] == 1.0
    assert trace.reward == m["final_pass"]
    for key in ("final_pass", "commonsense_macro", "hard_macro", "commonsense_micro", "hard_micro", "delivered"):
        assert trace.metrics[key] == m[key], key


def test_textworld_oracle_rollout_wins_the_game():
    pytest.importorskip("textworld")
    cfg = {"family": "treasure_hunter", "workers": 1, "progress": False}
    client = ScriptedClient("textworld", cfg)
    trace = play(client, "textworld", cfg)
    assert client.final_metrics["success"] == 1.0
    assert trace.reward == 1.0 and trace.metrics == pytest.approx(client.final_metrics)


def test_bad_action_gets_the_envs_error_observation():
    client = ScriptedClient("toy/maze", {}, bad=("fly to the moon",))
    trace = play(client, "toy/maze")
    error = client.observations[0]
    assert error.startswith("Invalid action")
    reply_to_bad = client.requests[1]["messages"][-1]  # the user turn after the bad action
    assert reply_to_bad == {"role": "user", "content": error}
    assert trace.metrics["invalid_actions"] == 1.0 and trace.reward == 1.0  # the oracle still got there


def test_rollout_cut_off_by_the_agents_turn_limit_scores_the_env_so_far():
    client = ScriptedClient("toy/maze", {}, bad=("wait", "wait", "wait"))
    trace = play(client, "toy/maze", max_turns=2)
    assert len(client.requests) == 2
    assert trace.reward == 0.0 and trace.metrics["success"] == 0.0


def test_env_infra_error_fails_the_episode_instead_of_scoring_it():
    cfg = {**TP_MINI, "faults": {"rate": 1.0, "kinds": ["timeout"], "exclude_infra": True}}

    async def main():
        venv = qv.make_env("travelplanner", cfg, n=1)
        async with qv.serve_client(ScriptedClient("travelplanner", cfg)) as endpoint:
            return await qv.run_episodes(venv, "scripted", endpoint)
    (episode,) = asyncio.run(main())
    assert not episode.ok
    assert "timed out" in episode.errors[0].message
    assert all(not t.rewards for t in episode.traces)


def test_unknown_reward_metric_is_a_clear_error():
    with pytest.raises(KeyError, match="reward_metric 'pass@1'"):
        qv.record_metrics(None, {"success": 1.0}, "pass@1")


def test_readme_verifiers_snippet_runs():
    section = README.read_text().split("### verifiers", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {"client": ScriptedClient("toy/maze", {})}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["episode"].traces[0].reward == 1.0
