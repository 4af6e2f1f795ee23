"""What the scripted CLI modules print for Slicer: progress, staging folders, errors; and a console that cannot
fail on a file name. No ``slicer`` import (runs in the CLI process).

Slicer reads a CLI's standard output as bytes and shows it as UTF-8 (``vtkSlicerCLIModuleLogic``); Slicer 5.10 on
Windows starts the process without ``PYTHONUTF8``, so Python's console encoding there is the ANSI code page and
printing a path with characters outside it (``C:\\Users\\Zoë\\…`` is fine, ``…\\患者\\…`` is not) raised
``UnicodeEncodeError``. :func:`utf8_console` makes both streams UTF-8 with ``backslashreplace``, whatever the
platform.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["Reporter", "announce_staging", "utf8_console"]


def utf8_console() -> None:
    """Write stdout and stderr as UTF-8, never raising on a character (Slicer decodes the output as UTF-8)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="backslashreplace")


def announce_staging(folders: Iterable[Path]) -> None:
    """Tell the module where the staging folders are: a killed process (Cancel) cannot remove them itself, the
    module does (``clirun.remove_staging``)."""
    for folder in folders:
        print(f"SpectrumAttack staging {folder}", flush=True)


class Reporter:
    """Turns engine progress reports into ``<filter-progress>`` lines (flushed: Slicer reads them live) and one
    ``SpectrumAttack step <done>/<total> <stage> <message>`` line each (the module's step counter, loss, Dice).

    Args:
        offset, count: this is part ``offset`` of ``count`` equal parts of the run (batch mode).
    """

    def __init__(self, offset: int = 0, count: int = 1) -> None:
        self.offset, self.count = offset, count

    def __call__(self, report: Any) -> None:
        fraction = (self.offset + report.fraction) / self.count
        print(f"<filter-progress>{fraction:.4f}</filter-progress>", flush=True)
        print(f"SpectrumAttack step {report.done}/{report.total} {report.stage} {report.message}".rstrip(),
              flush=True)
