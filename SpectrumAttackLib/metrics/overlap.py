"""Voxel-overlap scores on hard label maps, batched and differentiable-free (used inside attack loops)."""

from __future__ import annotations

import torch

__all__ = ["dice_per_sample"]


def dice_per_sample(
    pred: torch.Tensor, labels: torch.Tensor, num_classes: int, include_background: bool = False
) -> torch.Tensor:
    """Mean Dice per sample over the classes present in the prediction or the labels.

    A class absent from both maps is skipped (it would be NaN); a sample where every counted class is
    absent from both gets Dice 1.

    Shape:
        pred, labels: ``[B, 1, H, W, D]`` (or ``[B, H, W, D]``) integer class maps; returns ``[B]`` float32.
    """
    pred = pred.reshape(pred.shape[0], -1)
    labels = labels.reshape(labels.shape[0], -1)
    first = 0 if include_background else 1
    scores = []
    for k in range(first, num_classes):
        p = pred == k
        g = labels == k
        inter = (p & g).sum(1).float()
        size = p.sum(1).float() + g.sum(1).float()
        scores.append(torch.where(size > 0, 2 * inter / size.clamp_min(1), torch.nan))
    if not scores:
        return torch.ones(pred.shape[0])
    stacked = torch.stack(scores, 1)
    return torch.nan_to_num(stacked.nanmean(1), nan=1.0)
