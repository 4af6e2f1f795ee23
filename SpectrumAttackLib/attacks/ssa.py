"""SSA-2D: the spectrum simulation attack on every axial slice, an L∞ voxel attack with spectral augmentations.

Long, Zhang, Liu, Zhou, Liu, Wang, "Frequency Domain Model Augmentation for Adversarial Attack", ECCV 2022,
arXiv:2207.05382; the slice-wise 2D adaptation of the SA² repository, ``asif-hanif/saa``, ``attacks/vafa/ssa.py``
(seed-algorithms §6).

Each step draws ``num_spectrum_augs`` views of the current adversarial image ``x_adv``:
``x̃ = IDCT2(m ⊙ DCT2(255·(x_adv + n) − 128)) + 128, then / 255``, with Gaussian noise ``n ~ N(0, ε²)`` and a
spectral mask ``m ~ U[1 − ρ, 1 + ρ]`` on every coefficient (DC included) of the ``bh × bw`` blocks of every axial
slice. The gradient of the segmentation loss with respect to each view (the model's input), averaged over the
views, gives the sign step ``α = ε / steps``; the image is projected onto ``[x − ε, x + ε] ∩ [0, 1]``.

Departure from the reference, on purpose (seed-algorithms §13 item 15): the reference permutes its running image
``[B, C, H, W, D] → [B, C, D, H, W]`` inside the loop over views without permuting it back, so from the second view
on the slices are taken along scrambled axes and the sign step is added to a transposed image; here every view
is taken from the image in its own layout. Also: the draws come from the call's seeded generator (item 24);
block sizes that do not divide the slice are padded (the reference asserts divisibility).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch

from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.attacks.pgd import PGD
from SpectrumAttackLib.attacks.spectral import spectral_context, spectral_image
from SpectrumAttackLib.checks import check_block_size, check_int, check_range

__all__ = ["SSA2D"]

#: The reference transforms ``255·x − 128`` (JPEG-style centring); the spectral mask also scales this DC.
_SCALE, _OFFSET = 255.0, 128.0


class SSA2D(PGD):
    """SSA on the 2D DCT blocks of every axial slice.

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input: see :class:`Attack`.
        eps: L∞ budget on the seed's 0–255 scale (4 means 4/255 in [0, 1] intensity units), also the standard
            deviation of the Gaussian noise of every view (SSA's σ = ε); 0 ≤ eps ≤ 255. Default 4.
        rho: half-width of the spectral mask ``m ~ U[1 − rho, 1 + rho]``, ``0 ≤ rho < 1``. Default 0.2 (the seed's
            ``--rho`` default; the reference class default is 0.5).
        num_spectrum_augs: views per step, ≥ 1. Default 10.
        block_size: 2D DCT block ``(bh, bw)`` on every axial slice, each ≥ 2 and ≤ the slice; sizes that do not
            divide the slice are padded. Default (8, 8) (what the seed's CLI passes for ``-2d`` attacks). The SSA
            paper transforms the whole image: pass the slice size, e.g. (96, 96) (the reference class default).

    The step size is ``eps / steps`` in [0, 1] units (fixed, as in the reference). Each step costs
    ``num_spectrum_augs`` forward and backward passes, plus one forward pass without gradient that scores the
    un-augmented image for the history and the early stop (the reference also runs one, for its success rate).

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = SSA2D(model, eps=8, rho=0.5, num_spectrum_augs=10, steps=10)(images, labels)
    """

    name = "ssa-2d"
    paper = "Long et al., Frequency Domain Model Augmentation for Adversarial Attack, ECCV 2022"
    fixed_params: ClassVar[frozenset[str]] = frozenset({"alpha", "random_start", "loss"})
    #: slice-wise: 2D DCT blocks of every axial slice.
    ndim: ClassVar[int] = 2

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn | None = None,
        *,
        eps: float = 4.0,
        rho: float = 0.2,
        num_spectrum_augs: int = 10,
        block_size: Sequence[int] | int = (8, 8),
        **kwargs: Any,
    ) -> None:
        super().__init__(model, loss_fn, eps=eps, alpha=1.0, random_start=False, **kwargs)
        self.rho = check_range("rho", rho, 0.0, 1.0, high_inclusive=False)
        self.num_spectrum_augs = check_int("num_spectrum_augs", num_spectrum_augs, 1)
        self.block_size = check_block_size("block_size", block_size, self.ndim)
        self.alpha = self.radius / self.steps
        self._step_size = self.alpha

    @property
    def random_init(self) -> bool:
        """The start is the clean image, but every step's views are random draws, so restarts differ."""
        return True

    def views(self, adversarial: torch.Tensor, context: Any, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """``num_spectrum_augs`` spectrum augmentations of ``adversarial`` (``[B, C, H, W, D]``, unclamped).

        Per view, from ``generator`` in this order: the noise ``[B, C, H, W, D]`` (standard normal, times ε), then
        the mask in the block layout ``[B, C, D, N2, bh, bw]`` (uniform in [1 − ρ, 1 + ρ]).
        """
        for _ in range(self.num_spectrum_augs):
            noise = torch.randn(adversarial.shape, generator=generator, device=adversarial.device) * self.radius
            spectrum = spectral_context(adversarial + noise, self.block_size, "all", self.ndim, scale=_SCALE,
                                        offset=_OFFSET)
            mask = torch.rand(spectrum.coefs.shape, generator=generator, device=adversarial.device)
            mask = mask * (2 * self.rho) + (1 - self.rho)
            yield (spectral_image(spectrum.coefs * mask, spectrum, self.ndim) + _OFFSET) / _SCALE
