"""Python dependencies of the engine inside Slicer, installed on first use and only after asking.

- PyTorch comes from the PyTorch extension (``EXTENSION_DEPENDS "PyTorch"``, module PyTorchUtils), which picks
  the wheel matching the GPU driver. It is never pip-installed here.
- The other packages (``Resources/requirements.txt``: MONAI, einops, nibabel, pytorch-msssim, ...) are installed
  with Slicer's own installer: ``slicer.packaging.pip_ensure`` on Slicer 5.12 (asks, shows progress, skips
  installs in testing mode; ``constraints=`` a file), ``slicer.util.pip_install`` with ``-c <file>`` after a
  confirmation dialog on Slicer 5.10. Either way pip is constrained to the installed torch (and SimpleITK), so a
  MONAI that wants a newer torch cannot replace the PyTorch extension's build.

Nothing here runs at import time; :func:`ensure_dependencies` is called from the Apply button and the console API.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "TORCH_REQUIREMENT",
    "ensure_dependencies",
    "install_missing",
    "missing_requirements",
    "read_requirements",
    "torch_constraints",
    "torch_summary",
    "torch_too_old",
]

#: Minimum PyTorch version of the engine (asked from the PyTorch extension).
TORCH_REQUIREMENT = ">=2.1"

#: Packages owned by the PyTorch extension and by Slicer itself (its numpy, scipy, pydicom and SimpleITK): pip is
#: constrained to their installed versions, so installing MONAI & co. never replaces one of them.
_KEPT = ["torch", "torchvision", "SimpleITK", "numpy", "scipy", "pydicom"]


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a requirements file (comments and blank lines dropped)."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _satisfied(requirement: str) -> bool:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no `packaging`: presence is all that can be checked
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        return importlib.util.find_spec(name.replace("-", "_").lower()) is not None or _installed(name) is not None
    parsed = Requirement(requirement)
    version = _installed(parsed.name)
    return version is not None and (not parsed.specifier or parsed.specifier.contains(version, prereleases=True))


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_requirements(requirements: Iterable[str]) -> list[str]:
    """The requirements (``name>=version`` strings) not satisfied by the installed packages."""
    return [r for r in requirements if not _satisfied(r)]


def torch_summary() -> str:
    """One line for the GUI: the installed torch version and its build (CUDA or CPU), or why torch is missing.

    Read from the package metadata: opening the module must not import torch into Slicer's process (seconds, and
    a broken install would break the panel). The GPU a run used is in its results (``device`` of the config).
    """
    version = _installed("torch")
    if version is None:
        return "PyTorch is not installed (installed through the PyTorch extension on first Apply)."
    local = version.partition("+")[2]
    build = (f"CUDA {local[2:4]}.{local[4:]} build" if re.fullmatch(r"cu\d{3,}", local)
             else "ROCm build" if local.startswith("rocm") else "CPU-only build" if local == "cpu"
             else "PyPI build (CUDA on Linux and Windows, CPU on macOS)")
    return f"PyTorch {version.partition('+')[0]}, {build}; the device is chosen when a run starts."


def _ensure_torch() -> None:
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        raise RuntimeError(
            "SpectrumAttack needs the PyTorch extension: install 'PyTorch' from the Extensions Manager "
            "(View > Extensions Manager), restart Slicer, then press Apply again."
        ) from None
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if logic.torchInstalled():
        return
    if logic.installTorch(askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT) is None:
        raise RuntimeError("PyTorch is required and was not installed. Install it with the PyTorch Utils module "
                           "(Utilities > PyTorch Utils), then press Apply again.")


def torch_constraints(installed: dict[str, str | None] | None = None) -> list[str]:
    """Pip constraint lines that keep the installed PyTorch (and Slicer's SimpleITK) exactly as they are.

    Args:
        installed: versions by package name (default: read from the installed packages' metadata).
    """
    versions = installed if installed is not None else {name: _installed(name) for name in _KEPT}
    return [f"{name}=={version}" for name, version in versions.items() if version]


def torch_too_old(version: str) -> bool:
    """Whether a torch version (``"2.4.1+cu121"``) is below :data:`TORCH_REQUIREMENT` (no ``packaging`` needed:
    Slicer 5.10 does not ship it)."""
    minimum = tuple(int(part) for part in TORCH_REQUIREMENT.lstrip(">=").split("."))
    numbers = tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[: len(minimum)])
    return numbers < minimum


def _check_torch_version() -> None:
    version = _installed("torch")
    if version is not None and torch_too_old(version):
        raise RuntimeError(f"SpectrumAttack needs PyTorch {TORCH_REQUIREMENT}, found {version}. Update it in "
                           "PyTorch Utils (Utilities > PyTorch Utils), restart Slicer, then press Apply again.")


def ensure_dependencies(requirements_file: str | Path) -> None:
    """Make sure torch and the engine's packages are installed, asking the user before installing anything.

    The packages are installed with pip constrained to the installed torch (``-c``: a constraints file naming
    its exact version), so the dependency step never replaces the PyTorch extension's build; a torch too old for
    the engine is reported with the way to update it.

    Raises:
        RuntimeError: the PyTorch extension is missing, torch is too old, or the user declined an installation.
    """
    _ensure_torch()
    _check_torch_version()
    install_missing(read_requirements(requirements_file), torch_constraints())


def install_missing(requirements: Iterable[str], constraints: Iterable[str] = ()) -> None:
    """Install the requirements that are not satisfied yet, after asking (Slicer 5.12's ``pip_ensure``, else a
    confirmation and ``pip_install``), with pip held to ``constraints`` (``name==version`` lines).

    Raises:
        RuntimeError: the user declined the installation.
    """
    import tempfile

    import slicer

    missing = missing_requirements(requirements)
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="SpectrumAttack-") as folder:
        constraints_file = Path(folder) / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        try:  # Slicer 5.12+: a submodule, not imported by "import slicer"
            import slicer.packaging as installer
        except ImportError:  # Slicer 5.10
            installer = None
        if installer is not None and hasattr(installer, "pip_ensure"):
            installer.pip_ensure(missing, constraints=constraints_file, requester="SpectrumAttack")
            return
        question = ("SpectrumAttack needs these Python packages, which are not installed yet:\n\n"
                    + "\n".join(missing) + "\n\nInstall them now? (This can take a few minutes.)")
        if not slicer.util.confirmOkCancelDisplay(question, "SpectrumAttack: install dependencies"):
            raise RuntimeError(f"SpectrumAttack cannot run without {', '.join(missing)}.")
        with slicer.util.WaitCursor():  # Slicer 5.10: pip_install takes pip's own arguments
            slicer.util.pip_install([*missing, "-c", str(constraints_file)])
