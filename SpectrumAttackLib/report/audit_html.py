"""``report.html`` of an audit: one self-contained page (images embedded, no scripts, no external files).

Sections: the settings, worst-case robust Dice per model and SSIM level (models side by side), the exact SSIM levels
and ensembles where the audit ran them (:mod:`~SpectrumAttackLib.report.audit_levels_html`), per attack the
half-clean-Dice budget and the area under the Dice-vs-budget curve with the curve's points, the curves figure,
per-organ mean Dice for every model (clean and at each attack budget) and every cell. Each number cell carries a
``data-key`` naming the value of ``audit.json`` it shows (``robust/<model>/<level>``,
``attack/<model>/<attack>/half_dice_budget``, ``class/<model>/<column>/<organ>``, ``cell/<index>/<metric>``;
the corruption track: ``corruption/<model>/overall``, ``corruption/<model>/<name>/degradation``,
``corruption/<model>/<name>/<severity>/dice``; the frequency analysis: ``frequency/<model>/<row>/<band>/dice`` and
``.../energy``, its radial sweep ``frequency/<model>/<row>/radial/<cut-off>/low_dice`` (``high_dice``,
``low_energy``, ``high_energy``)), so the page can be checked against the JSON. The frequency analysis is also
drawn (:func:`~SpectrumAttackLib.report.audit_figure.frequency_figure_png`) and inlined beside its tables.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DIGITS", "STYLE", "format_number", "write_report"]

#: decimals of every number on the page.
DIGITS = 4

#: the stylesheet of the report pages (the audit's and the case page, :mod:`~SpectrumAttackLib.report.case_html`).
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th:first-child, td.name { text-align: left; }
thead th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.85em; max-width: 60em; }
"""


def format_number(value: Any) -> str:
    """How the page shows a value: ``DIGITS`` decimals, ``n/a`` for a missing one, text as is."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{DIGITS}f}"


def _num(key: str, value: Any) -> str:
    return f'<td data-key="{html.escape(key, quote=True)}">{html.escape(format_number(value))}</td>'


def _name(text: Any) -> str:
    return f'<td class="name">{html.escape(str(text))}</td>'


def _head(*columns: str) -> str:
    return "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead>"


def _robust_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for model in summary["models"]:
        own = summary["per_model"][model]
        cells = [_name(model), _num(f"clean/{model}", own["clean_dice"])]
        cells += [_num(f"robust/{model}/{level}", own["robust_dice"][level]) for level in summary["levels"]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = _head("model", "clean Dice", *(f"robust Dice, SSIM ≥ {level}" for level in summary["levels"]))
    return f"<table id='robust'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _attack_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for model in summary["models"]:
        for attack, entry in summary["per_model"][model]["attacks"].items():
            key = f"attack/{model}/{attack}"
            points = "; ".join(f"{b}: {format_number(p['dice'])} (SSIM {format_number(p['ssim_3d'])})"
                               for b, p in ((p["budget"], p) for p in entry["curve"]))
            rows.append("<tr>" + _name(model) + _name(attack) + _name(entry["budget_name"])
                        + _num(f"{key}/half_dice_budget", entry["half_dice_budget"])
                        + _num(f"{key}/auc", entry["auc"]) + _num(f"{key}/auc_normalised", entry["auc_normalised"])
                        + _name(points) + "</tr>")
    head = _head("model", "attack", "budget", "budget at half clean Dice", "area under Dice-vs-budget",
                 "area / budget range", "mean Dice (3-D SSIM) per budget")
    return f"<table id='attacks'>{head}<tbody>{''.join(rows)}</tbody></table>"


def _class_tables(summary: Mapping[str, Any]) -> str:
    parts = []
    for model in summary["models"]:
        per_class = summary["per_model"][model]["per_class"]
        columns = list(per_class)
        organs = list(dict.fromkeys(o for column in columns for o in per_class[column]))
        rows = ["<tr>" + _name(organ) + "".join(_num(f"class/{model}/{column}/{organ}", per_class[column].get(organ))
                                                for column in columns) + "</tr>" for organ in organs]
        parts.append(f"<h3>{html.escape(model)}</h3><table class='organs'>{_head('organ', *columns)}"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


def _corruption_tables(summary: Mapping[str, Any]) -> str:
    """Per model: ROOD-MRI's Overall and Degradation next to the worst-case robust Dice; per corruption its Dice
    (3-D SSIM) at each severity with the physical value, and its two scores."""
    track = {m: summary["per_model"][m].get("corruptions") or {} for m in summary["models"]}
    if not any(t.get("per_corruption") for t in track.values()):
        return "<p class='note'>No corruption cells in this audit's grid (add them with --corruptions all).</p>"
    levels = summary["levels"]
    rows = []
    for model, own in track.items():
        robust = summary["per_model"][model]["robust_dice"]
        clean = summary["per_model"][model]["clean_dice"]
        rows.append("<tr>" + _name(model) + _num(f"clean/{model}/corruptions", clean)
                    + _num(f"corruption/{model}/overall", own.get("overall"))
                    + _num(f"corruption/{model}/degradation", own.get("degradation"))
                    + "".join(_num(f"robust/{model}/{level}/corruptions", robust[level]) for level in levels)
                    + "</tr>")
    head = _head("model", "clean Dice", "corruption Overall", "corruption Degradation",
                 *(f"adversarial robust Dice, SSIM ≥ {level}" for level in levels))
    parts = [f"<table id='corruption-scores'>{head}<tbody>{''.join(rows)}</tbody></table>"]
    severities = sorted({p["severity"] for t in track.values() for e in t.get("per_corruption", {}).values()
                         for p in e["curve"]})
    rows = []
    for model, own in track.items():
        for name, entry in own.get("per_corruption", {}).items():
            points = {p["severity"]: p for p in entry["curve"]}
            cells = [_name(model), _name(name), _name(entry.get("unit") or "")]
            for s in severities:
                point = points.get(s)
                if point is None:
                    cells.append("<td>n/a</td>")
                    continue
                key = f"corruption/{model}/{name}/{s}"
                cells.append(f'<td data-key="{html.escape(key, quote=True)}/dice">{format_number(point["dice"])}'
                             f'</td>')
                cells.append(_name(f"{point.get('value')} (SSIM {format_number(point['ssim_3d'])})"))
            cells += [_num(f"corruption/{model}/{name}/overall", entry["overall"]),
                      _num(f"corruption/{model}/{name}/degradation", entry["degradation"])]
            rows.append("<tr>" + "".join(cells) + "</tr>")
    columns = [c for s in severities for c in (f"Dice, severity {s}", f"value (3-D SSIM), severity {s}")]
    head = _head("model", "corruption", "unit of the value", *columns, "Overall", "Degradation")
    parts.append(f"<table id='corruptions'>{head}<tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


def _frequency_tables(summary: Mapping[str, Any]) -> str:
    """Per model, attack and budget: each DCT band's energy share of the perturbation and the Dice with it alone;
    then the radial sweep: per cut-off the Dice with the low-pass and with the high-pass kept, and their energy."""
    rows, radial_rows, bands = [], [], ("low", "middle", "high")
    for model in summary["models"]:
        for index, row in enumerate(summary["per_model"][model].get("frequency") or []):
            key = f"frequency/{model}/{index}"
            names = [_name(model), _name(row["attack"]), _name(row["budget"])]
            cells = [*names, _num(f"{key}/adversarial_dice", row["adversarial_dice"])]
            cells += [_num(f"{key}/{band}/energy", row["bands"][band]["energy"]) for band in bands]
            cells += [_num(f"{key}/{band}/dice", row["bands"][band]["dice"]) for band in bands]
            rows.append("<tr>" + "".join(cells) + "</tr>")
            for point in row.get("radial") or []:
                at = f"{key}/radial/{point['cutoff']:g}"
                radial_rows.append("<tr>" + "".join(names) + _num(f"{at}/cutoff", point["cutoff"])
                                   + "".join(_num(f"{at}/{k}", point[k]) for k in
                                             ("low_energy", "low_dice", "high_energy", "high_dice")) + "</tr>")
    if not rows:
        return "<p class='note'>Not run (spectrum-attack audit --frequency_analysis).</p>"
    head = _head("model", "attack", "budget", "adversarial Dice", *(f"energy {b}" for b in bands),
                 *(f"Dice, {b} kept" for b in bands))
    radial_head = _head("model", "attack", "budget", "cut-off (normalised radius)", "low-pass energy",
                        "Dice, low-pass kept", "high-pass energy", "Dice, high-pass kept")
    return (f"<table id='frequency'>{head}<tbody>{''.join(rows)}</tbody></table>"
            f"<table id='frequency-radial'>{radial_head}<tbody>{''.join(radial_rows)}</tbody></table>")


def _frequency_figure(summary: Mapping[str, Any], title: str) -> str:
    """The frequency figure (:func:`~SpectrumAttackLib.report.audit_figure.frequency_figure_png`) inlined, or
    nothing when no cell was analysed."""
    from SpectrumAttackLib.report.audit_figure import frequency_figure_png

    png = frequency_figure_png(summary, title)
    if png is None:
        return ""
    return (f'<img id="frequency-figure" alt="Frequency analysis: energy share and Dice per DCT band, radial sweep" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')


_CELL_METRICS = ("dice", "hd95", "ssim_3d", "psnr", "linf", "fooling_rate", "lpips", "seconds")


def _cell_table(cells: list[Mapping[str, Any]]) -> str:
    rows = []
    for index, cell in enumerate(cells):
        rows.append("<tr>" + _name(cell["case"]) + _name(cell["model"]) + _name(cell["attack"])
                    + _name(f"{cell['budget_name']} = {cell['budget']}")
                    + "".join(_num(f"cell/{index}/{m}", cell.get(m)) for m in _CELL_METRICS) + "</tr>")
    head = _head("case", "model", "attack", "budget", "Dice", "HD95", "3-D SSIM", "PSNR [dB]", "L∞ [0-1]",
                 "fooling rate", "LPIPS", "seconds")
    return f"<table id='cells'>{head}<tbody>{''.join(rows)}</tbody></table>"


def write_report(path: Path, document: Mapping[str, Any], curves_png: Path, title: str) -> None:
    """Write the page for ``document`` (``{"cells", "clean", "summary", "manifest"}``) with ``curves_png`` inlined."""
    from SpectrumAttackLib.report.audit_levels_html import ensembles_section, levels_section

    summary, manifest = document["summary"], document["manifest"]
    image = base64.b64encode(Path(curves_png).read_bytes()).decode("ascii")
    units = next((r.get("units") or {} for r in document["clean"]), {})
    cases = sorted({c["case"] for c in document["clean"]})
    settings = manifest.get("settings", {})
    facts = [("models", ", ".join(summary["models"])), ("cases", ", ".join(cases)),
             ("grid", manifest.get("grid", {}).get("name", "")), ("metrics preset", settings.get("metrics_preset")),
             ("seed", manifest.get("seed")), ("cells", len(document["cells"])),
             ("Dice", units.get("dice", "")), ("HD95", units.get("hd95", ""))]
    frequency_figure = _frequency_figure(summary, f"{title}: frequency analysis")
    fact_rows = "".join(f"<tr>{_name(k)}<td class='name'>{html.escape(str(v))}</td></tr>" for k, v in facts)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<table id="settings"><tbody>{fact_rows}</tbody></table>
<h2>Worst-case robust Dice</h2>
<p class="note">Per case, the lowest Dice over the clean prediction and every attack whose output keeps a 3-D SSIM
to the clean image at or above the level; then the mean over cases. Lower = less robust.</p>
{_robust_table(summary)}
{levels_section(summary, list(document["cells"]), Path(path).parent)}
{ensembles_section(summary)}
<h2>Per attack</h2>
<p class="note">Budget at half clean Dice: where the mean Dice-vs-budget curve reaches half the clean Dice (linear
interpolation; n/a when it stays above within the grid). Area: trapezoidal area under the curve, with the clean Dice
at budget 0 for ρ, ε and σ; divided by the budget range it is the curve's mean Dice. ε and σ on the 0-255 scale.</p>
{_attack_table(summary)}
<h2>Corruption track</h2>
<p class="note">Scanner artefacts (noise, blur, bias field, Gibbs ringing, k-space spikes, motion, ghosting, gamma,
resolution loss) at severities 1-5 on the same cases, scored like the attacks. Overall: the mean Dice over clean and
severities weighted (2/3)^severity; Degradation: the weighted mean Dice lost (larger = worse); both as in ROOD-MRI
(Boone et al., NeuroImage 2023), averaged over the corruptions. The curves figure puts these cells and the attacks on
the same Dice vs 3-D SSIM axes.</p>
{_corruption_tables(summary)}
<h2>Frequency analysis</h2>
<p class="note">Each attack's perturbation in 8x8x8 block-DCT bands: the share of its energy in each band, and the mean
Dice when only that band of the perturbation is added to the clean image. A weakness to low frequencies keeps the
Dice low with only the low band; a voxel attack spreads over all bands. The radial sweep keeps the coefficients with
normalised frequency radius at most the cut-off (low-pass; 0 = DC, 1 = the highest) or above it (high-pass).</p>
{_frequency_tables(summary)}
{frequency_figure}
<h2>Curves</h2>
<img alt="Dice vs budget per attack and Dice vs 3-D SSIM" src="data:image/png;base64,{image}">
<h2>Per organ (mean Dice over cases)</h2>
{_class_tables(summary)}
<h2>Cells</h2>
{_cell_table(list(document["cells"]))}
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
