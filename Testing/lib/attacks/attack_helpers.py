"""Helpers of the attack tests: an unfitted tiny UNet, a random batch, and per-attack parameter sets."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import UNet

from SpectrumAttackLib import attacks

NUM_CLASSES = 3

#: Cheap settings for the contract tests on 16³ volumes (2 steps, 8-voxel blocks).
FAST: dict[str, dict[str, Any]] = {
    "saa": {"steps": 2, "block_size": (8, 8, 8)},
    "saa-2d": {"steps": 2, "block_size": (8, 8)},
    "vafa-3d": {"steps": 2, "block_size": (8, 8, 8)},
    "vafa-2d": {"steps": 2, "block_size": (8, 8)},
    "pgd": {"steps": 2},
    "fgsm": {},
    "bim": {"steps": 2},
    "gn": {},
    "segpgd": {"steps": 2},
    "cospgd": {"steps": 2},
    "ssa-2d": {"steps": 2, "num_spectrum_augs": 2, "block_size": (8, 8)},
    "dfb": {"block_size": (8, 8, 8)},
    "dfb-2d": {"block_size": (8, 8)},
    "mi-fgsm": {"steps": 2},
    "vmi-fgsm": {"steps": 2, "vmi_samples": 2},
    "apgd": {"steps": 2},
}

#: Settings strong enough to change the fitted net's prediction on 24³ volumes within a few steps.
STRONG: dict[str, dict[str, Any]] = {
    "saa": {"steps": 5, "rho": 0.6, "lambda_dice": 1.0, "block_size": (8, 8, 8)},
    "saa-2d": {"steps": 5, "rho": 0.6, "lambda_dice": 1.0, "block_size": (8, 8)},
    "vafa-3d": {"steps": 5, "q_max": 80, "block_size": (8, 8, 8)},
    "vafa-2d": {"steps": 5, "q_max": 80, "block_size": (8, 8)},
    "pgd": {"steps": 5, "eps": 32, "alpha": 0.04},
    "fgsm": {"eps": 32},
    "bim": {"steps": 5, "eps": 32, "alpha": 0.04},
    "gn": {"std": 64},
    "segpgd": {"steps": 5, "eps": 32, "alpha": 0.04},
    "cospgd": {"steps": 5, "eps": 32, "alpha": 0.04},
    "ssa-2d": {"steps": 5, "eps": 32, "num_spectrum_augs": 2, "block_size": (8, 8)},
    "dfb": {"freq_band": "middle", "block_size": (8, 8, 8)},
    "dfb-2d": {"freq_band": "middle", "block_size": (8, 8)},
    "mi-fgsm": {"steps": 5, "eps": 32},
    "vmi-fgsm": {"steps": 5, "eps": 32, "vmi_samples": 2},
    "apgd": {"steps": 5, "eps": 32},
}

#: Attacks whose start is drawn from the seeded generator.
RANDOM = ("saa", "saa-2d", "pgd", "gn", "segpgd", "cospgd", "ssa-2d", "vmi-fgsm", "apgd")
#: Attacks that take gradient steps.
ITERATIVE = tuple(n for n in attacks.available() if "steps" in attacks.attack_parameters(n))


def make_unet(seed: int = 0, norm: str = "instance") -> UNet:
    """MONAI UNet, channels (4, 8, 16), strides (2, 2), 3 classes, deterministic weights (global RNG untouched).

    ``norm="batch"`` gives batch-norm layers, whose running statistics change if a forward pass runs in training mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(spatial_dims=3, in_channels=1, out_channels=NUM_CLASSES, channels=(4, 8, 16), strides=(2, 2),
                    num_res_units=1, norm=norm)


def random_batch(batch: int = 2, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``images [B, 1, s, s, s]`` in [0.05, 0.95] and ``labels [B, 1, s, s, s]`` in 0..2 (int64)."""
    g = torch.Generator().manual_seed(seed)
    images = 0.05 + 0.9 * torch.rand(batch, 1, size, size, size, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (batch, 1, size, size, size), generator=g)
    return images, labels


def build(name: str, model: torch.nn.Module, **overrides: Any) -> Any:
    """``attacks.create(name, model, **FAST[name], **overrides)``."""
    return attacks.create(name, model, **{**FAST[name], **overrides})
