"""Scanner-artefact corruptions of volumes at five severities, and their registry (the corruption track).

The registry has the attack registry's shape: names map to ``"module:Class"`` and resolve on look-up, so listing
the corruptions (the audit grid, Slicer's widget) imports no torch::

    from SpectrumAttackLib import corruptions
    corrupt = corruptions.create("motion", severity=3, seed=0)
    corrupted = corrupt(images, spacing_mm=(1.5, 1.5, 2.0))   # same shape, dtype and device; input untouched

Each corruption changes one physical quantity, whose value at severities 1–5 is in :func:`severity_table` (and
``docs/corruptions.md``). Where MR and CT physics differ the corruption has two scales: noise σ is in image
units (the model's [0, 1] intensity window) for ``modality="mr"`` and in Hounsfield units for ``modality="ct"``
(converted with ``hu_per_unit``, the HU of one image unit).
"""

from __future__ import annotations

import importlib
from typing import Any

from SpectrumAttackLib.checks import check_choice, check_int, check_range

__all__ = ["MODALITIES", "REGISTRY", "SEVERITIES", "available", "corruption_class", "create", "severity_table"]

REGISTRY: dict[str, str] = {
    "gaussian-noise": "noise:GaussianNoise",
    "rician-noise": "noise:RicianNoise",
    "blur": "spatial:Blur",
    "resolution-loss": "spatial:ResolutionLoss",
    "bias-field": "intensity:BiasField",
    "gamma": "intensity:Gamma",
    "gibbs-ringing": "kspace:GibbsRinging",
    "kspace-spike": "kspace:KSpaceSpike",
    "ghosting": "kspace:Ghosting",
    "motion": "kspace:Motion",
}

#: the severity levels of every corruption (1 mildest, 5 strongest).
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: imaging modalities with their own physics (noise units).
MODALITIES: tuple[str, ...] = ("mr", "ct")


def available() -> list[str]:
    """The corruption names, in the registry's order."""
    return list(REGISTRY)


def corruption_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    check_choice("corruption", name, REGISTRY)
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def create(name: str, severity: int, seed: int = 0, *, modality: str = "mr",
           hu_per_unit: float | None = None) -> Any:
    """Build corruption ``name`` at ``severity``.

    Args:
        name: one of :func:`available`.
        severity: 1 (mildest) to 5.
        seed: seed of the corruption's own ``torch.Generator`` (noise, motion, spike positions...); the same
            seed gives the same output.
        modality: ``"mr"`` or ``"ct"``: which severity scale applies where the physics differ (noise in HU for CT).
        hu_per_unit: Hounsfield units per image unit (``(a_max − a_min) / (b_max − b_min)`` of the model's intensity
            window); required by the noise corruptions with ``modality="ct"``.

    Raises:
        ValueError: unknown name, modality, a severity outside 1–5, a negative seed, or a CT noise corruption
            without ``hu_per_unit`` (one message naming the parameter).
    """
    cls = corruption_class(name)
    check_int("severity", severity, 1, len(SEVERITIES))
    check_int("seed", seed, 0)
    check_choice("modality", modality, MODALITIES)
    if hu_per_unit is not None:
        hu_per_unit = check_range("hu_per_unit", hu_per_unit, 0.0, None, low_inclusive=False,
                                  hint="HU per image unit: (a_max - a_min) / (b_max - b_min)")
    return cls(severity=int(severity), seed=int(seed), modality=modality, hu_per_unit=hu_per_unit)


def severity_table(modality: str = "mr") -> list[dict[str, Any]]:
    """Every corruption's scale: ``[{"name", "quantity", "unit", "values" (severities 1–5), "source"}, ...]``."""
    check_choice("modality", modality, MODALITIES)
    rows = []
    for name in REGISTRY:
        cls = corruption_class(name)
        rows.append({"name": name, "quantity": cls.quantity, "unit": cls.unit_for(modality),
                     "values": list(cls.scale_for(modality)), "source": cls.source})
    return rows
