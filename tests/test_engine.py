"""The cached engine must sample exactly what a full forward pass would score."""

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from questline.inference import HFEngine, SamplingParams

VOCAB, PAD, STOP = 64, 0, 1


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaForCausalLM(cfg).eval()


def run_episodes(engine, n_turns, seed=0):
    """Multi-turn loop with different prompt/observation lengths per episode."""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(2, VOCAB, (3 + 4 * i,), generator=g).tolist() for i in range(4)]
    masks = [[0] * len(s) for s in seqs]
    lps = [[0.0] * len(s) for s in seqs]
    params = SamplingParams(temperature=1.0, max_new_tokens=6, stop_ids=(STOP,))
    active = list(range(len(seqs)))
    for turn in range(n_turns):
        gens = engine.generate([seqs[i] for i in active], params, [f"ep{i}" for i in active], seed=turn)
        for i, gen in zip(active, gens):
            seqs[i] += gen.ids
            masks[i] += [1] * len(gen.ids)
            lps[i] += gen.logprobs
            obs = torch.randint(2, VOCAB, (1 + (i + turn) % 5,), generator=g).tolist()
            seqs[i] += obs
            masks[i] += [0] * len(obs)
            lps[i] += [0.0] * len(obs)
        active = active[: len(active) - (turn % 2)]  # episodes end at different turns
    return seqs, masks, lps


def full_logprobs(model, seq):
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0, :-1].float()
    lp = F.log_softmax(logits, -1).gather(-1, torch.tensor(seq[1:])[:, None])[:, 0]
    return [0.0] + lp.tolist()


def test_cached_logprobs_match_full_forward():
    model = tiny_model()
    engine = HFEngine(model, pad_id=PAD)
    seqs, masks, lps = run_episodes(engine, n_turns=4)
    for seq, mask, lp in zip(seqs, masks, lps):
        ref = full_logprobs(model, seq)
        for t, m in enumerate(mask):
            if m:
                assert abs(ref[t] - lp[t]) < 1e-4, (t, ref[t], lp[t])


def test_cache_reuse_forwards_each_token_once_and_matches_naive():
    model = tiny_model()
    cached, naive = HFEngine(model, pad_id=PAD), HFEngine(model, pad_id=PAD, reuse_cache=False)
    a = run_episodes(cached, n_turns=4)
    b = run_episodes(naive, n_turns=4)
    assert a[0] == b[0]  # same samples: caching changes cost, never results
    # each token but the final observation (never fed) passes through the model once
    fed_once = sum(len(s) for s in a[0])
    assert cached.tokens_forwarded < naive.tokens_forwarded
    assert cached.tokens_forwarded <= fed_once
