"""The optimisation step the trainers share: cosine learning-rate decay, clipped gradients."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def cosine_lr(base_lr: float, step: int, total_steps: int, floor: float = 0.0) -> float:
    """The learning rate after ``step`` of ``total_steps`` on a half-cosine from ``base_lr``.

    Steps are counted, not timed, so a run repeats exactly.

    Args:
        base_lr: the rate at step 0.
        step: steps taken so far.
        total_steps: planned steps (the curve reaches its floor there and stays).
        floor: the smallest fraction of ``base_lr`` used.
    """
    progress = min(1.0, step / max(1, total_steps))
    return base_lr * max(floor, 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    lr: float,
    parameters: Iterable[torch.nn.Parameter],
    max_norm: float = 5.0,
) -> None:
    """Set ``lr`` on every parameter group, back-propagate ``loss``, clip the gradients' norm
    to ``max_norm`` and step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
