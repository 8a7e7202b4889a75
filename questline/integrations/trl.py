"""Questline environments in TRL's GRPOTrainer (trl >= 1.16), two ways.

environment_factory  TRL samples, parses `<tool_call>` blocks and calls tools; a tool
                     env here (`TravelPlannerTools`, `ShopTools`, `SweTools`) turns each call into
                     the Questline env's `step`, so the env's own dispatch, error
                     messages, episode rules and evaluator apply. TRL re-renders the
                     conversation through the chat template and re-prefills it after
                     every tool result (its ids, not Questline's `ChatTokens`).
rollout_func         `QuestlineRollout` plays whole episodes with Questline's rollout
                     (`questline.rollout.rollout`, `ChatTokens`, `HFEngine`, which keeps
                     each episode's KV cache across turns) and hands TRL the exact ids
                     and logprobs it sampled; observation tokens go in `env_mask` (0),
                     so TRL trains on the policy's tokens only. Any Questline env works
                     (text commands: toy/maze, textworld, alfworld, crafter; tools too).

`questline_reward(scheme)` is a TRL reward function returning a Questline reward scheme
(`questline.rewards`: tp_success = TravelPlanner's final pass, tp_sum = SUM, tp_macro =
MACRO, tp_staged, sparse, score, ...) for the finished episodes of either path. An
episode the environment (not the agent) failed gets None: TRL leaves it out.

Datasets: `task_dataset(tasks)` (environment_factory: a `task` column that `reset`
reads) and `QuestlineRollout.dataset(tasks)` (rollout_func: the rendered first prompt).
The presets' tokenizer needs `tool_calling_tokenizer(tok)` before environment_factory
(it tells TRL how to parse our template's `<tool_call>` blocks).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from questline.agent import ChatTokens
from questline.core import Task, Trajectory, Turn, derive_seed
from questline.envs import make
from questline.inference.hf_engine import HFEngine
from questline.models.tokenizer import CHAT_TEMPLATE, chat_ids
from questline.rewards import check_reward_args, shape_rewards
from questline.rollout.runner import RolloutConfig, rollout


# ---------------------------------------------------------------- tokenizer
def tool_calling_tokenizer(tokenizer):
    """Tell transformers/TRL how to parse tool calls out of replies in the presets'
    template (Qwen's `<tool_call>` JSON blocks: TRL's Qwen3 response template). TRL
    does this itself for the chat templates it knows (Qwen, Llama 3.1, ...)."""
    if tokenizer.chat_template != CHAT_TEMPLATE or getattr(tokenizer, "response_template", None):
        return tokenizer
    from trl.chat_template_utils import _SUPPORTS_RESPONSE_TEMPLATE, qwen3_schema, qwen3_template
    if _SUPPORTS_RESPONSE_TEMPLATE:  # transformers >= 5.13
        tokenizer.response_template = qwen3_template
    else:
        tokenizer.response_schema = qwen3_schema
    return tokenizer


# ---------------------------------------------------------------- environment_factory
def task_dataset(tasks: list[Task], system: str = ""):
    """A TRL train set: one row per task, `prompt` (the system prompt and an empty
    user turn that `reset`'s first observation fills) and `task` (JSON)."""
    from datasets import Dataset
    head = [{"role": "system", "content": system}] if system else []
    return Dataset.from_list([{"prompt": head + [{"role": "user", "content": ""}],
                               "task": json.dumps(t.to_dict())} for t in tasks])


class QuestlineToolEnv:
    """One Questline episode for TRL's `environment_factory`. TRL exposes every public
    method but `reset` as a tool (name, type hints and docstring give the schema), so
    helpers here are private. Subclasses set `env_name` and write the tools."""

    env_name = ""

    def __init__(self, **env_cfg: Any):
        self._env = make(self.env_name, **env_cfg)
        self._task: Task | None = None
        self._turns: list[Turn] = []
        self._metrics: dict | None = None
        self._infra_error = ""
        self._trajectory: Trajectory | None = None

    @property
    def instructions(self) -> str:
        return self._env.instructions

    def reset(self, task: str | dict, **_: Any) -> str:
        """Start the episode of a dataset row's `task`; returns the first observation."""
        self._task = Task.from_dict(json.loads(task) if isinstance(task, str) else task)
        self._turns, self._metrics, self._infra_error, self._trajectory = [], None, "", None
        return self._env.reset(self._task)

    def _act(self, action: str) -> str:
        """One env step; the observation is the tool's result."""
        if self._task is None:
            raise RuntimeError("reset() first")
        if self._metrics is not None:
            raise RuntimeError("The episode has ended: no more tool calls.")
        try:
            step = self._env.step(action)
        except Exception as err:  # the environment, not the agent, failed
            self._infra_error, self._metrics = f"step: {err!r}", {}
            raise
        info = {k: v for k, v in step.info.items() if k != "metrics"}
        self._turns.append(Turn(action, step.observation, float(step.reward), 0, 0, info=info))
        self._infra_error = self._infra_error or str(step.info.get("infra_error") or "")
        if step.done:
            self._metrics = dict(step.info.get("metrics") or self._env.metrics())
        return step.observation

    def _call(self, name: str, **arguments: Any) -> str:
        """A JSON tool call, dispatched by the env as a `<tool_call>` action."""
        return self._act("<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>")

    def _finish(self, completion) -> Trajectory:
        """The episode as a Trajectory. A final reply without a tool call (TRL's end of
        a rollout) is stepped as the last action when the episode is still open, as
        Questline's rollout steps every reply: an answer there is judged."""
        if self._trajectory is not None:
            return self._trajectory
        last = completion[-1] if isinstance(completion, list) and completion else {}
        text = last.get("content") if isinstance(last, dict) and not last.get("tool_calls") else None
        if self._metrics is None and text:
            try:
                self._act(text)
            except Exception:  # noqa: BLE001 - recorded as an infra error by _act
                pass
        metrics = self._metrics if self._metrics is not None else self._env.metrics()
        metrics = {"success": 0.0, "score": 0.0, **{k: float(v) for k, v in metrics.items()}}
        metrics["turns"] = float(len(self._turns))
        self._env.close()
        self._trajectory = Trajectory(task=self._task, system=self._env.instructions, turns=list(self._turns),
                                      metrics=metrics, done=True, infra_failed=bool(self._infra_error),
                                      infra_error=self._infra_error, truncated=self._metrics is None)
        return self._trajectory


class TravelPlannerTools(QuestlineToolEnv):
    """TravelPlanner (two-stage, JSON syntax) with its search tools and `answer`."""

    env_name = "travelplanner"

    def __init__(self, **env_cfg: Any):
        super().__init__(**{**env_cfg, "syntax": "json", "mode": "two-stage"})

    def FlightSearch(self, departure_city: str, destination_city: str, date: str) -> str:
        """Flights between two cities on one day.

        Args:
            departure_city: The city to fly from.
            destination_city: The city to fly to.
            date: The day, YYYY-MM-DD.
        """
        return self._call("FlightSearch", departure_city=departure_city, destination_city=destination_city, date=date)

    def GoogleDistanceMatrix(self, origin: str, destination: str, mode: str) -> str:
        """Duration, distance and cost of a drive between two cities.

        Args:
            origin: The city to start from.
            destination: The city to drive to.
            mode: self-driving or taxi.
        """
        return self._call("GoogleDistanceMatrix", origin=origin, destination=destination, mode=mode)

    def AccommodationSearch(self, city: str) -> str:
        """Accommodations in a city.

        Args:
            city: The city.
        """
        return self._call("AccommodationSearch", city=city)

    def RestaurantSearch(self, city: str) -> str:
        """Restaurants in a city.

        Args:
            city: The city.
        """
        return self._call("RestaurantSearch", city=city)

    def AttractionSearch(self, city: str) -> str:
        """Attractions in a city.

        Args:
            city: The city.
        """
        return self._call("AttractionSearch", city=city)

    def CitySearch(self, state: str) -> str:
        """Cities of a state.

        Args:
            state: The state.
        """
        return self._call("CitySearch", state=state)

    def NotebookWrite(self, description: str) -> str:
        """Store the last search result in the notebook.

        Args:
            description: A short description of the result.
        """
        return self._call("NotebookWrite", description=description)

    def answer(self, plan: str) -> str:
        """Submit the plan; this ends the episode and the plan is judged.

        Args:
            plan: The plan: a JSON list with one record per day.
        """
        text = plan if isinstance(plan, str) else json.dumps(plan, ensure_ascii=False)
        return self._act(f"<answer>{text}</answer>")


class ShopTools(QuestlineToolEnv):
    """toy/shop: price items, multiply, add, answer."""

    env_name = "toy/shop"

    def price(self, item: str, city: str) -> str:
        """The price of one item in a city.

        Args:
            item: The item.
            city: The city.
        """
        return self._call("price", item=item, city=city)

    def mul(self, a: int, b: int) -> str:
        """a times b.

        Args:
            a: A whole number.
            b: A whole number.
        """
        return self._call("mul", a=a, b=b)

    def add(self, a: int, b: int) -> str:
        """a plus b.

        Args:
            a: A whole number.
            b: A whole number.
        """
        return self._call("add", a=a, b=b)

    def answer(self, value: int) -> str:
        """Give the total; this ends the episode.

        Args:
            value: The total cost.
        """
        return self._call("answer", value=value)


class SweTools(QuestlineToolEnv):
    """swe (JSON syntax): file tools, tests and submit in a sandboxed repository."""

    env_name = "swe"

    def __init__(self, **env_cfg: Any):
        super().__init__(**{**env_cfg, "syntax": "json"})

    def ls(self, path: str = ".") -> str:
        """List a directory.

        Args:
            path: The directory, relative to the repository root.
        """
        return self._call("ls", path=path)

    def view(self, path: str, start: str = "", end: str = "") -> str:
        """Show a file's lines, numbered.

        Args:
            path: The file.
            start: The first line (optional).
            end: The last line (optional).
        """
        return self._call("view", **_given(path=path, start=start, end=end))

    def search(self, pattern: str, path: str = ".") -> str:
        """Find lines matching a regular expression.

        Args:
            pattern: The regular expression.
            path: The file or directory to search.
        """
        return self._call("search", pattern=pattern, path=path)

    def replace(self, path: str, old: str, new: str) -> str:
        """Replace exact lines of a file.

        Args:
            path: The file.
            old: The exact lines to replace.
            new: The new lines.
        """
        return self._call("replace", path=path, old=old, new=new)

    def insert(self, path: str, line: str, text: str) -> str:
        """Insert lines after a line number.

        Args:
            path: The file.
            line: The line number to insert after (0: at the top).
            text: The lines to insert.
        """
        return self._call("insert", path=path, line=line, text=text)

    def create(self, path: str, content: str) -> str:
        """Create or overwrite a file.

        Args:
            path: The file.
            content: Its text.
        """
        return self._call("create", path=path, content=content)

    def run_tests(self, tests: str = "") -> str:
        """Run tests.

        Args:
            tests: Test files or ids, space-separated (optional: all).
        """
        return self._call("run_tests", **_given(tests=tests))

    def submit(self) -> str:
        """Submit the fix; this ends the episode and the tests judge it."""
        return self._call("submit")


def _given(**arguments: str) -> dict[str, str]:
    """The optional arguments the model gave (empty ones left out, as in a JSON call)."""
    return {k: v for k, v in arguments.items() if v != ""}


# ---------------------------------------------------------------- rewards
def questline_reward(scheme: str = "sparse", **reward_args: Any):
    """A TRL reward function: Questline's reward `scheme` (questline.rewards) summed over
    each episode's turns (the constraint schemes put it all on the last turn). Reads the
    episodes from `environments` (environment_factory) or `trajectory` (QuestlineRollout).
    `progress` for schemes that change over training is global_step / max_steps."""
    check_reward_args(scheme, reward_args)

    def reward(completions, environments=None, trajectory=None, trainer_state=None, **_: Any) -> list:
        if trajectory is None:
            if environments is None:
                raise ValueError("questline_reward needs a Questline tool env (environment_factory) "
                                 "or QuestlineRollout (rollout_func)")
            trajectory = [env._finish(c) for env, c in zip(environments, completions)]
        progress = trainer_state.global_step / max(trainer_state.max_steps, 1) if trainer_state else 0.0
        return [None if t.infra_failed else sum(shape_rewards(scheme, t, progress, **reward_args))
                for t in trajectory]

    reward.__name__ = f"questline_{scheme}"
    return reward


# ---------------------------------------------------------------- rollout_func
class QuestlineRollout:
    """TRL `rollout_func` running Questline's token-in-token-out rollout (full context).

    Each prompt TRL passes is a row of `self.dataset(tasks)` (TRL repeats it
    num_generations times); each becomes one episode. Returned per episode:
    prompt_ids (the first prompt), completion_ids (every action and observation after
    it, as sampled and appended), logprobs, env_mask (1 on sampled ids), trajectory."""

    def __init__(self, tokenizer, cfg: RolloutConfig | None = None, env_cfg: dict | None = None, seed: int = 0):
        cfg = cfg or RolloutConfig()
        if cfg.context != "full":
            raise ValueError("QuestlineRollout: rollout.context must be 'full' (TRL trains one row per episode)")
        self.tokenizer, self.chat = tokenizer, ChatTokens(tokenizer)
        self.cfg, self.env_cfg, self.seed = cfg, env_cfg or {}, seed
        self._tasks: dict[str, Task] = {}  # first prompt (JSON) -> task
        self._calls = 0  # each call samples with its own seed

    def dataset(self, tasks: list[Task]):
        """A TRL train set: `prompt` is each task's first prompt as Questline renders it."""
        from datasets import Dataset
        rows = []
        for task in tasks:
            env = make(task.env, **self.env_cfg)
            prompt = self.chat.first_messages(env.instructions, env.reset(task))
            env.close()
            key = json.dumps(prompt)
            if self._tasks.get(key, task) != task:
                raise ValueError(f"tasks {self._tasks[key].id} and {task.id} have the same first prompt")
            self._tasks[key] = task
            rows.append({"prompt": prompt})
        return Dataset.from_list(rows)

    def _task(self, prompt) -> Task:
        key = json.dumps([{"role": m["role"], "content": m["content"]} for m in prompt])
        if key not in self._tasks:
            raise ValueError("QuestlineRollout got a prompt that is not from its dataset(): "
                             "build the train set with rollout.dataset(tasks)")
        return self._tasks[key]

    def __call__(self, prompts: list, trainer) -> dict[str, list]:
        tasks = [self._task(p) for p in prompts]
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        cfg = replace(self.cfg, temperature=trainer.temperature, top_p=trainer.top_p)
        self._calls += 1
        seed = derive_seed(self.seed, "trl", self._calls, trainer.accelerator.process_index)
        try:
            trajs = rollout(HFEngine(model, self.tokenizer.pad_token_id), self.chat, tasks, cfg,
                            seed=seed, env_cfg=self.env_cfg)
        finally:
            model.train(was_training)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [],
                                "trajectory": trajs}
        for prompt, tr in zip(prompts, trajs):
            if tr.ids:
                n = tr.prompt_len
                parts = (tr.ids[:n], tr.ids[n:], tr.logprobs[n:], tr.loss_mask[n:])
            else:  # failed at reset: nothing sampled (its reward is None)
                parts = (chat_ids(self.tokenizer, prompt, True), [self.chat.eot_id], [0.0], [0])
            for key, value in zip(("prompt_ids", "completion_ids", "logprobs", "env_mask"), parts):
                out[key].append(list(value))
        return out
