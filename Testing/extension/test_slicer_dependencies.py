"""Dependency checks of the module (the installs themselves need the Slicer application)."""

from __future__ import annotations

from typing import Any

import numpy as np
from SpectrumAttackAdapter.dependencies import missing_requirements, read_requirements, torch_summary


def test_requirements_file_lists_the_engine_packages(module: Any) -> None:
    requirements = read_requirements(module.REQUIREMENTS_FILE)
    names = [r.split(">=")[0] for r in requirements]
    assert {"monai", "einops", "nibabel", "pytorch-msssim"} <= set(names)
    assert "torch" not in names  # torch comes from the PyTorch extension, never from pip here


def test_missing_requirements_compares_installed_versions() -> None:
    installed = f"numpy>={np.__version__}"
    assert missing_requirements([installed, "numpy>=1.0"]) == []
    assert missing_requirements(["numpy>=9999", "no-such-package-spectrumattack>=1"]) == [
        "numpy>=9999", "no-such-package-spectrumattack>=1"]


def test_the_test_environment_satisfies_the_module_requirements(module: Any) -> None:
    assert missing_requirements(read_requirements(module.REQUIREMENTS_FILE)) == []


def test_torch_summary_names_version_and_build() -> None:
    import torch

    summary = torch_summary()
    assert summary.startswith(f"PyTorch {torch.__version__}")
    assert ("CUDA build" in summary) == bool(torch.version.cuda)
