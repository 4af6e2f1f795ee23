"""The audit's answers, computed from its cells: curves, worst-case robust Dice, half-Dice budgets, areas.

Pure arithmetic on plain records (no torch), so it can be checked on hand-made cells.

Records:
    a *cell* is one case × model × attack × budget: ``{"case", "model", "attack", "budget_name", "budget",
    "dice", "ssim_3d", "dice_per_class", ...}``; a *clean* record is one case × model without attack:
    ``{"case", "model", "dice", "dice_per_class", ...}``. Dice values are fractions in [0, 1] or ``None``.

Definitions:
    robust Dice at SSIM level s (per model)
        for each case, the lowest Dice among the clean prediction and every cell whose 3-D SSIM is ≥ s (the
        worst attack the perceptibility level allows), then the mean over cases. It never exceeds the clean
        Dice, and it can only fall as s loosens (more cells qualify).
    Dice-vs-budget curve (per model and attack)
        the mean Dice over cases at each budget, in increasing budget order. For budgets where 0 means "no
        change" (ρ, ε, σ) the clean mean Dice is the point at budget 0.
    half-Dice budget
        the budget where the curve first reaches half the clean mean Dice, linearly interpolated between
        neighbouring points; ``None`` when it never does within the grid.
    area under the curve
        the trapezoidal area under the curve (Dice × budget units) and the same divided by the budget range
        (``auc_normalised``: the curve's mean Dice over the range, comparable between attacks). ``None`` for a
        curve of one point and for band-name budgets (DFB), which have no order.
    corruption track
        cells with ``"kind": "corruption"`` (scanner artefacts) take no part in the above; they get their own
        Dice-vs-severity curves and ROOD-MRI's Overall and Degradation scores
        (:mod:`SpectrumAttackLib.audit.corruption_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from SpectrumAttackLib.audit.corruption_scores import corruption_summary, is_corruption
from SpectrumAttackLib.audit.frequency_summary import frequency_summary

__all__ = ["SSIM_LEVELS", "ZERO_BUDGET_IS_CLEAN", "area_under_curve", "dice_curve", "half_dice_budget",
           "robust_dice", "summarise"]

#: the perceptibility levels of the robust Dice (3-D SSIM of the attacked image to the clean one).
SSIM_LEVELS: tuple[float, ...] = (0.99, 0.95, 0.90)
#: budget parameters whose value 0 leaves the image unchanged (the clean point anchors their curves).
ZERO_BUDGET_IS_CLEAN = ("rho", "eps", "std")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: Iterable[Any]) -> float | None:
    kept = [float(v) for v in values if _finite(v)]
    return sum(kept) / len(kept) if kept else None


def level_key(level: float) -> str:
    """The JSON key of an SSIM level (``0.9`` → ``"0.90"``)."""
    return f"{level:.2f}"


def robust_dice(cells: Sequence[Mapping[str, Any]], clean: Sequence[Mapping[str, Any]], model: str,
                level: float) -> dict[str, Any]:
    """Worst-case robust Dice of ``model`` at 3-D SSIM ≥ ``level`` (see the module docstring).

    Returns:
        ``{"dice": mean over cases or None, "cases": {case: {"dice", "attack", "budget"}}}`` where ``attack`` is
        the cell that gave the case's lowest Dice (``"clean"`` when no admissible attack went below clean).
    """
    per_case: dict[str, dict[str, Any]] = {}
    for record in clean:
        if record["model"] == model and _finite(record.get("dice")):
            per_case[record["case"]] = {"dice": float(record["dice"]), "attack": "clean", "budget": None}
    for cell in cells:
        if cell["model"] != model or not _finite(cell.get("dice")) or not _finite(cell.get("ssim_3d")):
            continue
        if cell["ssim_3d"] < level:
            continue
        worst = per_case.get(cell["case"])
        if worst is None or cell["dice"] < worst["dice"]:
            per_case[cell["case"]] = {"dice": float(cell["dice"]), "attack": cell["attack"], "budget": cell["budget"]}
    return {"dice": _mean(v["dice"] for v in per_case.values()), "cases": dict(sorted(per_case.items()))}


def dice_curve(cells: Sequence[Mapping[str, Any]], model: str, attack: str) -> list[dict[str, Any]]:
    """Mean Dice, 3-D SSIM, PSNR and fooling rate over cases at each budget of ``attack`` on ``model``.

    Returns:
        ``[{"budget", "dice", "ssim_3d", "psnr", "fooling_rate", "linf", "cases"}, ...]``, budgets ascending
        (band names in grid order).
    """
    by_budget: dict[Any, list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell["model"] == model and cell["attack"] == attack:
            by_budget.setdefault(cell["budget"], []).append(cell)
    budgets = list(by_budget)
    if all(_finite(b) for b in budgets):
        budgets.sort()
    return [{"budget": b, **{k: _mean(c.get(k) for c in by_budget[b])
                             for k in ("dice", "ssim_3d", "psnr", "fooling_rate", "linf")},
             "cases": len(by_budget[b])} for b in budgets]


def _anchored(curve: Sequence[Mapping[str, Any]], clean_dice: float | None, budget_name: str
              ) -> list[tuple[float, float]]:
    points = [(float(p["budget"]), float(p["dice"])) for p in curve if _finite(p["budget"]) and _finite(p["dice"])]
    if budget_name in ZERO_BUDGET_IS_CLEAN and _finite(clean_dice) and (not points or points[0][0] > 0):
        points.insert(0, (0.0, float(clean_dice)))
    return points


def half_dice_budget(curve: Sequence[Mapping[str, Any]], clean_dice: float | None, budget_name: str) -> float | None:
    """The budget where the curve first falls to ``clean_dice / 2`` (linear interpolation), or ``None``."""
    if not _finite(clean_dice):
        return None
    target = float(clean_dice) / 2
    points = _anchored(curve, clean_dice, budget_name)
    for index, (budget, dice) in enumerate(points):
        if dice <= target:
            if index == 0:
                return budget
            b0, d0 = points[index - 1]
            return b0 + (d0 - target) / (d0 - dice) * (budget - b0)
    return None


def area_under_curve(curve: Sequence[Mapping[str, Any]], clean_dice: float | None, budget_name: str
                     ) -> tuple[float | None, float | None]:
    """``(area, area / budget range)`` of the trapezoidal Dice-vs-budget curve; ``(None, None)`` under 2 points."""
    points = _anchored(curve, clean_dice, budget_name)
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None, None
    area = sum((b1 - b0) * (d0 + d1) / 2 for (b0, d0), (b1, d1) in pairwise(points))
    return area, area / (points[-1][0] - points[0][0])


def _per_class(records: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    names: list[str] = []
    for record in records:
        names += [n for n in (record.get("dice_per_class") or {}) if n not in names]
    return {n: _mean((r.get("dice_per_class") or {}).get(n) for r in records) for n in names}


def summarise(cells: Sequence[Mapping[str, Any]], clean: Sequence[Mapping[str, Any]],
              levels: Sequence[float] = SSIM_LEVELS) -> dict[str, Any]:
    """Everything the report shows, per model: clean Dice, robust Dice per level, per-attack curves and figures,
    per-organ mean Dice (clean and at each attack budget).

    Returns:
        ``{"levels": ["0.99", ...], "models": [...], "per_model": {model: {"clean_dice", "robust_dice": {level:
        value}, "robust_cases": {level: {case: {...}}}, "attacks": {attack: {"budget_name", "curve",
        "half_dice_budget", "auc", "auc_normalised"}}, "per_class": {"clean": {...}, "<attack> <budget>": {...}},
        "corruptions": corruption_summary(...), "frequency": frequency_summary(...)}}}`` (the corruption track,
        whose cells take no part in the rest; the frequency analysis of the attack cells that have one).
    """
    models = list(dict.fromkeys([r["model"] for r in clean] + [c["model"] for c in cells]))
    corrupted = [c for c in cells if is_corruption(c)]
    cells = [c for c in cells if not is_corruption(c)]
    summary: dict[str, Any] = {"levels": [level_key(x) for x in levels], "models": models, "per_model": {}}
    for model in models:
        own_clean = [r for r in clean if r["model"] == model]
        own_cells = [c for c in cells if c["model"] == model]
        clean_dice = _mean(r.get("dice") for r in own_clean)
        robust = {level_key(x): robust_dice(cells, clean, model, x) for x in levels}
        per_attack: dict[str, Any] = {}
        for attack in dict.fromkeys(c["attack"] for c in own_cells):
            budget_name = next(c["budget_name"] for c in own_cells if c["attack"] == attack)
            curve = dice_curve(cells, model, attack)
            auc, auc_normalised = area_under_curve(curve, clean_dice, budget_name)
            per_attack[attack] = {"budget_name": budget_name, "curve": curve,
                                  "half_dice_budget": half_dice_budget(curve, clean_dice, budget_name),
                                  "auc": auc, "auc_normalised": auc_normalised}
        per_class = {"clean": _per_class(own_clean)}
        for cell in own_cells:
            key = f"{cell['attack']} {cell['budget']}"
            if key not in per_class:
                per_class[key] = _per_class([c for c in own_cells
                                             if c["attack"] == cell["attack"] and c["budget"] == cell["budget"]])
        summary["per_model"][model] = {
            "clean_dice": clean_dice,
            "robust_dice": {k: v["dice"] for k, v in robust.items()},
            "robust_cases": {k: v["cases"] for k, v in robust.items()},
            "attacks": per_attack,
            "per_class": per_class,
            "corruptions": corruption_summary(corrupted, model, clean_dice),
            "frequency": frequency_summary(own_cells),
        }
    return summary
