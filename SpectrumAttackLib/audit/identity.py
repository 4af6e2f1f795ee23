"""What identifies a case's data in the audit's fingerprints: its content, never its path.

A cell reused by ``--resume`` must have been computed from the same voxels, geometry and labels; a file replaced
under the same name is another case. Files are identified by the sha256 of their bytes (every image channel and the
labels, in order), arrays by the sha256 of their voxels, shape, dtype and IJK→RAS affine.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["array_digest", "files_digest"]

_CHUNK = 1 << 20


def files_digest(paths: Sequence[str | os.PathLike | None]) -> str:
    """sha256 (hex) over the bytes of every file in ``paths`` (None entries, e.g. no labels, count as absent).

    Raises:
        FileNotFoundError: a path that is not a file.
    """
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            digest.update(b"\0none\0")
            continue
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"case file {str(path)!r} must exist to identify the case, got no such file.")
        digest.update(f"\0file {path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def array_digest(array: np.ndarray, affine: Any, labels: np.ndarray | None = None) -> str:
    """sha256 (hex) of an image's voxels, shape, dtype and 4×4 affine, and of its labels (or their absence)."""
    digest = hashlib.sha256()
    for part in (array, None if labels is None else labels):
        if part is None:
            digest.update(b"\0none\0")
            continue
        part = np.ascontiguousarray(part)
        digest.update(f"\0{part.dtype.str} {part.shape}\0".encode())
        digest.update(part.tobytes())
    digest.update(np.asarray(affine, dtype=np.float64).tobytes())
    return digest.hexdigest()
