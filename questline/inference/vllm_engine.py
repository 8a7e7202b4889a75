"""`Engine` against a vLLM OpenAI-compatible server: token ids in, token ids +
logprobs out, over HTTP.

Each prompt is its own `/v1/completions` request (the prompt as a list of ids,
`return_token_ids`, one logprob per sampled id), and all of a call's requests are
in flight at once (bounded by `concurrency`): vLLM's continuous batching does the
batching. Multi-turn KV reuse comes from the server's automatic prefix caching
(a turn's prompt extends the last one); `prompt_tokens_details.cached_tokens` gives
each request's reused ids, so `Generation.stats["forwarded"]` counts only what the
server computed, and `prefix_cache()` reads the server-wide hit rate from /metrics.

The logprobs are those of the sampling distribution only when the server runs
with `--logprobs-mode processed_logprobs` (vLLM's default returns raw-logit
logprobs, not logits / temperature); `VLLMServer` starts it so. With top_p < 1
they are of the truncated, renormalised distribution the id was drawn from.

Failures: timeouts, connection errors and 5xx answers are retried with
exponential backoff; a request that still fails comes back as a `Generation` with
`error` set (the rollout flags that episode `infra_failed`); a 4xx answer is our
request's fault and raises `EngineError` at once.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass

import httpx

from questline.core import QuestlineError, derive_seed
from questline.inference.base import Generation, SamplingParams

_TOKEN_ID = re.compile(r"^token_id:(-?\d+)$")


class EngineError(QuestlineError):
    """The engine cannot serve this run (bad request, server gone, stale weights)."""


def _retryable(err: Exception) -> bool:
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code >= 500
    return isinstance(err, (httpx.TimeoutException, httpx.TransportError))


def _why(err: Exception) -> str:
    if isinstance(err, httpx.HTTPStatusError):
        return f"HTTP {err.response.status_code}: {err.response.text[:300]}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def completion_body(prompt: list[int], params: SamplingParams, model: str, seed: int | None) -> dict:
    """The /v1/completions request for one prompt. Every sampling knob is explicit
    (the model's generation_config never leaks in), the model's EOS does not stop
    generation (only `stop_ids` do, as in HFEngine), and the sampled ids come back
    as ids with one logprob each."""
    body = {
        "model": model, "prompt": list(prompt), "max_tokens": params.max_new_tokens,
        "temperature": params.temperature, "top_p": params.top_p, "top_k": 0, "min_p": 0.0,
        "repetition_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0,
        "stop_token_ids": list(params.stop_ids), "ignore_eos": True, "skip_special_tokens": False,
        "logprobs": 0, "return_token_ids": True, "return_tokens_as_token_ids": True,
    }
    if seed is not None and params.temperature > 0:
        body["seed"] = seed
    return body


def parse_choice(answer: dict, stop_ids: tuple[int, ...]) -> Generation:
    """One completion answer -> Generation. The ids come from `token_ids`; the
    logprobs' own token strings (`token_id:N`) must name the same ids."""
    choice = answer["choices"][0]
    ids = [int(i) for i in choice["token_ids"]]
    lp = choice.get("logprobs") or {}
    logprobs = [float(x) for x in lp.get("token_logprobs") or []]
    named = [int(m.group(1)) for t in lp.get("tokens") or [] if (m := _TOKEN_ID.match(t))]
    if len(logprobs) != len(ids) or named != ids:
        raise EngineError(f"vLLM answer is inconsistent: {len(ids)} ids, {len(logprobs)} logprobs, "
                          f"logprob tokens {named[:8]} vs ids {ids[:8]} (is the server vLLM?)")
    usage = answer.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens", 0))
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    reason = "stop" if ids and ids[-1] in stop_ids else "length"
    forwarded = prompt_tokens - cached
    return Generation(ids, logprobs, reason, forwarded,
                      {"forwarded": forwarded + max(len(ids) - 1, 0), "cached": cached})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4  # tries after the first
    backoff_s: float = 0.5  # first wait; doubles each try
    max_backoff_s: float = 8.0
    timeout_s: float = 300.0  # per request

    def wait(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** attempt, self.max_backoff_s)


class VLLMEngine:
    """`model` is the served model name (`--served-model-name`); after
    `load_lora`, requests name the adapter instead."""

    def __init__(self, url: str, model: str = "policy", *, concurrency: int = 64,
                 retry: RetryPolicy | None = None):
        self.url = url.rstrip("/")
        self.base_model = self.model = model
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.lora_version = 0
        self.failed_requests = 0  # requests that failed after every retry
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine-http", daemon=True)
        self._thread.start()
        self._client = self._run(self._make_client())

    async def _make_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(base_url=self.url, timeout=self.retry.timeout_s, limits=limits)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP
    async def _request(self, method: str, path: str, **kw) -> httpx.Response:
        """One request with retries on timeouts, connection errors and 5xx."""
        for attempt in range(self.retry.retries + 1):
            try:
                r = await self._client.request(method, path, **kw)
                r.raise_for_status()
                return r
            except Exception as err:  # noqa: BLE001 - sorted into retryable / not below
                if not _retryable(err):
                    if isinstance(err, httpx.HTTPStatusError):
                        raise EngineError(f"vLLM {method} {path}: {_why(err)}") from None
                    raise
                if attempt == self.retry.retries:
                    raise
                await asyncio.sleep(self.retry.wait(attempt))
        raise AssertionError("unreachable")

    def post(self, path: str, body: dict | None = None, **params) -> httpx.Response:
        try:
            return self._run(self._request("POST", path, json=body, params=params or None))
        except EngineError:
            raise
        except Exception as err:  # noqa: BLE001
            raise EngineError(f"vLLM at {self.url}: POST {path} failed: {_why(err)}") from None

    def get(self, path: str) -> httpx.Response:
        try:
            return self._run(self._request("GET", path))
        except EngineError:
            raise
        except Exception as err:  # noqa: BLE001
            raise EngineError(f"vLLM at {self.url}: GET {path} failed: {_why(err)}") from None

    # ------------------------------------------------------------------ Engine
    async def _one(self, sem: asyncio.Semaphore, prompt, params, seed) -> Generation:
        async with sem:
            try:
                r = await self._request("POST", "/v1/completions",
                                        json=completion_body(prompt, params, self.model, seed))
            except EngineError:
                raise
            except Exception as err:  # noqa: BLE001 - retries exhausted: this episode's infra failure
                self.failed_requests += 1
                return Generation([], [], "error", 0, error=f"vLLM request failed: {_why(err)}")
        return parse_choice(r.json(), params.stop_ids)

    async def _all(self, prompts, params, seed) -> list[Generation]:
        sem = asyncio.Semaphore(self.concurrency)
        seeds = [None if seed is None else derive_seed(seed, i) for i in range(len(prompts))]
        return list(await asyncio.gather(*(self._one(sem, p, params, s) for p, s in zip(prompts, seeds))))

    def generate(self, prompts: list[list[int]], params: SamplingParams, sessions: list[str] | None = None,
                 seed: int | None = None) -> list[Generation]:
        """One request per prompt, all in flight at once. Prompt i samples with seed
        derive_seed(seed, i), so the samples of a group differ. `sessions` is not
        needed: the server's prefix cache finds an episode's earlier turns itself."""
        if not prompts:
            return []
        return self._run(self._all(prompts, params, seed))

    def end_sessions(self, sessions: list[str]) -> None:
        """Nothing to forget: the prefix cache evicts old blocks itself."""

    def update_weights(self, state_dict: dict | None = None) -> None:
        raise EngineError("VLLMEngine: weights change through reload_weights(dir) or load_lora(dir) "
                          "(questline.train.engine.VLLMPolicyEngine.sync does both)")

    # ------------------------------------------------------------------ weights
    def reset_prefix_cache(self) -> None:
        """Drop cached KV blocks (they belong to the old weights). Needs VLLM_SERVER_DEV_MODE=1."""
        for _ in range(20):  # fails while requests still hold blocks: retry briefly
            if self.post("/reset_prefix_cache").json().get("success"):
                return
            time.sleep(0.25)
        raise EngineError("vLLM could not reset its prefix cache (requests still running?)")

    def reload_weights(self, weights_dir: str) -> float:
        """Load the HF safetensors in `weights_dir` in place, drop the prefix cache;
        returns the seconds it took. Needs VLLM_SERVER_DEV_MODE=1."""
        t0 = time.perf_counter()
        self.post("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": str(weights_dir)}})
        self.reset_prefix_cache()
        return time.perf_counter() - t0

    def load_lora(self, adapter_dir: str) -> str:
        """Hot-load a peft adapter under a new name, sample with it from now on and
        unload the previous one. Needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True."""
        self.lora_version += 1
        name = f"{self.base_model}-lora-{self.lora_version}"
        self.post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(adapter_dir)})
        old, self.model = self.model, name
        if old != self.base_model:
            self.post("/v1/unload_lora_adapter", {"lora_name": old})
        return name

    def score(self, ids: list[int]) -> list[float]:
        """log p(ids[t] | ids[<t]) for t >= 1 under the served weights at temperature 1
        (prompt logprobs; such a request never reads the prefix cache)."""
        body = {"model": self.model, "prompt": list(ids), "max_tokens": 1, "temperature": 0.0,
                "prompt_logprobs": 0, "ignore_eos": True}
        answer = self.post("/v1/completions", body).json()
        rows = answer["choices"][0]["prompt_logprobs"][1:]
        out = []
        for t, row in zip(ids[1:], rows):
            entry = row.get(str(t)) if row else None
            if entry is None:
                raise EngineError(f"vLLM prompt logprobs lack token {t}")
            out.append(float(entry["logprob"]))
        return out

    # ------------------------------------------------------------------ health, metrics
    def healthy(self) -> bool:
        try:
            return self._run(self._client.get("/health", timeout=5)).status_code == 200
        except Exception:  # noqa: BLE001
            return False

    def prefix_cache(self) -> dict[str, float]:
        """Server-wide prefix-cache counters from /metrics (tokens queried and hit since start)."""
        return prefix_cache_counters(self.get("/metrics").text)


def prefix_cache_counters(metrics_text: str) -> dict[str, float]:
    """`vllm:prefix_cache_queries_total` / `_hits_total` summed over engines, and their ratio."""
    sums = {"queries": 0.0, "hits": 0.0}
    for line in metrics_text.splitlines():
        for key in sums:
            if line.startswith(f"vllm:prefix_cache_{key}_total"):
                sums[key] += float(line.rsplit(" ", 1)[1])
    sums["hit_rate"] = sums["hits"] / sums["queries"] if sums["queries"] else 0.0
    return sums


def hit_rate(before: dict[str, float], after: dict[str, float]) -> float:
    """Prefix-cache hit rate between two `prefix_cache()` readings."""
    q = after["queries"] - before["queries"]
    return (after["hits"] - before["hits"]) / q if q > 0 else 0.0
