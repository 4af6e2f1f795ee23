"""Loss of spatial detail: Gaussian blur (TorchIO ``Blur``) and resolution loss (TorchIO ``Resample`` down along the
slice axis, then back, as TorchIO's ``RandomAnisotropy``; ROOD-MRI's anisotropic down-sampling)."""

from __future__ import annotations

import torch

from SpectrumAttackLib.corruptions.base import Corruption, scalar_image

__all__ = ["Blur", "ResolutionLoss"]


class Blur(Corruption):
    """Isotropic Gaussian blur of σ mm on every axis (TorchIO ``Blur``: σ in mm divided by the spacing)."""

    name = "blur"
    quantity = "Gaussian kernel σ"
    unit = "mm"
    scale = (0.5, 1.0, 1.5, 2.0, 3.0)
    source = "torchio.Blur"

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        sigma = float(self.level)
        return tio.Blur(std=(sigma, sigma, sigma))(scalar_image(volume, spacing_mm)).data[0]


class ResolutionLoss(Corruption):
    """Thick slices: the slice axis (the last, D, superior–inferior in the model grid) re-sampled to ``factor`` × its
    spacing by nearest neighbour, then linearly back to the input grid (TorchIO ``RandomAnisotropy``'s recipe)."""

    name = "resolution-loss"
    quantity = "slice spacing factor"
    unit = "× the input slice spacing"
    scale = (2.0, 3.0, 4.0, 6.0, 8.0)
    source = "torchio.Resample as in torchio.RandomAnisotropy; ROOD-MRI anisotropic down-sampling (Boone et al. 2023)"

    #: the axis whose spacing grows (the model grid's D axis).
    axis = 2

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        image = scalar_image(volume, spacing_mm)
        coarse = list(spacing_mm)
        coarse[self.axis] *= float(self.level)
        shape, affine = image.spatial_shape, image.affine.copy()
        down = tio.Resample(tuple(coarse), image_interpolation="nearest")(image)
        return tio.Resample((shape, affine), image_interpolation="linear")(down).data[0]
