"""Intensity non-uniformity and contrast: a smooth multiplicative bias field (TorchIO ``BiasField``, a polynomial of
order 3 in the exponent; Van Leemput et al., TMI 1999) and a gamma contrast change (TorchIO ``Gamma``)."""

from __future__ import annotations

import torch

from SpectrumAttackLib.corruptions.base import Corruption, scalar_image

__all__ = ["BiasField", "Gamma"]


class BiasField(Corruption):
    """``x · exp(Σ c_ijk · X^i Y^j Z^k)`` over the monomials of order ≤ 3 on coordinates normalised to [−1, 1], each
    coefficient drawn from U(−c, c) (as TorchIO's ``RandomBiasField``, from this corruption's generator)."""

    name = "bias-field"
    quantity = "largest coefficient c of the log-field polynomial"
    unit = "log-intensity (a field of exp(±c) per monomial)"
    scale = (0.1, 0.2, 0.3, 0.4, 0.5)
    source = "torchio.BiasField; Van Leemput et al., IEEE TMI 1999"

    #: order of the polynomial (TorchIO's default).
    order = 3

    def coefficients(self, generator: torch.Generator) -> list[float]:
        """The polynomial's coefficients (TorchIO's monomial order), drawn from ``generator``."""
        count = (self.order + 1) * (self.order + 2) * (self.order + 3) // 6
        c = float(self.level)
        return ((torch.rand(count, generator=generator, dtype=torch.float64) * 2 - 1) * c).tolist()

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        transform = tio.BiasField(coefficients=self.coefficients(generator), order=self.order)
        return transform(scalar_image(volume, spacing_mm)).data[0]


class Gamma(Corruption):
    """Contrast change ``x^γ`` (TorchIO ``Gamma``; sign-preserving for negative values); γ > 1 darkens mid-tones."""

    name = "gamma"
    quantity = "gamma exponent γ"
    unit = "dimensionless (x^γ on the [0, 1] window)"
    scale = (1.25, 1.5, 2.0, 2.5, 3.0)
    source = "torchio.Gamma; ROOD-MRI contrast change (Boone et al. 2023)"

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        return tio.Gamma(float(self.level))(scalar_image(volume, spacing_mm)).data[0]
