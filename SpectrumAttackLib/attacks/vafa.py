"""VAFA: Volumetric Adversarial Frequency Attack, a learned JPEG-like quantisation of block DCT coefficients.

Hanif, Naseer, Khan, Shah, Khan, "Frequency Domain Adversarial Training for Robust Volumetric Medical
Segmentation", MICCAI 2023, arXiv:2307.07269. Reference code: ``asif-hanif/vafa``, ``attacks/vafa/vafa.py``
(seed-algorithms §5).

Each block's coefficients ``C`` (of ``255·x − 128``) are divided by a learned table ``q``, rounded with the
differentiable φ_α of Gong et al. (ICCV 2019) and multiplied back: ``C′ = φ_α(C / q) ⊙ q`` (DC included). ``q``
follows sign-gradient ascent with step 1 on ``DiceCE − λ_ssim·(1 − SSIM_blockwise)`` and is clamped to
``[q_min, q_max]``; α anneals as ``α_t = 0.1 − t·0.1/T`` (t = 0 … T − 1), computed from ``t`` at every step.

The returned image is built from ``q`` after all ``steps`` updates (rendered with the last step's α); the
reference returns the image of its last forward pass, ``q`` after ``steps − 1`` updates (the image our history
scores last), and since α's schedule depends on ``steps``, no step count of the reference reproduces ours.

``variant="code"`` reproduces the reference: q starts at ``q_max``, ``q_min`` defaults to 5, and every axial slice
of the result is min–max renormalised to [0, 1]. ``variant="paper"`` follows the paper: q starts at 1,
``q_min`` defaults to 1, no renormalisation.

Departures from the reference, on purpose (seed-algorithms §13): α is never stored on the object, so it cannot end
negative and poison a reused attack (item 10); ``steps`` and ``q_min`` are honoured (item 8); a constant slice is
left unrenormalised instead of dividing by zero (item 9); VAFA-2D honours ``use_ssim_loss`` with a 2D SSIM per
block (the reference ignores the flag); the SSIM term has a weight ``lambda_ssim`` (fixed at 1 in the reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import SSIM_WINDOW, LossFn, ReferenceSSIM, ssim_blockwise
from SpectrumAttackLib.attacks.spectral import SpectralContext, spectral_context, spectral_image
from SpectrumAttackLib.checks import check_block_size, check_choice, check_range

__all__ = ["VAFA", "VAFA2D", "renormalise_slices", "soft_round"]

#: Annealing of the rounding softness: α_t = ALPHA_START·(1 − t/T).
ALPHA_START = 0.1
#: Slices whose range (0–255 scale) is at most this are treated as constant and not renormalised.
CONSTANT_RANGE = 1e-3


def soft_round(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """Differentiable rounding φ_α(u) = ⌊u⌋ + ½·(1 + s·tanh(k·(u − ⌊u⌋ − ½))), k = ln(2/α − 1), s = 1/(1 − α).

    Continuous at integers; tends to round-to-nearest as α → 0. ``0 < alpha < 1``.
    """
    k = math.log(2.0 / alpha - 1.0)
    s = 1.0 / (1.0 - alpha)
    floor = torch.floor(u).detach()
    return floor + 0.5 * (1.0 + s * torch.tanh(k * (u - floor - 0.5)))


def renormalise_slices(volume: torch.Tensor) -> torch.Tensor:
    """Min–max renormalise every axial slice ``[..., :, :, d]`` of ``volume`` (0–255 scale) to [0, 1].

    A (near-)constant slice, range ≤ :data:`CONSTANT_RANGE`, is returned as ``volume / 255`` instead.

    Shape:
        volume: ``[B, C, H, W, D]``; returns the same shape.
    """
    low = volume.amin(dim=(2, 3), keepdim=True)
    span = volume.amax(dim=(2, 3), keepdim=True) - low
    constant = span <= CONSTANT_RANGE
    return torch.where(constant, volume / 255.0, (volume - low) / span.clamp_min(CONSTANT_RANGE))


class VAFA(Attack):
    """VAFA on 3D blocks.

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input: see :class:`Attack`.
        q_max: upper bound of the quantisation table (0–255 intensity scale), ≥ q_min. Default 20 (the seed's
            CLI default; the paper uses 20 on Synapse, 10 on ACDC).
        q_min: lower bound of the table, > 0. Default None: 5 for ``variant="code"`` (hard-coded in the
            reference), 1 for ``variant="paper"``.
        block_size: DCT block ``(b1, b2, b3)``, each ≥ 2 (≥ 3 with the SSIM term) and ≤ the volume. Default
            (8, 8, 8).
        use_ssim_loss: subtract ``lambda_ssim·(1 − mean block-wise SSIM)``. Default False.
        lambda_ssim: weight of the SSIM term, ≥ 0. Default 1 (the reference's fixed weight).
        variant: ``"code"`` (reference behaviour) or ``"paper"``; see the module docstring. Default "code".

    Shape:
        images ``[B, C, H, W, D]`` in [0, 1]; ``result.state`` = the table q, ``[B, C, N, b1, b2, b3]`` (blocks in
        row-major (H, W, D) order, D fastest; 2D: ``[B, C, D, N2, bh, bw]``).

    Example:
        >>> result = VAFA(model, q_max=20, steps=20, block_size=(32, 32, 32), use_ssim_loss=True)(images, labels)
    """

    name = "vafa-3d"
    paper = ("Hanif et al., Frequency Domain Adversarial Training for Robust Volumetric Medical Segmentation, "
             "MICCAI 2023")
    ndim: ClassVar[int] = 3

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn | None = None,
        *,
        q_max: float = 20.0,
        q_min: float | None = None,
        block_size: Sequence[int] | int = (8, 8, 8),
        use_ssim_loss: bool = False,
        lambda_ssim: float = 1.0,
        variant: str = "code",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, loss_fn, **kwargs)
        self.variant = check_choice("variant", variant, ("code", "paper"))
        if q_min is None:
            q_min = 5.0 if self.variant == "code" else 1.0
        self.q_min = check_range("q_min", q_min, 0.0, low_inclusive=False)
        self.q_max = check_range("q_max", q_max, self.q_min, hint=f"at least q_min = {self.q_min:g}")
        self.block_size = check_block_size("block_size", block_size, self.ndim)
        self.use_ssim_loss = bool(use_ssim_loss)
        if self.use_ssim_loss and min(self.block_size) < SSIM_WINDOW:
            raise ValueError(f"block_size must have every entry >= {SSIM_WINDOW} (the SSIM window) when "
                             f"use_ssim_loss=True, got {self.block_size!r}.")
        self.lambda_ssim = check_range("lambda_ssim", lambda_ssim, 0.0)
        self._step_size = 1.0
        self._ssim_weight = self.lambda_ssim if self.use_ssim_loss else 0.0

    @property
    def random_init(self) -> bool:
        return False

    def alpha_at(self, t: int) -> float:
        """Rounding softness at step ``t`` (0-based): ``0.1 − t·0.1/steps``, in (0, 0.1]."""
        return ALPHA_START * (1.0 - min(t, self.steps - 1) / self.steps)

    def prepare(self, images: torch.Tensor) -> SpectralContext:
        return spectral_context(images, self.block_size, "all", self.ndim, scale=255.0, offset=128.0)

    def init_variable(self, images: torch.Tensor, context: SpectralContext,
                      generator: torch.Generator) -> torch.Tensor:
        return torch.full_like(context.coefs, self.q_max if self.variant == "code" else 1.0)

    def render(self, images: torch.Tensor, q: torch.Tensor, context: SpectralContext, t: int) -> torch.Tensor:
        quantised = soft_round(context.coefs / q, self.alpha_at(t)) * q
        volume = spectral_image(quantised, context, self.ndim) + 128.0
        return renormalise_slices(volume) if self.variant == "code" else volume / 255.0

    def project(self, q: torch.Tensor, images: torch.Tensor, context: SpectralContext) -> torch.Tensor:
        return q.clamp(self.q_min, self.q_max)

    def perceptual_penalty(self, similarity: ReferenceSSIM, adversarial: torch.Tensor,
                           context: SpectralContext) -> torch.Tensor:
        """``1 −`` the mean SSIM inside each DCT block (3D blocks, or 2D blocks of each slice for VAFA-2D)."""
        return 1 - ssim_blockwise(similarity.images, adversarial, self.block_size)


class VAFA2D(VAFA):
    """VAFA on the ``bh × bw`` blocks of every axial slice (2D DCT); see :class:`VAFA` for the arguments.

    ``block_size`` has two entries (default (8, 8)). With ``use_ssim_loss`` the penalty is a 2D SSIM per block
    (the reference VAFA-2D has no SSIM term). ``steps`` is honoured (the reference always ran 10).
    """

    name = "vafa-2d"
    ndim = 2

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *,
                 block_size: Sequence[int] | int = (8, 8), **kwargs: Any) -> None:
        super().__init__(model, loss_fn, block_size=block_size, **kwargs)
