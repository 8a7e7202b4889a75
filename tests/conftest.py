import os

import pytest
import torch

from questline.data.corpus import oracle_texts
from questline.envs import generate_tasks
from questline.models import build_model, train_tokenizer

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: one thread each (more only contend), for the
    # CLI runs tests start too
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def toy_tokenizer():
    tasks = []
    for env in ("toy/maze", "toy/shop"):
        for level in ("easy", "medium", "hard"):
            tasks += generate_tasks(env, 40, level, seed=123)
    return train_tokenizer(oracle_texts(tasks), vocab_size=512)


@pytest.fixture(scope="session")
def toy_model(toy_tokenizer):
    return build_model("xs", toy_tokenizer, seed=0).eval()
