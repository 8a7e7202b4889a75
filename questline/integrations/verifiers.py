"""Questline's environments as a verifiers environment (verifiers 0.4: `verifiers.v1`).

verifiers 0.4 has no `MultiTurnEnv`/`Rubric`/`datasets.Dataset` API any more; its
multi-turn surface is an `Env` whose `run(task, agents)` drives an agent turn by turn
(`agents.player.interaction(task)`, the pattern of its own TextArena env) and records
rewards on the agent's trace. So here:

- `QuestlineTaskset` yields one verifiers task per Questline task (`generate_tasks`):
  prompt = the env's first observation, system prompt = its instructions, `info` =
  the env name, config and task spec to rebuild the start state;
- `QuestlineEnv.run` resets a Questline env per rollout, steps it with each model
  reply and answers with the observation until the env says done;
- the episode's metrics (`success`, `score`; TravelPlanner's `final_pass`,
  `commonsense_macro`, `hard_macro`, ...) land on the trace as metrics, and the
  one named by `reward_metric` (default `success`) as its reward;
- `QuestlineChatHarness` is the in-process chat loop (one model call per turn) the
  agent runs: verifiers' own tool-less `null` harness launches a `uv` script.

verifiers always reaches the model through an OpenAI-compatible HTTP endpoint
(`vf.EvalClientConfig(base_url=...)`); `serve_client` puts an in-process client
object (anything with `chat.completions.create`) behind one on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import verifiers.v1 as vf
from aiohttp import web
from openai import AsyncOpenAI
from verifiers.v1.runtimes import ProgramResult

from questline.core import Task
from questline.envs import generate_tasks, make

TASKSET_ID = "questline-verifiers"
"""The verifiers plugin id: the top-level `questline_verifiers` package re-exports this
module (verifiers imports plugins by a top-level name; a dotted id does not resolve)."""


class QuestlineTasksetConfig(vf.TasksetConfig):
    env: str = "toy/maze"
    """A Questline env name (`questline.envs.registered()`)."""
    env_config: dict[str, Any] = {}
    """The env's config, as under `env.config` in a recipe."""
    n: int = 8
    difficulty: str = "easy"
    seed: int = 0


class QuestlineData(vf.TaskData):
    info: dict
    """`env`, `env_config` and `task` (the Questline task as a dict)."""


class QuestlineTask(vf.Task[QuestlineData, vf.State, vf.TaskConfig]):
    pass


class QuestlineTaskset(vf.Taskset[QuestlineTask, QuestlineTasksetConfig]):
    def load(self) -> Iterator[QuestlineTask]:
        c = self.config
        env = make(c.env, **c.env_config)
        try:
            for task in generate_tasks(c.env, c.n, c.difficulty, c.seed, **c.env_config):
                info = {"env": c.env, "env_config": c.env_config, "task": task.to_dict()}
                yield QuestlineTask(
                    QuestlineData(id=task.id, name=f"{c.env}#{task.id}", prompt=env.reset(task),
                                  system_prompt=env.instructions, info=info),
                    c.task,
                )
        finally:
            env.close()


class QuestlineChatHarnessConfig(vf.HarnessConfig):
    pass


class QuestlineChatHarness(vf.Harness[QuestlineChatHarnessConfig]):
    """One chat completion per segment, run in-process, through the rollout's
    interception endpoint (so verifiers records every call on the trace)."""

    APPENDS_SYSTEM_PROMPT = True
    SUPPORTS_RESUME = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(self, ctx, trace, runtime, endpoint, secret, mcp_urls, data, **_) -> ProgramResult:
        system, prompt = self.resolve_prompt(data)
        messages = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        else:
            messages += [m.model_dump(mode="json", exclude_none=True) for m in prompt or []]
        async with AsyncOpenAI(base_url=endpoint, api_key=secret, max_retries=0) as client:
            await client.chat.completions.create(model=ctx.model, messages=messages)
        return ProgramResult(exit_code=0, stdout="", stderr="")


LOCAL = vf.SubprocessConfig()
"""The agent's runtime: the chat harness runs in-process and only needs a host-local
box (verifiers' default is a remote Prime sandbox, reached through a tunnel)."""


class QuestlineEnvConfig(vf.EnvConfig):
    player: vf.AgentConfig = vf.AgentConfig(runtime=LOCAL)
    reward_metric: str = "success"
    """The episode metric that is the trace's reward (e.g. `score` for partial credit)."""


class QuestlineEnv(vf.Env[QuestlineEnvConfig]):
    async def run(self, task: QuestlineTask, agents: vf.Agents) -> None:
        info = task.data.info
        env = make(info["env"], **info["env_config"])
        try:
            env.reset(Task.from_dict(info["task"]))  # the task's prompt is this observation
            metrics: dict[str, float] | None = None
            async with agents.player.interaction(task) as interaction:
                segment = await interaction.turn()
                while not segment.terminated:
                    step = env.step(segment.last_reply)
                    if step.info.get("infra_error"):  # the env failed, not the agent: no score
                        raise RuntimeError(f"{info['env']}: {step.info['infra_error']}")
                    if step.done:
                        metrics = step.info["metrics"]
                        break
                    segment = await interaction.turn(step.observation)
            if metrics is None:  # cut off by the agent's limits (max turns, tokens, ...)
                metrics = env.metrics()
        finally:
            env.close()
        record_metrics(interaction.trace, metrics, self.config.reward_metric)


def record_metrics(trace: vf.Trace, metrics: dict[str, float], reward_metric: str) -> None:
    """The episode's numeric metrics on the trace, and `reward_metric` as its reward."""
    if reward_metric not in metrics:
        raise KeyError(f"reward_metric '{reward_metric}' is not an episode metric (have: {sorted(metrics)})")
    trace.record_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
    trace.record_reward(reward_metric, float(metrics[reward_metric]), 1.0)


def make_env(env: str = "toy/maze", env_config: dict | None = None, n: int = 8, difficulty: str = "easy",
             seed: int = 0, reward_metric: str = "success", **player: Any) -> QuestlineEnv:
    """A `QuestlineEnv` over `n` tasks of a Questline env; `player` goes to the
    agent's `vf.AgentConfig` (e.g. `max_turns=40`)."""
    taskset = QuestlineTasksetConfig(id=TASKSET_ID, env=env, env_config=env_config or {}, n=n,
                                     difficulty=difficulty, seed=seed)
    return QuestlineEnv(QuestlineEnvConfig(taskset=taskset, reward_metric=reward_metric,
                                           player=vf.AgentConfig(**{"runtime": LOCAL, **player})))


async def run_episodes(env: QuestlineEnv, model: str, client: vf.EvalClientConfig) -> list[vf.Episode]:
    """One episode per task of `env`'s taskset against the endpoint `client` names."""
    ctx = vf.ModelContext(model=model, client=client)
    async with env.serving():
        return [await env.run_episode(task, ctx) for task in env.taskset]


@contextlib.asynccontextmanager
async def serve_client(client: Any) -> AsyncIterator[vf.EvalClientConfig]:
    """An OpenAI-compatible endpoint on 127.0.0.1 answering chat completions with
    `client.chat.completions.create(**request)` (sync or async, returning an openai
    `ChatCompletion`); yields the `vf.EvalClientConfig` that reaches it."""

    async def completions(request: web.Request) -> web.Response:
        create, body = client.chat.completions.create, await request.json()
        if inspect.iscoroutinefunction(create):
            reply = await create(**body)
        else:  # a blocking client (e.g. openai.OpenAI) must not stall the rollouts' event loop
            reply = await asyncio.to_thread(create, **body)
        return web.json_response(reply.model_dump(mode="json", exclude_none=True))

    app = web.Application()
    for path in ("/chat/completions", "/v1/chat/completions"):
        app.router.add_post(path, completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield vf.EvalClientConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key_var="QUESTLINE_UNUSED_KEY")
    finally:
        await runner.cleanup()


__all__ = [
    "QuestlineChatHarness", "QuestlineChatHarnessConfig", "QuestlineData", "QuestlineEnv",
    "QuestlineEnvConfig", "QuestlineTask", "QuestlineTaskset", "QuestlineTasksetConfig",
    "make_env", "record_metrics", "run_episodes", "serve_client",
]
