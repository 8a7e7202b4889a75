"""Two vLLM servers as engine replicas (`engine.urls`), with asynchronous RL: every
weight sync reaches both servers (the logprob check passes on each), both serve
episodes, samples are one policy version old. Marked `vllm` (`make test-vllm`)."""

from __future__ import annotations

import copy
import json

import pytest
from test_vllm import _python, policy  # noqa: F401 - its SFT'd xs policy fixture

from questline.data import TaskSet
from questline.experiments.recipe import recipe_from_dict
from questline.inference.vllm_engine import VLLMEngine
from questline.inference.vllm_server import VLLMServer, group_pids
from questline.train.logging import MetricsLogger
from questline.train.rl import train_rl

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def servers(policy, tmp_path_factory):  # noqa: F811
    logs = tmp_path_factory.mktemp("vllm-replicas")
    started = [VLLMServer(policy["dir"], python=_python(), log_path=logs / f"vllm-{r}.log", threads=1)
               for r in range(2)]
    try:
        for s in started:
            s.start()
        for s in started:
            s.wait_ready()
        yield started
    finally:
        for s in started:
            s.stop()
    assert not any(group_pids(s.proc.pid) for s in started), "server processes outlived the fixture"


def test_async_rl_on_two_vllm_replicas(servers, policy, tmp_path):  # noqa: F811
    recipe = recipe_from_dict({
        "env": {"name": "toy/maze"}, "model": {"precision": "fp32"},
        "rl": {"tasks_per_iter": 2, "group_size": 3, "lr": 1e-3, "reward": "dense", "tis_cap": 2.0,
               "async": True},
        "rollout": {"max_turns": 6, "max_new_tokens": 8, "temperature": 1.0},
        "engine": {"kind": "vllm", "urls": [s.url for s in servers], "check_first_n": 5},
        "run": {"dir": str(tmp_path), "checkpoint_every": 0}})
    before = []
    for s in servers:
        with VLLMEngine(s.url) as e:
            before.append(e.prefix_cache()["queries"])
    logger = MetricsLogger(tmp_path, "rl")
    done = train_rl(recipe, copy.deepcopy(policy["model"]), policy["tok"], policy["chat"],
                    TaskSet("toy/maze", 30, {"easy": 1, "medium": 1}, 3), tmp_path, iterations=3, logger=logger)
    logger.close()
    assert done == 3
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["staleness"] for r in rows] == [0, 1, 1]
    # a rollout syncs the servers from the snapshot only when a newer version is published
    # (rollout 1 may start on version 0, one behind); every sync is checked on both servers
    synced = [r for r in rows if "engine_sync_s" in r]
    assert synced and all(r["engine_check_max"] < 1e-3 and r["engine_sync_s"] > 0 for r in synced)
    assert all("prefix_cache_hit_rate" in r and r["infra_failed"] == 0 for r in rows)
    for s, queried in zip(servers, before):  # both replicas served episodes
        with VLLMEngine(s.url) as e:
            assert e.prefix_cache()["queries"] > queried
