"""Chat-formatted prompts built incrementally in token space.

The first prompt (system + task + first observation + generation prompt) is
rendered once through the chat template. After that the conversation only grows:
the sampled action ids are appended as they are, and each observation is appended
as the template's *suffix* (what the template writes between the end of an
assistant turn and the next generation prompt), tokenised on its own. The history
is never re-tokenised, so the ids the policy is trained on are exactly the ids it
sampled. `debug.retokenize_check` measures any drift from a full re-rendering.
"""

from __future__ import annotations

from functools import cached_property

from questline.models.tokenizer import chat_ids, end_of_turn_id

_PROBE_ACTION = "Q7ZX9Y"  # any text that cannot occur in a template
_PROBE_OBS = "W4KV8J"


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


class ChatTokens:
    """Renders an episode's prompt pieces for one tokenizer and chat template."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eot_id: int = end_of_turn_id(tokenizer)
        self.eot_text: str = tokenizer.convert_ids_to_tokens(self.eot_id)

    def prompt_ids(self, system: str, observation: str) -> list[int]:
        return chat_ids(self.tokenizer, self.first_messages(system, observation), True)

    @staticmethod
    def first_messages(system: str, observation: str) -> list[dict]:
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": observation}]

    @cached_property
    def _suffix_parts(self) -> tuple[str, str]:
        """Text the template puts before and after an observation that follows an
        assistant turn ending in the end-of-turn token."""
        base = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                {"role": "assistant", "content": _PROBE_ACTION}]
        text = chat_text(self.tokenizer, base + [{"role": "user", "content": _PROBE_OBS}], True)
        anchor = _PROBE_ACTION + self.eot_text
        start = text.index(anchor) + len(anchor)
        before, after = text[start:].split(_PROBE_OBS)
        return before, after

    def observation_ids(self, observation: str) -> list[int]:
        """Ids appended after a sampled action (which ends with the end-of-turn id)."""
        before, after = self._suffix_parts
        return self.tokenizer.encode(before + observation + after, add_special_tokens=False)

    def action_ids(self, action: str) -> list[int]:
        """Ids of an action written by someone else (an oracle, a human), ending the turn."""
        return self.tokenizer.encode(action, add_special_tokens=False) + [self.eot_id]

    def decode_action(self, ids: list[int]) -> str:
        if ids and ids[-1] == self.eot_id:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=False)
