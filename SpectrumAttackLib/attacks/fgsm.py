"""FGSM: one signed-gradient step of size ``eps``, no random start.

Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015, arXiv:1412.6572.
Reference: ``attacks/fgsm.py`` of the seed (seed-algorithms §6): ``clip(x + ε·sign(∇ₓ DiceCE), 0, 1)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.pgd import PGD

__all__ = ["FGSM"]


class FGSM(PGD):
    """Fast gradient sign method: PGD with one step of size ``eps`` from the clean images.

    Args:
        model, loss_fn, seed, targeted, clip_input: see :class:`Attack`.
        eps: L∞ budget and step on the seed's 0–255 scale (4 means 4/255 in [0, 1] intensity units);
            0 ≤ eps ≤ 255. Default 4.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = FGSM(model, eps=4)(images, labels)
    """

    name = "fgsm"
    paper = "Goodfellow et al., Explaining and Harnessing Adversarial Examples, ICLR 2015"
    fixed_params: ClassVar[frozenset[str]] = frozenset({"steps", "alpha", "random_start", "restarts", "early_stop"})

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, eps: float = 4.0,
                 **kwargs: Any) -> None:
        super().__init__(model, loss_fn, eps=eps, alpha=1.0, random_start=False, steps=1, **kwargs)
        self.alpha = self.radius  # the one step is the whole budget
        self._step_size = self.radius
