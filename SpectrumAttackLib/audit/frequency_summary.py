"""The audit's frequency analysis, summarised: per attack and budget, the mean over cases of each DCT band's energy
share of the perturbation and of the Dice with only that band kept, and of the radial sweep's low- and high-pass
Dice and energy at each cut-off (cells analysed with ``frequency_analysis``;
:mod:`SpectrumAttackLib.analysis.frequency`). Pure arithmetic on plain records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["frequency_summary"]

_RADIAL_KEYS = ("low_energy", "low_dice", "high_energy", "high_dice")


def _mean(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def frequency_summary(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"attack", "budget", "cases", "block_size", "clean_dice", "adversarial_dice",
    "bands": {band: {"energy", "dice"}}, "radial": [{"cutoff", "low_energy", "low_dice", "high_energy",
    "high_dice"}]}, ...]`` in cell order, over the cells that carry a ``"frequency"`` analysis (empty when none
    does); the radial rows are the cut-offs of the group's first cell (every cell of an audit uses the same)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("frequency"):
            groups.setdefault((cell["attack"], repr(cell["budget"])), []).append(cell)
    rows = []
    for group in groups.values():
        analyses = [c["frequency"] for c in group]
        bands = [b["band"] for b in analyses[0]["bands"]]
        cutoffs = [r["cutoff"] for r in analyses[0].get("radial", [])]
        rows.append({"attack": group[0]["attack"], "budget": group[0]["budget"], "cases": len(group),
                     "block_size": analyses[0]["block_size"], "clean_dice": _mean([a["clean_dice"] for a in analyses]),
                     "adversarial_dice": _mean([a["adversarial_dice"] for a in analyses]),
                     "bands": {band: {key: _mean([next(b[key] for b in a["bands"] if b["band"] == band)
                                                  for a in analyses]) for key in ("energy", "dice")}
                               for band in bands},
                     "radial": [{"cutoff": cutoff, **{key: _mean([_at_cutoff(a, cutoff, key) for a in analyses])
                                                     for key in _RADIAL_KEYS}} for cutoff in cutoffs]})
    return rows


def _at_cutoff(analysis: Mapping[str, Any], cutoff: float, key: str) -> Any:
    """The radial sweep's ``key`` at ``cutoff`` in one cell's analysis (``None`` when it has no such cut-off)."""
    return next((r[key] for r in analysis.get("radial", []) if r["cutoff"] == cutoff), None)
