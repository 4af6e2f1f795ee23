"""The frequency-analysis figure: per DCT band the perturbation's energy share and the Dice with only that band
kept; the radial sweep's Dice with the low-pass and with the high-pass, against the cut-off (see
:mod:`SpectrumAttackLib.analysis.frequency`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_frequency_figure"]


def write_frequency_figure(path: Path, analysis: Mapping[str, Any], title: str) -> None:
    """Draw :func:`~SpectrumAttackLib.analysis.frequency.frequency_analysis`'s result into ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    bands = analysis["bands"]
    ax = fig.add_subplot(1, 2, 1)
    xs = range(len(bands))
    ax.bar([x - 0.2 for x in xs], [b["energy"] for b in bands], width=0.4, label="energy share")
    ax.bar([x + 0.2 for x in xs], [b["dice"] for b in bands], width=0.4, label="Dice, band kept")
    ax.set_xticks(list(xs), [b["band"] for b in bands])
    ax.axhline(analysis["clean_dice"], color="black", linestyle="--", linewidth=0.8, label="clean Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"DCT bands ({'x'.join(map(str, analysis['block_size']))} blocks)", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    radial = analysis["radial"]
    cutoffs = [r["cutoff"] for r in radial]
    ax.plot(cutoffs, [r["low_dice"] for r in radial], marker="o", label="low-pass kept (ρ ≤ cut-off)")
    ax.plot(cutoffs, [r["high_dice"] for r in radial], marker="s", label="high-pass kept (ρ > cut-off)")
    ax.plot(cutoffs, [r["low_energy"] for r in radial], linestyle=":", color="grey", label="low-pass energy share")
    ax.axhline(analysis["clean_dice"], color="black", linestyle="--", linewidth=0.8, label="clean Dice")
    ax.axhline(analysis["adversarial_dice"], color="red", linestyle="--", linewidth=0.8, label="adversarial Dice")
    ax.set_xlabel("normalised frequency radius cut-off")
    ax.set_ylim(0, 1.02)
    ax.set_title("radial sweep", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
