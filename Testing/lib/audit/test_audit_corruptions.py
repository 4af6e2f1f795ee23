"""The audit's corruption track: the grid section, ROOD-MRI's scores on hand-made cells, and a real audit whose
corruption cells equal a direct corruption + prediction, with the frequency analysis of its attack cell, and the
report in headless Chromium showing audit.json's numbers for both."""

from __future__ import annotations

import base64
import json
import re
import struct

import pytest
import torch
from audit_helpers import TINY_GRID, chromium, rendered_dom

from SpectrumAttackLib import corruptions
from SpectrumAttackLib.audit.corruption_grid import resolve_modality
from SpectrumAttackLib.audit.corruption_scores import ALPHA, rood_scores
from SpectrumAttackLib.audit.frequency_summary import frequency_summary
from SpectrumAttackLib.audit.grid import grid_from_mapping, resolve_grid, with_corruptions
from SpectrumAttackLib.audit.summary import summarise
from SpectrumAttackLib.report.audit_html import format_number
from SpectrumAttackLib.workflows import audit

GRID = {"attacks": {"gn": TINY_GRID["attacks"]["gn"]},
        "corruptions": {"gaussian-noise": {"severity": [1, 5]}, "gamma": {"severity": [2]}}}


def test_grid_section_forms_and_the_standard_preset():
    grid = grid_from_mapping({"corruptions": "all"})
    assert grid.attacks == () and len(grid.cells()) == 50
    assert [e.corruption for e in grid.corruptions] == corruptions.available()
    listed = grid_from_mapping({"attacks": TINY_GRID["attacks"], "corruptions": ["motion"], "modality": "mr"})
    assert [(e.attack, b) for e, b in listed.cells()][-5:] == [("motion", s) for s in range(1, 6)]
    assert listed.corruptions[0].modality == "mr" and listed.as_mapping()["corruptions"] == {
        "motion": {"severity": [1, 2, 3, 4, 5]}}
    assert len(resolve_grid("standard").corruptions) == 10 and not resolve_grid("quick").corruptions
    added = with_corruptions(resolve_grid("quick"), ["blur", "gamma"])
    assert [e.corruption for e in added.corruptions] == ["blur", "gamma"] and added.attacks
    assert with_corruptions(resolve_grid("standard"), "none").corruptions == ()
    assert resolve_modality("auto", {"a_min": -175, "a_max": 250, "b_min": 0, "b_max": 1}) == ("ct", 425.0)
    assert resolve_modality("auto", {"a_min": 0, "a_max": 1000, "b_min": 0, "b_max": 1}) == ("mr", None)


@pytest.mark.parametrize(("section", "message"), [
    ("snow", "grid corruption 'snow': corruption must be one of"),
    ({"blur": {"severity": [0]}}, "grid corruption 'blur': severity[0] must be an integer in [1, 5], got 0."),
    ({"blur": {"severity": [2, 2]}}, "grid corruption 'blur': severity must list each level once"),
    ({"blur": {"sigma": [2]}}, "grid corruption 'blur': must be a mapping {severity: [1-5]}"),
    ({}, "grid corruptions must be 'all', a list of corruption names"),
])
def test_bad_corruption_sections_are_named(section, message):
    with pytest.raises(ValueError) as info:
        grid_from_mapping({"corruptions": section})
    assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(ValueError, match="grid modality must be one of 'auto', 'ct', 'mr', got 'pet'"):
        grid_from_mapping({"corruptions": "all", "modality": "pet"})


def test_rood_scores_weight_severities_by_two_thirds_to_the_power():
    curve = [{"severity": s, "dice": d} for s, d in ((1, 0.8), (3, 0.5), (5, 0.2))]
    w = [ALPHA, ALPHA**3, ALPHA**5]
    overall, degradation = rood_scores(curve, 0.9)
    assert overall == pytest.approx((0.9 + w[0] * 0.8 + w[1] * 0.5 + w[2] * 0.2) / (1 + sum(w)))
    assert degradation == pytest.approx((w[0] * 0.1 + w[1] * 0.4 + w[2] * 0.7) / sum(w))
    assert rood_scores(curve, None) == (None, None)


def test_corruption_cells_take_no_part_in_the_robust_dice_and_get_their_own_summary():
    clean = [{"case": c, "model": "m", "dice": 0.8, "dice_per_class": {}} for c in "ab"]
    attack = [{"case": c, "model": "m", "attack": "pgd", "budget_name": "eps", "budget": 4, "dice": 0.6,
               "ssim_3d": 0.98} for c in "ab"]
    track = [{"case": c, "model": "m", "attack": "blur", "budget_name": "severity", "budget": s, "dice": d,
              "ssim_3d": 0.999, "kind": "corruption", "value": v, "unit": "mm"}
             for c in "ab" for s, d, v in ((1, 0.1, 0.5), (2, 0.05, 1.0))]
    own = summarise(attack + track, clean)["per_model"]["m"]
    assert own["robust_dice"]["0.99"] == pytest.approx(0.8)  # a corruption at SSIM 0.999 is no attack
    assert list(own["attacks"]) == ["pgd"]
    blur = own["corruptions"]["per_corruption"]["blur"]
    assert [(p["severity"], p["value"], p["dice"], p["cases"]) for p in blur["curve"]] == [
        (1, 0.5, pytest.approx(0.1), 2), (2, 1.0, pytest.approx(0.05), 2)]
    assert own["corruptions"]["overall"] == pytest.approx(rood_scores(blur["curve"], 0.8)[0])


def test_frequency_summary_averages_bands_and_radial_sweep_over_cases():
    def analysis(dice, low_dice):
        return {"block_size": [8, 8, 8], "clean_dice": 0.8, "adversarial_dice": dice,
                "bands": [{"band": b, "energy": e, "dice": dice + e} for b, e in (("low", 0.2), ("high", 0.8))],
                "radial": [{"cutoff": c, "low_energy": c, "low_dice": low_dice, "high_energy": 1 - c,
                            "high_dice": dice} for c in (0.1, 0.5)]}

    cells = [{"attack": "pgd", "budget": 4, "frequency": analysis(0.2, 0.7)},
             {"attack": "pgd", "budget": 4, "frequency": analysis(0.4, 0.5)},
             {"attack": "pgd", "budget": 8, "frequency": analysis(0.1, 0.3)},
             {"attack": "gaussian-noise", "budget": 1, "kind": "corruption"}]
    rows = frequency_summary(cells)
    assert [(r["attack"], r["budget"], r["cases"]) for r in rows] == [("pgd", 4, 2), ("pgd", 8, 1)]
    assert rows[0]["adversarial_dice"] == pytest.approx(0.3) and rows[0]["clean_dice"] == pytest.approx(0.8)
    assert rows[0]["bands"]["high"] == {"energy": pytest.approx(0.8), "dice": pytest.approx(1.1)}
    assert rows[0]["radial"] == [{"cutoff": c, "low_energy": pytest.approx(c), "low_dice": pytest.approx(0.6),
                                  "high_energy": pytest.approx(1 - c), "high_dice": pytest.approx(0.3)}
                                 for c in (0.1, 0.5)]
    assert rows[1]["radial"][1]["low_dice"] == pytest.approx(0.3) and rows[1]["block_size"] == [8, 8, 8]


@pytest.fixture(scope="module")
def finished(loaded, phantom, tmp_path_factory):
    hu, labels, affine = phantom
    folder = tmp_path_factory.mktemp("audit") / "out"
    result = audit((hu, affine), labels=labels, models={"tiny": loaded}, grid=GRID, output=folder, name="phantom",
                   frequency_analysis=True)
    return result, folder


def test_corruption_cells_equal_a_direct_corruption_and_prediction(finished, loaded, phantom):
    from SpectrumAttackLib.inference.sliding import predict_logits
    from SpectrumAttackLib.metrics.overlap import dice_per_sample
    from SpectrumAttackLib.workflows.robustness import volume_case

    result, _ = finished
    track = [c for c in result.cells if c["kind"] == "corruption"]
    assert [(c["attack"], c["budget"]) for c in track] == [("gaussian-noise", 1), ("gaussian-noise", 5),
                                                           ("gamma", 2)]
    assert result.cells[0]["kind"] == "attack"
    analysis = result.cells[0]["frequency"]  # the gn cell's perturbation: white noise, spread over all bands
    assert sum(b["energy"] for b in analysis["bands"] if b["band"] != "all") == pytest.approx(1, abs=1e-6)
    assert analysis["bands"][-1]["dice"] == pytest.approx(result.cells[0]["dice"], abs=0.02)
    assert "frequency" not in track[0]
    noise5 = track[1]
    assert noise5["modality"] == "ct" and noise5["value"] == 80.0 and noise5["unit"] == "HU"  # the CT window: HU
    hu, labels, affine = phantom
    case = volume_case((hu, affine), labels, preprocessing=loaded.entry.preprocessing).load()
    corrupted = corruptions.create("gaussian-noise", 5, seed=0, modality="ct", hu_per_unit=425.0)(
        case.images, case.spacing_mm).clamp(0, 1)
    delta = corrupted - case.images
    assert noise5["linf"] == pytest.approx(float(delta.abs().max()), abs=1e-6)
    assert 0.1 < float(delta.std()) < 80 / 425 + 0.01  # σ = 80 HU = 0.188 of the window, less where clamped
    with torch.no_grad():
        prediction = predict_logits(loaded.model, corrupted, tuple(loaded.entry.preprocessing.roi), 0.5, 1,
                                    precision="auto").argmax(1, keepdim=True)
    foreground = dice_per_sample(prediction, case.labels, loaded.entry.num_classes)
    assert noise5["dice"] == pytest.approx(float(foreground.mean()), abs=0.02)
    summary = result.summary["per_model"]["tiny"]["corruptions"]
    assert set(summary["per_corruption"]) == {"gaussian-noise", "gamma"}
    assert summary["overall"] is not None and summary["degradation"] is not None
    again = audit((hu, affine), labels=labels, models={"tiny": loaded}, name="phantom",
                  grid={"corruptions": {"gaussian-noise": {"severity": [5]}}})
    assert again.cells[0]["dice"] == noise5["dice"] and again.cells[0]["fingerprint"] == noise5["fingerprint"]


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_report_shows_the_corruption_track_with_the_numbers_of_audit_json(finished, tmp_path):
    _, folder = finished
    document = json.loads((folder / "audit.json").read_text())
    dom = rendered_dom(folder / "report.html", tmp_path / "profile")
    shown = dict(re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', dom))
    track = document["summary"]["per_model"]["tiny"]["corruptions"]
    expected = {"corruption/tiny/overall": track["overall"], "corruption/tiny/degradation": track["degradation"]}
    for name, entry in track["per_corruption"].items():
        expected[f"corruption/tiny/{name}/overall"] = entry["overall"]
        expected[f"corruption/tiny/{name}/degradation"] = entry["degradation"]
        expected.update({f"corruption/tiny/{name}/{p['severity']}/dice": p["dice"] for p in entry["curve"]})
    for level, value in document["summary"]["per_model"]["tiny"]["robust_dice"].items():
        expected[f"robust/tiny/{level}/corruptions"] = value
    frequency = document["summary"]["per_model"]["tiny"]["frequency"]
    for index, row in enumerate(frequency):
        for band in ("low", "middle", "high"):
            expected[f"frequency/tiny/{index}/{band}/dice"] = row["bands"][band]["dice"]
            expected[f"frequency/tiny/{index}/{band}/energy"] = row["bands"][band]["energy"]
        for point in row["radial"]:
            expected.update({f"frequency/tiny/{index}/radial/{point['cutoff']:g}/{key}": value
                             for key, value in point.items()})
    assert len(expected) == 2 + 2 * 2 + 3 + 3 + 6 + 5 * 5  # five cut-offs × (cut-off, two Dice, two energies)
    for key, value in expected.items():
        assert shown[key] == format_number(value), key
    assert "Corruption track" in dom and "corruption Degradation" in dom
    # the frequency figure, inlined: one row (gn at σ 8) of two panels, 9 × 3.3 inches at 100 dpi
    png = base64.b64decode(re.search(r'<img id="frequency-figure"[^>]* src="data:image/png;base64,([^"]+)"', dom)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (900, 330)
    cell = document["cells"][0]["frequency"]  # one case: the summary's means are the cell's own numbers
    assert frequency[0]["radial"][0]["low_dice"] == cell["radial"][0]["low_dice"]
    assert frequency[0]["bands"]["all"]["dice"] == cell["bands"][-1]["dice"]
