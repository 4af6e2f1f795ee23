"""Optimisers and learning-rate schedules of the reference trainer (seed-algorithms §7.2).

Both schedules are written in closed form over the epoch index and stepped once per epoch, so the learning rate
of epoch ``e`` depends only on ``e`` and the configuration. A resumed run therefore follows the schedule of the
configuration it is resumed with, from the epoch stored in its checkpoint.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from SpectrumAttackLib.checks import check_choice, check_int, check_range

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "LinearWarmupCosineAnnealingLR",
    "cosine_anneal",
    "make_optimizer",
    "make_scheduler",
    "warmup_cosine_factor",
]

OPTIMIZERS = ("adamw", "adam", "sgd")
LR_SCHEDULES = ("warmup_cosine", "cosine_anneal")


def warmup_cosine_factor(epoch: int, warmup_epochs: int, max_epochs: int) -> float:
    """Learning-rate factor (relative to the base LR) of linear warm-up from 0, then cosine annealing to 0.

    The closed form of the reference's ``LinearWarmupCosineAnnealingLR`` (warm-up start LR 0, ``eta_min`` 0):
    ``e / (w − 1)`` during the ``w`` warm-up epochs (the base LR is reached at epoch ``w − 1``), then
    ``½·(1 + cos(π·(e − w) / (M − w)))``. Denominators are clamped to 1, so ``w`` = 0 or 1 and ``M`` = ``w``
    are valid (the reference divides by zero there).

    Args:
        epoch: epochs completed, ≥ 0.
        warmup_epochs: ``w``, ≥ 0.
        max_epochs: ``M``, ≥ 1.
    """
    if epoch < warmup_epochs:
        return epoch / max(1, warmup_epochs - 1)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / max(1, max_epochs - warmup_epochs)))


class LinearWarmupCosineAnnealingLR(LambdaLR):
    """Linear warm-up from LR 0 to the base LR over ``warmup_epochs``, then cosine annealing to 0 at ``max_epochs``.

    The reference schedule (``optimizers/lr_scheduler.py``, from Lightning Bolts) with warm-up start LR 0 and
    ``eta_min`` 0, stepped once per epoch; see :func:`warmup_cosine_factor` for the values. The state dict holds
    only the epoch counter and base LRs, so loading it into a scheduler built for a longer run continues that
    longer run's schedule.

    Args:
        optimizer: the optimiser whose groups' ``lr`` are the base LRs.
        warmup_epochs: warm-up length in epochs, ≥ 0. The reference default is 50.
        max_epochs: epochs of the whole run, ≥ 1.

    Example:
        >>> opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-4)
        >>> sched = LinearWarmupCosineAnnealingLR(opt, warmup_epochs=3, max_epochs=10)
        >>> opt.param_groups[0]["lr"]
        0.0
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_epochs: int, max_epochs: int) -> None:
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
        self.max_epochs = check_int("max_epochs", max_epochs, 1)
        warmup, total = self.warmup_epochs, self.max_epochs

        def factor(epoch: int) -> float:
            return warmup_cosine_factor(epoch, warmup, total)

        super().__init__(optimizer, factor)

    def state_dict(self) -> dict[str, Any]:
        """The epoch counter and LRs, without the schedule's shape (which comes from the constructor)."""
        state = super().state_dict()
        state.pop("warmup_epochs", None)
        state.pop("max_epochs", None)
        return state


def cosine_anneal(optimizer: torch.optim.Optimizer, max_epochs: int) -> LambdaLR:
    """Cosine annealing from the base LR to 0 over ``max_epochs`` epochs, without warm-up.

    The reference's ``--lrschedule cosine_anneal`` (``CosineAnnealingLR(T_max=max_epochs)``), in closed form:
    factor ``½·(1 + cos(π·e / M))``.
    """
    total = check_int("max_epochs", max_epochs, 1)

    def factor(epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * epoch / total))

    return LambdaLR(optimizer, factor)


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    reg_weight: float,
    momentum: float = 0.99,
) -> torch.optim.Optimizer:
    """The reference's optimisers: ``adamw`` / ``adam`` (weight decay ``reg_weight``) or Nesterov ``sgd``.

    Args:
        name: ``"adamw"`` (reference default), ``"adam"`` or ``"sgd"``.
        params: the parameters to optimise.
        lr: learning rate, > 0 (reference default 1e-4).
        reg_weight: weight decay, ≥ 0 (reference default 1e-5).
        momentum: SGD momentum in [0, 1) (reference default 0.99); ignored by the Adam variants.

    Raises:
        ValueError: unknown name or a value out of range, named in the message.
    """
    check_choice("optim_name", name, OPTIMIZERS)
    lr = check_range("optim_lr", lr, 0.0, None, low_inclusive=False)
    reg_weight = check_range("reg_weight", reg_weight, 0.0, None)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=reg_weight)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=reg_weight)
    momentum = check_range("momentum", momentum, 0.0, 1.0, high_inclusive=False)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=reg_weight)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, *, warmup_epochs: int, max_epochs: int) -> LambdaLR:
    """The LR schedule ``name`` (``"warmup_cosine"`` or ``"cosine_anneal"``) for a run of ``max_epochs``.

    Warns when the warm-up is at least as long as the run (the run then ends before any cosine phase, mostly at
    a reduced LR), which is what the reference default ``warmup_epochs`` 50 does to short runs.

    Raises:
        ValueError: unknown name or bad epoch counts, named in the message.
    """
    check_choice("lrschedule", name, LR_SCHEDULES)
    if name == "cosine_anneal":
        return cosine_anneal(optimizer, max_epochs)
    warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
    max_epochs = check_int("max_epochs", max_epochs, 1)
    if warmup_epochs >= max_epochs:
        warnings.warn(
            f"warmup_epochs ({warmup_epochs}) >= max_epochs ({max_epochs}): the whole run is linear warm-up from "
            f"LR 0 (--optim_lr is reached in epoch {warmup_epochs}); lower --warmup_epochs for short runs.",
            stacklevel=2,
        )
    return LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs, max_epochs)
