"""Attack objectives: the reference's DiceCE segmentation loss and the SSIM perceptual terms; the class map.

All objectives here are *maximised* by the attacks (untargeted: push the segmentation loss up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss

from SpectrumAttackLib.transforms import split_blocks_2d, split_blocks_3d

__all__ = [
    "SSIM_WINDOW",
    "LossFn",
    "ReferenceSSIM",
    "class_map",
    "dice_ce_loss",
    "ssim3d",
    "ssim_blockwise",
    "voxel_cross_entropy",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Edge of the reference's SSIM window (Gaussian, σ 1.5); every axis an SSIM runs over needs at least this many voxels.
SSIM_WINDOW = 3
SSIM_SIGMA = 1.5
#: pytorch-msssim's constants K1, K2 (data range 1).
SSIM_K = (0.01, 0.03)


def dice_ce_loss(smooth_nr: float = 0.0, smooth_dr: float = 1e-6) -> DiceCELoss:
    """The reference's segmentation loss (seed-algorithms §1): Dice (squared) + voxel-mean CE, background included.

    ``loss(logits [B, K, H, W, D], labels [B, 1, H, W, D]) → scalar``.
    """
    return DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr)


def voxel_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every voxel, unreduced (the per-voxel term SegPGD and CosPGD weight).

    Shape:
        logits: ``[B, K, H, W, D]``; labels: ``[B, 1, H, W, D]`` int64; returns ``[B, H, W, D]``.
    """
    return F.cross_entropy(logits, labels[:, 0], reduction="none")


def class_map(logits: torch.Tensor) -> torch.Tensor:
    """The predicted classes, ``argmax`` over the class axis (the first of equal maxima), without gradient.

    On CPU computed with vectorised reductions only: the class maximum, the classes that reach it, each weighted by
    ``K − k`` so that the lowest such class weighs most, and the largest weight; ``argmax`` and ``max().indices``
    over a non-innermost axis do not vectorise there and cost about 3× more (14 classes, 96³), in few operations
    (which matters on a busy machine, where every parallel operation waits for its threads). A voxel with a NaN
    logit gets class ``K − 1``.

    Shape:
        logits: ``[B, K, ...]``; returns ``[B, 1, ...]`` int64 on the same device.
    """
    logits = logits.detach()
    if logits.device.type != "cpu":
        return logits.max(1, keepdim=True).indices
    k = logits.shape[1]
    weights = torch.arange(k, 0, -1, dtype=torch.uint8 if k <= 255 else torch.int32)
    hits = torch.eq(logits, logits.amax(1, keepdim=True))
    heaviest = torch.mul(hits, weights.view(1, k, *[1] * (logits.dim() - 2))).amax(1, keepdim=True)
    return torch.sub(k, heaviest).clamp_max_(k - 1).long()


def _gaussian_weights() -> tuple[float, float]:
    """Edge and centre taps of pytorch-msssim's 3-tap Gaussian window (σ 1.5), computed as it does, in float32."""
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float) - SSIM_WINDOW // 2
    window = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    window = window / window.sum()
    return float(window[0]), float(window[1])


_EDGE, _CENTRE = _gaussian_weights()


def _blur(x: torch.Tensor, start: int = 2) -> torch.Tensor:
    """pytorch-msssim's separable "valid" Gaussian blur over every axis from ``start`` on, as shifted sums.

    Equal to its ``gaussian_filter`` up to float rounding, and several times faster on CPU (its grouped
    ``conv3d`` is especially slow for batches). Axes shorter than the window are not blurred, as there. Each axis
    costs two passes (``left + (centre/edge)·centre``, then ``+ right``) and the edge tap is applied once at the
    end. ``start`` is 3 for maps stacked as ``[3, N, C, ...]``, which :class:`_SSIMAgainstClean` blurs together.
    """
    scale = 1.0
    for axis in range(start, x.dim()):
        n = x.shape[axis]
        if n < SSIM_WINDOW:
            continue
        right = x.narrow(axis, 2, n - 2)
        x = torch.add(x.narrow(axis, 0, n - 2), x.narrow(axis, 1, n - 2), alpha=_CENTRE / _EDGE).add_(right)
        scale *= _EDGE
    return x.mul_(scale) if scale != 1.0 else x


def _ssim_per_channel(mu1: torch.Tensor, mu1_sq: torch.Tensor, sigma1_sq: torch.Tensor, x: torch.Tensor,
                      y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM map per ``[N, C]`` (pytorch-msssim's ``_ssim`` with the clean statistics given)."""
    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    mu2 = _blur(y)
    mu2_sq = mu2.pow(2)
    mu1_mu2 = mu1 * mu2
    sigma2_sq = _blur(y * y) - mu2_sq
    sigma12 = _blur(x * y) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return torch.flatten(ssim_map, 2).mean(-1)


def _clean_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mu1 = _blur(x)
    mu1_sq = mu1.pow(2)
    return mu1, mu1_sq, _blur(x * x) - mu1_sq


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over samples and channels of the non-negative SSIM (pytorch-msssim's ``ssim`` with our settings)."""
    return torch.relu(_ssim_per_channel(*_clean_statistics(x), x, y)).mean()


def ssim3d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean 3D SSIM as pytorch-msssim computes it (Gaussian window of 3 taps, σ 1.5, data range 1, K = (0.01,
    0.03), non-negative per channel, averaged over samples and channels), a differentiable scalar.

    The window is the same along every axis, so the result does not depend on the axis order; the reference's
    permute to ``[B, C, D, H, W]`` is therefore not needed. 4-D inputs ``[N, C, H, W]`` give the 2D SSIM.

    Shape:
        x, y: ``[B, C, H, W, D]`` (3D) or ``[N, C, H, W]`` (2D), same shape.
    """
    return _ssim(x, y)


def ssim_blockwise(x: torch.Tensor, y: torch.Tensor, block_size: Sequence[int]) -> torch.Tensor:
    """Mean over blocks of the SSIM computed inside each block, a scalar (VAFA's ``(1/n) Σ_i SSIM(x_i, x'_i)``).

    Three-entry ``block_size``: a 3D SSIM per 3D block (the reference's VAFA term, seed-algorithms §5.1 step 7).
    Two entries: a 2D SSIM per ``bh × bw`` block of every axial slice (used by VAFA-2D). Same window as
    :func:`ssim3d`; every block edge must be ≥ :data:`SSIM_WINDOW`. Non-multiples are edge-padded as in
    :func:`~SpectrumAttackLib.transforms.split_blocks_3d`.

    Shape:
        x, y: ``[B, C, H, W, D]`` in [0, 1], same shape.
    """
    split = split_blocks_3d if len(block_size) == 3 else split_blocks_2d
    bx = split(x, block_size).reshape(-1, 1, *block_size)
    by = split(y, block_size).reshape(-1, 1, *block_size)
    return _ssim(bx, by)


def _blur_transposed(grad: torch.Tensor, shape: Sequence[int], start: int = 2) -> torch.Tensor:
    """Adjoint of :func:`_blur` back to ``shape``: the "full" correlation with the same symmetric window, i.e. the
    valid blur of ``grad`` zero-padded by two voxels on both sides of every blurred axis (written into a zeroed
    tensor: ``F.pad`` of a 6-D tensor takes a slow path on CPU)."""
    blurred = [shape[axis] >= SSIM_WINDOW for axis in range(grad.dim())]
    padded = grad.new_zeros([n + 4 if blurred[axis] and axis >= start else n for axis, n in enumerate(grad.shape)])
    interior = tuple(slice(2, -2) if blurred[axis] and axis >= start else slice(None) for axis in range(grad.dim()))
    padded[interior].copy_(grad)
    return _blur(padded, start)


class _SSIMAgainstClean(torch.autograd.Function):
    """Mean non-negative SSIM of ``y`` against constant clean images, with a hand-written gradient for ``y``.

    With ``S = A1·A2 / (B1·B2)``, ``A1 = 2μxμy + C1``, ``A2 = 2σxy + C2``, ``B1 = μx² + μy² + C1``,
    ``B2 = σx² + σy² + C2``, ``σy² = blur(y²) − μy²`` and ``σxy = blur(xy) − μxμy``, the gradient is
    ``blurᵀ(∂S/∂μy) + 2y·blurᵀ(∂S/∂blur(y²)) + x·blurᵀ(∂S/∂blur(xy))``. The three blurs of the forward pass (y, y²,
    xy) run as one blur of the three maps stacked, and so do the three adjoint blurs of the backward pass; the
    maps are assembled in place (about 40 % fewer passes over the volume than separate blurs and autograd's).

    ``forward(y, x, two_mu1, k1, k2)`` takes the clean statistics ``2μx``, ``μx² + C1`` and ``σx² + C2``.
    """

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, x: torch.Tensor, two_mu1: torch.Tensor, k1: torch.Tensor,
                k2: torch.Tensor) -> torch.Tensor:
        c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
        stacked = y.new_empty((3, *y.shape))
        stacked[0].copy_(y)
        torch.mul(y, y, out=stacked[1])
        torch.mul(x, y, out=stacked[2])
        mu2, b2, a2 = _blur(stacked, start=3).unbind(0)  # blur(y), blur(y²), blur(xy), turned into B2 and A2
        a1 = torch.addcmul(two_mu1.new_tensor(c1), two_mu1, mu2)  # 2μxμy + C1
        a2.add_(a1, alpha=-0.5).mul_(2).add_(c1 + c2)  # 2(blur(xy) − μxμy) + C2
        b2.addcmul_(mu2, mu2, value=-1).add_(k2)  # blur(y²) − μy² + σx² + C2
        b1 = torch.addcmul(k1, mu2, mu2)  # μy² + μx² + C1
        denominator = b1 * b2
        ssim_map = torch.mul(a1, a2).div_(denominator)
        per_channel = torch.flatten(ssim_map, 2).mean(-1)
        ctx.save_for_backward(y, x, two_mu1, mu2, a1, a2, b1, b2, denominator, ssim_map, per_channel)
        return torch.relu(per_channel).mean()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        y, x, two_mu1, mu2, a1, a2, b1, b2, denominator, ssim_map, per_channel = ctx.saved_tensors
        weight = grad * (per_channel > 0).to(y.dtype) / (per_channel.numel() * ssim_map[0, 0].numel())
        weight = weight.view(*weight.shape, *[1] * (y.dim() - 2))
        scaled = weight / denominator
        partial = y.new_empty((3, *ssim_map.shape))
        d_mu, d_yy, d_xy = partial.unbind(0)  # ∂S/∂μy, ∂S/∂blur(y²), ∂S/∂blur(xy)
        torch.mul(a1, scaled, out=d_xy).mul_(2)
        torch.div(ssim_map, b2, out=d_yy).mul_(-weight)
        # ∂S/∂μy = 2μx·(A2 − A1)·w/(B1B2) − 2μy·(w·S/B1 + ∂S/∂blur(y²))
        torch.sub(a2, a1, out=d_mu).mul_(scaled).mul_(two_mu1)
        d_mu.add_(torch.div(ssim_map, b1).mul_(weight).add_(d_yy).mul_(mu2), alpha=-2)
        back = _blur_transposed(partial, (3, *y.shape), start=3)
        return torch.addcmul(back[0], y, back[1], value=2).addcmul_(x, back[2]), None, None, None, None


class ReferenceSSIM:
    """:func:`ssim3d` against fixed clean images, for repeated use inside an attack loop.

    The clean images' local means and variances are computed once, the gradient is hand-written, and the last
    result is kept, so that an SSIM penalty and the step's history share one computation. Differentiable with
    respect to the adversarial images (the clean ones are constants).

    Args:
        images: clean ``[B, C, H, W, D]`` in [0, 1].
    """

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.detach()
        with torch.no_grad():
            mu1, mu1_sq, sigma1_sq = _clean_statistics(self.images)
            self._statistics = (2 * mu1, mu1_sq + SSIM_K[0] ** 2, sigma1_sq + SSIM_K[1] ** 2)
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, adversarial: torch.Tensor) -> torch.Tensor:
        """Mean 3D SSIM (scalar) of ``adversarial`` against the clean images; reused if called again on it."""
        if self._last is not None and self._last[0] is adversarial:
            return self._last[1]
        value = _SSIMAgainstClean.apply(adversarial, self.images, *self._statistics)
        self._last = (adversarial, value)
        return value
