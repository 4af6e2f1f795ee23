"""Small volumes with hand-computable overlap, shared by the metrics tests (a uniquely named module, so it
cannot collide with another folder's ``conftest``)."""

from __future__ import annotations

import numpy as np

SIZE = 16


def cube(start: tuple[int, int, int], edge: int = 4, label: int = 1, size: int = SIZE) -> np.ndarray:
    """``[size]³`` int64 map with one ``edge``³ cube of ``label`` starting at ``start``."""
    seg = np.zeros((size, size, size), dtype=np.int64)
    i, j, k = start
    seg[i : i + edge, j : j + edge, k : k + edge] = label
    return seg
