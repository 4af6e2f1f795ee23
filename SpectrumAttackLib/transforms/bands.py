"""Frequency-band masks of a DCT block (seed-algorithms §2.5), for any block size, 2D or 3D.

For a cubic block of side ``s`` the reference defines, on coefficient indices ``(i, j, k)``:

* ``low``    = { i + j + k ≤ s/2 − 1 } (the corner at DC, DC included);
* ``high``   = { i + j + k ≥ 3(s − 1) − (s/2 − 1) } (the mirrored corner);
* ``middle`` = everything else; ``all`` = every coefficient.

(2D: the same with two indices and ``2(s − 1)``.) The reference reads only ``block_size[0]``. Here each index is
normalised by its own axis length, ``Σ_a i_a / b_a ≤ 1/2 − 1/s̄`` with ``s̄`` the mean block edge, which is the
reference rule exactly for cubic blocks and a scaled tetrahedron for non-cubic ones. Sizes for cubic blocks:
8 → 20/472/20, 16 → 120/3856/120, 32 → 816/31136/816 (low/middle/high).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import torch

from SpectrumAttackLib.checks import check_choice

__all__ = ["FreqBand", "band_mask", "perturbation_mask"]


class FreqBand(str, Enum):
    """Frequency band of a DCT block; values are the seed's ``--freq_band`` strings."""

    ALL = "all"
    LOW = "low"
    MIDDLE = "middle"
    HIGH = "high"


def _corner_distance(block_size: Sequence[int], mirrored: bool) -> torch.Tensor:
    """``Σ_a i_a / b_a`` (or ``Σ_a (b_a − 1 − i_a) / b_a`` when mirrored) on the block grid, float64."""
    grids = torch.meshgrid(*[torch.arange(b, dtype=torch.float64) for b in block_size], indexing="ij")
    total = torch.zeros(tuple(block_size), dtype=torch.float64)
    for g, b in zip(grids, block_size, strict=True):
        total += ((b - 1 - g) if mirrored else g) / b
    return total


def band_mask(block_size: Sequence[int], band: str | FreqBand) -> torch.Tensor:
    """Boolean mask ``[b1, ..., bn]`` that is True on the coefficients of ``band`` (DC included in low/all)."""
    band = FreqBand(check_choice("freq_band", getattr(band, "value", band), [b.value for b in FreqBand]))
    if band is FreqBand.ALL:
        return torch.ones(tuple(block_size), dtype=torch.bool)
    mean_edge = sum(block_size) / len(block_size)
    threshold = 0.5 - 1.0 / mean_edge + 1e-9  # tolerance for float rounding of exact integer cases
    low = _corner_distance(block_size, mirrored=False) <= threshold
    high = _corner_distance(block_size, mirrored=True) <= threshold
    if band is FreqBand.LOW:
        return low
    if band is FreqBand.HIGH:
        return high
    return ~(low | high)


def perturbation_mask(block_size: Sequence[int], band: str | FreqBand) -> torch.Tensor:
    """Mask of the coefficients an attack may change: ``band`` without the DC coefficient."""
    mask = band_mask(block_size, band).clone()
    mask[(0,) * len(block_size)] = False
    return mask
