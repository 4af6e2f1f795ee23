"""The audit's 3-D SSIM with torch window sums against skimage's ``structural_similarity`` itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from SpectrumAttackLib.metrics.similarity import ssim_volume
from SpectrumAttackLib.metrics.volume_ssim import volume_ssim, window_sum_ssim


@pytest.mark.parametrize("shape", [(7, 7, 7), (9, 16, 11), (24, 20, 30)])
@pytest.mark.parametrize("noise", [0.0, 0.01, 0.2])
def test_equals_skimage_to_1e_10(shape, noise):
    rng = np.random.default_rng(sum(shape))
    clean = rng.random(shape).astype(np.float32)
    clean[: shape[0] // 2] = 0.3  # a flat region: variances near zero, where the constants matter
    adversarial = np.clip(clean + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
    expected = structural_similarity(clean.astype(np.float64), adversarial.astype(np.float64), data_range=1.0)
    ours = window_sum_ssim(torch.from_numpy(clean), torch.from_numpy(adversarial))  # the GPU path, run here
    assert ours == pytest.approx(expected, abs=1e-10)
    assert ssim_volume(clean, adversarial) == pytest.approx(expected, abs=1e-10)  # the reported one: the same
    # on the CPU the search's SSIM is skimage's call itself, the reported number to the last bit
    assert volume_ssim(torch.from_numpy(clean), torch.from_numpy(adversarial)) == ssim_volume(clean, adversarial)


def test_short_axes_and_shape_mismatch_are_refused():
    for ssim in (volume_ssim, window_sum_ssim):
        with pytest.raises(ValueError, match="at least 7 voxels"):
            ssim(torch.zeros(6, 8, 8), torch.zeros(6, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        volume_ssim(torch.zeros(8, 8, 8), torch.zeros(8, 8, 9))
