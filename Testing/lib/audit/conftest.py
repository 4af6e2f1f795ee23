"""Fixtures of the audit tests: the tiny phantom-CT UNet of the workflow tests and its phantom."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))

from workflow_helpers import phantom_ct, trained_model

from SpectrumAttackLib.models import LoadedModel


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    """A tiny UNet trained on the phantom CT (never changed by the tests)."""
    return trained_model()


@pytest.fixture(scope="module")
def phantom() -> tuple:
    """``(hu [32, 32, 16], labels, affine)``: the phantom CT the model was trained on."""
    return phantom_ct(0)
