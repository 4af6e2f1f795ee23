"""Fixtures for the metrics tests."""

from __future__ import annotations

import numpy as np
import pytest
from metrics_volumes import SIZE


@pytest.fixture
def images() -> tuple[np.ndarray, np.ndarray]:
    """A smooth clean volume in [0, 1] and a mildly perturbed copy, ``[16, 16, 16]`` float32."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, SIZE)] * 3, indexing="ij"))
    clean = (0.2 + 0.6 * grid.mean(0)).astype(np.float32)
    adv = np.clip(clean + 0.02 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    return clean, adv
