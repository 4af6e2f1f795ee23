"""Fixtures of the workflow tests (helpers in ``workflow_helpers.py``)."""

from __future__ import annotations

import pytest
from workflow_helpers import trained_model

from SpectrumAttackLib.models import LoadedModel


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    """A tiny UNet trained on the phantom CT, shared by the tests of a module (they never change its weights)."""
    return trained_model()
