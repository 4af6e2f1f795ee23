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
    robust Dice at an exact SSIM level (``at_levels``, from the cells of ``ssim_levels``)
        every family driven per volume to the strongest budget whose 3-D SSIM stays ≥ the level; per volume the
        lowest Dice among those cells that are admissible (SSIM ≥ level), then the mean over volumes. Every family
        is compared at the same SSIM on every volume; each level says how each family reached it.
    ensemble worst case (``ensembles``, SEA)
        for the cells of one ensemble at one budget (SEA: APGD with three losses): ``mean_dice`` takes per volume
        the lowest Dice over the ensemble's attacks, then the mean over volumes (with per-volume Dice the worst
        case is exactly this per-volume minimum); ``voxel_dice`` is the Dice aggregated over all voxels of all
        volumes (per class ``2·ΣTP / (ΣP + ΣR)``, mean over foreground classes), for which the worst choice is not
        per volume: SEA's greedy search starts every volume at the class-balanced loss and switches volumes one at
        a time to the attack that lowers the aggregated Dice most, in seeded random order, until a pass gains less
        than 1e-6 (at most 1000 passes). Each volume records which attack won.
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

__all__ = ["SSIM_LEVELS", "ZERO_BUDGET_IS_CLEAN", "area_under_curve", "dice_at_levels", "dice_curve",
           "ensemble_worst_case", "half_dice_budget", "robust_dice", "summarise", "voxel_dice"]

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


def dice_at_levels(cells: Sequence[Mapping[str, Any]], model: str) -> dict[str, Any]:
    """Robust Dice of ``model`` at each exact SSIM level (cells with ``ssim_level``; see the module docstring).

    Returns:
        ``{level: {"dice", "cases": {case: {"dice", "attack", "budget", "ssim_3d"}}, "families": {attack:
        {"dice", "ssim_3d", "budget", "runs", "weight", "status": {status: count}}}}}`` (``weight``: the mean
        projection weight, 1 where every volume's level is a run).
    """
    out: dict[str, Any] = {}
    own = [c for c in cells if c["model"] == model and c.get("ssim_level") is not None]
    for level in sorted({c["ssim_level"] for c in own}, reverse=True):
        at = [c for c in own if c["ssim_level"] == level]
        per_case: dict[str, dict[str, Any]] = {}
        for cell in at:
            if not _finite(cell.get("dice")) or not _finite(cell.get("ssim_3d")) or cell["ssim_3d"] < level:
                continue
            worst = per_case.get(cell["case"])
            if worst is None or cell["dice"] < worst["dice"]:
                per_case[cell["case"]] = {k: cell[k] for k in ("dice", "attack", "budget", "ssim_3d")}
        families: dict[str, Any] = {}
        for attack in dict.fromkeys(c["attack"] for c in at):
            mine = [c for c in at if c["attack"] == attack]
            statuses: dict[str, int] = {}
            for c in mine:
                statuses[c["ssim_search"]["status"]] = statuses.get(c["ssim_search"]["status"], 0) + 1
            families[attack] = {"budget_name": mine[0]["budget_name"], "status": statuses,
                                **{k: _mean(c.get(k) for c in mine) for k in ("dice", "ssim_3d", "budget")},
                                "runs": _mean(c["ssim_search"]["runs"] for c in mine),
                                "weight": _mean(c["ssim_search"].get("weight", 1.0) for c in mine)}
        out[level_key(level)] = {"dice": _mean(v["dice"] for v in per_case.values()),
                                 "cases": dict(sorted(per_case.items())), "families": families}
    return out


def voxel_dice(counts: Iterable[Mapping[str, Sequence[int]]]) -> float | None:
    """Dice aggregated over all voxels of several volumes: per foreground class ``2·ΣI / (ΣP + ΣR)`` over the
    classes present in a prediction or a reference, then the mean (``None`` when there are none)."""
    totals: dict[str, list[float]] = {}
    for record in counts:
        for key in ("intersection", "prediction", "reference"):
            values = record[key]
            known = totals.setdefault(key, [0.0] * len(values))
            for i, v in enumerate(values):
                known[i] += v
    if not totals:
        return None
    scores = [2 * i / (p + r) for i, p, r in zip(totals["intersection"][1:], totals["prediction"][1:],
                                                totals["reference"][1:], strict=True) if p + r > 0]
    return sum(scores) / len(scores) if scores else None


#: SEA's greedy search starts every volume at this member of the ensemble where it has one.
GREEDY_START = "balanced-masked-ce"


def _greedy_voxel_choice(options: dict[str, dict[str, Mapping[str, Any]]], seed: int) -> dict[str, str]:
    """Per case, the ensemble member whose counts SEA's greedy search keeps (see the module docstring)."""
    import random

    start = {case: next((a for a, c in by.items() if c.get("params", {}).get("loss") == GREEDY_START), next(iter(by)))
             for case, by in options.items()}
    choice = dict(start)
    current = voxel_dice(options[c][a]["voxel_counts"] for c, a in choice.items())
    rng = random.Random(seed)
    for _ in range(1000):
        gained = 0.0
        order = sorted(options)
        rng.shuffle(order)
        for case in order:
            for attack in options[case]:
                trial = {**choice, case: attack}
                value = voxel_dice(options[c][a]["voxel_counts"] for c, a in trial.items())
                if value is not None and current is not None and value < current:
                    gained += current - value
                    choice, current = trial, value
        if gained < 1e-6:
            break
    return choice


def ensemble_worst_case(cells: Sequence[Mapping[str, Any]], model: str, seed: int = 0) -> dict[str, Any]:
    """Per ensemble and budget, the worst case over its attacks (see the module docstring).

    Returns:
        ``{ensemble: {budget: {"mean_dice", "voxel_dice", "cases": {case: {"dice", "attack", "voxel_attack"}},
        "wins": {attack: volumes}, "voxel_wins": {...}, "aggregation": {...}}}}``.
    """
    out: dict[str, Any] = {}
    own = [c for c in cells if c["model"] == model and c.get("ensemble") and c.get("ssim_level") is None]
    for ensemble in dict.fromkeys(c["ensemble"] for c in own):
        out[ensemble] = {}
        for budget in dict.fromkeys(c["budget"] for c in own if c["ensemble"] == ensemble):
            group = [c for c in own if c["ensemble"] == ensemble and c["budget"] == budget]
            options: dict[str, dict[str, Mapping[str, Any]]] = {}
            for cell in group:
                options.setdefault(cell["case"], {})[cell["attack"]] = cell
            cases = {}
            for case, by in sorted(options.items()):
                scored = {a: c for a, c in by.items() if _finite(c.get("dice"))}
                winner = min(scored, key=lambda a: scored[a]["dice"]) if scored else None
                cases[case] = {"dice": None if winner is None else scored[winner]["dice"], "attack": winner}
            counted = {case: by for case, by in options.items() if all("voxel_counts" in c for c in by.values())}
            choice = _greedy_voxel_choice(counted, seed) if counted else {}
            for case, attack in choice.items():
                cases[case]["voxel_attack"] = attack
            wins: dict[str, int] = {}
            voxel_wins: dict[str, int] = {}
            for case in cases.values():
                if case["attack"] is not None:
                    wins[case["attack"]] = wins.get(case["attack"], 0) + 1
                if case.get("voxel_attack"):
                    voxel_wins[case["voxel_attack"]] = voxel_wins.get(case["voxel_attack"], 0) + 1
            out[ensemble][str(budget)] = {
                "mean_dice": _mean(c["dice"] for c in cases.values()),
                "voxel_dice": voxel_dice(counted[c][a]["voxel_counts"] for c, a in choice.items()) if choice else None,
                "cases": cases, "wins": wins, "voxel_wins": voxel_wins,
                "aggregation": {
                    "mean_dice": "per volume the lowest Dice over the ensemble's attacks, then the mean over volumes",
                    "voxel_dice": "Dice over all voxels of all volumes, each volume's attack chosen by SEA's greedy "
                                  "search"},
            }
    return out


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
    every_cell, cells = cells, [c for c in cells if c.get("ssim_level") is None]  # curves: the grid's budgets
    for model in models:
        own_clean = [r for r in clean if r["model"] == model]
        own_cells = [c for c in cells if c["model"] == model]
        clean_dice = _mean(r.get("dice") for r in own_clean)
        robust = {level_key(x): robust_dice(every_cell, clean, model, x) for x in levels}
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
            "at_levels": dice_at_levels(every_cell, model),
            "ensembles": ensemble_worst_case(cells, model),
        }
    return summary
