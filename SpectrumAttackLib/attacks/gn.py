"""GN: additive Gaussian noise, the random baseline of the VAFA paper.

Reference: ``attacks/gn.py`` of the seed (torchattacks' GN; seed-algorithms §6):
``clip(x + (std/255)·N(0, 1), 0, 1)``. The noise is drawn from the call's seeded generator. The model is run once on
the result, for the history and the class-count check.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.checks import check_range

__all__ = ["GaussianNoise"]


class GaussianNoise(Attack):
    """Gaussian noise of standard deviation ``std/255``, then clamped to [0, 1].

    Args:
        model, loss_fn, seed, clip_input: see :class:`Attack` (``loss_fn`` only scores the output).
        std: noise standard deviation on the seed's 0–255 scale (4 means 4/255 in [0, 1] intensity units);
            0 ≤ std ≤ 255. Default 4.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``adversarial − images``, same shape.

    Example:
        >>> result = GaussianNoise(model, std=8, seed=1)(images, labels)
    """

    name = "gn"
    paper = "Gaussian-noise baseline (torchattacks GN), as in Hanif et al., MICCAI 2023"
    fixed_params: ClassVar[frozenset[str]] = frozenset({"steps", "targeted", "restarts", "early_stop"})

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, std: float = 4.0,
                 **kwargs: Any) -> None:
        super().__init__(model, loss_fn, steps=0, **kwargs)
        self.std = check_range("std", std, 0.0, 255.0, hint="0–255 scale; 4 means 4/255")

    def init_variable(self, images: torch.Tensor, context: Any, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return noise * (self.std / 255.0)

    def render(self, images: torch.Tensor, noise: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        return images + noise

    def project(self, noise: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        return noise

    def state_of(self, noise: torch.Tensor, images: torch.Tensor, adversarial: torch.Tensor,
                 context: Any) -> torch.Tensor:
        return adversarial - images
