"""Shared pieces of the training loops: optimiser with cosine schedule, batches, seeding."""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np
import torch


def make_optimizer(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, total_steps: int):
    """AdamW (Adam when weight_decay is 0) with a short warm-up then cosine decay to 1% of ``lr``."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warmup = max(1, min(50, total_steps // 20))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def batches(n: int, batch_size: int, rng: np.random.Generator, weights: np.ndarray = None) -> Iterator[np.ndarray]:
    """Index batches covering one epoch: a shuffle, or draws weighted by ``weights`` (class balance).

    A last batch of one sample joins the one before it: batch norm cannot train on a single 1 x 1 window.
    """
    if weights is None:
        order = rng.permutation(n)
    else:
        order = rng.choice(n, size=n, replace=True, p=weights / weights.sum())
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for start, end in zip(starts, starts[1:] + [n]):
        yield order[start:end]


def seeded_generator(seed: int) -> torch.Generator:
    """Seed torch's global generator (dropout-free model, but init and BN order) and return a CPU generator."""
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def optimise(opt, sched, loss: torch.Tensor) -> float:
    """One optimiser and schedule step on ``loss``; returns its value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()
