"""Argument checks: the one source of error wording.

Every message has the form ``"<parameter> must be <constraint>, got <value!r>."`` so that users of the
Python API, the command line and Slicer read the same sentence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["check_block_size", "check_choice", "check_int", "check_range"]


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    hint: str = "",
) -> float:
    """Return ``value`` as a float if it lies in the given interval, else raise ``ValueError``.

    Args:
        name: parameter name used in the message.
        value: the value to check (a real number; bools are rejected).
        low, high: interval bounds; ``None`` means unbounded.
        low_inclusive, high_inclusive: whether the bounds belong to the interval.
        hint: extra text appended in parentheses (e.g. a unit reminder).

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is outside the interval or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number, got {value!r}.") from None
    value = float(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'[' if low_inclusive else '('}{lo}, {hi}{']' if high_inclusive else ')'}"
    suffix = f" ({hint})" if hint else ""
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        raise ValueError(f"{name} must be in {interval}{suffix}, got {value!r}.")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer within ``[low, high]``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}.")
    return value


def check_block_size(name: str, value: Any, ndim: int) -> tuple[int, ...]:
    """Return a block size as a tuple of ``ndim`` ints, each ≥ 2.

    An int is broadcast to every axis. Block sizes larger than the volume are checked later, against the
    images (see :func:`SpectrumAttackLib.transforms.blocks.check_blocks_fit`).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * ndim
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} must be a sequence of {ndim} integers, got {value!r}.")
    if len(value) != ndim:
        kind = "3D attacks (b1, b2, b3)" if ndim == 3 else "2D attacks (bh, bw)"
        raise ValueError(f"{name} must have {ndim} entries for {kind}, got {tuple(value)!r}.")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ValueError(f"{name} must contain integers >= 2, got {tuple(value)!r}.")
        out.append(int(v))
    return tuple(out)
