"""The text-engine seam of the rollout (`questline eval --engine openai`) without a
server: the chat messages each turn sends, replies cut off, a full context window,
infrastructure failures (a real refused connection), and the engine's pure helpers.
The same engine against a real vLLM server: tests/test_vllm_eval.py."""

import openai
import pytest

from questline.agent import ChatTokens
from questline.core import ConfigError
from questline.envs import generate_tasks
from questline.inference import ChatReply, SamplingParams
from questline.inference.openai_chat import (
    OpenAIChatEngine,
    api_key,
    check_base_url,
    error_reply,
    request_args,
)
from questline.rollout import RolloutConfig, rollout
from questline.train.evaluate import evaluate, infra_summary


class Scripted:
    """A TextEngine answering from a list per turn, recording what it was sent."""

    def __init__(self, replies):
        self.replies, self.sent = replies, []

    def chat(self, conversations, params, seeds=None):
        self.sent.append((conversations, params, seeds))
        return [self.replies[len(self.sent) - 1] for _ in conversations]


def test_each_turn_sends_the_whole_conversation_as_chat_messages(toy_tokenizer):
    task = generate_tasks("toy/maze", 1, "easy", seed=5)[0]
    engine = Scripted([ChatReply("north\nbecause", "stop"), ChatReply("east", "length"), ChatReply("west", "stop")])
    [traj] = rollout(engine, ChatTokens(toy_tokenizer), [task], RolloutConfig(max_turns=3, max_new_tokens=7))
    assert [t.action for t in traj.turns] == ["north\nbecause", "east", "west"]  # the server's text, kept whole
    [last], params, seeds = engine.sent[-1]
    t0, t1 = traj.turns[:2]
    assert last == [{"role": "system", "content": traj.system}, {"role": "user", "content": traj.first_observation},
                    {"role": "assistant", "content": "north\nbecause"}, {"role": "user", "content": t0.observation},
                    {"role": "assistant", "content": "east"}, {"role": "user", "content": t1.observation}]
    assert params.max_new_tokens == 7 and len(set(s for _, _, ss in engine.sent for s in ss)) == 3
    cut = traj.ids[t1.start:t1.end]
    assert cut[-1] != ChatTokens(toy_tokenizer).eot_id  # cut off: no end-of-turn was sampled
    assert traj.success  # "west" reached the goal: the env judged the text


def test_a_full_context_ends_the_episode_truncated_and_a_failing_server_flags_it(toy_tokenizer):
    tasks = generate_tasks("toy/maze", 1, "easy", seed=5)
    chat = ChatTokens(toy_tokenizer)
    [full] = rollout(Scripted([ChatReply("north", "stop"), ChatReply("", "context", "too long")]), chat, tasks,
                     RolloutConfig(max_turns=5))
    assert (full.truncation, len(full.turns), full.infra_failed) == ("max_tokens", 1, False)
    [down] = rollout(Scripted([ChatReply("", "infra", "HTTP 503: busy")]), chat, tasks, RolloutConfig())
    assert down.infra_failed and down.infra_error == "engine: HTTP 503: busy" and not down.turns


def test_a_refused_connection_mid_run_is_retried_then_flagged_never_scored(toy_tokenizer, caplog):
    tasks = generate_tasks("toy/maze", 3, "easy", seed=1)
    engine = OpenAIChatEngine("http://127.0.0.1:9/v1", "any", retries=1)  # port 9: nothing listens
    with caplog.at_level("INFO", logger="openai"):
        res, trajs = evaluate(engine, ChatTokens(toy_tokenizer), tasks, RolloutConfig(max_turns=3))
    assert caplog.text.count("Retrying request to /chat/completions") == 3  # once per episode, with backoff
    assert all(t.infra_failed and "APIConnectionError" in t.infra_error for t in trajs)
    assert (res.n, res.infra_failed) == (0, 3)
    assert infra_summary(trajs).startswith("3 of 3 episodes left out as infrastructure failures")


def test_a_text_engine_cannot_be_forced_to_start_with_a_plan(toy_tokenizer):
    tasks = generate_tasks("toy/maze", 1, "easy", seed=5)
    with pytest.raises(ConfigError, match="cannot be forced"):
        rollout(Scripted([ChatReply("north", "stop")]), ChatTokens(toy_tokenizer), tasks, RolloutConfig(),
                given_plan="go north")


def test_errors_sort_into_context_full_and_infrastructure():
    import httpx
    req = httpx.Request("POST", "http://x/v1/chat/completions")

    too_long = openai.BadRequestError("This model's maximum context length is 4096 tokens. However, you requested "
                                      "4200 tokens", response=httpx.Response(400, request=req), body=None)
    assert error_reply(too_long).finish_reason == "context"
    other = openai.BadRequestError("temperature must be >= 0", response=httpx.Response(400, request=req), body=None)
    assert error_reply(other).finish_reason == "infra" and "HTTP 400" in error_reply(other).error
    busy = openai.InternalServerError("overloaded", response=httpx.Response(503, request=req), body=None)
    assert error_reply(busy) == ChatReply("", "infra", "HTTP 503: overloaded")
    assert error_reply(openai.APIConnectionError(request=req)).error == "APIConnectionError: Connection error."


def test_request_arguments_urls_and_keys(monkeypatch):
    greedy = request_args("m", SamplingParams(0.0, 1.0, 64), 7)
    assert greedy == {"model": "m", "max_tokens": 64, "temperature": 0.0, "seed": 7}
    assert request_args("m", SamplingParams(0.7, 0.9, 8), None)["top_p"] == 0.9
    assert check_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    for bad in ("127.0.0.1:8000", "ftp://x/v1", "http://"):
        with pytest.raises(ConfigError, match="not an http"):
            check_base_url(bad)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("QL_TEST_KEY", raising=False)
    assert api_key("") == "EMPTY"
    with pytest.raises(ConfigError, match="QL_TEST_KEY is not set"):
        api_key("QL_TEST_KEY")
    monkeypatch.setenv("QL_TEST_KEY", "sk-1")
    assert api_key("QL_TEST_KEY") == "sk-1"


@pytest.mark.parametrize("flags, message", [
    (["--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
     "error: cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1 ([Errno 111] Connection refused); "
     "is it running?"),
    (["--base-url", "localhost:8000", "--model", "m"], "error: --base-url: 'localhost:8000' is not an http(s) URL"),
    (["--model", "m"], "error: eval --engine openai: give --base-url"),
    (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--policy", "x"], "error: eval --engine openai plays"),
])
def test_eval_engine_openai_bad_flags_or_a_refused_port_are_one_error_line(capsys, flags, message):
    from questline.cli import main
    assert main(["eval", "toy/maze", "--engine", "openai", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
