"""Shared block-DCT plumbing of the spectral attacks (SA², VAFA, DFB): clean coefficients once, image back.

The clean images are split into blocks and transformed once per call (seed-algorithms §13 item 20); each step only
multiplies or quantises the cached coefficients, takes the inverse DCT and merges the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from SpectrumAttackLib.transforms import (
    check_blocks_fit,
    dct_nd,
    idct_nd,
    merge_blocks_2d,
    merge_blocks_3d,
    perturbation_mask,
    split_blocks_2d,
    split_blocks_3d,
)

__all__ = ["SpectralContext", "spectral_context", "spectral_image"]


@dataclass(frozen=True)
class SpectralContext:
    """Per-call constants of a block-DCT attack.

    Attributes:
        coefs: DCT coefficients of the (scaled, shifted) clean blocks, 3D ``[B, C, N, b1, b2, b3]`` or
            2D ``[B, C, D, N2, bh, bw]``.
        mask: ``[b...]`` bool, True on the coefficients in the selected band except DC.
        spatial: ``(H, W, D)`` of the images (to crop the padding back).
    """

    coefs: torch.Tensor
    mask: torch.Tensor
    spatial: tuple[int, int, int]


def spectral_context(images: torch.Tensor, block_size: Sequence[int], freq_band: str, ndim: int,
                     scale: float = 1.0, offset: float = 0.0) -> SpectralContext:
    """Split ``scale·images − offset`` into blocks and take their DCT once.

    Args:
        images: ``[B, C, H, W, D]``.
        block_size: 3 entries (3D blocks) or 2 (blocks of every axial slice), each ≤ the matching volume edge.
        freq_band: band of :func:`~SpectrumAttackLib.transforms.perturbation_mask`.
        ndim: 3 or 2.
        scale, offset: intensity mapping before the DCT (VAFA works on ``255·x − 128``).

    Raises:
        ValueError: a block edge exceeds the volume.
    """
    spatial = tuple(images.shape[2:]) if ndim == 3 else tuple(images.shape[2:4])
    check_blocks_fit(spatial, block_size)
    split = split_blocks_3d if ndim == 3 else split_blocks_2d
    shifted = images * scale - offset if (scale != 1.0 or offset != 0.0) else images
    coefs = dct_nd(split(shifted, block_size), ndim)
    mask = perturbation_mask(block_size, freq_band).to(images.device)
    return SpectralContext(coefs, mask, tuple(images.shape[2:]))


def spectral_image(coefs: torch.Tensor, context: SpectralContext, ndim: int) -> torch.Tensor:
    """Inverse DCT and merge: coefficients in the layout of ``context.coefs`` → ``[B, C, H, W, D]`` (unscaled)."""
    merge = merge_blocks_3d if ndim == 3 else merge_blocks_2d
    return merge(idct_nd(coefs, ndim), context.spatial)
