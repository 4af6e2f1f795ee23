"""BIM: iterative FGSM, i.e. PGD-L∞ without the random start.

Kurakin, Goodfellow, Bengio, "Adversarial Examples in the Physical World", ICLR workshop 2017, arXiv:1607.02533.
Reference: ``attacks/bim.py`` of the seed (seed-algorithms §6); its "steps = 0 means automatic" rule (reachable only
in verbose mode, §13 item 16) is not reproduced: ``steps`` ≥ 1 is always used as given.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.pgd import PGD

__all__ = ["BIM"]


class BIM(PGD):
    """Basic iterative method: sign steps of ``alpha`` from the clean images, projected on the ``eps`` ball ∩ [0, 1].

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input: see :class:`Attack`.
        eps, alpha: as in :class:`PGD` (eps on the 0–255 scale, alpha in [0, 1] units). Defaults 4 and 0.01.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = BIM(model, eps=4, alpha=0.01, steps=10)(images, labels)
    """

    name = "bim"
    paper = "Kurakin et al., Adversarial Examples in the Physical World, ICLR workshop 2017"
    fixed_params: ClassVar[frozenset[str]] = frozenset({"random_start"})

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, **kwargs: Any) -> None:
        super().__init__(model, loss_fn, random_start=False, **kwargs)
