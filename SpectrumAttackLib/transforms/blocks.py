"""Split volumes into non-overlapping blocks and merge them back, vectorised with reshape/permute.

Block order is row-major over the block grid with the last axis fastest, which is exactly the order of the
reference's ``dense_patch_slices`` loop (seed-algorithms §2.2), so a block index means the same block here and
there. Sizes that are not a multiple of the block are padded at the far end by edge replication (so that the
padding adds no artificial edge to the spectrum) and cropped back exactly on merge.

3D layout: ``images [B, C, H, W, D] → blocks [B, C, N, b1, b2, b3]``, ``N = ⌈H/b1⌉·⌈W/b2⌉·⌈D/b3⌉``.
2D layout (every axial slice, D the axial axis): ``images [B, C, H, W, D] → blocks [B, C, D, N2, bh, bw]``,
``N2 = ⌈H/bh⌉·⌈W/bw⌉``; the reference's ``[B, C, D, N2, bh, bw]`` layout without its H/W swap (§13 item 11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["check_blocks_fit", "merge_blocks_2d", "merge_blocks_3d", "split_blocks_2d", "split_blocks_3d"]


def check_blocks_fit(spatial: Sequence[int], block_size: Sequence[int], name: str = "block_size") -> None:
    """Raise ``ValueError`` if any block edge exceeds the matching volume edge."""
    for n, b in zip(spatial, block_size, strict=True):
        if b > n:
            raise ValueError(
                f"{name} must not exceed the volume size {tuple(spatial)} on any axis, got {tuple(block_size)}."
            )


def _pad_to_multiple(x: torch.Tensor, block_size: Sequence[int]) -> torch.Tensor:
    """Replicate-pad the trailing ``len(block_size)`` axes of ``x`` up to multiples of the block size."""
    spatial = x.shape[-len(block_size) :]
    extra = [(-n) % b for n, b in zip(spatial, block_size, strict=True)]
    if not any(extra):
        return x
    pad: list[int] = []
    for e in reversed(extra):  # F.pad lists the last axis first
        pad += [0, e]
    lead = x.shape[: -len(block_size)]
    flat = x.reshape(-1, 1, *spatial)  # replicate padding needs [N, C, *spatial]
    return F.pad(flat, pad, mode="replicate").reshape(*lead, *[n + e for n, e in zip(spatial, extra, strict=True)])


def split_blocks_3d(images: torch.Tensor, block_size: Sequence[int]) -> torch.Tensor:
    """``[B, C, H, W, D] → [B, C, N, b1, b2, b3]`` (padding as described in the module docstring)."""
    b1, b2, b3 = block_size
    x = _pad_to_multiple(images, block_size)
    bsz, ch, h, w, d = x.shape
    x = x.reshape(bsz, ch, h // b1, b1, w // b2, b2, d // b3, b3).permute(0, 1, 2, 4, 6, 3, 5, 7)
    return x.reshape(bsz, ch, -1, b1, b2, b3)


def merge_blocks_3d(blocks: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`split_blocks_3d`: ``[B, C, N, b1, b2, b3] → [B, C, H, W, D]`` with ``spatial = (H, W, D)``."""
    bsz, ch, _, b1, b2, b3 = blocks.shape
    grid = [math.ceil(n / b) for n, b in zip(spatial, (b1, b2, b3), strict=True)]
    x = blocks.reshape(bsz, ch, *grid, b1, b2, b3).permute(0, 1, 2, 5, 3, 6, 4, 7)
    x = x.reshape(bsz, ch, grid[0] * b1, grid[1] * b2, grid[2] * b3)
    h, w, d = spatial
    return x[..., :h, :w, :d]


def split_blocks_2d(images: torch.Tensor, block_size: Sequence[int]) -> torch.Tensor:
    """``[B, C, H, W, D] → [B, C, D, N2, bh, bw]``: every axial slice cut into ``bh × bw`` blocks."""
    bh, bw = block_size
    x = images.permute(0, 1, 4, 2, 3)  # [B, C, D, H, W]
    x = _pad_to_multiple(x, block_size)
    bsz, ch, d, h, w = x.shape
    x = x.reshape(bsz, ch, d, h // bh, bh, w // bw, bw).permute(0, 1, 2, 3, 5, 4, 6)
    return x.reshape(bsz, ch, d, -1, bh, bw)


def merge_blocks_2d(blocks: torch.Tensor, spatial: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`split_blocks_2d`: ``[B, C, D, N2, bh, bw] → [B, C, H, W, D]``."""
    bsz, ch, d, _, bh, bw = blocks.shape
    h, w, _ = spatial
    gh, gw = math.ceil(h / bh), math.ceil(w / bw)
    x = blocks.reshape(bsz, ch, d, gh, gw, bh, bw).permute(0, 1, 2, 3, 5, 4, 6)
    x = x.reshape(bsz, ch, d, gh * bh, gw * bw)[..., :h, :w]
    return x.permute(0, 1, 3, 4, 2)
