"""Voxel-overlap scores on hard label maps, batched and without gradients (used inside attack loops)."""

from __future__ import annotations

import torch

__all__ = ["confusion_per_sample", "dice_per_sample"]


def _out_of_range_to_last_bin(values: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Map values outside ``[0, K)`` to ``K``; one min/max pass when (as in attack loops) none is outside."""
    if values.numel() == 0:
        return values
    low, high = torch.aminmax(values)
    if int(low) >= 0 and int(high) < num_classes:
        return values
    return torch.where((values >= 0) & (values < num_classes), values, num_classes)


def confusion_per_sample(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-sample confusion counts ``[B, K + 1, K + 1]`` (rows: prediction, columns: labels), one pass.

    Index ``K`` collects every value outside ``[0, K)`` on either side, so such voxels count for no class.

    Shape:
        pred, labels: ``[B, 1, H, W, D]`` (or ``[B, H, W, D]``) integer class maps.
    """
    batch = pred.shape[0]
    k1 = num_classes + 1
    p = pred.reshape(batch, -1).long()
    g = labels.reshape(batch, -1).long()
    p, g = _out_of_range_to_last_bin(p, num_classes), _out_of_range_to_last_bin(g, num_classes)
    offset = torch.arange(batch, device=p.device).unsqueeze(1) * (k1 * k1)
    counts = torch.bincount((offset + p * k1 + g).reshape(-1), minlength=batch * k1 * k1)
    return counts.reshape(batch, k1, k1)


def dice_per_sample(
    pred: torch.Tensor, labels: torch.Tensor, num_classes: int, include_background: bool = False,
    ignore_empty: bool = False,
) -> torch.Tensor:
    """Mean Dice per sample over the classes present in the prediction or the labels.

    A class absent from both maps is skipped (it would be NaN), so a class predicted but absent from the labels
    scores 0; with ``ignore_empty`` every class absent from the labels is skipped instead (MONAI's
    ``ignore_empty=True``, the reference's rule: a falsely predicted class costs nothing). A sample where every
    counted class is skipped gets Dice 1. Values outside ``[0, num_classes)`` count for no class.

    Shape:
        pred, labels: ``[B, 1, H, W, D]`` (or ``[B, H, W, D]``) integer class maps; returns ``[B]`` float32 on
        their device.
    """
    confusion = confusion_per_sample(pred, labels, num_classes)
    first = 0 if include_background else 1
    inter = confusion.diagonal(dim1=1, dim2=2)[:, first:num_classes].float()
    size = (confusion.sum(2) + confusion.sum(1))[:, first:num_classes].float()
    if size.shape[1] == 0:
        return torch.ones(pred.shape[0], device=pred.device)
    counted = confusion.sum(1)[:, first:num_classes] > 0 if ignore_empty else size > 0
    scores = torch.where(counted, 2 * inter / size.clamp_min(1), torch.nan)
    return torch.nan_to_num(scores.nanmean(1), nan=1.0)
