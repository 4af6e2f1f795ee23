"""One background run of a scripted CLI module, watched from the application's main thread.

``slicer.cli.run(..., wait_for_completion=False)`` starts the CLI process in a worker thread; the CLI node then
reports its status, its ``<filter-progress>`` (0–100 on the node) and its standard output. :class:`CLIRun` turns
that into :class:`JobProgress` reports and one ``on_done(status, error)`` call, and cleans up after the process:

- progress never goes back (Slicer resets the node's progress while it loads the outputs: "Completing");
- the CLI prints ``SpectrumAttack staging <folder>`` for every staging folder of its staged writer; a killed
  process (Cancel) cannot remove them itself, so :func:`remove_staging` does it from here;
- the run's temporary folder is removed whatever the outcome.

Only :meth:`CLIRun.start` and the finishing step need the application (``slicer.cli``, ``qt``); the rest is plain
Python, tested on slicer-core.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CLIRun", "JobProgress", "ProgressTracker", "RobustnessJob", "cli_module", "remove_staging",
           "staging_folders"]

_STEP = re.compile(r"SpectrumAttack step (\d+)/(\d+) (\S+)(?: ([^\n]*))?")
_STAGING = re.compile(r"^SpectrumAttack staging (.+)$", re.MULTILINE)
_STAGING_PATTERN = re.compile(r"^SpectrumAttack staging-pattern (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class JobProgress:
    """One progress report of a background run.

    Attributes:
        fraction: completed fraction in [0, 1]; never smaller than an earlier report's.
        done, total: engine work units (attack steps, audit cells, training iterations); 0 when not known yet.
        stage: ``"preprocess"``, ``"attack"``, ``"audit"``, ``"harden"``, ... ("" when not known yet;
            ``"loading results"`` while Slicer reads the outputs back).
        seconds: time since the job started.
        message: the engine's detail (e.g. ``loss 0.41, validation Dice 0.62``), "" when none.
    """

    fraction: float
    done: int
    total: int
    stage: str
    seconds: float
    message: str = ""

    @property
    def eta_seconds(self) -> float | None:
        """Estimated seconds left, from the time so far (None before any progress)."""
        if self.fraction <= 0.0:
            return None
        return self.seconds * (1.0 - self.fraction) / self.fraction


class ProgressTracker:
    """Builds :class:`JobProgress` reports from a CLI node's progress and output text, never going back."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._best = 0.0

    def report(self, percent: float, output_text: str, completing: bool = False) -> JobProgress:
        """A report from the node's progress (0–100) and its output so far; ``completing``: Slicer is loading
        the outputs (the process has finished)."""
        self._best = 1.0 if completing else max(self._best, min(1.0, max(0.0, percent / 100.0)))
        done = total = 0
        stage = message = ""
        matches = _STEP.findall(output_text or "")
        if matches:
            done, total, stage, message = int(matches[-1][0]), int(matches[-1][1]), matches[-1][2], matches[-1][3]
        if completing:
            stage, message = "loading results", ""
        return JobProgress(self._best, done, total, stage, time.monotonic() - self.started, message.strip())


def staging_folders(output_text: str) -> list[Path]:
    """The staging folders a CLI run announced on its standard output: ``SpectrumAttack staging <folder>``, and
    ``SpectrumAttack staging-pattern <folder/prefix>`` for folders the engine names itself (every existing folder
    whose path starts with the prefix)."""
    folders = [Path(line.strip()) for line in _STAGING.findall(output_text or "")]
    for line in _STAGING_PATTERN.findall(output_text or ""):
        prefix = Path(line.strip())
        if prefix.parent.is_dir():
            folders += sorted(p for p in prefix.parent.iterdir() if p.name.startswith(prefix.name))
    return folders


def remove_staging(output_text: str) -> list[Path]:
    """Remove the staging folders a killed or failed CLI run left behind; returns those removed.

    Only hidden folders whose name says they are staging folders (``.<name>.partial-*``, ``.<name>.*-partial``)
    are touched, whatever the output says.
    """
    removed = []
    for folder in staging_folders(output_text):
        if folder.name.startswith(".") and "partial" in folder.name and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def cli_module(name: str, title: str) -> Any:
    """``slicer.modules.<name>`` of the application.

    Raises:
        ValueError: outside the application (slicer-core, PythonSlicer), or the CLI module is not loaded.
    """
    import slicer

    if not hasattr(slicer, "app"):
        raise ValueError(f"wait=False needs the Slicer application (it runs the {title} module in the background); "
                         "outside it use wait=True.")
    module = getattr(getattr(slicer, "modules", None), name, None)
    if module is None:
        raise ValueError(f"The {title} CLI module is not loaded: check that the SpectrumAttack extension is "
                         "installed completely and its modules are enabled (Edit > Application Settings > Modules), "
                         "then restart Slicer; wait=True runs in this process meanwhile.")
    return module


class CLIRun:
    """Run a CLI module in the background and report to the caller.

    Args:
        module_name, title: ``slicer.modules`` attribute and the module's title (messages).
        parameters: the CLI parameters (nodes for images, values otherwise).
        folder: this run's temporary folder (removed when the run ends).
        on_progress: called with a :class:`JobProgress` whenever the CLI reports.
        on_done: called once on the main thread with ``(status, error)``: ``"completed"``, ``"cancelled"`` or
            ``"failed"`` and the CLI's error text.
    """

    def __init__(self, module_name: str, title: str, parameters: dict[str, Any], folder: Path,
                 on_progress: Callable[[JobProgress], None] | None,
                 on_done: Callable[[str, str | None], None]) -> None:
        self.module_name, self.title, self.parameters, self.folder = module_name, title, parameters, folder
        self.on_progress, self.on_done = on_progress, on_done
        self.cli_node: Any = None
        self.tracker = ProgressTracker()
        self._observer: int | None = None
        self._done = False
        self._cancelled = False

    @property
    def running(self) -> bool:
        """Whether the CLI process has not finished yet."""
        return not self._done

    def start(self) -> CLIRun:
        """Start the CLI process; returns at once.

        Raises:
            ValueError: the CLI module is not available (see :func:`cli_module`); the folder is removed.
        """
        import slicer

        try:
            module = cli_module(self.module_name, self.title)
            self.cli_node = slicer.cli.createNode(module, self.parameters)
            # Without this Slicer fills GetOutputText() only at the end: no step counter, no staging folders.
            self.cli_node.StartContinuousOutputUpdate()
            slicer.cli.run(module, self.cli_node, self.parameters, wait_for_completion=False, update_display=False)
        except BaseException:
            self._done = True
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self._observer = self.cli_node.AddObserver("ModifiedEvent", self._on_modified)
        return self

    def cancel(self) -> None:
        """Stop the CLI process (Slicer kills it); ``on_done`` then reports ``"cancelled"``."""
        self._cancelled = True
        if self.cli_node is not None and not self._done:
            self.cli_node.Cancel()

    def _on_modified(self, caller: Any, event: Any) -> None:
        if self._done:
            return
        status = caller.GetStatus()
        if status & caller.BusyMask:
            if self.on_progress is not None and not self._cancelled:
                self.on_progress(self.tracker.report(caller.GetProgress(), caller.GetOutputText() or "",
                                                     status == caller.Completing))
            return
        if status in (caller.Completed, caller.Cancelled) or status & caller.ErrorsMask:
            self._done = True
            import qt

            qt.QTimer.singleShot(0, lambda: self._finish(status))  # after this event: Slicer still uses the node

    def _finish(self, status: int) -> None:
        node = self.cli_node
        node.RemoveObserver(self._observer)
        output = node.GetOutputText() or ""
        if self._cancelled or status == node.Cancelled:
            outcome, error = "cancelled", None
        elif status == node.Completed:
            outcome, error = "completed", None
        else:
            outcome, error = "failed", (node.GetErrorText() or f"the {self.title} CLI failed").strip()
        if outcome != "completed":
            for folder in remove_staging(output):
                logging.info("SpectrumAttack: removed the staging folder %s of a stopped run", folder)
        try:
            self.on_done(outcome, error)
        finally:
            if node.GetScene() is not None:
                node.GetScene().RemoveNode(node)
            shutil.rmtree(self.folder, ignore_errors=True)


class RobustnessJob:
    """A job of the SpectrumAttackRobustnessCLI module (the Audit and Harden sections): start, cancel, and one
    ``on_finished(result, error)`` call, the result read by the subclass's :meth:`read_result` once the process
    completed ("cancelled" as the error when cancelled)."""

    #: what :meth:`read_result` reads, for the error message
    what = "results"
    on_finished: Callable[[Any, str | None], None] | None = None

    def begin(self, parameters: dict[str, Any], folder: Path, on_progress: Any) -> None:
        """Prepare the CLI run (subclasses call this at the end of their constructor)."""
        self._cancelled = False
        self.run = CLIRun("spectrumattackrobustnesscli", "SpectrumAttackRobustnessCLI", parameters, folder,
                          on_progress, self._done)

    @property
    def running(self) -> bool:
        return self.run.running

    def start(self) -> RobustnessJob:
        self.run.start()
        return self

    def cancel(self) -> None:
        self._cancelled = True
        self.run.cancel()

    def read_result(self) -> Any:
        """The job's result from the completed CLI run's files."""
        raise NotImplementedError

    def _done(self, status: str, error: str | None) -> None:
        result = None
        if self._cancelled or status == "cancelled":
            error = "cancelled"
        elif status == "completed":
            try:
                result = self.read_result()
            except (OSError, ValueError, KeyError) as exc:
                error = f"the {self.what} could not be read: {exc}"
        if self.on_finished is not None:
            self.on_finished(result, error)
