"""SA²: Spectrum Adversarial Attack, in 3D blocks and slice-wise 2D.

Hanif, Naseer, Khan, Khan, "On Frequency Domain Adversarial Vulnerabilities of Volumetric Medical Image
Segmentation", ISBI 2025. Reference code: ``asif-hanif/saa``, ``attacks/saa/saa.py`` (seed-algorithms §2–§3).

Every non-DC DCT coefficient of every block is multiplied by a learned factor ``ξ ∈ [1 − ρ, 1 + ρ]``; ξ follows
sign-gradient ascent with step ``beta`` on ``λ_dice·DiceCE − λ_ssim·(1 − SSIM3D)`` and is clamped to the box
after every step. Because the DCT is orthonormal and DC is kept, each block keeps its mean and
``‖x′_b − x_b‖₂ ≤ ρ·‖x_b − mean(x_b)‖₂`` before the final clamp to [0, 1].

Departures from the reference, on purpose (seed-algorithms §13): the clean coefficients are computed once per
call (item 20); ξ lives on the model's device and is drawn from a seeded generator (items 21, 24); the returned
image uses ξ after all ``steps`` updates (the reference returns the image of its last forward pass, so its
``steps = T + 1`` matches ours ``steps = T``); the reference's ``x − 0.5`` centring only shifts DC and is omitted;
SA²-2D's SSIM term compares aligned volumes (item 6); band masks work for non-cubic blocks (item 12).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.spectral import SpectralContext, spectral_context, spectral_image
from SpectrumAttackLib.checks import check_block_size, check_choice, check_range
from SpectrumAttackLib.transforms import FreqBand

__all__ = ["SAA", "SAA2D"]


class SAA(Attack):
    """SA² on 3D blocks.

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input: see :class:`Attack`.
        rho: half-width of the box of spectral factors, ``0 < rho < 1``. Default 0.2.
        block_size: DCT block ``(b1, b2, b3)`` in voxels, each ≥ 2 and ≤ the volume; non-cubic allowed; sizes
            that do not divide the volume are padded. Default (8, 8, 8).
        lambda_dice: weight of the DiceCE term, > 0. Default 0.01 (the seed's CLI default).
        use_ssim_loss: subtract ``lambda_ssim·(1 − SSIM3D(x, x′))``. Default False.
        lambda_ssim: weight of the SSIM term, ≥ 0. Default 1.
        freq_band: ``"all"``, ``"low"``, ``"middle"`` or ``"high"``; only that band is perturbed. Default "all".
        beta: sign-gradient step on ξ, > 0 (hard-coded 0.1 in the reference). Default 0.1.

    Shape:
        images ``[B, C, H, W, D]`` in [0, 1]; labels ``[B, 1, H, W, D]``; ``result.state`` = the factors applied,
        ``[B, C, N, b1, b2, b3]`` with blocks in row-major (H, W, D) order, D fastest, and 1 on DC and outside the
        band (2D: ``[B, C, D, N2, bh, bw]``, one entry per axial slice ``d``).

    Example:
        >>> attack = SAA(model, rho=0.2, steps=5, block_size=(8, 8, 8), use_ssim_loss=True)
        >>> result = attack(images, labels)
    """

    name = "saa"
    paper = ("Hanif et al., On Frequency Domain Adversarial Vulnerabilities of Volumetric Medical Image Segmentation, "
             "ISBI 2025")
    ndim: ClassVar[int] = 3

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn | None = None,
        *,
        rho: float = 0.2,
        block_size: Sequence[int] | int = (8, 8, 8),
        lambda_dice: float = 0.01,
        use_ssim_loss: bool = False,
        lambda_ssim: float = 1.0,
        freq_band: str = "all",
        beta: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, loss_fn, **kwargs)
        self.rho = check_range("rho", rho, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.block_size = check_block_size("block_size", block_size, self.ndim)
        self.lambda_dice = check_range("lambda_dice", lambda_dice, 0.0, low_inclusive=False)
        self.use_ssim_loss = bool(use_ssim_loss)
        self.lambda_ssim = check_range("lambda_ssim", lambda_ssim, 0.0)
        self.freq_band = check_choice("freq_band", getattr(freq_band, "value", freq_band), [b.value for b in FreqBand])
        self.beta = check_range("beta", beta, 0.0, low_inclusive=False)
        self._step_size = self.beta
        self._seg_weight = self.lambda_dice
        self._ssim_weight = self.lambda_ssim if self.use_ssim_loss else 0.0

    def prepare(self, images: torch.Tensor) -> SpectralContext:
        return spectral_context(images, self.block_size, self.freq_band, self.ndim)

    def init_variable(self, images: torch.Tensor, context: SpectralContext,
                      generator: torch.Generator) -> torch.Tensor:
        xi = torch.empty_like(context.coefs)
        return xi.uniform_(1 - self.rho, 1 + self.rho, generator=generator)

    def render(self, images: torch.Tensor, xi: torch.Tensor, context: SpectralContext, t: int) -> torch.Tensor:
        return spectral_image(context.coefs * xi, context, self.ndim)

    def project(self, xi: torch.Tensor, images: torch.Tensor, context: SpectralContext) -> torch.Tensor:
        """Clamp to the box and set DC and the coefficients outside the band to 1 (they are never perturbed).

        Keeping those entries at 1 in ξ itself (instead of masking at every render) gives the same images and the
        same updates of the perturbed entries, with one operation less in every step's graph.
        """
        return torch.where(context.mask, xi.clamp(1 - self.rho, 1 + self.rho), 1.0)


class SAA2D(SAA):
    """SA² on the ``bh × bw`` blocks of every axial slice (2D DCT); see :class:`SAA` for the arguments.

    ``block_size`` has two entries (default (8, 8)); the SSIM term is the same 3D SSIM on aligned volumes.
    """

    name = "saa-2d"
    ndim = 2

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *,
                 block_size: Sequence[int] | int = (8, 8), **kwargs: Any) -> None:
        super().__init__(model, loss_fn, block_size=block_size, **kwargs)
