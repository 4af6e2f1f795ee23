"""Block split/merge: exact round trip with padding, and the reference's ``dense_patch_slices`` block order."""

from __future__ import annotations

import pytest
import torch
from monai.data.utils import dense_patch_slices

from SpectrumAttackLib.transforms import (
    check_blocks_fit,
    merge_blocks_2d,
    merge_blocks_3d,
    split_blocks_2d,
    split_blocks_3d,
)


def _volume(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))


@pytest.mark.parametrize(
    ("spatial", "block"),
    [((16, 16, 16), (8, 8, 8)), ((24, 16, 32), (8, 16, 4)), ((20, 13, 9), (8, 8, 4)), ((5, 6, 7), (5, 6, 7))],
)
def test_3d_round_trip_with_padding(spatial, block):
    x = _volume(2, 3, *spatial)
    blocks = split_blocks_3d(x, block)
    grid = [-(-n // b) for n, b in zip(spatial, block, strict=True)]
    assert blocks.shape == (2, 3, grid[0] * grid[1] * grid[2], *block)
    assert torch.equal(merge_blocks_3d(blocks, spatial), x)


@pytest.mark.parametrize(("spatial", "block"), [((16, 16, 5), (8, 8)), ((20, 12, 3), (8, 4)), ((9, 7, 2), (4, 4))])
def test_2d_round_trip_with_padding(spatial, block):
    x = _volume(1, 2, *spatial)
    blocks = split_blocks_2d(x, block)
    grid = [-(-n // b) for n, b in zip(spatial[:2], block, strict=True)]
    assert blocks.shape == (1, 2, spatial[2], grid[0] * grid[1], *block)
    assert torch.equal(merge_blocks_2d(blocks, spatial), x)


def test_padding_replicates_the_edge():
    x = _volume(1, 1, 10, 8, 8)
    blocks = split_blocks_3d(x, (8, 8, 8))
    second = blocks[0, 0, 1]  # block covering rows 8..15, of which 10..15 are padding
    assert torch.equal(second[2:], x[0, 0, 9:10].expand(6, 8, 8))


@pytest.mark.parametrize(("spatial", "block"), [((16, 24, 32), (8, 8, 8)), ((32, 16, 16), (16, 8, 4))])
def test_3d_block_order_matches_dense_patch_slices(spatial, block):
    x = _volume(1, 1, *spatial)
    blocks = split_blocks_3d(x, block)
    slices = dense_patch_slices(spatial, block, block)
    assert len(slices) == blocks.shape[2]
    for n, s in enumerate(slices):
        assert torch.equal(blocks[0, 0, n], x[0, 0][s])


def test_2d_block_order_matches_dense_patch_slices_per_slice():
    x = _volume(1, 1, 16, 24, 3)
    blocks = split_blocks_2d(x, (8, 8))
    slices = dense_patch_slices((16, 24), (8, 8), (8, 8))
    for d in range(3):
        for n, s in enumerate(slices):
            assert torch.equal(blocks[0, 0, d, n], x[0, 0, :, :, d][s])


def test_non_square_slices_are_not_transposed():
    x = _volume(1, 1, 8, 16, 1)  # H ≠ W: the reference's 2D merge swapped them (seed §13 item 11)
    assert torch.equal(merge_blocks_2d(split_blocks_2d(x, (8, 8)), (8, 16, 1)), x)


def test_check_blocks_fit():
    check_blocks_fit((16, 16, 16), (16, 8, 2))
    with pytest.raises(ValueError, match="block_size"):
        check_blocks_fit((16, 16, 8), (8, 8, 16))
