"""Masks agree on two gloo data-parallel ranks (random PaI through the broadcast, RiGL through
the all-reduced gradient)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.e2e import free_port
from tests.sparse_helpers import batch, setup, sparsity_cfg, small_model

pytestmark = pytest.mark.slow


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    from training.methods import build_method

    # random PaI with a different seed on each rank: rank 0's masks must win
    random_method = build_method(sparsity_cfg(method="random", target=0.9, seed=rank))
    random_method.prepare(small_model())
    # RiGL under DDP, each rank on its own data
    model, method, opt = setup("rigl", 10, 4, target=0.8, rigl_delta_t=3)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    for step in range(7):
        x, y = batch(100 * rank + step)  # different data per rank
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        method.before_step(step)
        opt.step()
        method.after_step(step)
    torch.save({"random": random_method.masks, "rigl": method.masks, "regrown": method.regrown}, f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_masks_agree_across_two_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    alone = build_alone()
    assert all(torch.equal(x, y) for x, y in zip(a["random"], b["random"]))
    assert all(torch.equal(x, y) for x, y in zip(a["random"], alone))  # rank 0's (seed 0) masks
    assert a["regrown"] > 0  # RiGL did update (steps 3 and 6)
    assert all(torch.equal(x, y) for x, y in zip(a["rigl"], b["rigl"]))


def build_alone():
    from training.methods import build_method

    method = build_method(sparsity_cfg(method="random", target=0.9, seed=0))
    method.prepare(small_model())
    return method.masks
