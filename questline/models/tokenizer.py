"""A tiny byte-level BPE tokenizer with a ChatML chat template.

Special tokens follow SmolLM2's layout (ids 0, 1, 2) so that from-scratch
models and SmolLM2 share one turn format:

    <|endoftext|>  padding (there is no BOS)
    <|im_start|>   opens a turn
    <|im_end|>     ends a turn (the eos token: generation stops here)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD_TOKEN = "<|endoftext|>"
TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, TURN_START, TURN_END]

# ChatML as SmolLM2 renders it, minus the default system prompt. Without tools the
# text is exactly that; with `tools` (and assistant `tool_calls`, `tool` messages) it
# renders tool calling as Qwen2.5 does: the tool schemas in the system turn, each call
# as `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` in the assistant
# turn, tool results as `<tool_response>` blocks in one user turn (what TRL's
# GRPOTrainer needs for `tools` / `environment_factory`).
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\n\n' }}{%- endif %}"
    "{{- '# Tools\n\nCall a tool as <tool_call>\n{\"name\": <tool>, \"arguments\": {<argument>: <value>}}\n"
    "</tool_call>\nTools (JSON schemas):' }}"
    "{%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if tools and loop.first and message['role'] == 'system' %}"
    "{%- elif message['role'] == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\n<tool_response>\n' + message['content'] + '\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') }}"
    "{%- for call in message['tool_calls'] or [] %}"
    "{%- set call = call['function'] if call['function'] is defined else call %}"
    "{%- set args = call['arguments'] if call['arguments'] is string else call['arguments'] | tojson %}"
    "{{- ('\n' if (message['content'] or not loop.first) else '') + '<tool_call>\n{\"name\": \"' + call['name']"
    " + '\", \"arguments\": ' + args + '}\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`. The full 256-byte alphabet is always in
    the vocabulary, so any string encodes without an unknown token."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=TURN_END,
        pad_token=PAD_TOKEN,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1 << 30,
        clean_up_tokenization_spaces=False,
    )


def chat_ids(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Mapping[str, str]],
    add_generation_prompt: bool = False,
) -> list[int]:
    """Token ids of a rendered chat, always as a flat list of ints.

    transformers 5 returns a BatchEncoding from `apply_chat_template(tokenize=True)`
    where 4.x returned a list; this hides the difference."""
    out = tokenizer.apply_chat_template(
        list(messages), tokenize=True, add_generation_prompt=add_generation_prompt
    )
    if isinstance(out, Mapping):
        out = out["input_ids"]
    if hasattr(out, "tolist"):
        out = out.tolist()
    if out and isinstance(out[0], list):  # a batch of one
        out = out[0]
    return [int(i) for i in out]


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Id of `<|im_end|>`, falling back to the tokenizer's eos id."""
    tid = tokenizer.convert_tokens_to_ids(TURN_END)
    if tid is None or (tokenizer.unk_token_id is not None and tid == tokenizer.unk_token_id):
        tid = tokenizer.eos_token_id
    if tid is None:
        raise ValueError("tokenizer has neither <|im_end|> nor an eos token")
    return int(tid)
