"""One PPO update (policy + critic + KL to a reference, clipped gradients, gradient
accumulation) on a fixed batch, shared by tests/test_distributed.py: the test runs
it in one process, and `torchrun --nproc_per_node 2 tests/distributed_worker.py
POLICY_DIR OUT_DIR` runs it with DDP and with FSDP2; rank 0 saves the weights."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from questline.core import Batch
from questline.experiments.recipe import RLConfig
from questline.models.critic import build_critic
from questline.train.common import TokenLogits, make_optimizer
from questline.train.distributed import SINGLE, Parallel
from questline.train.rl import rl_update

ROWS, LENGTH = 5, 24


def step_batch(vocab: int) -> Batch:
    """5 rows in 2 groups, of different lengths, policy tokens in two turns each:
    2 ranks split them 2:3, so with micro-batches of 2 rank 0 runs a zero-weight one."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (ROWS, LENGTH), generator=g)
    attn = torch.zeros(ROWS, LENGTH, dtype=torch.long)
    mask = torch.zeros(ROWS, LENGTH)
    rewards = torch.zeros(ROWS, LENGTH)
    for i, n in enumerate((24, 17, 20, 12, 22)):
        attn[i, :n] = 1
        mask[i, 4:8] = mask[i, n - 4:n] = 1
        rewards[i, n - 1] = float(i % 3 == 0)
    return Batch(input_ids=ids, attention_mask=attn, loss_mask=mask, old_logprobs=torch.zeros(ROWS, LENGTH),
                 token_rewards=rewards, group_ids=torch.tensor([0, 0, 0, 1, 1]))


CONFIG = RLConfig(advantage="gae", micro_batch_size=2, minibatch_size=8, lr=1e-2, kl_coef=0.1,
                  max_grad_norm=0.05)  # a small norm: clipping acts, so the global norm must be right


def one_step(model, par: Parallel = SINGLE) -> tuple[dict, dict, dict]:
    """-> (policy state, critic state, stats) after one update; `model` is left trained."""
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    critic = build_critic(model, seed=1)
    trained = par.wrap(TokenLogits(model)) if par.on else model
    trained_critic = par.wrap(critic)
    if par.on and par.kind == "fsdp2":  # as train_rl does: the reference sharded, the plain critic parked
        ref = par.wrap(TokenLogits(ref))
    par.park(critic, keep=False)
    # Adam's first step is about lr * sign(gradient): with a small eps, a gradient that is
    # zero up to rounding noise moves a weight by +-lr. eps = 1e-4 keeps the comparison on
    # the gradients themselves.
    opt = make_optimizer(trained, CONFIG.lr, eps=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    critic_opt = make_optimizer(trained_critic, CONFIG.critic.lr, eps=1e-4)
    stats = rl_update(trained, ref, opt, sched, step_batch(model.config.vocab_size), CONFIG, temperature=1.0,
                      use_autocast=False, critic=trained_critic, critic_optimizer=critic_opt, parallel=par)
    par.sync(trained, model)
    par.sync(trained_critic, critic)
    return model.state_dict(), critic.state_dict(), stats


def main(policy_dir: str, out_dir: str) -> None:
    import torch.distributed as dist

    from questline.models import load_policy
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    base, _ = load_policy(policy_dir)
    for kind in ("ddp", "fsdp2"):
        par = Parallel(kind, dist.get_rank(), dist.get_world_size())
        policy, critic, stats = one_step(copy.deepcopy(base), par)
        if par.main:
            torch.save({"policy": policy, "critic": critic, "stats": stats}, Path(out_dir) / f"{kind}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])
