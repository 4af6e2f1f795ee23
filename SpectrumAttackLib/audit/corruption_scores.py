"""The corruption track's answers, from its cells: Dice-vs-severity curves and ROOD-MRI's Overall and Degradation.

Pure arithmetic on plain records (no torch). A corruption cell is a record with ``"kind": "corruption"``, the
corruption's name in ``"attack"`` and its severity (1–5) in ``"budget"``.

Definitions (Boone et al., "ROOD-MRI: Benchmarking the robustness of deep learning segmentation models to
out-of-distribution and corrupted data in MRI", NeuroImage 2023, arXiv:2203.06060, and its reference code
``roodmri/metrics/calculate.py``), with ``D₀`` the clean mean Dice, ``D_s`` the mean Dice over cases at severity
``s`` and weights ``α^s``, ``α = 2/3`` (milder corruptions, more common in practice, weigh more):

    Overall (per corruption)      ``(D₀ + Σ_s α^s · D_s) / (1 + Σ_s α^s)``: the weighted mean Dice, clean included.
    Degradation (per corruption)  ``Σ_s α^s · (D₀ − D_s) / Σ_s α^s``: the weighted mean Dice lost (larger = worse).
    Overall, Degradation (model)  the mean of the per-corruption scores.

The sums run over the severities the grid has for that corruption.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ALPHA", "corruption_summary", "is_corruption", "rood_scores", "severity_curve"]

#: ROOD-MRI's severity weight α (weights α^severity).
ALPHA = 2.0 / 3.0


def is_corruption(cell: Mapping[str, Any]) -> bool:
    """Whether a cell record is of the corruption track (records without ``kind`` are attack cells)."""
    return cell.get("kind") == "corruption"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: Sequence[Any]) -> float | None:
    kept = [float(v) for v in values if _finite(v)]
    return sum(kept) / len(kept) if kept else None


def severity_curve(cells: Sequence[Mapping[str, Any]], model: str, corruption: str) -> list[dict[str, Any]]:
    """Mean Dice, 3-D SSIM and PSNR over cases at each severity of ``corruption`` on ``model``, ascending; each point
    also carries the physical ``value`` of the severity."""
    by_severity: dict[int, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if is_corruption(cell) and cell["model"] == model and cell["attack"] == corruption:
            by_severity.setdefault(int(cell["budget"]), []).append(cell)
    return [{"severity": s, "value": by_severity[s][0].get("value"),
             **{k: _mean([c.get(k) for c in by_severity[s]]) for k in ("dice", "ssim_3d", "psnr")},
             "cases": len(by_severity[s])} for s in sorted(by_severity)]


def rood_scores(curve: Sequence[Mapping[str, Any]], clean_dice: float | None,
                alpha: float = ALPHA) -> tuple[float | None, float | None]:
    """``(overall, degradation)`` of one Dice-vs-severity curve (see the module docstring); ``(None, None)`` without
    a clean Dice or any finite point."""
    points = [(int(p["severity"]), float(p["dice"])) for p in curve if _finite(p.get("dice"))]
    if not _finite(clean_dice) or not points:
        return None, None
    weights = [alpha**s for s, _ in points]
    overall = (clean_dice + sum(w * d for w, (_, d) in zip(weights, points, strict=True))) / (1 + sum(weights))
    degradation = sum(w * (clean_dice - d) for w, (_, d) in zip(weights, points, strict=True)) / sum(weights)
    return overall, degradation


def corruption_summary(cells: Sequence[Mapping[str, Any]], model: str, clean_dice: float | None) -> dict[str, Any]:
    """The corruption track of ``model``: ``{"alpha", "overall", "degradation", "per_corruption": {name: {"unit",
    "curve", "overall", "degradation"}}}`` (scores ``None`` without corruption cells)."""
    per: dict[str, Any] = {}
    for name in dict.fromkeys(c["attack"] for c in cells if is_corruption(c) and c["model"] == model):
        curve = severity_curve(cells, model, name)
        overall, degradation = rood_scores(curve, clean_dice)
        unit = next((c.get("unit") for c in cells if is_corruption(c) and c["attack"] == name), None)
        per[name] = {"unit": unit, "curve": curve, "overall": overall, "degradation": degradation}
    return {"alpha": ALPHA, "overall": _mean([v["overall"] for v in per.values()]),
            "degradation": _mean([v["degradation"] for v in per.values()]), "per_corruption": per}
