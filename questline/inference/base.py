"""The engine interface: token ids in, token ids + logprobs out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 32
    stop_ids: tuple[int, ...] = ()  # generation of a sequence ends after one of these ids


@dataclass
class Generation:
    ids: list[int]  # sampled ids, the stop id included when one was sampled
    logprobs: list[float]  # log p(id) under the sampling distribution (logits / temperature)
    finish_reason: str  # "stop" | "length"
    prompt_tokens_forwarded: int = 0  # prompt ids this call pushed through the model
    stats: dict = field(default_factory=dict)
    error: str = ""  # the engine failed for this prompt (after its retries): an infra failure, ids empty


class Engine(Protocol):
    def generate(
        self,
        prompts: list[list[int]],
        params: SamplingParams,
        sessions: list[str] | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        """Sample one continuation per prompt. `sessions` names the episode each
        prompt belongs to: an engine may keep state (a KV cache) for a session
        between calls, as long as the result equals generating from the full prompt."""

    def end_sessions(self, sessions: list[str]) -> None:
        """Forget per-session state."""

    def update_weights(self, state_dict: dict | None = None) -> None:
        """Load new policy weights (or note that shared weights changed); drops all caches."""


@dataclass
class ChatReply:
    """One reply of a text engine: `text` with finish_reason "stop" | "length";
    "context" when the conversation no longer fits the model's context window (the
    episode ends as truncated, as with a token engine); "infra" when the server kept
    failing (`error` says why; the episode is flagged infra_failed, never scored)."""
    text: str
    finish_reason: str
    error: str = ""


@runtime_checkable
class TextEngine(Protocol):
    """Text in, text out: a chat endpoint that applies its own chat template and
    tokenizer (`questline.inference.openai_chat`). Not token-in-token-out: the
    rollout records a local tokenisation of the text, which cannot be trained on."""

    def chat(self, conversations: list[list[dict]], params: SamplingParams,
             seeds: list[int] | None = None) -> list[ChatReply]:
        """One reply per conversation (OpenAI chat messages), requests in flight at once."""
