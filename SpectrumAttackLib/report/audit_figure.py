"""``curves.png`` of an audit: Dice vs budget for each attack, and Dice vs 3-D SSIM with every attack on one axes.

One panel per attack (its own budget axis; one line per model, the model's clean Dice dashed), one panel of the
corruption track (Dice vs severity, one line per corruption and model) when the audit has one, then the fair
comparison: mean Dice against mean 3-D SSIM for every attack family, corruption and model on the same axes (SSIM
decreasing to the right, i.e. more perceptible; corruptions in thin grey-edged lines), with the robust-Dice SSIM
levels marked and the points of the exact SSIM levels (``×``). The Dice axis is fitted to the data, so that the
curves of a robust model are not flattened on 0–1.

The frequency figure of an audit run with ``frequency_analysis`` (:func:`frequency_figure_png`, embedded in
``report.html``): one row per model, attack and budget, the band panel and the radial sweep of
:mod:`~SpectrumAttackLib.report.frequency_figure` drawn from the means over cases
(:func:`~SpectrumAttackLib.audit.frequency_summary.frequency_summary`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["frequency_figure_png", "write_curves"]

_MARKERS = "osD^v<>pXh*"
_STYLES = ("-", "--", ":", "-.")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _dice_range(summary: Mapping[str, Any]) -> tuple[float, float]:
    """A Dice axis fitted to the data (every curve point, level point and clean Dice), with a small margin."""
    values = []
    for own in summary["per_model"].values():
        values.append(own["clean_dice"])
        values += [p["dice"] for entry in own["attacks"].values() for p in entry["curve"]]
        values += [f["dice"] for level in (own.get("at_levels") or {}).values() for f in level["families"].values()]
        values += [p["dice"] for entry in ((own.get("corruptions") or {}).get("per_corruption") or {}).values()
                   for p in entry.get("curve", [])]
    values = [v for v in values if _finite(v)]
    if not values:
        return 0.0, 1.02
    low, high = min(values), max(values)
    margin = max(0.05 * (high - low), 0.01)
    return max(0.0, low - margin), min(1.02, high + margin)


def write_curves(path: Path, summary: Mapping[str, Any], title: str) -> None:
    """Draw the audit's curves from its summary (:func:`~SpectrumAttackLib.audit.summary.summarise`) into ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = list(summary["models"])
    attacks = list(dict.fromkeys(a for m in models for a in summary["per_model"][m]["attacks"]))
    corruptions = list(dict.fromkeys(c for m in models
                                     for c in (summary["per_model"][m].get("corruptions") or {}).get("per_corruption",
                                                                                                      {})))
    panels = len(attacks) + 1 + bool(corruptions)
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    colours = {m: f"C{i % 10}" for i, m in enumerate(models)}
    dice_range = _dice_range(summary)
    for index, attack in enumerate(attacks):
        ax = fig.add_subplot(rows, columns, index + 1)
        budget_name = ""
        for m_index, model in enumerate(models):
            own = summary["per_model"][model]
            entry = own["attacks"].get(attack)
            if entry is None:
                continue
            budget_name = entry["budget_name"]
            points = [(p["budget"], p["dice"]) for p in entry["curve"] if _finite(p["dice"])]
            labels = [str(b) for b, _ in points]
            xs = [b if _finite(b) else i for i, (b, _) in enumerate(points)]
            categorical = not all(_finite(b) for b, _ in points)
            ax.plot(xs, [d for _, d in points], marker=_MARKERS[m_index % len(_MARKERS)], color=colours[model],
                    linestyle="none" if categorical else "-", label=model)
            if categorical:
                ax.set_xticks(xs, labels)
            if _finite(own["clean_dice"]):
                ax.axhline(own["clean_dice"], color=colours[model], linestyle="--", linewidth=0.8)
        ax.set_title(f"{attack}: Dice vs {budget_name}", fontsize=9)
        ax.set_xlabel(budget_name + (" (0-255 scale)" if budget_name in ("eps", "std") else ""))
        ax.set_ylabel("mean Dice")
        ax.set_ylim(*dice_range)
        ax.grid(alpha=0.3)
        if len(models) > 1:
            ax.legend(fontsize=7)
    if corruptions:
        _corruption_panel(fig.add_subplot(rows, columns, panels - 1), summary, models, corruptions)
    ax = fig.add_subplot(rows, columns, panels)
    for m_index, model in enumerate(models):
        own = summary["per_model"][model]
        for a_index, attack in enumerate(attacks):
            entry = own["attacks"].get(attack)
            if entry is None:
                continue
            points = sorted((p["ssim_3d"], p["dice"]) for p in entry["curve"]
                            if _finite(p["ssim_3d"]) and _finite(p["dice"]))
            if points:
                ax.plot([s for s, _ in points], [d for _, d in points], color=f"C{a_index % 10}",
                        marker=_MARKERS[a_index % len(_MARKERS)], linestyle=_STYLES[m_index % len(_STYLES)],
                        label=attack if len(models) == 1 else f"{attack} ({model})")
        for c_index, name in enumerate(corruptions):
            entry = (own.get("corruptions") or {}).get("per_corruption", {}).get(name)
            points = sorted((p["ssim_3d"], p["dice"]) for p in (entry or {}).get("curve", [])
                            if _finite(p["ssim_3d"]) and _finite(p["dice"]))
            if points:
                ax.plot([s for s, _ in points], [d for _, d in points], color=f"C{(c_index + len(attacks)) % 10}",
                        marker="x", markersize=4, linewidth=0.8, linestyle=_STYLES[m_index % len(_STYLES)],
                        label=f"corruption {name}" + ("" if len(models) == 1 else f" ({model})"))
        for f_index, attack in enumerate(dict.fromkeys(a for level in (own.get("at_levels") or {}).values()
                                                       for a in level["families"])):
            points = sorted((f["ssim_3d"], f["dice"]) for level in own["at_levels"].values()
                            for a, f in level["families"].items() if a == attack
                            and _finite(f["ssim_3d"]) and _finite(f["dice"]))
            colour = f"C{(f_index + len(attacks) + len(corruptions)) % 10}"
            ax.plot([s for s, _ in points], [d for _, d in points], color=colour, marker="x",
                    linestyle=_STYLES[m_index % len(_STYLES)],
                    label=f"{attack} at exact levels" + ("" if len(models) == 1 else f" ({model})"))
        if _finite(own["clean_dice"]):
            ax.plot([1.0], [own["clean_dice"]], marker="*", color="black", markersize=9,
                    linestyle="none", label="clean" if len(models) == 1 else f"clean ({model})")
    for level in summary["levels"]:
        ax.axvline(float(level), color="grey", linestyle=":", linewidth=0.8)
    ax.invert_xaxis()
    ax.set_title(("attacks and corruptions" if corruptions else "all attacks") + ": Dice vs 3-D SSIM (right = more "
                 "visible)", fontsize=8)
    ax.set_xlabel("mean 3-D SSIM to the clean image")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(*dice_range)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6 if corruptions else 7, ncol=2 if corruptions else 1)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)


def _corruption_panel(ax: Any, summary: Mapping[str, Any], models: list[str], corruptions: list[str]) -> None:
    """Dice vs severity for every corruption (colour) and model (line style), clean Dice at severity 0."""
    for m_index, model in enumerate(models):
        own = summary["per_model"][model]
        track = (own.get("corruptions") or {}).get("per_corruption", {})
        for c_index, name in enumerate(corruptions):
            points = [(p["severity"], p["dice"]) for p in track.get(name, {}).get("curve", []) if _finite(p["dice"])]
            if _finite(own["clean_dice"]):
                points.insert(0, (0, own["clean_dice"]))
            if len(points) > 1:
                ax.plot([s for s, _ in points], [d for _, d in points], color=f"C{c_index % 10}",
                        marker=_MARKERS[c_index % len(_MARKERS)], markersize=3, linestyle=_STYLES[m_index % 4],
                        label=name if len(models) == 1 else f"{name} ({model})")
    ax.set_title("corruptions: Dice vs severity (0 = clean)", fontsize=9)
    ax.set_xlabel("severity")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)


def frequency_figure_png(summary: Mapping[str, Any], title: str) -> bytes | None:
    """The audit's frequency figure as PNG bytes, ``None`` when no cell was analysed.

    Per model and frequency row (attack, budget): left, each DCT band's mean energy share of the perturbation and
    the mean Dice with only that band kept; right, the radial sweep's mean Dice
    with the low-pass and the high-pass kept against the cut-off, with the model's clean and the row's adversarial
    Dice.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from SpectrumAttackLib.report.frequency_figure import band_title, draw_band_panel, draw_radial_panel

    rows = [(model, row) for model in summary["models"] for row in summary["per_model"][model].get("frequency") or []]
    if not rows:
        return None
    fig = Figure(figsize=(9, 2.9 * len(rows) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    for index, (model, row) in enumerate(rows):
        clean = summary["per_model"][model]["clean_dice"]
        name = f"{model}: {row['attack']} at {row['budget']} ({row['cases']} case{'s' * (row['cases'] != 1)})"
        bands = [{"band": band, **values} for band, values in row["bands"].items()]
        draw_band_panel(fig.add_subplot(len(rows), 2, 2 * index + 1), bands, clean if _finite(clean) else None,
                        f"{name}: {band_title(row['block_size'])}")
        draw_radial_panel(fig.add_subplot(len(rows), 2, 2 * index + 2), row.get("radial") or [],
                          clean if _finite(clean) else None, row["adversarial_dice"], f"{name}: radial sweep")
    fig.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
