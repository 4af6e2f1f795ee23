"""DFB (3D and slice-wise 2D): the chosen band is zeroed, DC and the other bands are untouched."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.transforms import band_mask, dct_nd, split_blocks_2d, split_blocks_3d


def _gentle_batch() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = random_batch(size=16)
    return 0.4 + 0.2 * images, labels  # stays inside [0, 1] after a band is dropped


@pytest.mark.parametrize("band", ["low", "middle", "high"])
@pytest.mark.parametrize(("name", "block"), [("dfb", (8, 8, 8)), ("dfb", (8, 4, 16)), ("dfb-2d", (8, 4))])
def test_only_the_band_is_zeroed(name, block, band):
    images, labels = _gentle_batch()
    result = attacks.create(name, make_unet(), freq_band=band, block_size=block)(images, labels)
    assert float(result.adversarial.min()) > 0 and float(result.adversarial.max()) < 1
    split = split_blocks_3d if len(block) == 3 else split_blocks_2d
    clean = dct_nd(split(images, block), len(block))
    adv = dct_nd(split(result.adversarial, block), len(block))
    dropped = band_mask(block, band).clone()
    dropped[(0,) * len(block)] = False  # DC is kept
    assert float(adv[..., dropped].abs().max()) < 1e-5
    torch.testing.assert_close(adv[..., ~dropped], clean[..., ~dropped], atol=1e-5, rtol=0)
    assert torch.equal(result.state[..., dropped], torch.zeros_like(result.state[..., dropped]))
    assert torch.equal(result.state[..., ~dropped], torch.ones_like(result.state[..., ~dropped]))


def test_dropping_all_leaves_block_means():
    images, labels = _gentle_batch()
    adv = attacks.create("dfb", make_unet(), freq_band="all", block_size=(4, 4, 4))(images, labels).adversarial
    blocks = split_blocks_3d(adv, (4, 4, 4))
    means = split_blocks_3d(images, (4, 4, 4)).mean((-3, -2, -1), keepdim=True)
    torch.testing.assert_close(blocks, means.expand_as(blocks), atol=1e-6, rtol=0)


def test_custom_factors_through_init_state():
    images, labels = _gentle_batch()
    attack = attacks.create("dfb", make_unet(), block_size=(8, 8, 8))
    ones = torch.ones(2, 1, 8, 8, 8, 8)
    torch.testing.assert_close(attack(images, labels, init_state=ones).adversarial, images, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("dfb", {"freq_band": "highest"}, "freq_band"),
        ("dfb", {"block_size": (8, 8)}, "block_size"),
        ("dfb-2d", {"block_size": (8, 8, 8)}, "block_size"),
        ("dfb", {"steps": 3}, "steps"),
        ("dfb", {"restarts": 2}, "restarts"),
    ],
)
def test_bad_parameters_raise(name, params, word):
    with pytest.raises(ValueError, match=word):
        attacks.create(name, make_unet(), **params)
