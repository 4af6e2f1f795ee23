"""Frequency-band masks: the reference's construction for every cubic size, partition, DC, non-cubic blocks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from SpectrumAttackLib.transforms import FreqBand, band_mask, perturbation_mask


def _reference_construction(s: int, ndim: int) -> dict[str, torch.Tensor]:
    """The reference's masks for a cubic/square block of edge s, built its way (seed-algorithms §2.5,
    ``get_masks`` / ``get_masks_2d``): planes of flipped upper-triangular matrices, middle = not exactly one."""
    half = s // 2
    plane = np.ones((s, s))
    if ndim == 2:
        low = np.flip(np.triu(plane, half), axis=1)
        high = np.fliplr(np.rot90(low))
    else:
        low, high = np.zeros((s, s, s)), np.zeros((s, s, s))
        for shift, depth in enumerate(range(half)):
            low[:, :, depth] = np.flip(np.triu(plane, half + shift), axis=1)
        for shift, depth in enumerate(range(s - 1, half - 1, -1)):
            high[:, :, depth] = np.flip(np.triu(plane, half + shift), axis=0)
    middle = (low + high) != 1
    return {"low": torch.from_numpy(low == 1), "middle": torch.from_numpy(middle), "high": torch.from_numpy(high == 1)}


@pytest.mark.parametrize(
    ("block", "sizes"),
    [
        ((8, 8, 8), (20, 472, 20)),
        ((16, 16, 16), (120, 3856, 120)),
        ((32, 32, 32), (816, 31136, 816)),
        ((32, 32), (136, 752, 136)),
        ((5, 5, 5), (9, 106, 10)),  # odd edges: the reference's low lacks (0, 0, 2)
        ((5, 5), (6, 13, 6)),
    ],
)
def test_band_sizes_equal_the_reference(block, sizes):
    counts = tuple(int(band_mask(block, band).sum()) for band in ("low", "middle", "high"))
    assert counts == sizes


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("side", [2, 3, 4, 5, 6, 7, 8, 9, 11, 16])
def test_cubic_masks_equal_the_reference_construction(side, ndim):
    reference = _reference_construction(side, ndim)
    for band in ("low", "middle", "high"):
        assert torch.equal(band_mask((side,) * ndim, band), reference[band]), band


@pytest.mark.parametrize("block", [(8, 16, 4), (4, 8, 8), (16, 8), (2, 2, 2), (3, 5, 7)])
def test_non_cubic_masks_partition_the_block(block):
    low, middle, high = (band_mask(block, b) for b in ("low", "middle", "high"))
    assert torch.equal(low.int() + middle.int() + high.int(), torch.ones(block, dtype=torch.int))
    assert low[(0,) * len(block)] and high[tuple(b - 1 for b in block)]
    assert int(low.sum()) == int(high.sum())  # mirrored corners
    assert torch.equal(band_mask(block, "all"), torch.ones(block, dtype=torch.bool))
    # low is a down-set: lowering any index of a low coefficient stays low
    for idx in itertools.product(*[range(b) for b in block]):
        if low[idx]:
            for a in range(len(block)):
                if idx[a] > 0:
                    lower = list(idx)
                    lower[a] -= 1
                    assert low[tuple(lower)]


def test_perturbation_mask_excludes_dc_only():
    for band in FreqBand:
        full = band_mask((8, 8, 8), band)
        mask = perturbation_mask((8, 8, 8), band)
        assert not mask[0, 0, 0]
        assert int((full & ~mask).sum()) == int(full[0, 0, 0])


def test_unknown_band_raises():
    with pytest.raises(ValueError, match="freq_band"):
        band_mask((8, 8, 8), "hi")
