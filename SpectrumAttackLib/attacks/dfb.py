"""DFB: drop a frequency band of every DCT block (no optimisation), in 3D blocks and slice-wise 2D.

The band analysis of SA² (Hanif et al., ISBI 2025). Reference code: ``asif-hanif/saa``,
``attacks/saa/drop_freq_band.py`` (``DFB``, ``DFB_2D``; seed-algorithms §4): every coefficient of the chosen band
is set to zero, DC is kept, the inverse DCT is taken and the result clamped to [0, 1]. The model is run once on the
result, for the history and the class-count check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.spectral import SpectralContext, spectral_context, spectral_image
from SpectrumAttackLib.checks import check_block_size, check_choice
from SpectrumAttackLib.transforms import FreqBand

__all__ = ["DFB", "DFB2D"]


class DFB(Attack):
    """Drop one frequency band of every 3D DCT block.

    Args:
        model, loss_fn, seed, clip_input: see :class:`Attack` (``loss_fn`` only scores the output).
        freq_band: ``"low"``, ``"middle"``, ``"high"`` or ``"all"`` (every non-DC coefficient: each block becomes
            its mean); DC is always kept. Default "all", the seed's ``--freq_band`` default (one default for every
            attack that takes the band, ``attacks.parameters``).
        block_size: DCT block ``(b1, b2, b3)``, each ≥ 2 and ≤ the volume; non-cubic allowed. Default (8, 8, 8).

    Shape:
        images ``[B, C, H, W, D]`` in [0, 1]; ``result.state`` = the factors applied to the coefficients (0 on the
        dropped band, 1 elsewhere), ``[B, C, N, b1, b2, b3]`` (2D: ``[B, C, D, N2, bh, bw]``). A custom
        ``init_state`` of that layout scales the coefficients by arbitrary factors instead.

    Example:
        >>> result = DFB(model, freq_band="high", block_size=(8, 8, 8))(images, labels)
    """

    name = "dfb"
    paper = ("Hanif et al., On Frequency Domain Adversarial Vulnerabilities of Volumetric Medical Image Segmentation, "
             "ISBI 2025")
    fixed_params: ClassVar[frozenset[str]] = frozenset({"steps", "targeted", "restarts", "early_stop"})
    ndim: ClassVar[int] = 3

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn | None = None,
        *,
        freq_band: str = "all",
        block_size: Sequence[int] | int = (8, 8, 8),
        **kwargs: Any,
    ) -> None:
        super().__init__(model, loss_fn, steps=0, **kwargs)
        self.freq_band = check_choice("freq_band", getattr(freq_band, "value", freq_band), [b.value for b in FreqBand])
        self.block_size = check_block_size("block_size", block_size, self.ndim)

    @property
    def random_init(self) -> bool:
        return False

    def prepare(self, images: torch.Tensor) -> SpectralContext:
        return spectral_context(images, self.block_size, self.freq_band, self.ndim)

    def init_variable(self, images: torch.Tensor, context: SpectralContext,
                      generator: torch.Generator) -> torch.Tensor:
        keep = (~context.mask).to(context.coefs.dtype)
        return keep.expand_as(context.coefs).clone()

    def render(self, images: torch.Tensor, factors: torch.Tensor, context: SpectralContext, t: int) -> torch.Tensor:
        return spectral_image(context.coefs * factors, context, self.ndim)

    def project(self, factors: torch.Tensor, images: torch.Tensor, context: SpectralContext) -> torch.Tensor:
        return factors


class DFB2D(DFB):
    """Drop one frequency band of the ``bh × bw`` blocks of every axial slice; see :class:`DFB`.

    ``block_size`` has two entries (default (8, 8)).
    """

    name = "dfb-2d"
    ndim = 2

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *,
                 block_size: Sequence[int] | int = (8, 8), **kwargs: Any) -> None:
        super().__init__(model, loss_fn, block_size=block_size, **kwargs)
