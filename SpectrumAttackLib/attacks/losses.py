"""Attack objectives: the reference's DiceCE segmentation loss and the 3D-SSIM perceptual term.

All objectives here are *maximised* by the attacks (untargeted: push the segmentation loss up).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.losses import DiceCELoss
from pytorch_msssim import ssim

__all__ = ["LossFn", "dice_ce_loss", "ssim3d"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dice_ce_loss(smooth_nr: float = 0.0, smooth_dr: float = 1e-6) -> DiceCELoss:
    """The reference's segmentation loss (seed-algorithms §1): Dice (squared) + voxel-mean CE, background included.

    ``loss(logits [B, K, H, W, D], labels [B, 1, H, W, D]) → scalar``.
    """
    return DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr)


def ssim3d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean 3D SSIM (pytorch-msssim, Gaussian window of 3 taps, σ 1.5, data range 1, non-negative), a scalar.

    The window is the same along every axis, so the result does not depend on the axis order; the reference's
    permute to ``[B, C, D, H, W]`` is therefore not needed. 4-D inputs ``[N, C, H, W]`` give the 2D SSIM.

    Shape:
        x, y: ``[B, C, H, W, D]`` (3D) or ``[N, C, H, W]`` (2D), same shape.
    """
    return ssim(x, y, data_range=1.0, win_size=3, nonnegative_ssim=True, size_average=True)
