"""``manifest.json``: everything needed to reproduce a run, written beside its outputs.

The seed recorded no seeds, versions or settings (seed-algorithms §13 items 24–25); every command that writes
results here also writes a manifest with its arguments, the seed, package versions, the device, the weights'
SHA-256, a UTC timestamp and the git commit of the source tree when it is a checkout.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import SpectrumAttackLib
from SpectrumAttackLib.report.jsonable import dump_json
from SpectrumAttackLib.runtime import device_info

__all__ = ["MANIFEST_NAME", "git_state", "package_versions", "write_manifest"]

MANIFEST_NAME = "manifest.json"
_PACKAGES = ("torch", "monai", "numpy", "nibabel", "pytorch-msssim", "SpectrumAttack")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers (``None`` for a missing one), plus Python."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["SpectrumAttack"] is None:  # running from a source tree that is not installed
        versions["SpectrumAttack"] = SpectrumAttackLib.__version__
    return versions


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the checkout holding ``SpectrumAttackLib``.

    ``None`` when git is missing or the package is not inside its own checkout (an installed wheel inside some
    other repository does not report that repository's commit). Never raises.
    """
    source = Path(SpectrumAttackLib.__file__).resolve().parent.parent
    top = _git(source, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != source:
        return {"commit": None, "dirty": None}
    commit = _git(source, "rev-parse", "HEAD")
    status = _git(source, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}


def write_manifest(
    folder: str | os.PathLike,
    *,
    command: str,
    arguments: Mapping[str, Any],
    seed: int | None,
    weights_sha256: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``folder/manifest.json`` (the folder is created; an existing manifest is replaced).

    Args:
        folder: the output folder of the run.
        command: the subcommand or job name (``"attack"``, ``"evaluate"``, ``"train"``, ``"slicer"``).
        arguments: every argument of the run, in the units the user gave them; paths, tuples and enums are
            stored as strings, lists and values.
        seed: the seed actually used (``None`` when the run draws none).
        weights_sha256: hex SHA-256 of the model weights file, if a file was loaded.
        extra: any other facts to keep (attack config in Lib units, timings, datalist).

    Returns:
        The path of the manifest.

    Raises:
        ValueError: ``command`` is empty or ``weights_sha256`` is not 64 hexadecimal digits.
    """
    if not isinstance(command, str) or not command:
        raise ValueError(f"command must be a non-empty string, got {command!r}.")
    if weights_sha256 is not None:
        weights_sha256 = str(weights_sha256).lower()
        if not _SHA256.fullmatch(weights_sha256):
            raise ValueError(f"weights_sha256 must be 64 hexadecimal digits, got {weights_sha256!r}.")
    git = git_state()
    manifest = {
        "command": command,
        "arguments": dict(arguments),
        "seed": seed,
        "weights_sha256": weights_sha256,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "device": device_info(),
        "platform": platform.platform(),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "extra": dict(extra or {}),
    }
    return dump_json(Path(folder) / MANIFEST_NAME, manifest)
