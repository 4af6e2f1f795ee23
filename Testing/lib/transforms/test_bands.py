"""Frequency-band masks: the reference's band sizes, partition, DC handling, non-cubic blocks."""

from __future__ import annotations

import itertools

import pytest
import torch

from SpectrumAttackLib.transforms import FreqBand, band_mask, perturbation_mask


def _reference_masks(s: int, ndim: int) -> dict[str, torch.Tensor]:
    """The reference's rule for cubic blocks (seed-algorithms §2.5): index sums against s/2 − 1."""
    total = sum(torch.meshgrid(*[torch.arange(s)] * ndim, indexing="ij"))
    low = total <= s // 2 - 1
    high = total >= ndim * (s - 1) - (s // 2 - 1)
    return {"low": low, "high": high, "middle": ~(low | high)}


@pytest.mark.parametrize(
    ("block", "sizes"),
    [
        ((8, 8, 8), (20, 472, 20)),
        ((16, 16, 16), (120, 3856, 120)),
        ((32, 32, 32), (816, 31136, 816)),
        ((32, 32), (136, 752, 136)),
    ],
)
def test_band_sizes_equal_the_reference(block, sizes):
    counts = tuple(int(band_mask(block, band).sum()) for band in ("low", "middle", "high"))
    assert counts == sizes
    reference = _reference_masks(block[0], len(block))
    for band in ("low", "middle", "high"):
        assert torch.equal(band_mask(block, band), reference[band])


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
