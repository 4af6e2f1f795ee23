"""Terminal progress bars for long CLI loops, fed directly or from :class:`SpectrumAttackLib.runtime.Progress`.

The bar writes to stderr (stdout stays clean for results and piping) and shows the elapsed time and the ETA. It
switches itself off when the stream is not a terminal (logs, CI, Slicer's CLI runner), unless ``force=True``.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm import tqdm

from SpectrumAttackLib.checks import check_int
from SpectrumAttackLib.runtime import Progress, ProgressCallback

__all__ = ["ProgressBar", "progress_bar"]


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar:
    """A ``tqdm`` bar with a :class:`Progress` adapter; use :func:`progress_bar` to make one.

    Attributes:
        enabled: whether anything is drawn.
    """

    def __init__(self, total: int, desc: str, *, force: bool = False, file: IO[str] | None = None, unit: str = "it",
                 log_lines: bool = False):
        total = check_int("total", total, 0)
        stream = sys.stderr if file is None else file
        self.enabled = bool(force or _is_tty(stream))
        self._bar = tqdm(total=total, desc=desc, file=stream, disable=not self.enabled, unit=unit, dynamic_ncols=True)
        self._lines = (stream, desc, time.monotonic()) if log_lines and not self.enabled else None
        self._logged = 0  # units done, counted here (a disabled tqdm bar does not count)

    @property
    def done(self) -> int:
        """Units finished so far."""
        return int(self._bar.n)

    @property
    def total(self) -> int:
        """Units in the job."""
        return int(self._bar.total or 0)

    def update(self, n: int = 1, message: str = "") -> None:
        """Advance by ``n`` units, optionally replacing the text after the bar."""
        if message:
            self._bar.set_postfix_str(message, refresh=False)
        self._bar.update(n)
        if self._lines is not None:
            stream, desc, started = self._lines
            self._logged += n
            elapsed = time.monotonic() - started
            eta = elapsed / self._logged * (self.total - self._logged) if self._logged else float("nan")
            print(f"{desc} {self._logged}/{self.total}: {message}; elapsed {_clock(elapsed)}, ETA {_clock(eta)}",
                  file=stream, flush=True)

    def report(self, progress: Progress) -> None:
        """Show one :class:`Progress` report: jump to ``progress.done`` of ``progress.total``.

        A smaller ``done`` than before, or a new ``total``, starts the bar again (a new stage or restart).
        """
        if progress.total != self.total or progress.done < self.done:
            self._bar.reset(total=progress.total)
        text = " ".join(t for t in (progress.stage, progress.message) if t)
        self.update(progress.done - self.done, text)

    def as_callback(self) -> ProgressCallback:
        """The ``progress=`` callback for Lib functions (attacks, tiling, training) that drives this bar."""
        return self.report

    def close(self) -> None:
        """Finish the bar (leaves the last state on screen)."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _clock(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12 s``."""
    if seconds != seconds:  # NaN: nothing done yet
        return "unknown"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_bar(
    total: int, desc: str, *, force: bool = False, file: IO[str] | None = None, unit: str = "it",
    log_lines: bool = False,
) -> ProgressBar:
    """A progress bar on stderr with ETA, off when stderr is not a terminal unless ``force``.

    Args:
        total: units of work (≥ 0).
        desc: the label before the bar ("attack", "cases").
        force: draw even when the stream is not a terminal.
        file: the stream; default ``sys.stderr``.
        unit: the unit name shown in the rate.
        log_lines: when the stream is not a terminal (a batch job's log), write one line per :meth:`~ProgressBar.
            update` instead: ``desc done/total: message; elapsed …, ETA …``.

    Example:
        >>> with progress_bar(attack.steps, "attack") as bar:
        ...     result = attack(images, labels, progress=bar.as_callback())
        >>> with progress_bar(len(cases), "cases") as bar:
        ...     for case in cases:
        ...         evaluate(case); bar.update(message=case)
    """
    return ProgressBar(total, desc, force=force, file=file, unit=unit, log_lines=log_lines)
