"""Fixtures of the attack tests (helpers in ``attack_helpers.py``, importable by name from the tests)."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import make_unet, random_batch
from monai.networks.nets import UNet


@pytest.fixture
def unet() -> UNet:
    return make_unet()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return random_batch()
