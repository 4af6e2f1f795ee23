"""``spectrum-attack analyze``: an attack on one image, then the frequency analysis of its perturbation, and the case
page showing the case report and the frequency figure with the numbers of frequency.json and metrics.json."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from cli_helpers import BLOB_MODEL

from SpectrumAttackLib.report.audit_html import format_number


def test_analyze_command_on_an_image(run_cli, blob_data, tmp_path):
    image, label = blob_data.data_dir / "imagesTr" / "img0001.nii.gz", blob_data.data_dir / "labelsTr/label0001.nii.gz"
    out = tmp_path / "frequency"
    model = BLOB_MODEL.replace("--space_x 1 --space_y 1 --space_z 1 ", "")  # the model's own preprocessing
    code, stdout, err = run_cli(f"analyze {model} --use_pretrained --pretrained_path {blob_data.checkpoint} "
                                f"--image {image} --label {label} --attack_name pgd --eps 16 --alpha 0.02 --steps 3 "
                                f"--cutoffs 0.25 0.5 --output {out}")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["frequency.json", "frequency.png", "manifest.json",
                                                     "metrics.json", "report.html", "report.png"]
    analysis = json.loads((out / "frequency.json").read_text())
    bands = {b["band"]: b for b in analysis["bands"]}
    assert bands["low"]["energy"] + bands["middle"]["energy"] + bands["high"]["energy"] == pytest.approx(1, abs=1e-6)
    assert bands["all"]["dice"] == pytest.approx(analysis["adversarial_dice"], abs=1e-6)
    assert analysis["adversarial_dice"] < analysis["clean_dice"]
    assert [r["cutoff"] for r in analysis["radial"]] == [0.25, 0.5] and analysis["attack"] == "pgd"
    assert "band kept" in stdout
    _check_case_page(out, analysis, json.loads((out / "metrics.json").read_text()))


def _check_case_page(out, analysis, metrics):
    """report.html references both figures, which exist, and shows the JSON files' numbers (in headless Chromium
    when installed, else the page as written: it has no scripts)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    page = out / "report.html"
    if browser is None:
        dom = page.read_text()
    else:
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={out.parent / 'profile'}", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    sources = dict(re.findall(r'<img id="([^"]+)"[^>]*\ssrc="([^"]+)"', dom))
    assert sources == {"case-report": "report.png", "frequency-figure": "frequency.png"}
    for name in sources.values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = dict(re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', dom))
    expected = {f"frequency/{k}": analysis[k] for k in ("clean_dice", "adversarial_dice", "perturbation_l2")}
    for band in analysis["bands"]:
        expected.update({f"frequency/bands/{band['band']}/{k}": band[k] for k in ("energy", "dice")})
    for point in analysis["radial"]:
        expected.update({f"frequency/radial/{point['cutoff']:g}/{k}": v for k, v in point.items()})
    for section in ("clean", "adversarial"):
        expected[f"metrics/{section}/dice"] = metrics[section]["dice"]
    expected["metrics/adversarial/ssim"] = metrics["adversarial"]["ssim"]
    assert len(expected) == 3 + 4 * 2 + 2 * 5 + 3
    for key, value in expected.items():
        assert shown[key] == format_number(value), key
    assert metrics["clean"]["dice"] == pytest.approx(analysis["clean_dice"], abs=1e-6)  # one reference, one Dice
