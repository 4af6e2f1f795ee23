"""The audit's frequency analysis, summarised: per attack and budget, the mean over cases of each DCT band's energy
share of the perturbation and of the Dice with only that band kept (cells analysed with ``frequency_analysis``;
:mod:`SpectrumAttackLib.analysis.frequency`). Pure arithmetic on plain records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["frequency_summary"]


def _mean(values: list[Any]) -> float | None:
    kept = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None


def frequency_summary(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{"attack", "budget", "cases", "adversarial_dice", "bands": {band: {"energy", "dice"}}}, ...]`` in cell
    order, over the cells that carry a ``"frequency"`` analysis (empty when none does)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("frequency"):
            groups.setdefault((cell["attack"], repr(cell["budget"])), []).append(cell)
    rows = []
    for group in groups.values():
        analyses = [c["frequency"] for c in group]
        bands = [b["band"] for b in analyses[0]["bands"]]
        rows.append({"attack": group[0]["attack"], "budget": group[0]["budget"], "cases": len(group),
                     "adversarial_dice": _mean([a["adversarial_dice"] for a in analyses]),
                     "bands": {band: {key: _mean([next(b[key] for b in a["bands"] if b["band"] == band)
                                                  for a in analyses]) for key in ("energy", "dice")}
                               for band in bands}})
    return rows
