"""The audit report's sections on exact SSIM levels and on ensembles (SEA): how each level was reached, the attack
and budget that set each model's worst case with its slices, and the ensemble worst cases with their winners.

The slice figure of a level cell is the case report's drawing (:func:`~SpectrumAttackLib.report.figure.
write_case_report`) that the audit keeps beside the report while it writes it (``cellfig-<fingerprint>.png`` in
the same folder); the page embeds it, so it stays one self-contained file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ensembles_section", "levels_section"]


def _cell(text: Any, key: str | None = None) -> str:
    from SpectrumAttackLib.report.audit_html import format_number

    shown = format_number(text) if isinstance(text, (int, float)) or text is None else str(text)
    attribute = f' data-key="{html.escape(key, quote=True)}"' if key else ""
    align = "" if isinstance(text, (int, float)) or text is None else ' class="name"'
    return f"<td{attribute}{align}>{html.escape(shown)}</td>"


def _table(head: Sequence[str], rows: Sequence[str], ident: str) -> str:
    columns = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    return f"<table id='{ident}'><thead><tr>{columns}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(folder: Path, cells: Sequence[Mapping[str, Any]], model: str, level: str,
            worst: Mapping[str, Any]) -> str:
    match = next((c for c in cells if c["model"] == model and c.get("ssim_level") is not None
                  and f"{c['ssim_level']:.2f}" == level and c["case"] == worst["case"]
                  and c["attack"] == worst["attack"]), None)
    path = None if match is None else folder / f"cellfig-{match['fingerprint']}.png"
    if path is None or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt='worst case of {html.escape(model)} at SSIM {level}' "
            f"src='data:image/png;base64,{data}'><figcaption class='note'>{html.escape(worst['case'])}: "
            f"{html.escape(worst['attack'])} at {html.escape(str(worst['budget']))}, 3-D SSIM "
            f"{worst['ssim_3d']:.4f}, Dice {worst['dice']:.4f}</figcaption></figure>")


def levels_section(summary: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], folder: Path) -> str:
    """Per model and exact SSIM level: robust Dice, each family's budget / SSIM / Dice / how the level was reached,
    and the worst case with its slices. Empty when the audit ran no levels."""
    parts = []
    for model in summary["models"]:
        at_levels = summary["per_model"][model].get("at_levels") or {}
        if not at_levels:
            continue
        rows = []
        for level, entry in at_levels.items():
            for attack, family in entry["families"].items():
                how = ", ".join(f"{status} {count}" for status, count in family["status"].items())
                rows.append("<tr>" + _cell(level) + _cell(attack) + _cell(family["budget_name"])
                            + _cell(family["budget"], f"level/{model}/{level}/{attack}/budget")
                            + _cell(family["ssim_3d"], f"level/{model}/{level}/{attack}/ssim_3d")
                            + _cell(family["dice"], f"level/{model}/{level}/{attack}/dice")
                            + _cell(family["runs"]) + _cell(how) + "</tr>")
            rows.append("<tr>" + _cell(level) + _cell("worst case per volume") + _cell("") + _cell("") + _cell("")
                        + _cell(entry["dice"], f"level/{model}/{level}/dice") + _cell("") + _cell("") + "</tr>")
        parts.append(f"<h3>{html.escape(model)}</h3>" + _table(
            ("SSIM level", "attack", "budget", "mean budget found", "mean 3-D SSIM", "mean Dice", "mean runs",
             "how reached (volumes)"), rows, f"levels-{model}"))
        for level, entry in at_levels.items():
            if entry["cases"]:
                worst = min(entry["cases"].items(), key=lambda item: item[1]["dice"])
                parts.append(_figure(folder, cells, model, level, {"case": worst[0], **worst[1]}))
    if not parts:
        return ""
    note = ("<p class='note'>Every family driven per volume to the strongest budget of its knob whose output keeps "
            "the level's 3-D SSIM (bisection on fresh seeded runs, tolerance 0.002): reached = within the "
            "tolerance; projected = a run a little below the level scaled towards the clean image into the "
            "tolerance (clean + λ·(run − clean), λ ≥ 0.9; the budget shown is the run's, λ is in audit.json); "
            "unreachable = the SSIM stays above "
            "the level up to the knob's largest value; "
            "below-at-weakest = the weakest budget already falls below (not admissible); non-monotone = the "
            "SSIM did not fall with the budget on that volume; max-runs = the runs were spent (the best admissible "
            "run is kept). Worst case per volume: the lowest admissible Dice at the level, mean over volumes. The "
            "figure shows the volume and attack that set the lowest Dice.</p>")
    return "<h2>Robust Dice at exact SSIM levels</h2>" + note + "".join(parts)


def ensembles_section(summary: Mapping[str, Any]) -> str:
    """Per model, ensemble (SEA) and budget: the two worst-case aggregations and which attack won how often."""
    rows = []
    for model in summary["models"]:
        for ensemble, budgets in (summary["per_model"][model].get("ensembles") or {}).items():
            for budget, entry in budgets.items():
                wins = ", ".join(f"{a} {n}" for a, n in entry["wins"].items())
                voxel_wins = ", ".join(f"{a} {n}" for a, n in entry["voxel_wins"].items())
                rows.append("<tr>" + _cell(model) + _cell(ensemble) + _cell(budget)
                            + _cell(entry["mean_dice"], f"ensemble/{model}/{ensemble}/{budget}/mean_dice")
                            + _cell(wins)
                            + _cell(entry["voxel_dice"], f"ensemble/{model}/{ensemble}/{budget}/voxel_dice")
                            + _cell(voxel_wins) + "</tr>")
    if not rows:
        return ""
    note = ("<p class='note'>Mean Dice: per volume the lowest Dice over the ensemble's attacks, then the mean over "
            "volumes. Voxel Dice: Dice over all voxels of all volumes (per class, mean over foreground classes), "
            "each volume's attack chosen by SEA's greedy search (start at the class-balanced loss, switch volumes "
            "while the aggregated Dice falls). The columns after each say which attack won on how many volumes.</p>")
    return "<h2>Ensemble worst case (SEA)</h2>" + note + _table(
        ("model", "ensemble", "ε", "mean Dice (per-volume minimum)", "won by", "voxel-aggregated Dice (greedy)",
         "chosen"), rows, "ensembles")
