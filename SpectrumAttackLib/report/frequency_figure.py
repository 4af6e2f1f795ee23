"""The frequency-analysis figure: per DCT band the perturbation's energy share and the Dice with only that band
kept; the radial sweep's Dice with the low-pass and with the high-pass, against the cut-off (see
:mod:`SpectrumAttackLib.analysis.frequency`).

The two panels are drawn by :func:`draw_band_panel` and :func:`draw_radial_panel` from plain records, so that the
figure of ``spectrum-attack analyze``, the frequency row of the case report
(:func:`~SpectrumAttackLib.report.figure.write_case_report`) and the audit's frequency figure
(:func:`~SpectrumAttackLib.report.audit_figure.frequency_figure_png`) show the same thing. Every bar carries its
value (3 decimals), so the numbers can be read off the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["band_title", "draw_band_panel", "draw_radial_panel", "write_frequency_figure"]


def draw_band_panel(ax: Any, bands: Sequence[Mapping[str, Any]], clean_dice: float | None, title: str) -> None:
    """Bars of each band's energy share (of the perturbation's squared L2 norm) and of the Dice with only that band
    kept; ``bands`` as :func:`~SpectrumAttackLib.analysis.frequency.frequency_analysis` gives them (``[{"band",
    "energy", "dice"}]``); ``clean_dice`` dashed (``None``: not drawn)."""
    xs = range(len(bands))
    for offset, key, label in ((-0.2, "energy", "energy share"), (0.2, "dice", "Dice, band kept")):
        heights = [float("nan") if b[key] is None else b[key] for b in bands]
        container = ax.bar([x + offset for x in xs], heights, width=0.4, label=label)
        ax.bar_label(container, fmt="%.3f", fontsize=6, padding=1)
    ax.set_xticks(list(xs), [b["band"] for b in bands])
    if clean_dice is not None:
        ax.axhline(clean_dice, color="black", linestyle="--", linewidth=0.8, label="clean Dice")
    ax.set_ylim(0, 1.1)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left")


def draw_radial_panel(ax: Any, radial: Sequence[Mapping[str, Any]], clean_dice: float | None,
                      adversarial_dice: float | None, title: str = "radial sweep") -> None:
    """Dice with the low-pass (ρ ≤ cut-off) and with the high-pass (ρ > cut-off) of the perturbation kept, and the
    low-pass energy share, against the normalised radius cut-off; ``radial`` as ``frequency_analysis`` gives it."""
    cutoffs = [r["cutoff"] for r in radial]
    ax.plot(cutoffs, [r["low_dice"] for r in radial], marker="o", label="low-pass kept (ρ ≤ cut-off)")
    ax.plot(cutoffs, [r["high_dice"] for r in radial], marker="s", label="high-pass kept (ρ > cut-off)")
    ax.plot(cutoffs, [r["low_energy"] for r in radial], linestyle=":", color="grey", label="low-pass energy share")
    if clean_dice is not None:
        ax.axhline(clean_dice, color="black", linestyle="--", linewidth=0.8, label="clean Dice")
    if adversarial_dice is not None:
        ax.axhline(adversarial_dice, color="red", linestyle="--", linewidth=0.8, label="adversarial Dice")
    ax.set_xlabel("normalised frequency radius cut-off", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def band_title(block_size: Sequence[int]) -> str:
    """Title of the band panel: the analysis' DCT block."""
    return f"DCT bands ({'x'.join(map(str, block_size))} blocks)"


def write_frequency_figure(path: Path, analysis: Mapping[str, Any], title: str) -> None:
    """Draw :func:`~SpectrumAttackLib.analysis.frequency.frequency_analysis`'s result into ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    draw_band_panel(fig.add_subplot(1, 2, 1), analysis["bands"], analysis["clean_dice"],
                    band_title(analysis["block_size"]))
    draw_radial_panel(fig.add_subplot(1, 2, 2), analysis["radial"], analysis["clean_dice"],
                      analysis["adversarial_dice"])
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
