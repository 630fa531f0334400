"""Which training examples a run draws: `loop.visited` against `DataOrder` worked by hand."""

from __future__ import annotations

import torch

from kubealign.config import DPOConfig
from kubealign.loop import DataOrder, visited


def test_visited_is_the_union_of_the_micro_batches_a_run_draws() -> None:
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(7)).tolist()
    # 2 steps x 2 micro-batches x 2 examples: the first 8 of epoch 0's permutation
    cfg = DPOConfig(max_steps=2, grad_accum=2, batch_size=2, seed=7)
    assert visited(cfg, 10) == sorted(perm[:8])
    assert DataOrder(10, 2, 7).indices(3) == perm[6:8]
    # two ranks: the global micro-batch doubles
    assert visited(DPOConfig(max_steps=1, batch_size=2, seed=7), 10, world_size=2) == sorted(perm[:4])
    # no max_steps: whole epochs, every example
    assert visited(DPOConfig(epochs=1, batch_size=4, seed=7), 10) == list(range(10))
    # more steps than one epoch: every example, whatever the next permutation
    assert visited(DPOConfig(max_steps=4, batch_size=3, seed=7), 10) == list(range(10))
