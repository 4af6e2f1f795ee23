"""Helpers of the inference tests: a tiny MONAI UNet, a phantom volume and a test attack with a known output."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import UNet

from SpectrumAttackLib.attacks.base import Attack

NUM_CLASSES = 3


def make_unet(seed: int = 0) -> UNet:
    """MONAI UNet, channels (4, 8, 16), 3 classes, deterministic weights, in training mode (MONAI's default)."""
    torch.manual_seed(seed)
    return UNet(spatial_dims=3, in_channels=1, out_channels=NUM_CLASSES, channels=(4, 8, 16), strides=(2, 2),
                num_res_units=1)


def phantom(shape: tuple[int, int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``images [1, 1, *shape]`` in [0, 1] and ``labels [1, 1, *shape]``: two boxes of classes 1 and 2 in noise."""
    g = torch.Generator().manual_seed(seed)
    h, w, d = shape
    images = 0.2 + 0.1 * torch.rand(1, 1, *shape, generator=g)
    labels = torch.zeros(1, 1, *shape, dtype=torch.long)
    box1 = (..., slice(2, h // 2), slice(2, w // 2), slice(2, d - 2))
    box2 = (..., slice(h // 2 + 1, h - 2), slice(w // 2, w - 2), slice(1, d // 2))
    images[box1] += 0.6
    labels[box1] = 1
    images[box2] += 0.3
    labels[box2] = 2
    return images.clamp(0, 1), labels


class SeedShift(Attack):
    """Test attack with a known result: adds ``0.01·(1 + seed)`` to every voxel (nothing is optimised)."""

    name = "seed-shift"

    def init_variable(self, images: torch.Tensor, context: Any, generator: torch.Generator) -> torch.Tensor:
        return torch.full_like(images, 0.01 * (1 + self.seed))

    def render(self, images: torch.Tensor, variable: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        return images + variable

    def project(self, variable: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        return variable

    def step(self, variable: torch.Tensor, grad: torch.Tensor, t: int) -> torch.Tensor:
        return variable
