"""Additive noise: Gaussian (TorchIO ``Noise``) and Rician (MONAI ``RandRicianNoise``).

On MR the σ is in image units (the model's [0, 1] intensity window, so 0.02 is 2 % of the window); on CT it is in
HU, the unit in which scanner noise is measured (10–20 HU at standard dose, 30–80 HU at low dose; McCollough et
al., Radiology 2012), converted with ``hu_per_unit``. Rician noise is the noise of MR magnitude images
(Gudbjartsson & Patz, MRM 1995): ``|x + n₁ + i·n₂|``, n₁, n₂ ~ N(0, σ²).
"""

from __future__ import annotations

import torch

from SpectrumAttackLib.corruptions.base import Corruption, draw_seed, global_rng_seeded, scalar_image

__all__ = ["GaussianNoise", "RicianNoise"]

_MR_SIGMA = (0.01, 0.02, 0.04, 0.06, 0.08)
_CT_SIGMA_HU = (10.0, 20.0, 40.0, 60.0, 80.0)


class GaussianNoise(Corruption):
    """Additive white Gaussian noise ``x + N(0, σ²)`` (TorchIO ``Noise`` with mean 0)."""

    name = "gaussian-noise"
    quantity = "noise σ"
    unit = "image units (fraction of the intensity window)"
    scale = _MR_SIGMA
    unit_ct = "HU"
    scale_ct = _CT_SIGMA_HU
    source = "torchio.Noise; CT noise levels: McCollough et al., Radiology 2012"

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        with global_rng_seeded(generator) as seed:
            noisy = tio.Noise(mean=0.0, std=self.sigma_in_image_units(), seed=seed)(scalar_image(volume, spacing_mm))
        return noisy.data[0]


class RicianNoise(Corruption):
    """Rician noise ``sqrt((x + n₁)² + n₂²)`` with n₁, n₂ ~ N(0, σ²) (MONAI ``RandRicianNoise``, σ not resampled)."""

    name = "rician-noise"
    quantity = "noise σ of each quadrature channel"
    unit = "image units (fraction of the intensity window)"
    scale = _MR_SIGMA
    unit_ct = "HU"
    scale_ct = _CT_SIGMA_HU
    source = "monai.transforms.RandRicianNoise; Gudbjartsson & Patz, MRM 1995"

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        from monai.transforms import RandRicianNoise

        transform = RandRicianNoise(prob=1.0, mean=0.0, std=self.sigma_in_image_units(), sample_std=False)
        transform.set_random_state(seed=draw_seed(generator))
        return torch.as_tensor(transform(volume[None]))[0]
