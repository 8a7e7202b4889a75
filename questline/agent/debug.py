"""Drift check: compare a trajectory's ids with a full re-tokenisation of its text."""

from __future__ import annotations

from dataclasses import dataclass

from questline.agent.chat import ChatTokens, chat_ids
from questline.core import Trajectory


@dataclass
class DriftReport:
    length: int  # ids in the trajectory
    mismatches: int  # positions where the re-tokenised ids differ
    first_mismatch: int | None  # index of the first difference, None when clean
    retokenized_length: int

    @property
    def clean(self) -> bool:
        return self.mismatches == 0 and self.retokenized_length >= self.length

    def __str__(self) -> str:
        if self.clean:
            return f"clean ({self.length} tokens)"
        return (f"DRIFT: {self.mismatches} mismatching ids, first at {self.first_mismatch}; "
                f"{self.length} ids vs {self.retokenized_length} re-tokenised")


def messages_of(traj: Trajectory, chat: ChatTokens) -> list[dict]:
    """The text conversation a trajectory represents (actions decoded from their ids)."""
    msgs = ChatTokens.first_messages(traj.system, traj.first_observation)
    for i, turn in enumerate(traj.turns):
        msgs.append({"role": "assistant", "content": chat.decode_action(traj.ids[turn.start:turn.end])})
        if i + 1 < len(traj.turns):
            msgs.append({"role": "user", "content": turn.observation})
    return msgs


def retokenize_check(tokenizer, traj: Trajectory) -> DriftReport:
    """Render the conversation as text through the chat template, tokenise it in one
    go, and compare with the ids the trajectory holds. The template may add a closing
    suffix after the last turn (e.g. a newline); only the trajectory's span is compared."""
    chat = ChatTokens(tokenizer)
    full = chat_ids(tokenizer, messages_of(traj, chat), False)
    n = len(traj.ids)
    diffs = [i for i, (a, b) in enumerate(zip(traj.ids, full[:n])) if a != b]
    diffs += list(range(len(full), n))  # trajectory longer than the re-rendering
    return DriftReport(n, len(diffs), diffs[0] if diffs else None, len(full))
