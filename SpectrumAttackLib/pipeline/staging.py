"""The one staged writer: every output of a run appears together, or none does.

Outputs (NIfTI, NRRD, CSV, JSON, PNG; anything written to a path) are written into hidden staging folders on the
destination's file system during the run, and moved into place with ``os.replace`` only when the run has
finished; the moves run with SIGINT/SIGTERM held back, metrics and manifest last. A failure, an exception or an
interrupt before that removes the staging folders, so the destinations are as they were: no file, no empty
folder, no ``.partial-*`` left behind (folders that do not exist yet are created only at commit time).

Three shapes of output:

- :class:`StagedOutput`: one result folder (``--save_adv_images_dir``, ``--output``). A folder that already holds
  results of the same kind is refused unless ``--overwrite`` is given; other files in it are never touched.
- :class:`StagedFiles`: files at paths of their own (the Slicer CLI module's ``outputVolume``, ``cleanLabel``, ...).
- :class:`StagedFolder`: a whole new folder tree (a hardened model: a MONAI bundle or an nnU-Net trained-model
  folder), built beside its destination and renamed into place in one step.

The first two check at construction that every destination can be written and that no output is one of the run's inputs
(paths compared resolved and with ``os.path.samefile``), so an unwritable output, or one that would overwrite an
input, is refused before any work starts.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["ATTACK_RESULTS", "DEMO_RESULTS", "EVALUATE_RESULTS", "SLICER_BATCH_RESULTS", "TRANSFER_RESULTS",
           "StagedFiles", "StagedFolder", "StagedOutput", "check_writable", "same_file"]

#: file patterns each subcommand writes (and replaces with ``--overwrite``).
ATTACK_RESULTS = ("*_adv.nii.gz", "*_perturbation.nii.gz", "*_pred_clean.nii.gz", "*_pred_adversarial.nii.gz",
                  "*_model_grid.nii.gz", "*_report.png", "metrics.csv", "metrics.json", "manifest.json")
EVALUATE_RESULTS = ("metrics.csv", "metrics.json", "manifest.json")
TRANSFER_RESULTS = ("transfer_matrix.csv", "transfer.json", "transfer_heatmap.png", "manifest.json")
#: what the Slicer CLI module writes in batch mode (--outputDirectory).
SLICER_BATCH_RESULTS = ("*_adversarial.nii.gz", "*_perturbation.nii.gz", "*_seg_clean.nii.gz",
                        "*_seg_adversarial.nii.gz", "*_metrics.json", "metrics.csv")
DEMO_RESULTS = ("adversarial.nii.gz", "perturbation.nii.gz", "segmentation_clean.nii.gz",
                "segmentation_adversarial.nii.gz", "report.png", "metrics.json", "manifest.json")
#: written last, in this order: their presence means the folder is complete.
_LAST = ("metrics.csv", "metrics.json", "transfer.json", "audit.json", "manifest.json")
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal once resolved (``.``, ``..``, symlinks), or one file on disk
    (``os.path.samefile``: hard links, bind mounts) when both exist."""
    a, b = Path(first).expanduser(), Path(second).expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _input_named(target: Path, inputs: Mapping[str, str | os.PathLike | None]) -> str | None:
    """The name of the input that ``target`` is, or None."""
    return next((name for name, path in inputs.items() if path not in (None, "") and same_file(target, path)), None)


def _results_in(folder: Path, patterns: Sequence[str]) -> list[Path]:
    """Files in ``folder`` that match ``patterns`` (none when it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(name: str, destination: str | os.PathLike, *, folder: bool) -> Path:
    """The absolute destination if a file (``folder=False``) or folder can be created or replaced there.

    Raises:
        ValueError: the destination is a folder where a file is wanted or the reverse, a missing folder on the way
            is a file, or the first existing folder on the way is not writable.
    """
    target = Path(destination).expanduser().absolute()
    if target.exists() and target.is_dir() != folder:
        kind = "a folder" if target.is_dir() else "a file"
        raise ValueError(f"{name} must be {'a folder' if folder else 'a file path'}, got {str(target)!r} ({kind}).")
    anchor = _existing_ancestor(target if folder else target.parent)
    if not anchor.is_dir():
        raise ValueError(f"{name} must be a writable {'folder' if folder else 'file path'}, got {str(target)!r} "
                         f"({str(anchor)!r} is a file).")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ValueError(f"{name} must be a writable {'folder' if folder else 'file path'}, got {str(target)!r} "
                         f"(permission denied in {str(anchor)!r}).")
    return target


def _make_staging(name: str, target: Path, label: str) -> Path:
    """A hidden staging folder in the nearest existing folder above ``target`` (same file system)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{label}.partial-", dir=_existing_ancestor(target.parent)))
    except OSError as exc:
        raise ValueError(f"{name} must be writable, got {str(target)!r} ({exc.strerror or exc}).") from None


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while files are moved into place (POSIX, main thread; elsewhere a no-op)."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _move_all(moves: Sequence[tuple[Path, Path]]) -> None:
    with _signals_held():
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)


class _Staged:
    """Context-manager behaviour shared by both writers: leaving with an exception discards."""

    staging_folders: list[Path]

    def discard(self) -> None:
        """Remove the staging folders and everything in them."""
        for folder in self.staging_folders:
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.discard()


class StagedOutput(_Staged):
    """A staging folder for one run's results, moved into ``folder`` by :meth:`commit`.

    Use as a context manager (or call :meth:`discard` on failure): leaving it with an exception removes the
    staging folder. ``folder`` itself is created only by :meth:`commit`.

    Args:
        folder: the target folder.
        flag: the command-line flag that named it, for error messages.
        overwrite: replace earlier results instead of refusing.
        patterns: file patterns of this kind of result (see the module constants).
        overwrite_flag: how the interface spells "overwrite" in the refusal (None: it has no such option).
        staging: a fixed name for the staging folder (beside ``folder``), reused when it exists, so that an
            interrupted run can continue from what it holds (the audit's ``--resume``); default a fresh hidden
            temporary folder.
        inputs: the run's input files, name → path (``{"--image": ..., "--label": ...}``): none of them may be a
            file the run would write or replace in ``folder`` (a name matching ``patterns`` there).

    Raises:
        ValueError: ``folder`` is a file, already holds results (without ``overwrite``), holds an input under a
            result's name, or cannot be written.
    """

    def __init__(self, folder: str | os.PathLike, flag: str, overwrite: bool, patterns: Sequence[str], *,
                 overwrite_flag: str | None = "--overwrite", staging: str | None = None,
                 inputs: Mapping[str, str | os.PathLike | None] | None = None) -> None:
        self.folder = check_writable(flag, folder, folder=True)
        self.flag = flag
        self.overwrite = overwrite
        self.patterns = tuple(patterns)
        for name, path in (inputs or {}).items():
            if path not in (None, "") and same_file(Path(path).expanduser().absolute().parent, self.folder) and \
                    any(fnmatch.fnmatch(Path(path).name, pattern) for pattern in self.patterns):
                raise ValueError(f"{flag} must not be the folder of an input named like a result, got "
                                 f"{str(self.folder)!r}, where {name} would be replaced by a result.")
        self.refuse_results(self.folder, flag, overwrite, self.patterns, overwrite_flag=overwrite_flag)
        if staging is None:
            self.staging = _make_staging(flag, self.folder, self.folder.name)
        else:
            self.staging = self.folder.parent / staging
            try:
                self.folder.parent.mkdir(parents=True, exist_ok=True)
                self.staging.mkdir(exist_ok=True)
            except OSError as exc:
                raise ValueError(f"{flag} must be writable, got {str(self.folder)!r} ({exc.strerror or exc}).") \
                    from None
        self.staging_folders = [self.staging]

    @staticmethod
    def refuse_results(folder: Path, flag: str, overwrite: bool, patterns: Sequence[str], *,
                       overwrite_flag: str | None = "--overwrite") -> None:
        """Raise ValueError if ``folder`` holds files matching ``patterns`` and ``overwrite`` is false."""
        existing = _results_in(folder, patterns)
        if existing and not overwrite:
            allowed = f"unless {overwrite_flag} is given" if overwrite_flag else "(choose an empty or new folder)"
            raise ValueError(f"{flag} must not already hold results {allowed}, got {str(folder)!r} with "
                             f"{existing[0].name} ({len(existing)} result files).")

    def existing_results(self) -> list[Path]:
        """Files in the target that match this kind of result."""
        return _results_in(self.folder, self.patterns)

    def path(self, name: str) -> Path:
        """Where to write result file ``name`` during the run."""
        return self.staging / name

    def commit(self) -> Path:
        """Move the results into the target (replacing earlier results when ``overwrite``); return the target."""
        files = sorted(p for p in self.staging.iterdir() if p.is_file())
        files.sort(key=lambda p: _LAST.index(p.name) if p.name in _LAST else -1)
        with _signals_held():
            if self.overwrite:
                for old in self.existing_results():
                    old.unlink()
            _move_all([(path, self.folder / path.name) for path in files])
        self.discard()
        return self.folder


class StagedFiles(_Staged):
    """Output files at paths of their own, staged and moved into place together by :meth:`commit`.

    Args:
        destinations: parameter name → destination path (``None`` entries are outputs not asked for). Existing
            files are replaced at commit time.
        inputs: the run's input files, name → path: no destination may be one of them (compared resolved, and
            with ``os.path.samefile`` where both exist).

    Raises:
        ValueError: a destination that cannot be written (see :func:`check_writable`), that is an input, or two
            outputs at one path.
    """

    def __init__(self, destinations: Mapping[str, str | os.PathLike | None],
                 inputs: Mapping[str, str | os.PathLike | None] | None = None) -> None:
        self.staging_folders: list[Path] = []
        self.targets: dict[str, Path] = {}
        seen: dict[Path, str] = {}
        for name, destination in destinations.items():
            if destination in (None, ""):
                continue
            target = check_writable(name, destination, folder=False)
            source = _input_named(target, inputs or {})
            if source is not None:
                raise ValueError(f"{name} must not be an input, got {str(destination)!r}, which is {source}.")
            if target in seen:
                raise ValueError(f"{name} must differ from {seen[target]}, got {str(target)!r} for both.")
            seen[target] = name
            self.targets[name] = target
        try:
            for target in self.targets.values():
                folder = _existing_ancestor(target.parent)
                if not any(s.parent == folder for s in self.staging_folders):
                    self.staging_folders.append(_make_staging(next(n for n, t in self.targets.items()
                                                                   if t == target), target, "spectrumattack"))
        except BaseException:
            self.discard()
            raise
        self._staged = {name: self._folder_for(target) / str(index) / target.name
                        for index, (name, target) in enumerate(self.targets.items())}
        for path in self._staged.values():
            path.parent.mkdir()

    def _folder_for(self, target: Path) -> Path:
        anchor = _existing_ancestor(target.parent)
        return next(s for s in self.staging_folders if s.parent == anchor)

    def __contains__(self, name: str) -> bool:
        return name in self.targets

    def path(self, name: str) -> Path:
        """Where to write output ``name`` during the run (same file name as its destination, so the format
        chosen by the ending is kept)."""
        return self._staged[name]

    def commit(self) -> dict[str, Path]:
        """Move every output into place; returns name → destination.

        Raises:
            RuntimeError: an output that was asked for was not written (nothing is moved then).
        """
        missing = [name for name, path in self._staged.items() if not path.is_file()]
        if missing:
            self.discard()
            raise RuntimeError(f"outputs {', '.join(missing)} were not written; nothing was moved into place.")
        moves = [(self._staged[name], target) for name, target in self.targets.items()]
        moves.sort(key=lambda move: _LAST.index(move[1].name) if move[1].name in _LAST else -1)
        _move_all(moves)
        self.discard()
        return dict(self.targets)


class StagedFolder(_Staged):
    """A new folder tree, written into a hidden staging folder beside ``folder`` and renamed into place by
    :meth:`commit` (one ``os.replace``: the folder appears whole or not at all).

    Args:
        folder: the destination; it must not exist, or be an empty folder, unless ``overwrite``.
        name: the parameter that named it, for error messages.
        overwrite: replace an existing folder (it is moved aside, the new one renamed into place, then the old one
            deleted).
        overwrite_flag: how the interface spells "overwrite" in the refusal.

    Raises:
        ValueError: ``folder`` is a file, exists with content (without ``overwrite``), or cannot be written.
    """

    def __init__(self, folder: str | os.PathLike, name: str, overwrite: bool, *,
                 overwrite_flag: str = "overwrite=True") -> None:
        self.folder = check_writable(name, folder, folder=True)
        self.overwrite = overwrite
        if self.folder.is_dir() and any(self.folder.iterdir()) and not overwrite:
            raise ValueError(f"{name} must be a new or empty folder unless {overwrite_flag} is given, got "
                             f"{str(self.folder)!r} (it exists and is not empty).")
        self.staging = _make_staging(name, self.folder, self.folder.name)
        self.staging_folders = [self.staging]

    @property
    def root(self) -> Path:
        """Where to build the folder's content during the run."""
        return self.staging

    def commit(self) -> Path:
        """Rename the built folder into place (replacing an existing one); return the destination."""
        umask = os.umask(0)
        os.umask(umask)
        self.staging.chmod(0o777 & ~umask)  # mkdtemp made it private; the result gets the usual permissions
        old = self.folder.parent / f".{self.folder.name}.replaced-{uuid.uuid4().hex[:8]}"
        with _signals_held():
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            if self.folder.exists():
                os.replace(self.folder, old)
            os.replace(self.staging, self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self.staging_folders = []
        return self.folder
