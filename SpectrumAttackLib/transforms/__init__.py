"""Block DCT transforms: orthonormal DCT-II on non-overlapping 2D/3D blocks and frequency-band masks."""

from SpectrumAttackLib.transforms.bands import FreqBand, band_mask, perturbation_mask
from SpectrumAttackLib.transforms.blocks import (
    check_blocks_fit,
    merge_blocks_2d,
    merge_blocks_3d,
    split_blocks_2d,
    split_blocks_3d,
)
from SpectrumAttackLib.transforms.dct import dct_matrix, dct_nd, idct_nd

__all__ = [
    "FreqBand",
    "band_mask",
    "check_blocks_fit",
    "dct_matrix",
    "dct_nd",
    "idct_nd",
    "merge_blocks_2d",
    "merge_blocks_3d",
    "perturbation_mask",
    "split_blocks_2d",
    "split_blocks_3d",
]
