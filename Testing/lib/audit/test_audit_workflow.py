"""``SpectrumAttackLib.workflows.audit`` on a tiny phantom CT: result files, refusal of a used folder, resume after
an interruption, and the HTML report rendered by a real headless Chromium with the numbers of audit.json."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest
from audit_helpers import TINY_GRID, chromium, rendered_dom

from SpectrumAttackLib.precision import resolve_precision
from SpectrumAttackLib.report.audit_html import format_number
from SpectrumAttackLib.workflows import audit


def run_audit(loaded, phantom, output=None, **kwargs):
    hu, labels, affine = phantom
    return audit((hu, affine), labels=labels, models={"tiny": loaded}, grid=TINY_GRID, output=output,
                 name="phantom", **kwargs)


@pytest.fixture(scope="module")
def finished(loaded, phantom, tmp_path_factory):
    """One complete audit written to a folder (shared by the read-only tests)."""
    folder = tmp_path_factory.mktemp("audit") / "out"
    return run_audit(loaded, phantom, folder), folder


def test_audit_writes_every_file_with_one_record_per_cell(finished, phantom):
    result, folder = finished
    assert result.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == ["audit.csv", "audit.json", "curves.png", "manifest.json",
                                                         "report.html"]
    assert not list(folder.parent.glob(".out.*"))  # staging folder moved away
    assert [(c["attack"], c["budget"]) for c in result.cells] == [("pgd", 4), ("pgd", 16), ("gn", 8),
                                                                   ("dfb", "high")]
    document = json.loads((folder / "audit.json").read_text())
    assert document["cells"] == json.loads(json.dumps(result.cells))
    assert set(document) == {"cells", "clean", "summary", "manifest"}
    manifest = document["manifest"]
    assert manifest["seed"] == 0 and manifest["versions"]["torch"] and manifest["cells"] == 4
    assert manifest["grid"]["attacks"]["pgd"]["eps"] == [4, 16]
    assert manifest["settings"]["precision"] == "auto"
    assert {c["precision_used"] for c in result.cells} == {resolve_precision("auto", "cpu").name}
    clean = result.clean[0]["dice"]
    for cell in result.cells:
        assert cell["clean_dice"] == pytest.approx(clean)
        assert 0 <= cell["dice"] <= 1 and 0 < cell["ssim_3d"] <= 1 and cell["linf"] > 0 and cell["l2"] > 0
        assert set(cell["dice_per_class"]) == {"liver", "kidney"}
    pgd4, pgd16 = result.cells[0], result.cells[1]
    assert pgd4["linf"] <= 4 / 255 + 1e-6 and pgd16["linf"] <= 16 / 255 + 1e-6
    assert pgd16["ssim_3d"] < pgd4["ssim_3d"]
    with (folder / "audit.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["attack"] for r in rows] == ["clean", "pgd", "pgd", "gn", "dfb"]
    assert float(rows[2]["dice"]) == pytest.approx(pgd16["dice"], abs=1e-5)
    assert float(rows[2]["dice[liver]"]) == pytest.approx(pgd16["dice_per_class"]["liver"], abs=1e-5)
    robust = result.summary["per_model"]["tiny"]["robust_dice"]
    assert robust["0.99"] >= robust["0.95"] >= robust["0.90"]


def test_a_folder_holding_results_is_refused_without_overwrite_or_resume(finished, loaded, phantom):
    _, folder = finished
    before = (folder / "audit.json").read_bytes()
    with pytest.raises(ValueError, match="--output must not already hold results unless --overwrite"):
        run_audit(loaded, phantom, folder)
    with pytest.raises(ValueError, match="--resume must not be combined with --overwrite"):
        run_audit(loaded, phantom, folder, overwrite=True, resume=True)
    assert (folder / "audit.json").read_bytes() == before


def test_resume_after_an_interruption_redoes_no_finished_cell(finished, loaded, phantom, tmp_path):
    class StopError(Exception):
        pass

    def stop_after_two(progress):
        if progress.done == 2:
            raise StopError

    folder = tmp_path / "out"
    with pytest.raises(StopError):
        run_audit(loaded, phantom, folder, progress=stop_after_two)
    assert not folder.exists()  # nothing half-written in the target
    staging = tmp_path / ".out.audit-partial"
    assert len((staging / "cells.rank0.jsonl").read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="--output must not already hold results"):
        (folder).mkdir()
        (folder / "audit.csv").write_text("x")
        run_audit(loaded, phantom, folder)
    shutil.rmtree(folder)

    ran = []
    result = run_audit(loaded, phantom, folder, resume=True, progress=lambda p: ran.append(p.message))
    assert len(ran) == 2 and result.reused == 2
    assert ran[0].startswith("phantom tiny gn") and ran[1].startswith("phantom tiny dfb")
    reference = finished[0]
    for got, want in zip(result.cells, reference.cells, strict=True):
        assert got["fingerprint"] == want["fingerprint"]
        assert got["dice"] == pytest.approx(want["dice"], abs=1e-6)
        assert got["ssim_3d"] == pytest.approx(want["ssim_3d"], abs=1e-6)
    assert not staging.exists()
    # Resuming a finished audit reuses every cell and rewrites the same numbers.
    again = run_audit(loaded, phantom, folder, resume=True, progress=lambda p: ran.append(p.message))
    assert again.reused == 4 and len(ran) == 2


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_with_the_numbers_of_audit_json(finished, tmp_path):
    _, folder = finished
    document = json.loads((folder / "audit.json").read_text())
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = rendered_dom(folder / "report.html", tmp_path / "profile")
    shot = tmp_path / "report.png"
    subprocess.run([*command, f"--screenshot={shot}", "--window-size=1200,1600", (folder / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    shown = dict(re.findall(r'<td data-key="([^"]+)">([^<]*)</td>', dom))
    assert re.search(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', dom)
    summary = document["summary"]["per_model"]["tiny"]
    expected = {"clean/tiny": summary["clean_dice"]}
    expected.update({f"robust/tiny/{k}": v for k, v in summary["robust_dice"].items()})
    for attack, entry in summary["attacks"].items():
        for field in ("half_dice_budget", "auc", "auc_normalised"):
            expected[f"attack/tiny/{attack}/{field}"] = entry[field]
    for column, organs in summary["per_class"].items():
        expected.update({f"class/tiny/{column}/{organ}": value for organ, value in organs.items()})
    for index, cell in enumerate(document["cells"]):
        expected.update({f"cell/{index}/{m}": cell[m] for m in ("dice", "hd95", "ssim_3d", "psnr", "linf")})
    assert len(expected) > 30
    for key, value in expected.items():
        assert shown[key] == format_number(value), key
    assert "robust Dice, SSIM ≥ 0.95" in dom


def test_bad_images_and_labels_are_named_before_any_work(loaded, phantom):
    hu, labels, affine = phantom
    with pytest.raises(ValueError, match=r"labels must have the image's shape \[32, 32, 16\], got \[32, 32, 15\]"):
        audit((hu, affine), labels=labels[:, :, :15], models={"tiny": loaded}, grid=TINY_GRID)
    with pytest.raises(TypeError, match="image must be a Volume, an"):
        audit(hu, models={"tiny": loaded}, grid=TINY_GRID)
    with pytest.raises(ValueError, match="image must be given, or cases, but not both; got neither"):
        audit(models={"tiny": loaded}, grid=TINY_GRID)
