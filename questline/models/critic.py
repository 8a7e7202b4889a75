"""The critic for PPO: a separate LM with a scalar head, as a standard HF
`...ForTokenClassification` model (num_labels=1), so it saves and loads like any
HF checkpoint. It starts from the policy's weights (the usual choice: the backbone
already reads the task) with a freshly initialised head."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForTokenClassification, PreTrainedModel

from questline.train.common import autocast, causal_mask


def build_critic(policy: PreTrainedModel, seed: int = 0) -> PreTrainedModel:
    """A value model with the policy's architecture and backbone weights."""
    config = policy.config.__class__.from_dict(policy.config.to_dict())
    config.num_labels = 1
    config.problem_type = "regression"
    # HF's token-classification head applies dropout 0.1 by default: values would be
    # random in training and differ between processes. verl's critic sets it to 0 too.
    config.classifier_dropout = 0.0
    torch.manual_seed(seed)
    critic = AutoModelForTokenClassification.from_config(config)
    backbone = policy.base_model_prefix  # e.g. "model" for Llama
    critic_backbone = getattr(critic, critic.base_model_prefix)
    critic_backbone.load_state_dict(getattr(policy, backbone).state_dict())
    torch.nn.init.zeros_(critic.score.weight)  # V = 0 everywhere at the start
    if getattr(critic.score, "bias", None) is not None:
        torch.nn.init.zeros_(critic.score.bias)
    return critic.to(next(policy.parameters()).device)


def load_critic(path: str | Path) -> PreTrainedModel:
    return AutoModelForTokenClassification.from_pretrained(path, local_files_only=True)


def token_values(critic: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                 use_autocast: bool = False) -> torch.Tensor:
    """[B, T] V(state before token t): the head's output at position t - 1 (0 at t = 0),
    aligned with `sequence_logprobs` so values[t] pairs with the action token t."""
    with autocast(critic, use_autocast):
        out = critic(input_ids=input_ids, attention_mask=causal_mask(attention_mask)).logits[..., 0]
    return F.pad(out[:, :-1].float(), (1, 0))
