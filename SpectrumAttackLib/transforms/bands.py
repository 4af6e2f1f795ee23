"""Frequency-band masks of a DCT block (seed-algorithms §2.5), for any block size, 2D or 3D.

Cubic (3D) and square (2D) blocks of any edge ``s`` follow the reference's construction exactly
(``attacks/saa/utils.py::get_masks``, ``get_masks_2d``: flipped upper-triangular matrices), which on coefficient
indices ``(i, j, k)`` with ``r = s − 1 − ⌊s/2⌋`` (``= s/2 − 1`` for even ``s``, ``⌊s/2⌋`` for odd) reads:

* ``low``    = { i + j + k ≤ r and k < ⌊s/2⌋ } (the corner at DC, DC included; the condition on ``k`` comes from
  the reference filling only the first ⌊s/2⌋ depth planes, and removes one coefficient, ``(0, 0, ⌊s/2⌋)``, for odd
  ``s``);
* ``high``   = { (s−1−i) + (s−1−j) + (s−1−k) ≤ r } (the mirrored corner at the highest frequency);
* ``middle`` = everything else; ``all`` = every coefficient.

2D: ``low`` = { i + j ≤ r }, ``high`` = { (s−1−i) + (s−1−j) ≤ r }, no extra condition. Sizes (low/middle/high):
3D 8 → 20/472/20, 16 → 120/3856/120, 32 → 816/31136/816, 5 → 9/106/10, 7 → 19/304/20; 2D 32 → 136/752/136,
5 → 6/13/6.

Non-cubic blocks are not defined by the reference (it reads only ``block_size[0]``); for them each index is
normalised by its own axis length, ``Σ_a i_a / b_a ≤ 1/2 − 1/s̄`` with ``s̄`` the mean block edge (mirrored for
``high``): a scaled tetrahedron, our extension, which coincides with the rule above for even cubic edges.
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


def _cubic_corners(side: int, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's ``(low, high)`` for a cubic (square) block of edge ``side`` (module docstring)."""
    grids = torch.meshgrid(*[torch.arange(side)] * ndim, indexing="ij")
    radius = side - 1 - side // 2
    low = sum(grids) <= radius
    if ndim == 3:
        low &= grids[2] < side // 2
    high = sum(side - 1 - g for g in grids) <= radius
    return low, high


def _scaled_corners(block_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Our ``(low, high)`` for a non-cubic block: per-axis normalised index sums (module docstring)."""
    mean_edge = sum(block_size) / len(block_size)
    threshold = 0.5 - 1.0 / mean_edge + 1e-9  # tolerance for float rounding of exact integer cases
    return (_corner_distance(block_size, mirrored=False) <= threshold,
            _corner_distance(block_size, mirrored=True) <= threshold)


def band_mask(block_size: Sequence[int], band: str | FreqBand) -> torch.Tensor:
    """Boolean mask ``[b1, ..., bn]`` that is True on the coefficients of ``band`` (DC included in low/all)."""
    band = FreqBand(check_choice("freq_band", getattr(band, "value", band), [b.value for b in FreqBand]))
    if band is FreqBand.ALL:
        return torch.ones(tuple(block_size), dtype=torch.bool)
    if len(set(block_size)) == 1:
        low, high = _cubic_corners(block_size[0], len(block_size))
    else:
        low, high = _scaled_corners(block_size)
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
