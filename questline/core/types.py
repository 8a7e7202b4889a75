"""Plain data types shared by every layer: tasks, steps, turns, trajectories, batches."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Task:
    """One problem instance. `spec` holds everything the environment needs to
    rebuild the exact start state (so Ray can place an env anywhere)."""

    id: str
    env: str
    difficulty: str
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(id=d["id"], env=d["env"], difficulty=d["difficulty"], spec=d["spec"])


@dataclass
class Step:
    """What `Env.step` returns. `info` may carry `metrics`, `truncated` and
    `infra_error` (set when the environment, not the agent, failed)."""

    observation: str
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    """One agent turn. `start:end` is the span of this turn's sampled action ids
    inside `Trajectory.ids` (the end-of-turn token included)."""

    action: str
    observation: str
    reward: float
    start: int
    end: int
    gen_seconds: float = 0.0
    env_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trajectory:
    """One episode in token space: exactly the ids the model saw and sampled.

    ids        prompt + (action ids + observation suffix ids) per turn
    loss_mask  1 on sampled policy tokens, 0 on prompt / observation tokens
    logprobs   sampling logprob on policy tokens, 0 elsewhere

    Window context (`rollout.context: window`): every turn had its own prompt, so
    `ids` holds one row per turn back to back (that turn's prompt ids, then its
    sampled ids) and `row_starts[k]` is where turn k's row begins. Such an episode
    is trained as one row per turn (`rows()`); `row_starts` is empty in full mode.
    """

    task: Task
    system: str = ""  # system prompt (the env's instructions)
    first_observation: str = ""
    ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    prompt_len: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    truncation: str = ""  # "max_turns" | "max_tokens" | "" (not truncated)
    infra_failed: bool = False
    infra_error: str = ""
    done: bool = False
    group: int = 0  # index of the group (task x group_size samples) within a batch
    tokens_forwarded: int = 0  # tokens this episode pushed through the model
    row_starts: list[int] = field(default_factory=list)  # window context: where each turn's row begins

    @property
    def turn_rewards(self) -> list[float]:
        return [t.reward for t in self.turns]

    @property
    def total_reward(self) -> float:
        return float(sum(self.turn_rewards))

    @property
    def success(self) -> bool:
        return bool(self.metrics.get("success", 0.0))

    @property
    def num_policy_tokens(self) -> int:
        return int(sum(self.loss_mask))

    def token_rewards(self, turn_rewards: list[float] | None = None) -> list[float]:
        """Per-token rewards: each turn's reward sits on that turn's last policy token."""
        rewards = [0.0] * len(self.ids)
        for turn, r in zip(self.turns, turn_rewards if turn_rewards is not None else self.turn_rewards):
            rewards[turn.end - 1] += r
        return rewards

    @property
    def windowed(self) -> bool:
        return bool(self.row_starts)

    def rows(self) -> list[Trajectory]:
        """The training rows: [self] in full context; in window context one
        single-turn trajectory per turn (its prompt + sampled ids, the turn's reward
        on its last token), sharing the episode's group and metrics."""
        if not self.row_starts:
            return [self]
        out = []
        ends = self.row_starts[1:] + [len(self.ids)]
        for k, (a, b) in enumerate(zip(self.row_starts, ends)):
            turn = self.turns[k]
            row_turn = Turn(**{**asdict(turn), "start": turn.start - a, "end": turn.end - a})
            out.append(Trajectory(
                task=self.task, system=self.system, first_observation=self.first_observation,
                ids=self.ids[a:b], loss_mask=self.loss_mask[a:b], logprobs=self.logprobs[a:b],
                turns=[row_turn], prompt_len=turn.start - a, metrics=self.metrics,
                truncated=self.truncated, truncation=self.truncation, done=self.done, group=self.group))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task"] = self.task.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        d = dict(d)
        d["task"] = Task.from_dict(d["task"])
        d["turns"] = [Turn(**t) for t in d["turns"]]
        return cls(**d)


@dataclass
class Batch:
    """Right-padded tensors for a list of trajectories, shape [B, T]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    old_logprobs: torch.Tensor
    token_rewards: torch.Tensor
    group_ids: torch.Tensor
    turn_ids: torch.Tensor | None = None  # turn index on policy tokens, -1 elsewhere
    step_keys: torch.Tensor | None = None  # id of (group, state the turn was taken in), -1 elsewhere
    rollout_logprobs: torch.Tensor | None = None  # as sampled by the engine (old_logprobs may be recomputed)
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    values: torch.Tensor | None = None  # critic values before the update
    episode_ids: torch.Tensor | None = None  # window context: [B] episode of each row (None in full)
    row_turns: torch.Tensor | None = None  # window context: [B] turn index of each row

    @classmethod
    def from_trajectories(
        cls, trajs: list[Trajectory], pad_id: int, token_rewards: list[list[float]] | None = None
    ) -> Batch:
        n, t = len(trajs), max(len(tr.ids) for tr in trajs)
        ids = torch.full((n, t), pad_id, dtype=torch.long)
        attn = torch.zeros((n, t), dtype=torch.long)
        mask = torch.zeros((n, t), dtype=torch.float32)
        lps = torch.zeros((n, t), dtype=torch.float32)
        rew = torch.zeros((n, t), dtype=torch.float32)
        for i, tr in enumerate(trajs):
            k = len(tr.ids)
            ids[i, :k] = torch.tensor(tr.ids)
            attn[i, :k] = 1
            mask[i, :k] = torch.tensor(tr.loss_mask, dtype=torch.float32)
            lps[i, :k] = torch.tensor(tr.logprobs, dtype=torch.float32)
            rew[i, :k] = torch.tensor(token_rewards[i] if token_rewards else tr.token_rewards())
        groups = torch.tensor([tr.group for tr in trajs], dtype=torch.long)
        turn_ids = torch.full((n, t), -1, dtype=torch.long)
        step_keys = torch.full((n, t), -1, dtype=torch.long)
        key_ids: dict[tuple, int] = {}
        for i, tr in enumerate(trajs):
            state = "<start>"  # every sample of a group starts in the same state
            for k, turn in enumerate(tr.turns):
                on = mask[i, turn.start:turn.end] > 0
                turn_ids[i, turn.start:turn.end][on] = k
                key = key_ids.setdefault((tr.group, state), len(key_ids))
                step_keys[i, turn.start:turn.end][on] = key
                state = str(turn.info.get("state_key", f"<unknown {i}:{k}>"))
        return cls(ids, attn, mask, lps, rew, groups, turn_ids, step_keys, lps.clone())

    @classmethod
    def from_episode_rows(cls, trajs: list[Trajectory], pad_id: int,
                          turn_rewards: list[list[float]] | None = None) -> Batch:
        """Window context: one row per turn of each episode. A row's reward is its
        turn's reward on its last policy token; `episode_ids` / `row_turns` let the
        advantage estimators work per episode (`algos.episode_advantages`); a row's
        step key is (group, state before the turn), as in full context."""
        rows, rewards, episode, turn_idx, keys = [], [], [], [], []
        key_ids: dict[tuple, int] = {}
        for i, tr in enumerate(trajs):
            state = "<start>"
            rs = turn_rewards[i] if turn_rewards is not None else tr.turn_rewards
            for k, (row, r) in enumerate(zip(tr.rows(), rs)):
                rows.append(row)
                rewards.append(row.token_rewards([r]))
                episode.append(i)
                turn_idx.append(k)
                keys.append(key_ids.setdefault((tr.group, state), len(key_ids)))
                state = str(tr.turns[k].info.get("state_key", f"<unknown {i}:{k}>"))
        batch = cls.from_trajectories(rows, pad_id, rewards)
        on = batch.turn_ids >= 0
        batch.step_keys = torch.where(on, torch.tensor(keys, dtype=torch.long)[:, None], batch.step_keys)
        batch.episode_ids = torch.tensor(episode, dtype=torch.long)
        batch.row_turns = torch.tensor(turn_idx, dtype=torch.long)
        return batch

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str) -> Batch:
        """Moves the tensors to `device` (in place: the update writes advantages into it); -> self."""
        for k, v in vars(self).items():
            if isinstance(v, torch.Tensor):
                setattr(self, k, v.to(device))
        return self

    def select(self, idx: torch.Tensor | list[int]) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        out = {}
        for name, value in vars(self).items():
            out[name] = value[idx] if isinstance(value, torch.Tensor) else value
        return Batch(**out)
