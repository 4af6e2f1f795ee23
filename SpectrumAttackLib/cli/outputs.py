"""Output folders that are never half-written.

Results are written into a hidden staging folder next to the target and moved into the target only when the
run has finished, metrics and manifest last, so an interrupted or failed run leaves the target as it was. A
target that already holds results of the same kind is refused unless ``--overwrite`` is given; other files in it
are never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ATTACK_RESULTS", "DEMO_RESULTS", "EVALUATE_RESULTS", "TRANSFER_RESULTS", "StagedOutput"]

#: file patterns each subcommand writes (and replaces with ``--overwrite``).
ATTACK_RESULTS = ("*_adv.nii.gz", "*_perturbation.nii.gz", "*_pred_clean.nii.gz", "*_pred_adversarial.nii.gz",
                  "*_report.png", "metrics.csv", "metrics.json", "manifest.json")
EVALUATE_RESULTS = ("metrics.csv", "metrics.json", "manifest.json")
TRANSFER_RESULTS = ("transfer_matrix.csv", "transfer.json", "transfer_heatmap.png", "manifest.json")
DEMO_RESULTS = ("adversarial.nii.gz", "perturbation.nii.gz", "segmentation_clean.nii.gz",
                "segmentation_adversarial.nii.gz", "report.png", "metrics.json", "manifest.json")
#: written last, in this order: their presence means the folder is complete.
_LAST = ("metrics.csv", "metrics.json", "transfer.json", "audit.json", "manifest.json")


class StagedOutput:
    """A staging folder for one run's results, moved into ``folder`` by :meth:`commit`.

    Use as a context manager: leaving it with an exception removes the staging folder.

    Args:
        folder: the target folder (created at commit time if needed).
        flag: the command-line flag that named it, for error messages.
        overwrite: replace earlier results instead of refusing.
        patterns: file patterns of this kind of result (see the module constants).
        staging: a fixed name for the staging folder (beside ``folder``), reused when it exists, so that an
            interrupted run can continue from what it holds; default a fresh hidden temporary folder.

    Raises:
        ValueError: ``folder`` is a file, already holds results (without ``overwrite``), or cannot be written.
    """

    def __init__(self, folder: str | os.PathLike, flag: str, overwrite: bool, patterns: Sequence[str],
                 staging: str | None = None) -> None:
        self.folder = Path(folder).expanduser().absolute()
        self.flag = flag
        self.overwrite = overwrite
        self.patterns = tuple(patterns)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{flag} must be a folder, got {str(self.folder)!r} (a file).")
        existing = self.existing_results()
        if existing and not overwrite:
            raise ValueError(f"{flag} must not already hold results unless --overwrite is given, got "
                             f"{str(self.folder)!r} with {existing[0].name} ({len(existing)} result files).")
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            if staging is None:
                self.staging = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.partial-", dir=self.folder.parent))
            else:
                self.staging = self.folder.parent / staging
                self.staging.mkdir(exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{flag} must be a writable folder, got {str(self.folder)!r} "
                             f"({exc.strerror or exc}).") from None
        if self.folder.exists() and not os.access(self.folder, os.W_OK | os.X_OK):
            self.discard()
            raise ValueError(f"{flag} must be a writable folder, got {str(self.folder)!r} (permission denied).")

    def existing_results(self) -> list[Path]:
        """Files in the target that match this kind of result."""
        if not self.folder.is_dir():
            return []
        return sorted({p for pattern in self.patterns for p in self.folder.glob(pattern) if p.is_file()})

    def path(self, name: str) -> Path:
        """Where to write result file ``name`` during the run."""
        return self.staging / name

    def commit(self) -> Path:
        """Move the results into the target (replacing earlier results when ``overwrite``); return the target."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.overwrite:
            for old in self.existing_results():
                old.unlink()
        files = sorted(p for p in self.staging.iterdir() if p.is_file())
        files.sort(key=lambda p: _LAST.index(p.name) if p.name in _LAST else -1)
        for path in files:
            os.replace(path, self.folder / path.name)
        self.discard()
        return self.folder

    def discard(self) -> None:
        """Remove the staging folder and everything in it."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.discard()
