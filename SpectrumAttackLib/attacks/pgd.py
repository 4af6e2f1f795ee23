"""PGD-L∞: projected gradient ascent on the segmentation loss from a random start.

Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083.
Reference: ``attacks/pgd.py`` of the seed (seed-algorithms §6).
"""

from __future__ import annotations

from typing import Any

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.voxel_losses import LOSSES, loss_function
from SpectrumAttackLib.checks import check_choice, check_range

__all__ = ["PGD"]


class PGD(Attack):
    """PGD with an L∞ budget.

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input: see :class:`Attack`.
        eps: L∞ budget on the seed's 0–255 scale (4 means 4/255 in [0, 1] intensity units); 0 ≤ eps ≤ 255.
            Default 4.
        alpha: step size in [0, 1] intensity units, used as given (the seed does not divide it by 255);
            0 < alpha ≤ 1. Default 0.01.
        random_start: start from ``U(−eps, eps)`` noise. Default True.
        loss: the maximised loss by name, one of :data:`~SpectrumAttackLib.attacks.voxel_losses.LOSSES`
            (``"dice-ce"``, ``"ce"``, SEA's ``"masked-ce"``, ``"balanced-masked-ce"``, ``"js"``); a ``loss_fn`` given
            instead needs the default. Default ``"dice-ce"``.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = PGD(model, eps=4, alpha=0.01, steps=10)(images, labels)
    """

    name = "pgd"
    paper = "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018"

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, eps: float = 4.0,
                 alpha: float = 0.01, random_start: bool = True, loss: str = "dice-ce", **kwargs: Any) -> None:
        loss = check_choice("loss", loss, LOSSES)
        if loss_fn is not None and loss != LOSSES[0]:
            raise ValueError(f"loss must be {LOSSES[0]!r} (the default) when loss_fn is given, got {loss!r}.")
        if loss_fn is None and self.uses_loss_fn:
            loss_fn = loss_function(loss)
        super().__init__(model, loss_fn, **kwargs)
        self.loss = loss
        self.eps = check_range("eps", eps, 0.0, 255.0, hint="0–255 scale; 4 means 4/255")
        self.alpha = check_range("alpha", alpha, 0.0, 1.0, low_inclusive=False,
                                 hint="[0, 1] intensity units, not divided by 255")
        self.random_start = bool(random_start)
        self._step_size = self.alpha

    @property
    def random_init(self) -> bool:
        return self.random_start

    @property
    def radius(self) -> float:
        """The budget in [0, 1] intensity units."""
        return self.eps / 255.0

    def init_variable(self, images: torch.Tensor, context: Any, generator: torch.Generator) -> torch.Tensor:
        delta = torch.zeros_like(images)
        if self.random_start:
            delta.uniform_(-self.radius, self.radius, generator=generator)
        return delta

    def render(self, images: torch.Tensor, delta: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        return images + delta

    def project(self, delta: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        delta = delta.clamp(-self.radius, self.radius)
        return (images + delta).clamp(0.0, 1.0) - images

    def state_of(self, delta: torch.Tensor, images: torch.Tensor, adversarial: torch.Tensor,
                 context: Any) -> torch.Tensor:
        return adversarial - images
