"""The robustness CLI module (``SpectrumAttackRobustnessCLI``: audit | harden), run as Slicer's background job
runs it, and the module's import of its results (what ``AuditJob`` / ``HardenJob`` do when the process ends)."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from slicer_helpers import ROOT

from SpectrumAttackLib.attacks.parameters import GENERAL_SETTINGS

FOLDER = ROOT / "SpectrumAttackRobustnessCLI"
GRID = {"attacks": {"fgsm": {"eps": [4]}}}


@pytest.fixture(scope="module")
def script() -> Any:
    path = FOLDER / "SpectrumAttackRobustnessCLI.py"
    spec = importlib.util.spec_from_file_location("SpectrumAttackRobustnessCLI", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split(tmp_path: Path, sample_ct: dict) -> Path:
    entry = {"image": str(sample_ct["image"]), "label": str(sample_ct["labels"]), "name": "img0001"}
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"training": [entry], "validation": [entry]}))
    return path


def test_xml_matches_the_parser_and_the_table(script: Any) -> None:
    root = ET.parse(FOLDER / "SpectrumAttackRobustnessCLI.xml").getroot()
    parameters = {p.findtext("name"): p for g in root.iter("parameters") for p in g if p.findtext("name")}
    dests = {a.dest for a in script.build_parser()._actions}
    assert set(parameters) <= dests
    for row in (r for r in GENERAL_SETTINGS if r.engine in ("device", "precision", "seed")):  # a job's run settings
        element = parameters[row.slicer]
        assert element.findtext("description") == row.help and element.findtext("label") == row.label
        assert row.parse(element.findtext("default")) == row.default
        assert tuple(e.text for e in element.findall("element")) == row.choices
    assert (FOLDER / "SpectrumAttackRobustnessCLI.py").read_text().startswith("#!/usr/bin/env python-real\n")
    cmake = (FOLDER / "CMakeLists.txt").read_text()
    assert "SlicerMacroBuildScriptedCLI(\n  NAME SpectrumAttackRobustnessCLI" in cmake
    assert "add_subdirectory(SpectrumAttackRobustnessCLI)" in (ROOT / "CMakeLists.txt").read_text()


@pytest.mark.parametrize(("arguments", "code", "message"), [
    (["--job", "train", "--data", "d.json", "--outputDirectory", "o"], 2, "--job must be audit or harden"),
    (["--job", "audit"], 2, "--data and --outputDirectory are required"),
    (["--job", "audit", "--data", "missing.json", "--outputDirectory", "o"], 1,
     "data must be a split file (.json) or a folder holding dataset.json"),
])
def test_bad_command_lines(script: Any, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: Any,
                           arguments: list[str], code: int, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        returned = script.main(arguments)
    except SystemExit as exit_info:
        returned = exit_info.code
    assert returned == code and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_audit_job_writes_the_report_and_the_module_shows_it(script: Any, scene: Any, sample_ct: dict,
                                                             tiny_torchscript: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(GRID))
    output = tmp_path / "audit"
    code = script.main(["--job", "audit", "--data", str(_split(tmp_path, sample_ct)), "--models",
                        str(tiny_torchscript), "--grid", str(grid), "--outputDirectory", str(output), "--device", "cpu",
                        "--precision", "fp32"])
    printed = capsys.readouterr().out
    assert code == 0 and "<filter-progress>1.0000</filter-progress>" in printed
    assert f"SpectrumAttack staging {tmp_path / '.audit.audit-partial'}" in printed
    assert {"report.html", "audit.json", "audit.csv", "curves.png"} <= {p.name for p in output.iterdir()}
    # what the Audit section's job does once the process has completed (the CLI run itself needs the application)
    from slicer_helpers import load_volume
    from SpectrumAttackAdapter.audit_job import AuditJob

    node = load_volume(scene, sample_ct["image"], "img0001")
    finished: list[Any] = []
    job = AuditJob(scene, [node], [], [{"model": str(tiny_torchscript)}], str(grid), output=output, device="cpu",
                   precision="fp32", seed=0, metrics_preset="clinical", on_progress=None,
                   on_finished=lambda *result: finished.append(result))
    written = json.loads((job.run.folder / "dataset.json").read_text())["validation"]
    assert [e["name"] for e in written] == ["img0001"] and "label" not in written[0]
    assert job.run.parameters["job"] == "audit" and job.run.parameters["outputDirectory"] == str(output)
    job._done("completed", None)
    summary, error = finished[0]
    assert error is None
    table = scene.GetNodeByID(summary["nodes"]["table"])
    assert table.GetNumberOfRows() == 1 and table.GetCellText(0, 1) == "img0001"
    assert len(summary["nodes"]["charts"]) == 2 and summary["folder"] == str(output)
    job._done("cancelled", None)
    assert finished[1] == (None, "cancelled")
    import shutil

    shutil.rmtree(job.run.folder)


@pytest.mark.slow  # a few training iterations and a one-cell audit of two models
def test_harden_job_writes_the_model_and_the_comparison_the_module_imports(
        script: Any, module: Any, scene: Any, sample_ct: dict, tiny_catalogue: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    from SpectrumAttackAdapter import harden_job

    work = tmp_path / "work"
    work.mkdir()
    comparison_file = work / "comparison.json"
    code = script.main(["--job", "harden", "--data", str(_split(work, sample_ct)), "--models", "unet-btcv-3mm",
                        "--iterations", "2", "--attack", "fgsm", "--attackParameters", '{"eps": 4}',
                        "--grid", str(_grid_file(work)), "--outputDirectory", str(work / "model"),
                        "--comparisonFile", str(comparison_file), "--device", "cpu", "--precision", "fp32"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "SpectrumAttack step 2/2 train" in printed and "staging-pattern" in printed
    document = json.loads(comparison_file.read_text())
    assert Path(document["model_path"]) == work / "model" and len(document["history"]) == 2
    logic = module.SpectrumAttackLogic()
    outcome = harden_job._finish(scene, logic._moduleNode(), {"model": "unet-btcv-3mm"}, "unet-btcv-3mm", "vaft",
                                 document["model_path"], document["history"], document["comparison"], 1.0)
    assert outcome.modelName in logic.modelChoices() and outcome.table.GetNumberOfRows() == 2
    assert sorted(p.name for p in work.iterdir()) == ["comparison.json", "dataset.json", "grid.json", "model"]


def _grid_file(folder: Path) -> Path:
    path = folder / "grid.json"
    path.write_text(json.dumps(GRID))
    return path
