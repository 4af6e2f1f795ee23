"""Helpers of the audit tests: a grid of four cheap cells, and the report page as headless Chromium renders it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

#: PGD at two budgets, Gaussian noise, DFB's high band.
TINY_GRID = {"attacks": {
    "pgd": {"eps": [4, 16], "params": {"steps": 2}},
    "gn": {"std": [8]},
    "dfb": {"freq_band": ["high"], "params": {"block_size": [8, 8, 8]}},
}}


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after headless Chromium rendered it."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]
    return subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=True).stdout
