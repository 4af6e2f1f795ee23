"""Fixtures of the inference tests (helpers in ``inference_helpers.py``, importable by name from the tests)."""

from __future__ import annotations

import pytest
from inference_helpers import make_unet
from monai.networks.nets import UNet


@pytest.fixture
def unet() -> UNet:
    return make_unet()
