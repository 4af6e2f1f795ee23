"""MR acquisition artefacts made in k-space: Gibbs ringing (MONAI ``GibbsNoise``), k-space spikes (TorchIO
``Spike``), ghosting (TorchIO ``Ghosting``) and rigid motion during the acquisition (TorchIO ``Motion``, Shaw et
al., MIDL 2019). Every random parameter (spike position, ghost axis, motion) is drawn from the corruption's
generator and handed to the deterministic TorchIO transform."""

from __future__ import annotations

import numpy as np
import torch

from SpectrumAttackLib.corruptions.base import Corruption, scalar_image

__all__ = ["Ghosting", "GibbsRinging", "KSpaceSpike", "Motion"]


class GibbsRinging(Corruption):
    """Truncation of k-space outside a sphere of radius ``(1 − α) · √2/2 · max(shape)`` (MONAI ``GibbsNoise``)."""

    name = "gibbs-ringing"
    quantity = "α, the truncated fraction of the k-space radius"
    unit = "fraction of k-space (MONAI GibbsNoise alpha)"
    scale = (0.3, 0.45, 0.6, 0.7, 0.8)
    source = "monai.transforms.GibbsNoise"

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        from monai.transforms import GibbsNoise

        return torch.as_tensor(GibbsNoise(alpha=float(self.level))(volume[None]))[0].float()


class KSpaceSpike(Corruption):
    """One spike added to k-space at a position drawn uniformly over k-space (TorchIO ``Spike``), of intensity r
    times the largest k-space magnitude: stripes over the whole image (herringbone artefact)."""

    name = "kspace-spike"
    quantity = "spike intensity r"
    unit = "fraction of the largest k-space magnitude"
    scale = (0.05, 0.1, 0.2, 0.4, 0.8)
    source = "torchio.Spike"

    def positions(self, generator: torch.Generator) -> np.ndarray:
        """Spike positions ``[1, 3]`` as fractions of the k-space extent."""
        return torch.rand(1, 3, generator=generator, dtype=torch.float64).numpy()

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        transform = tio.Spike(spikes_positions=self.positions(generator), intensity=float(self.level))
        return transform(scalar_image(volume, spacing_mm)).data[0]


class Ghosting(Corruption):
    """Every 4th k-space plane along an in-plane axis (drawn: H or W) scaled by ``1 − s``, the central 2 % kept
    (TorchIO ``Ghosting``): four faint copies of the anatomy along that axis, as from periodic motion."""

    name = "ghosting"
    quantity = "ghost strength s"
    unit = "fraction of the signal removed from every 4th k-space plane"
    scale = (0.2, 0.35, 0.5, 0.7, 0.9)
    source = "torchio.Ghosting"

    num_ghosts = 4
    restore = 0.02

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        axis = int(torch.randint(0, 2, (1,), generator=generator))
        transform = tio.Ghosting(num_ghosts=self.num_ghosts, axis=axis, intensity=float(self.level),
                                 restore=self.restore)
        return transform(scalar_image(volume, spacing_mm)).data[0]


class Motion(Corruption):
    """Two rigid movements during the acquisition (TorchIO ``Motion``): k-space filled in three segments from the
    image in three poses; each rotation angle drawn from U(−θ, θ) degrees and each translation from U(−t, t) mm,
    the movement times evenly spaced with TorchIO's ±30 % jitter."""

    name = "motion"
    quantity = "largest rotation θ and translation t of each movement"
    unit = "(degrees, mm)"
    scale = ((1.0, 1.0), (2.0, 2.0), (4.0, 4.0), (6.0, 6.0), (8.0, 8.0))
    source = "torchio.Motion; Shaw et al., MIDL 2019"

    movements = 2

    def draws(self, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(degrees [n, 3], translation_mm [n, 3], times [n])`` of the ``n`` movements."""
        degrees, translation = self.level
        n = self.movements
        uniform = lambda *shape: torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1  # noqa: E731
        step = 1.0 / (n + 1)
        times = torch.arange(1, n + 1, dtype=torch.float64) * step + uniform(n) * step * 0.3
        return (uniform(n, 3) * degrees).numpy(), (uniform(n, 3) * translation).numpy(), times.numpy()

    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        import torchio as tio

        degrees, translation, times = self.draws(generator)
        transform = tio.Motion(degrees=degrees, translation=translation, times=times, image_interpolation="linear")
        return transform(scalar_image(volume, spacing_mm)).data[0].float()
