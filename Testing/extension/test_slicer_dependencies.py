"""Dependency checks of the module (the installs themselves need the Slicer application)."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
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
    assert summary.startswith(f"PyTorch {torch.__version__.split('+')[0]}, ")
    if "+" in torch.__version__:  # a local version names the build: +cpu, +cu121
        assert ("CUDA" in summary) == bool(torch.version.cuda)


def test_torch_constraints_pin_the_installed_builds() -> None:
    import importlib.metadata
    import importlib.util

    from SpectrumAttackAdapter.dependencies import torch_constraints

    assert torch_constraints({"torch": "2.4.1+cu121", "torchvision": None, "SimpleITK": "2.4.0"}) == [
        "torch==2.4.1+cu121", "SimpleITK==2.4.0"]
    assert f"torch=={importlib.metadata.version('torch')}" in torch_constraints()
    # Slicer's own numpy, scipy and pydicom are kept as they are too (review m2)
    kept = {line.split("==")[0] for line in torch_constraints()}
    assert {"numpy", "scipy"} <= kept
    assert ("pydicom" in kept) == (importlib.util.find_spec("pydicom") is not None)


@pytest.mark.parametrize(("version", "old"), [("2.0.1", True), ("1.13.1+cu117", True), ("2.1.0", False),
                                              ("2.4.1+cu121", False), ("2.10.0", False)])
def test_torch_too_old(version: str, old: bool) -> None:
    from SpectrumAttackAdapter.dependencies import torch_too_old

    assert torch_too_old(version) is old


@pytest.mark.parametrize("slicer_version", ["5.12", "5.10"])
def test_dependency_step_installs_the_missing_packages_constrained_to_the_installed_torch(
        slicer_version: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The application's installers (``slicer.packaging.pip_ensure`` on 5.12, ``slicer.util.pip_install`` on
    5.10) and PyTorch Utils cannot run outside Slicer: stand-ins record what the dependency step hands them."""
    import importlib.metadata

    import slicer
    from SpectrumAttackAdapter.dependencies import ensure_dependencies

    calls: list[tuple[Any, str]] = []

    def pip_ensure(requirements: list[str], constraints: Path, requester: str) -> None:
        calls.append((requirements, Path(constraints).read_text()))

    def pip_install(arguments: list[str]) -> None:
        calls.append((arguments[:-2], Path(arguments[-1]).read_text()))
        assert arguments[-2] == "-c"

    class Logic:  # PyTorch Utils with torch installed
        def torchInstalled(self) -> bool:
            return True

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    if slicer_version == "5.12":  # a submodule Slicer does not import with "import slicer" (review m1)
        monkeypatch.delattr(slicer, "packaging", raising=False)
        packaging = types.ModuleType("slicer.packaging")
        packaging.pip_ensure = pip_ensure
        monkeypatch.setitem(sys.modules, "slicer.packaging", packaging)
    else:
        monkeypatch.delattr(slicer, "packaging", raising=False)
        monkeypatch.setitem(sys.modules, "slicer.packaging", None)  # import slicer.packaging fails on 5.10
        monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda *args: True, raising=False)
        monkeypatch.setattr(slicer.util, "WaitCursor", contextlib.nullcontext, raising=False)
        monkeypatch.setattr(slicer.util, "pip_install", pip_install)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=1.0\nno-such-package-spectrumattack>=1  # missing\n")
    ensure_dependencies(requirements)
    assert len(calls) == 1
    missing, constraints = calls[0]
    assert missing == ["no-such-package-spectrumattack>=1"]
    assert f"torch=={importlib.metadata.version('torch')}" in constraints.splitlines()
