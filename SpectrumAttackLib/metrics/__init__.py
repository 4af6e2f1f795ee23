"""Segmentation and image-similarity metrics (MONAI underneath)."""

from SpectrumAttackLib.metrics.overlap import dice_per_sample

__all__ = ["dice_per_sample"]
