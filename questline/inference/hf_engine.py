"""In-process engine on a Hugging Face causal LM.

Batched generation for many episodes at once, with each episode's KV cache kept
between turns: a call whose prompt extends what an episode's cache already holds
only prefills the new ids (the last action's end-of-turn id and the observation),
so every token of an episode passes through the model once.

How a call is batched: the cached prefixes are left-padded into one batched
cache, the new chunks are right-padded after them, and rows that finish early
feed masked pad ids. Padding never reaches the model's view of a sequence: the 2-D
attention mask hides it and position ids count real tokens only. When the call
ends each row's real entries are gathered back into its own session cache, so
holes never accumulate across turns.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from questline.inference.base import Generation, SamplingParams


@dataclass
class _Session:
    tokens: list[int]  # ids whose keys/values are cached (all but the last sampled id)
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: [kv_heads, len, head_dim]


def sample_next(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one id per row. Returns (ids, logprobs under logits / temperature)."""
    logits = logits.float()
    if params.temperature <= 0:
        ids = logits.argmax(-1)
        return ids, F.log_softmax(logits, -1).gather(-1, ids[:, None])[:, 0]
    logp = F.log_softmax(logits / params.temperature, -1)
    probs = logp.exp()
    if params.top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > params.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    ids = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return ids, logp.gather(-1, ids[:, None])[:, 0]


class _GrowingLayer(DynamicLayer):
    """A cache layer that writes new keys/values in place into a buffer with spare
    room, where `DynamicLayer` concatenates: a decode step then costs O(new tokens)
    instead of copying the whole cache (at batch 150 x 1,000 cached tokens the copies
    took over half the generation time)."""

    def __init__(self, reserve: int = 0):
        super().__init__()
        self.reserve, self.length = reserve, 0
        self._k = self._v = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if self._k is None or end > self._k.shape[-2]:
            cap = max(end + self.reserve, 2 * self.length)
            k = key_states.new_empty(*key_states.shape[:-2], cap, key_states.shape[-1])
            v = value_states.new_empty(*value_states.shape[:-2], cap, value_states.shape[-1])
            if self.length:
                k[..., : self.length, :] = self._k[..., : self.length, :]
                v[..., : self.length, :] = self._v[..., : self.length, :]
            self._k, self._v = k, v
        self._k[..., self.length:end, :] = key_states
        self._v[..., self.length:end, :] = value_states
        self.length = end
        self.keys, self.values = self._k[..., :end, :], self._v[..., :end, :]
        return self.keys, self.values


def cache_argument(model) -> str:
    """The name a model's forward gives its KV cache, in and out: `cache` since
    transformers 5.25 (`past_key_values` there is deprecated and warns), before
    that `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class HFEngine:
    """`reuse_cache=False` gives the naive baseline that re-prefills the whole
    history on every call."""

    def __init__(self, model, pad_id: int, *, reuse_cache: bool = True, autocast: bool = False):
        self.model = model
        self.pad_id = pad_id
        self.reuse_cache = reuse_cache
        self.autocast = autocast
        self.sessions: dict[str, _Session] = {}
        self.tokens_forwarded = 0  # real (non-pad) ids pushed through the model
        self.padded_forwarded = 0  # pad slots computed alongside them
        self._cache_kw = cache_argument(model)
        # the prefill needs each row's last logits only: not b x n x vocab of them
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _autocast(self):
        # On CPU, bf16 attention over a long cache is ~6x slower than fp32 (one decode
        # step at batch 64 x 1,000 cached tokens: 18 ms vs 3 ms per layer), so the CPU
        # engine generates in fp32; training follows model.precision (questline.models.precision).
        if not self.autocast or self.device.type == "cpu":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def end_sessions(self, sessions: list[str]) -> None:
        for s in sessions:
            self.sessions.pop(s, None)

    def update_weights(self, state_dict: dict | None = None) -> None:
        if state_dict is not None:
            self.model.load_state_dict(state_dict)
        self.sessions.clear()  # cached keys/values belong to the old weights

    def _reusable(self, prompt: list[int], session: str | None) -> tuple[int, _Session | None]:
        """Length of the cached prefix of `prompt` that can be reused (at least one
        id is always left to prefill, so the call has logits to sample from)."""
        s = self.sessions.get(session) if (self.reuse_cache and session is not None) else None
        if s is None or len(s.tokens) == 0 or prompt[: len(s.tokens)] != s.tokens:
            return 0, None
        return min(len(s.tokens), len(prompt) - 1), s

    @torch.inference_mode()
    def generate(
        self,
        prompts: list[list[int]],
        params: SamplingParams,
        sessions: list[str] | None = None,
        seed: int | None = None,
    ) -> list[Generation]:
        if not prompts:
            return []
        dev, b = self.device, len(prompts)
        gen = None
        if seed is not None and params.temperature > 0:
            gen = torch.Generator(device=dev)
            gen.manual_seed(seed)
        sessions = sessions or [None] * b
        reuse = [self._reusable(p, s) for p, s in zip(prompts, sessions)]
        past_len = [c for c, _ in reuse]
        new_len = [len(p) - c for p, (c, _) in zip(prompts, reuse)]
        p_max, n_max = max(past_len), max(new_len)

        # Batched cache: cached prefixes left-padded to p_max, with room for this call. The new
        # tokens are left-padded to n_max after it, so every row's last token is the last column
        # (the holes between are masked; positions are explicit).
        cache = DynamicCache()
        cache.layer_class_to_replicate = lambda: _GrowingLayer(reserve=n_max + params.max_new_tokens)
        if p_max > 0:
            sample_kv = next(s for _, s in reuse if s is not None).kv
            for layer, (k0, v0) in enumerate(sample_kv):
                k = k0.new_zeros(b, k0.shape[0], p_max, k0.shape[2])
                v = v0.new_zeros(b, v0.shape[0], p_max, v0.shape[2])
                for i, (c, s) in enumerate(reuse):
                    if c:
                        k[i, :, p_max - c :] = s.kv[layer][0][:, :c]
                        v[i, :, p_max - c :] = s.kv[layer][1][:, :c]
                cache.update(k, v, layer)
        attn = torch.zeros(b, p_max + n_max, dtype=torch.long, device=dev)
        ids = torch.full((b, n_max), self.pad_id, dtype=torch.long, device=dev)
        for i, (p, c) in enumerate(zip(prompts, past_len)):
            attn[i, p_max - c : p_max] = 1
            attn[i, p_max + n_max - new_len[i] :] = 1
            ids[i, n_max - new_len[i] :] = torch.tensor(p[c:], device=dev)
        lead = torch.tensor([n_max - n for n in new_len], device=dev)[:, None]  # pad slots before the new tokens
        pos = (torch.tensor(past_len, device=dev)[:, None] + torch.arange(n_max, device=dev)[None] - lead).clamp(min=0)
        with self._autocast():
            out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True,
                             **{self._cache_kw: cache}, **self._last_logits)
        cache = getattr(out, self._cache_kw)
        self.tokens_forwarded += sum(new_len)
        self.padded_forwarded += b * n_max - sum(new_len)
        logits = out.logits[:, -1]
        next_pos = torch.tensor([c + n for c, n in zip(past_len, new_len)], device=dev)

        out_ids: list[list[int]] = [[] for _ in range(b)]
        out_lps: list[list[float]] = [[] for _ in range(b)]
        finished = torch.zeros(b, dtype=torch.bool, device=dev)
        stop = torch.tensor(params.stop_ids or [-1], device=dev)
        for step in range(params.max_new_tokens):
            tok, lp = sample_next(logits, params, gen)
            for i in (~finished).nonzero()[:, 0].tolist():
                out_ids[i].append(int(tok[i]))
                out_lps[i].append(float(lp[i]))
            finished |= torch.isin(tok, stop)
            if bool(finished.all()) or step == params.max_new_tokens - 1:
                break
            live = (~finished).long()
            attn = torch.cat([attn, live[:, None]], 1)
            feed = torch.where(finished, torch.full_like(tok, self.pad_id), tok)
            with self._autocast():
                out = self.model(input_ids=feed[:, None], attention_mask=attn, position_ids=next_pos[:, None],
                                 use_cache=True, **{self._cache_kw: cache})
            cache = getattr(out, self._cache_kw)
            n_live = int(live.sum())
            self.tokens_forwarded += n_live
            self.padded_forwarded += b - n_live
            next_pos += live
            logits = out.logits[:, -1]

        if self.reuse_cache:
            self._store(prompts, sessions, out_ids, attn, cache)
        results = []
        for i in range(b):
            reason = "stop" if out_ids[i] and out_ids[i][-1] in params.stop_ids else "length"
            results.append(Generation(out_ids[i], out_lps[i], reason, new_len[i],
                                      {"forwarded": new_len[i] + len(out_ids[i]) - 1}))
        return results

    def _store(self, prompts, sessions, out_ids, attn, cache) -> None:
        """Gather each row's real cache entries back into its session (holes dropped)."""
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        for i, s in enumerate(sessions):
            if s is None:
                continue
            keep = attn[i].nonzero()[:, 0]
            tokens = list(prompts[i]) + out_ids[i][:-1]
            assert len(keep) == len(tokens), "cache bookkeeping out of sync"
            self.sessions[s] = _Session(tokens, [(k[i][:, keep], v[i][:, keep]) for k, v in layers])
