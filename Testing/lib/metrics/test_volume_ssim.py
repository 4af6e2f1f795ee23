"""The audit's 3-D SSIM (torch window sums, the clean volume's statistics kept) against skimage's
``structural_similarity`` itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from SpectrumAttackLib.metrics.similarity import ssim_volume
from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM, volume_ssim


def _skimage(clean: np.ndarray, adversarial: np.ndarray) -> float:
    return structural_similarity(clean.astype(np.float64), adversarial.astype(np.float64), data_range=1.0)


@pytest.mark.parametrize("shape", [(7, 7, 7), (9, 16, 11), (24, 20, 30)])
@pytest.mark.parametrize("noise", [0.0, 0.01, 0.2])
def test_equals_skimage_to_1e_8(shape, noise):
    rng = np.random.default_rng(sum(shape))
    clean = rng.random(shape).astype(np.float32)
    clean[: shape[0] // 2] = 0.3  # a flat region: variances near zero, where the constants matter
    adversarial = np.clip(clean + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
    expected = _skimage(clean, adversarial)
    assert volume_ssim(torch.from_numpy(clean), torch.from_numpy(adversarial)) == pytest.approx(expected, abs=1e-8)
    assert ssim_volume(clean, adversarial) == pytest.approx(expected, abs=1e-8)  # numpy in, the same number
    if noise == 0.0:
        assert volume_ssim(clean, adversarial) == 1.0  # identical volumes: exactly 1, as skimage


def test_kept_statistics_serve_many_volumes_of_every_kind():
    """One :class:`VolumeSSIM` of a smooth CT-like volume against perturbations of every shape an attack makes:
    noise, a clamped block pattern (SA²-like), a quantised copy (VAFA-like), a uniform shift, a saturated image."""
    rng = np.random.default_rng(3)
    clean = np.clip(0.4 + 0.15 * rng.standard_normal((40, 36, 32)), 0, 1).astype(np.float32)
    clean[10:30, 8:28, 6:26] = 0.8  # an organ: flat inside, an edge around it
    blocks = np.kron(rng.choice([-0.1, 0.1], (5, 9, 4)), np.ones((8, 4, 8)))
    candidates = [
        np.clip(clean + 0.03 * rng.standard_normal(clean.shape), 0, 1),
        np.clip(clean * (1 + blocks), 0, 1),
        np.round(clean * 16) / 16,
        np.clip(clean + 0.05, 0, 1),
        np.ones_like(clean),
    ]
    ssim = VolumeSSIM(torch.from_numpy(clean))
    for adversarial in candidates:
        adversarial = adversarial.astype(np.float32)
        assert ssim(torch.from_numpy(adversarial)) == pytest.approx(_skimage(clean, adversarial), abs=1e-8)
    assert ssim(candidates[0].astype(np.float32)) < 1 and ssim(clean) == 1.0


def test_short_axes_and_shape_mismatch_are_refused():
    with pytest.raises(ValueError, match="at least 7 voxels"):
        volume_ssim(torch.zeros(6, 8, 8), torch.zeros(6, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        volume_ssim(torch.zeros(8, 8, 8), torch.zeros(8, 8, 9))
    with pytest.raises(ValueError, match=r"clean must be a \[H, W, D\]"):
        VolumeSSIM(torch.zeros(1, 8, 8, 8))
