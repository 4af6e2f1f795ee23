"""``report.html`` of one analysed case (``spectrum-attack analyze``): the case report and the frequency figure
beside the numbers they draw.

The page shows the case report (``report.png``: slices, perturbation, spectrum, per-organ Dice;
:func:`~SpectrumAttackLib.report.figure.write_case_report`) and the frequency figure (``frequency.png``;
:func:`~SpectrumAttackLib.report.frequency_figure.write_frequency_figure`) by reference (the files lie beside it),
then the case's metrics and the frequency analysis in tables. Every number cell carries a ``data-key`` naming the
value of the JSON files it shows: ``metrics/<clean|adversarial>/<metric>`` (``metrics.json``),
``frequency/<clean_dice|adversarial_dice|perturbation_l2>``, ``frequency/bands/<band>/<energy|dice>`` and
``frequency/radial/<cut-off>/<low_energy|low_dice|high_energy|high_dice>`` (``frequency.json``). No scripts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from SpectrumAttackLib.report.audit_html import STYLE, format_number

__all__ = ["write_case_page"]

_RADIAL = ("low_energy", "low_dice", "high_energy", "high_dice")


def _num(key: str, value: Any) -> str:
    return f'<td data-key="{html.escape(key, quote=True)}">{html.escape(format_number(value))}</td>'


def _name(text: Any) -> str:
    return f'<td class="name">{html.escape(str(text))}</td>'


def _table(ident: str, head: Sequence[str], rows: Sequence[str]) -> str:
    columns = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    return f"<table id='{ident}'><thead><tr>{columns}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    """The scalar metrics of the clean and the adversarial prediction, one row each."""
    sections = {s: metrics.get(s) or {} for s in ("clean", "adversarial")}
    names = list(dict.fromkeys(k for values in sections.values() for k, v in values.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)))
    rows = ["<tr>" + _name(section) + "".join(_num(f"metrics/{section}/{n}", values.get(n)) if n in values
                                              else "<td>n/a</td>" for n in names) + "</tr>"
            for section, values in sections.items()]
    return _table("metrics", ["prediction", *names], rows)


def _frequency_tables(analysis: Mapping[str, Any]) -> str:
    overview = ["<tr>" + "".join(_num(f"frequency/{k}", analysis[k])
                                 for k in ("clean_dice", "adversarial_dice", "perturbation_l2")) + "</tr>"]
    bands = ["<tr>" + _name(b["band"]) + _num(f"frequency/bands/{b['band']}/energy", b["energy"])
             + _num(f"frequency/bands/{b['band']}/dice", b["dice"]) + "</tr>" for b in analysis["bands"]]
    radial = ["<tr>" + _num(f"frequency/radial/{r['cutoff']:g}/cutoff", r["cutoff"])
              + "".join(_num(f"frequency/radial/{r['cutoff']:g}/{k}", r[k]) for k in _RADIAL) + "</tr>"
              for r in analysis["radial"]]
    return (_table("frequency-overview", ["clean Dice", "adversarial Dice", "perturbation L2 (model grid, [0, 1])"],
                   overview)
            + _table("frequency-bands", ["band kept", "energy share", "Dice"], bands)
            + _table("frequency-radial", ["cut-off (normalised radius)", "low-pass energy", "Dice, low-pass kept",
                                          "high-pass energy", "Dice, high-pass kept"], radial))


def write_case_page(path: Path, *, title: str, facts: Mapping[str, Any], metrics: Mapping[str, Any],
                    analysis: Mapping[str, Any], case_png: str, frequency_png: str) -> None:
    """Write the page into ``path``.

    Args:
        path: the HTML file; ``case_png`` and ``frequency_png`` are file names beside it.
        title: the page's heading.
        facts: settings shown as a two-column table (model, attack, ...).
        metrics: the case's metrics (:func:`~SpectrumAttackLib.metrics.evaluate.compute_case_metrics`), as written
            to ``metrics.json``.
        analysis: :func:`~SpectrumAttackLib.analysis.frequency.frequency_analysis`'s result, as written to
            ``frequency.json``.
        case_png, frequency_png: the figures' file names.
    """
    fact_rows = "".join(f"<tr>{_name(k)}{_name(v)}</tr>" for k, v in facts.items())
    block = "x".join(map(str, analysis["block_size"]))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<table id="settings"><tbody>{fact_rows}</tbody></table>
<h2>Case report</h2>
<p class="note">Clean and adversarial slices, the amplified perturbation, its block-DCT spectrum and the Dice per
organ (model grid).</p>
{_metrics_table(metrics)}
<img id="case-report" alt="case report: slices, perturbation, spectrum and Dice per organ"
 src="{html.escape(case_png)}">
<h2>Frequency analysis</h2>
<p class="note">The perturbation in {block} block-DCT bands: the share of its energy in each band and the Dice when
only that band of it is added to the clean image; then the radial sweep, keeping the coefficients whose normalised
frequency radius is at most the cut-off (low-pass; 0 = DC, 1 = the highest) or above it (high-pass). A model weak to
low frequencies keeps a low Dice under the low-pass; a voxel attack spreads over every band.</p>
<img id="frequency-figure" alt="frequency analysis: energy share and Dice per band, radial sweep"
 src="{html.escape(frequency_png)}">
{_frequency_tables(analysis)}
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
