"""The corruption base class: checks, layout handling, seeding and the one place TorchIO gets its images.

A corruption is called on a volume ``[H, W, D]``, ``[C, H, W, D]`` or a batch ``[B, C, H, W, D]`` (the model grid's
layout) with the voxel spacing in mm. It works on a float32 CPU copy, one channel volume at a time, and returns a
new tensor of the input's shape, dtype and device; the input is never modified. Random draws come from a
``torch.Generator`` seeded with the corruption's seed (:func:`~SpectrumAttackLib.runtime.make_generator`); a
library that draws from the global torch RNG (TorchIO's noise) runs inside :func:`global_rng_seeded`, which
seeds it from that generator; every call runs under ``torch.random.fork_rng``, so the caller's global RNG state is
the same afterwards.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch

from SpectrumAttackLib.checks import check_range
from SpectrumAttackLib.runtime import make_generator

__all__ = ["Corruption", "draw_seed", "global_rng_seeded", "scalar_image"]


@contextmanager
def global_rng_seeded(generator: torch.Generator) -> Iterator[int]:
    """Run a block that draws from torch's global CPU RNG, seeded with a seed taken from ``generator`` (yielded);
    the caller's global RNG state is restored on exit (also on error)."""
    seed = draw_seed(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield seed


def draw_seed(generator: torch.Generator) -> int:
    """A seed in [0, 2³¹ − 1) for a library with its own RNG, drawn from ``generator``."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def scalar_image(volume: torch.Tensor, spacing_mm: Sequence[float]) -> Any:
    """A TorchIO ``ScalarImage`` of one volume ``[H, W, D]`` (float32) with a diagonal affine of ``spacing_mm``."""
    import torchio as tio

    return tio.ScalarImage(tensor=volume[None].clone(), affine=np.diag([*map(float, spacing_mm), 1.0]))


class Corruption(abc.ABC):
    """Base of every corruption: ``corruption(images, spacing_mm) → corrupted images``.

    Class attributes (the severity scale, documented in ``docs/corruptions.md``):
        name: registry name.
        quantity: the physical quantity the severity sets ("noise σ", "blur σ", ...).
        unit: its unit; ``unit_ct``/``scale_ct`` where CT has its own (noise in HU).
        scale: its value at severities 1–5.
        source: the library transform it is built on and the paper of the artefact model.

    Args:
        severity: 1–5 (checked by :func:`SpectrumAttackLib.corruptions.create`).
        seed: seed of the corruption's generator.
        modality: ``"mr"`` or ``"ct"``.
        hu_per_unit: HU per image unit, for the CT scales in HU.
    """

    name: ClassVar[str]
    quantity: ClassVar[str]
    unit: ClassVar[str]
    scale: ClassVar[tuple[Any, ...]]
    unit_ct: ClassVar[str | None] = None
    scale_ct: ClassVar[tuple[Any, ...] | None] = None
    source: ClassVar[str] = ""

    def __init__(self, *, severity: int, seed: int = 0, modality: str = "mr",
                 hu_per_unit: float | None = None) -> None:
        self.severity = severity
        self.seed = seed
        self.modality = modality
        self.hu_per_unit = hu_per_unit
        if self.in_hu and hu_per_unit is None:
            raise ValueError(f"hu_per_unit must be a positive number for {self.name} on CT (its σ is in HU; "
                             f"HU per image unit = (a_max - a_min) / (b_max - b_min)), got None.")

    @classmethod
    def unit_for(cls, modality: str) -> str:
        return cls.unit_ct if modality == "ct" and cls.unit_ct else cls.unit

    @classmethod
    def scale_for(cls, modality: str) -> tuple[Any, ...]:
        return cls.scale_ct if modality == "ct" and cls.scale_ct else cls.scale

    @property
    def in_hu(self) -> bool:
        """Whether this corruption's scale is in HU (CT noise)."""
        return self.modality == "ct" and self.unit_ct is not None and self.unit_ct.startswith("HU")

    @property
    def level(self) -> Any:
        """The physical value at this severity (in :meth:`unit_for` units)."""
        return self.scale_for(self.modality)[self.severity - 1]

    @property
    def config(self) -> dict[str, Any]:
        """Name, severity, physical value and unit, seed and modality (for records and manifests)."""
        level = self.level
        return {"corruption": self.name, "severity": self.severity, "value": list(level)
                if isinstance(level, tuple) else level, "unit": self.unit_for(self.modality), "seed": self.seed,
                "modality": self.modality}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(severity={self.severity}, seed={self.seed}, modality={self.modality!r})"

    @abc.abstractmethod
    def apply(self, volume: torch.Tensor, spacing_mm: tuple[float, float, float],
              generator: torch.Generator) -> torch.Tensor:
        """Corrupt one volume ``[H, W, D]`` float32 on the CPU (a copy the method may change); returns ``[H, W, D]``."""

    def __call__(self, images: torch.Tensor, spacing_mm: Sequence[float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
        """Corrupt ``images`` (``[H, W, D]``, ``[C, H, W, D]`` or ``[B, C, H, W, D]``); spacing in mm per axis.

        Every channel volume is corrupted with draws from one generator seeded with ``seed``, in order, so a batch
        is reproducible as a whole.

        Raises:
            ValueError: not a float tensor of 3–5 dimensions, non-finite values, or a bad spacing.
        """
        if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() not in (3, 4, 5):
            got = f"shape {list(images.shape)} dtype {images.dtype}" if isinstance(images, torch.Tensor) \
                else type(images).__name__
            raise ValueError(f"images must be a float tensor [H, W, D], [C, H, W, D] or [B, C, H, W, D], got {got}.")
        if not torch.isfinite(images).all():
            raise ValueError("images must be finite, got NaN or infinite voxels.")
        if isinstance(spacing_mm, (str, bytes)) or len(spacing_mm) != 3:
            raise ValueError(f"spacing_mm must be three positive numbers (mm per voxel), got {spacing_mm!r}.")
        spacing = tuple(check_range("spacing_mm", s, 0.0, None, low_inclusive=False) for s in spacing_mm)
        generator = make_generator(self.seed)
        flat = images.detach().to(device="cpu", dtype=torch.float32).reshape(-1, *images.shape[-3:])
        with torch.random.fork_rng(devices=[]):  # TorchIO's transforms draw from the global RNG even when fixed
            out = torch.stack([self.apply(volume.clone(), spacing, generator).float() for volume in flat])
        return out.reshape(images.shape).to(device=images.device, dtype=images.dtype)

    def sigma_in_image_units(self) -> float:
        """The noise σ at this severity in image units (HU divided by ``hu_per_unit`` on CT)."""
        return float(self.level) / self.hu_per_unit if self.in_hu else float(self.level)
