"""The frequency analysis on a hand-made perturbation whose band content is known: one low DCT coefficient and one
high one per block, a threshold "model", and the Dice of each filtered image computed directly."""

from __future__ import annotations

import pytest
import torch

from SpectrumAttackLib.analysis.frequency import filter_perturbation, frequency_analysis, radial_mask
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.report.frequency_figure import write_frequency_figure
from SpectrumAttackLib.transforms.bands import band_mask
from SpectrumAttackLib.transforms.blocks import merge_blocks_3d
from SpectrumAttackLib.transforms.dct import idct_nd

SHAPE = (16, 16, 8)  # 2 x 2 x 1 blocks of 8³


def block_pattern(index: tuple[int, int, int], amplitude: float) -> torch.Tensor:
    """``[1, 1, 16, 16, 8]`` with one block-DCT coefficient ``index`` of value ``amplitude`` in every block."""
    coefficients = torch.zeros(1, 1, 4, 8, 8, 8, dtype=torch.float64)
    coefficients[(..., *index)] = amplitude
    return merge_blocks_3d(idct_nd(coefficients, 3), SHAPE).float()


def predict(images: torch.Tensor) -> torch.Tensor:
    return (images[:, :1] > 0.5).long()


def test_bands_and_radial_sweep_of_a_known_perturbation(tmp_path):
    low, high = block_pattern((1, 0, 0), 4.0), block_pattern((7, 7, 7), 2.0)  # energies 16 : 4 per block
    images = torch.full((1, 1, *SHAPE), 0.45)
    adversarial = images + low + high
    reference = predict(images + 0.1)  # everything foreground: the clean prediction (all 0) scores 0
    reference[..., :8, :, :] = 0
    result = frequency_analysis(predict, images, adversarial, reference, 2, block_size=8, cutoffs=(0.2, 0.5, 0.9))

    def dice(perturbation):
        return float(dice_per_sample(predict((images + perturbation).clamp(0, 1)), reference, 2).mean())

    bands = {b["band"]: b for b in result["bands"]}
    assert bands["low"]["energy"] == pytest.approx(0.8, abs=1e-6)
    assert bands["high"]["energy"] == pytest.approx(0.2, abs=1e-6)
    assert bands["middle"]["energy"] == pytest.approx(0.0, abs=1e-9) and bands["all"]["energy"] == pytest.approx(1)
    assert bands["low"]["dice"] == pytest.approx(dice(low))
    assert bands["high"]["dice"] == pytest.approx(dice(high))
    assert bands["all"]["dice"] == pytest.approx(dice(low + high)) == pytest.approx(result["adversarial_dice"])
    assert result["clean_dice"] == pytest.approx(dice(torch.zeros_like(low)))
    assert bands["low"]["dice"] > result["clean_dice"] and bands["low"]["dice"] != bands["high"]["dice"]
    for row in result["radial"]:  # ρ(1,0,0) = 0.08, ρ(7,7,7) = 1: every cut-off separates the two
        assert row["low_energy"] == pytest.approx(0.8, abs=1e-6) and row["high_energy"] == pytest.approx(0.2, abs=1e-6)
        assert row["low_dice"] == pytest.approx(dice(low)) and row["high_dice"] == pytest.approx(dice(high))
    write_frequency_figure(tmp_path / "frequency.png", result, "hand-made perturbation")
    assert (tmp_path / "frequency.png").stat().st_size > 10_000


def test_filters_reconstruct_and_split_the_perturbation():
    delta = torch.randn(1, 1, *SHAPE, generator=torch.Generator().manual_seed(0)) * 0.01
    whole, energy = filter_perturbation(delta, (8, 8, 8), band_mask((8, 8, 8), "all"))
    torch.testing.assert_close(whole, delta, atol=1e-6, rtol=0)
    assert energy == pytest.approx(1.0)
    mask = radial_mask((8, 8, 8), 0.5)
    assert mask[0, 0, 0] and not mask[7, 7, 7]
    lowpass, e_low = filter_perturbation(delta, (8, 8, 8), mask)
    highpass, e_high = filter_perturbation(delta, (8, 8, 8), ~mask)
    torch.testing.assert_close(lowpass + highpass, delta, atol=1e-6, rtol=0)
    assert e_low + e_high == pytest.approx(1.0)


def test_bad_arguments_are_named():
    images = torch.zeros(1, 1, *SHAPE)
    with pytest.raises(ValueError, match="adversarial must have the shape of images"):
        frequency_analysis(predict, images, images[..., :4], predict(images), 2)
    with pytest.raises(ValueError, match=r"cutoffs must be in \(0, 1\)"):
        frequency_analysis(predict, images, images, predict(images), 2, cutoffs=(1.0,))

