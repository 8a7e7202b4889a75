"""Evaluate any served model through an OpenAI-compatible chat endpoint (vLLM,
a hosted API): text in, text out.

This is NOT token-in-token-out. The server applies its own chat template and
tokenizer; the rollout records a local tokenisation of the text only so that
trajectories keep their usual shape. Use it to evaluate, never to train.

The rollout calls `chat` once per turn with every live episode's conversation;
up to `concurrency` requests are in flight at once (threads), and the next turn
starts when all replies are in (simple, and the server batches what arrives).

`OpenAIChatEngine.check()` asks `/models` first, so a bad URL, a refused connection,
a refused key or a model the server does not have is one `ConfigError` before any
episode starts. Mid-run, the `openai` client retries connection errors, timeouts,
429 and 5xx with exponential backoff (`retries` times); a request that still fails
ends its episode flagged infra_failed. A 400 saying the conversation exceeds the
model's context window ends the episode as truncated (`max_tokens`), as a token
engine does when the context is full.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import openai

from questline.core import ConfigError
from questline.inference.base import ChatReply, SamplingParams

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CONTEXT_ERRORS = ("maximum context length", "context length", "context_length_exceeded",
                  "too many tokens", "prompt is too long")
NOT_TOKEN_IN_TOKEN_OUT = ("--engine openai: text in, text out through the server's chat template and "
                          "tokenizer, not token-in-token-out (for evaluation; the recorded token ids are a "
                          "local re-tokenisation, not the model's)")


def api_key(env_var: str | None) -> str:
    """The key from `env_var` (an error when it is named but unset); else $OPENAI_API_KEY,
    else a placeholder (a local vLLM server started without --api-key takes any)."""
    if env_var:
        if not os.environ.get(env_var):
            raise ConfigError(f"--api-key-env: the environment variable {env_var} is not set")
        return os.environ[env_var]
    return os.environ.get(DEFAULT_KEY_ENV) or "EMPTY"


def check_base_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"--base-url: {url!r} is not an http(s) URL "
                          "(e.g. http://127.0.0.1:8000/v1)")
    return url.rstrip("/")


def is_context_overflow(message: str) -> bool:
    low = message.lower()
    return any(s in low for s in CONTEXT_ERRORS)


def error_reply(err: Exception) -> ChatReply:
    """A request that failed for good: the context is full (the episode ends, truncated)
    or the infrastructure failed (the episode is flagged, never scored)."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    if isinstance(err, openai.BadRequestError) and is_context_overflow(message):
        return ChatReply("", "context", message)
    status = getattr(err, "status_code", None)
    why = f"HTTP {status}: {message}" if status else f"{type(err).__name__}: {message}"
    return ChatReply("", "infra", why[:300])


def request_args(model: str, params: SamplingParams, seed: int | None) -> dict:
    """Chat-completion arguments for one request."""
    args = {"model": model, "max_tokens": params.max_new_tokens, "temperature": params.temperature}
    if params.top_p < 1.0:
        args["top_p"] = params.top_p
    if seed is not None:
        args["seed"] = seed
    return args


class OpenAIChatEngine:
    """`TextEngine` over an OpenAI-compatible `/chat/completions` endpoint; up to
    `concurrency` requests in flight at once (threads)."""

    def __init__(self, base_url: str, model: str, *, key: str = "EMPTY", concurrency: int = 16,
                 retries: int = 4, timeout: float = 600.0):
        self.base_url, self.model = check_base_url(base_url), model
        self.concurrency = concurrency
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=retries, timeout=timeout)

    def check(self, timeout: float = 15.0) -> list[str]:
        """The served model names, once: any problem is one ConfigError."""
        where = f"the OpenAI-compatible server at {self.base_url}"
        try:
            served = [m.id for m in self.client.with_options(max_retries=0, timeout=timeout).models.list()]
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise ConfigError(f"cannot reach {where} ({cause}); is it running?") from None
        except openai.AuthenticationError:
            raise ConfigError(f"{where} refused the API key (HTTP 401; see --api-key-env)") from None
        except openai.NotFoundError:
            hint = "" if self.base_url.endswith("/v1") else f" (did you mean {self.base_url}/v1?)"
            raise ConfigError(f"{where} has no /models endpoint (HTTP 404){hint}") from None
        except openai.APIError as e:
            raise ConfigError(f"{where} answered /models with an error: {e}") from None
        if self.model not in served:
            shown = ", ".join(served[:10]) + (f", ... ({len(served)} in all)" if len(served) > 10 else "")
            raise ConfigError(f"--model: {where} does not serve {self.model!r} (it serves: {shown or 'nothing'})")
        return served

    def _one(self, messages: list[dict], params: SamplingParams, seed: int | None) -> ChatReply:
        try:
            out = self.client.chat.completions.create(messages=messages, **request_args(self.model, params, seed))
        except openai.APIError as e:  # retried by the client already where it is transient
            return error_reply(e)
        choice = out.choices[0]
        return ChatReply(choice.message.content or "", "length" if choice.finish_reason == "length" else "stop")

    def chat(self, conversations: list[list[dict]], params: SamplingParams,
             seeds: list[int] | None = None) -> list[ChatReply]:
        seeds = seeds or [None] * len(conversations)
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(conversations)))) as pool:
            return list(pool.map(self._one, conversations, [params] * len(conversations), seeds))
