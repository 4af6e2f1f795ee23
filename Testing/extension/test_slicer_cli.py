"""The CLI module run as Slicer runs it (a process with flags, NRRD paths and --returnparameterfile),
its descriptor, and the module's import of its outputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from slicer_helpers import CLI_DIR, ijk_array, ijk_to_ras, load_volume, volume_from_ijk, write_volume_node

SCRIPT = CLI_DIR / "SpectrumAttackCLI.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=300)


def _descriptor() -> ET.Element:
    return ET.parse(CLI_DIR / "SpectrumAttackCLI.xml").getroot()


def _parameters(root: ET.Element) -> list[ET.Element]:
    return [p for group in root.findall("parameters") for p in group if p.find("name") is not None]


def _output_scalars(root: ET.Element) -> list[str]:
    return [p.findtext("name") for p in _parameters(root)
            if p.tag == "float" and p.findtext("channel") == "output"]


@pytest.mark.slow  # a torch process start-up: about 10 s on a loaded 2-core machine
def test_cli_runs_as_slicer_runs_it(scene: Any, ct_node: Any, sample_ct: dict, tiny_torchscript: Path,
                                    tmp_path: Path) -> None:
    from SpectrumAttackAdapter.results import import_cli_outputs

    # Slicer writes input images to temporary NRRD files with its storage node, then starts the process.
    write_volume_node(scene, ct_node, tmp_path / "input.nrrd")
    reference = load_volume(scene, sample_ct["labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    write_volume_node(scene, reference, tmp_path / "reference.nrrd")
    out = {name: tmp_path / f"{name}.nrrd" for name in ("output", "clean", "adversarial", "perturbation")}
    completed = _run([
        "--returnparameterfile", str(tmp_path / "return.params"),
        "--referenceLabel", str(tmp_path / "reference.nrrd"),
        "--cleanLabel", str(out["clean"]), "--adversarialLabel", str(out["adversarial"]),
        "--perturbation", str(out["perturbation"]), "--metricsFile", str(tmp_path / "metrics.json"),
        "--model", str(tiny_torchscript), "--architecture", "none", "--numClasses", "0", "--attack", "saa",
        "--steps", "2", "--rho", "0.2", "--blockSize", "8,8,8", "--lambdaDice", "0.01", "--useSsimLoss",
        "--lambdaSsim", "1.0", "--freqBand", "all", "--qMax", "20", "--vafaVariant", "code", "--eps", "4",
        "--alpha", "0.01", "--std", "4", "--device", "cpu", "--seed", "0",
        "--inputVolume", str(tmp_path / "input.nrrd"), "--outputVolume", str(out["output"]),
    ], tmp_path)
    assert completed.returncode == 0, completed.stderr

    stdout = completed.stdout
    assert stdout.startswith("<filter-start>") and "<filter-end>" in stdout
    fractions = [float(v) for v in re.findall(r"<filter-progress>([0-9.]+)</filter-progress>", stdout)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    steps = re.findall(r"SpectrumAttack step (\d+)/(\d+) attack", stdout)
    assert len(steps) >= 2  # one line per attack step, for the module's step counter

    returned = dict(line.split(" = ") for line in (tmp_path / "return.params").read_text().splitlines())
    assert sorted(returned) == sorted(_output_scalars(_descriptor()))
    assert 0.0 <= float(returned["adversarialDice"]) <= 1.0 and float(returned["seconds"]) > 0

    # Slicer reads the outputs back into the output nodes; the module then builds its result nodes.
    outputs = {
        "adversarial": load_volume(scene, out["output"], "adversarial"),
        "perturbation": load_volume(scene, out["perturbation"], "perturbation"),
        "cleanLabel": load_volume(scene, out["clean"], "clean", "vtkMRMLLabelMapVolumeNode"),
        "adversarialLabel": load_volume(scene, out["adversarial"], "adv", "vtkMRMLLabelMapVolumeNode"),
    }
    for node in outputs.values():
        assert node.GetImageData().GetDimensions() == ct_node.GetImageData().GetDimensions()
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(ct_node), atol=1e-4)
    np.testing.assert_allclose(ijk_array(outputs["adversarial"]),
                               ijk_array(ct_node) + ijk_array(outputs["perturbation"]), atol=1e-3)
    result = import_cli_outputs(scene, ct_node, outputs, tmp_path / "metrics.json", "saa")
    assert result.metrics["reference"] == "labels"
    assert float(returned["adversarialDice"]) == pytest.approx(result.metrics["adversarial"]["dice"], abs=1e-9)
    segmentation = result.cleanSegmentation.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())] == [
        c["name"] for c in result.classes[1:]]
    assert result.classes[6]["name"] == "liver"
    assert outputs["cleanLabel"].GetScene() is None and outputs["adversarialLabel"].GetScene() is None
    assert result.metricsTable.GetNumberOfRows() > 2 * len(result.classes)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_cli_attacks_every_volume_of_a_folder(scene: Any, ct_node: Any, tiny_torchscript: Path,
                                             tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    voxels, matrix = ijk_array(ct_node), ijk_to_ras(ct_node)
    write_volume_node(scene, ct_node, inputs / "case_a.nrrd")
    write_volume_node(scene, volume_from_ijk(scene, voxels[8:40, 8:40, 4:20], matrix, "b"), inputs / "case_b.nrrd")
    (inputs / "notes.txt").write_text("not a volume")
    completed = _run(["--inputDirectory", str(inputs), "--outputDirectory", str(outputs), "--model",
                      str(tiny_torchscript), "--attack", "fgsm", "--eps", "4",
                      "--returnparameterfile", str(tmp_path / "return.params")], tmp_path)
    assert completed.returncode == 0, completed.stderr
    for case in ("case_a", "case_b"):
        for suffix in ("adversarial.nii.gz", "perturbation.nii.gz", "seg_clean.nii.gz", "seg_adversarial.nii.gz",
                       "metrics.json"):
            assert (outputs / f"{case}_{suffix}").is_file()
        assert json.loads((outputs / f"{case}_metrics.json").read_text())["classes"][1]["name"] == "spleen"
    rows = (outputs / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[0] == "case" and [r.split(",")[0] for r in rows[1:]] == ["case_a", "case_b"]
    fractions = [float(v) for v in re.findall(r"<filter-progress>([0-9.]+)</filter-progress>", completed.stdout)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_xml_is_well_formed_and_matches_the_parser(cli_script: Any, tmp_path: Path) -> None:
    from SpectrumAttackAdapter.arguments import MODEL_SETTINGS, summary_scalars

    from SpectrumAttackLib import attacks
    from SpectrumAttackLib.attacks.parameters import SLICER_PARAMETERS

    completed = _run(["--xml"], tmp_path)
    assert completed.returncode == 0
    root = ET.fromstring(completed.stdout)
    assert root.tag == "executable" and root.findtext("title")
    parser = cli_script.build_parser()
    actions = {a.dest: a for a in parser._actions}
    declared = {}
    for parameter in _parameters(root):
        name = parameter.findtext("name")
        declared[name] = parameter
        if parameter.findtext("channel") == "output" and parameter.tag == "float":
            continue  # output scalars go through --returnparameterfile
        assert name in actions, f"{name} is not read by the CLI script"
        action = actions[name]
        # every parameter is flagged: Slicer emits a flagged image only when a node is set, so the panel can
        # leave the volumes empty for batch mode (positional images are required there)
        assert parameter.findtext("index") is None
        assert action.option_strings == [f"--{parameter.findtext('longflag')}"]
        default = parameter.findtext("default")
        if default is not None:
            expected = action.default if action.default is not False else "false"
            assert str(expected).lower() == default.strip().lower() or float(expected) == float(default), name

        elements = [e.text for e in parameter.findall("element")]
        if elements and action.choices is not None:
            assert list(action.choices) == elements
    assert [e.text for e in declared["attack"].findall("element")] == attacks.available()
    assert declared["outputVolume"].get("reference") == "inputVolume"
    options = {a.dest for a in parser._actions} - {"help", "xml", "returnparameterfile"}
    assert options == set(declared) - set(_output_scalars(root))
    # Every input parameter is used: images and folders by name in the script, the rest by the one conversion.
    source = SCRIPT.read_text()
    used = set(re.findall(r"args\.(\w+)", source)) | set(MODEL_SETTINGS) | {p.slicer for p in SLICER_PARAMETERS}
    assert options <= used
    assert sorted(_output_scalars(root)) == sorted(summary_scalars({}, 0.0))


def test_cli_reports_bad_input_with_exit_code_1(cli_script: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    code = cli_script.main(["--inputVolume", str(tmp_path / "missing.nrrd"), "--outputVolume",
                            str(tmp_path / "out.nrrd"), "--attack", "pgd"])
    assert code == 1
    assert "SpectrumAttackCLI: error:" in capsys.readouterr().err
    assert not (tmp_path / "out.nrrd").exists()
    assert cli_script.main(["--inputVolume", str(tmp_path / "missing.nrrd"), "--outputVolume",
                            str(tmp_path / "o.nrrd"), "--attack", "nope"]) == 1
    assert "attack must be one of" in capsys.readouterr().err


def test_cli_needs_volumes_or_folders(cli_script: Any, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_script.main(["--attack", "pgd"])
    assert exit_info.value.code == 2
    assert "--inputVolume and --outputVolume are required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_script.main(["--inputDirectory", "somewhere"])
    assert "go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # what the CLI panel sends when both a volume and the folders are set
        cli_script.main(["--inputDirectory", "a", "--outputDirectory", "b", "--inputVolume", "c.nrrd"])
    assert "not both" in capsys.readouterr().err


def test_first_line_is_the_python_real_shebang() -> None:
    assert SCRIPT.read_text().splitlines()[0] == "#!/usr/bin/env python-real"
