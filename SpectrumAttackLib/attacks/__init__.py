"""Attacks on volumetric segmentation models and their registry.

The registry maps each seed ``--attack_name`` value to ``"module:Class"`` and resolves it on look-up, so listing
the attacks (Slicer's widget does) imports no torch::

    from SpectrumAttackLib import attacks
    attack = attacks.create("saa", model, steps=20, rho=0.2, block_size=(32, 32, 32), seed=0)
    result = attack(images, labels)
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from SpectrumAttackLib.lazy import lazy_getattr

__all__ = [
    "REGISTRY",
    "Attack",
    "AttackResult",
    "SSIMTargetResult",
    "at_ssim",
    "attack_class",
    "attack_parameters",
    "available",
    "create",
    "frozen_model",
    "model_device",
]

#: Names served from ``base.py`` on first access, so that importing the registry does not import torch.
_FROM_BASE = ("Attack", "AttackResult", "frozen_model", "model_device")

REGISTRY: dict[str, str] = {
    "saa": "saa:SAA",
    "saa-2d": "saa:SAA2D",
    "vafa-3d": "vafa:VAFA",
    "vafa-2d": "vafa:VAFA2D",
    "pgd": "pgd:PGD",
    "fgsm": "fgsm:FGSM",
    "bim": "bim:BIM",
    "gn": "gn:GaussianNoise",
    "segpgd": "segpgd:SegPGD",
    "cospgd": "cospgd:CosPGD",
    "ssa-2d": "ssa:SSA2D",
    "dfb": "dfb:DFB",
    "dfb-2d": "dfb:DFB2D",
    "mi-fgsm": "momentum:MIFGSM",
    "vmi-fgsm": "momentum:VMIFGSM",
    "apgd": "apgd:APGD",
}

_BASE_PARAMS = ("steps", "seed", "targeted", "restarts", "early_stop", "clip_input", "precision")


__getattr__ = lazy_getattr(__name__, {**dict.fromkeys(_FROM_BASE, "base"),
                                      **dict.fromkeys(("at_ssim", "SSIMTargetResult"), "ssim_target")})


def available() -> list[str]:
    """The attack names, in the seed's order."""
    return list(REGISTRY)


def attack_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if name not in REGISTRY:
        valid = ", ".join(repr(n) for n in REGISTRY)
        raise ValueError(f"attack must be one of {valid}, got {name!r}.")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def attack_parameters(name: str) -> dict[str, Any]:
    """Keyword parameters accepted by attack ``name`` with their defaults (base parameters included)."""
    cls = attack_class(name)
    params: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" not in vars(klass):
            continue
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                params[p.name] = p.default
    for fixed in cls.fixed_params:
        params.pop(fixed, None)
    return {k: params[k] for k in sorted(params, key=lambda k: (k in _BASE_PARAMS, k))}


def create(name: str, model: Any, loss_fn: Any = None, **params: Any) -> Any:
    """Build attack ``name`` for ``model``.

    Raises:
        ValueError: unknown attack name or parameter (the message lists the allowed ones), or a bad value.
    """
    allowed = attack_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"parameter {', '.join(unknown)} is not accepted by attack {name!r}; allowed: {', '.join(allowed)}."
        )
    return attack_class(name)(model, loss_fn, **params)
