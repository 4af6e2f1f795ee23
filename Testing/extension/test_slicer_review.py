"""The review of the module against Slicer's sources (issue 18: M1–M3, m1–m13): one test per point that can be
checked without the application. Subprocesses where the interpreter's state matters (blocked imports, encodings,
an old Python, a killed CLI)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from slicer_helpers import (
    CLI_DIR,
    DEPENDENCY_STEP_PROBE,
    MODULE_DIR,
    ROOT,
    TORCH_BLOCKED_PRELUDE,
    write_volume_node,
)

ROBUSTNESS_CLI = ROOT / "SpectrumAttackRobustnessCLI" / "SpectrumAttackRobustnessCLI.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}



def _python(code: str, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env or ENV)


def _blocked(code: str) -> subprocess.CompletedProcess:
    return _python(TORCH_BLOCKED_PRELUDE + textwrap.dedent(code))


def test_m1_every_self_test_method_skips_without_torch_and_installs_nothing() -> None:
    """Slicer's CTest harness (``slicer.testing.runUnitTest``) loads the ``test_*`` methods one by one."""
    completed = _blocked("""
        import unittest, slicer
        slicer.mrmlScene = slicer.vtkMRMLScene()
        import SpectrumAttack as m
        def refuse(self):
            raise AssertionError("a test reached the dependency step")
        m.SpectrumAttackLogic.ensureDependencies = refuse
        suite = unittest.TestLoader().loadTestsFromTestCase(m.SpectrumAttackTest)
        result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(suite)
        print(result.testsRun, len(result.skipped), len(result.errors) + len(result.failures))
        print(result.skipped[0][1])
        m.SpectrumAttackTest("runTest").runTest()  # Reload & Test: a message, no failure
        print(sorted(n for n in sys.modules if n.split(".")[0] in ("torch", "monai")))
        """)
    assert completed.returncode == 0, completed.stderr
    counts, reason, imported = completed.stdout.splitlines()
    assert counts == "3 3 0"
    assert reason == "SpectrumAttack self-test skipped: PyTorch is not installed (install it with PyTorch Utils)."
    assert imported == "[]"


def test_m2_audit_and_harden_reach_the_dependency_step_before_torch_or_monai() -> None:
    completed = _python(DEPENDENCY_STEP_PROBE + textwrap.dedent("""
        labels = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
        slicer.util.updateVolumeFromArray(labels, np.zeros((8, 8, 8), np.int16))
        logic = m.SpectrumAttackLogic()
        for name, call in (("audit", lambda: logic.audit(volume, model="unet-btcv-3mm", preset="quick")),
                           ("harden", lambda: logic.harden([(volume, labels)], model="unet-btcv-3mm", iterations=2))):
            try:
                call()
            except Reached as reached:
                print(name, reached.args[0])
        """))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["audit []", "harden []"]


def test_m3_screenshots_are_committed_images_named_by_the_extension_description() -> None:
    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    urls = re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]*)"\)', cmake).group(1).split()
    icon = re.search(r'set\(EXTENSION_ICONURL "([^"]*)"\)', cmake).group(1)
    assert len(urls) >= 2
    prefix = icon.rsplit("/Resources/", 1)[0] + "/"
    for url in urls:
        assert url.startswith(prefix), url  # raw.githubusercontent.com of the same repository and branch
        path = ROOT / url[len(prefix):]
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(data) < 400_000, path
    s4ext = (ROOT / "SpectrumAttack.s4ext").read_text(encoding="utf-8")
    assert re.search(r"^screenshoturls (.*)$", s4ext, re.MULTILINE).group(1).split() == urls


def test_m3_scene_jobs_are_cancelled_when_the_scene_closes(scene: Any) -> None:
    """Slicer reuses node IDs after a close: a console ``wait=False`` job must not outlive its scene."""
    from SpectrumAttackAdapter.jobs import SceneJobs

    class Job:  # the background job's interface (the CLI process itself needs the application)
        def __init__(self) -> None:
            self.cancelled, self.on_finished = False, None

        def cancel(self) -> None:
            self.cancelled = True

    jobs, other_scene = SceneJobs(), __import__("slicer").vtkMRMLScene()
    mine, finished, elsewhere = Job(), Job(), Job()
    jobs.add(scene, mine)
    reports: list[Any] = []
    jobs.track(scene, finished, lambda *result: reports.append(result))
    finished.on_finished("result", None)  # finished: forgotten, its caller told
    jobs.add(other_scene, elsewhere)
    scene.Clear(0)  # File > Close Scene
    assert mine.cancelled and not finished.cancelled and not elsewhere.cancelled
    assert reports == [("result", None)] and jobs.running() == [elsewhere]


@pytest.mark.slow  # a torch process start-up
def test_m4_a_killed_cli_leaves_its_staging_folder_for_the_module_to_remove(scene: Any, ct_node: Any,
                                                                             tiny_torchscript: Path,
                                                                             tmp_path: Path) -> None:
    from SpectrumAttackAdapter.clirun import remove_staging, staging_folders

    source = tmp_path / "input.nrrd"
    write_volume_node(scene, ct_node, source)
    outputs = tmp_path / "slicer-temp"  # where Slicer puts a CLI's output files
    outputs.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(CLI_DIR / "SpectrumAttackCLI.py"), "--inputVolume", str(source), "--outputVolume",
         str(outputs / "adv.nrrd"), "--model", str(tiny_torchscript), "--attack", "pgd", "--steps", "500",
         "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    lines: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("SpectrumAttack step"):  # the attack runs: the staging folder exists
            break
    process.send_signal(signal.SIGKILL)  # Slicer's Cancel
    process.wait(timeout=60)
    text = "".join(lines)
    announced = staging_folders(text)
    assert announced and all(f.parent == outputs and f.is_dir() for f in announced)
    assert remove_staging(text) == announced
    assert list(outputs.iterdir()) == []


def test_m5_class_count_defaults_to_from_the_file_everywhere() -> None:
    from slicer_application import application_module

    xml = ET.parse(CLI_DIR / "SpectrumAttackCLI.xml").getroot()
    default = next(p for g in xml.iter("parameters") for p in g if p.findtext("name") == "numClasses")
    assert default.findtext("default") == "0"
    with application_module() as module:
        import slicer

        node = slicer.vtkMRMLScriptedModuleNode()
        scene = slicer.vtkMRMLScene()
        scene.AddNode(node)
        assert module.SpectrumAttackParameterNode(node).numClasses == 0


def test_m7_background_runs_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import slicer
    from SpectrumAttackAdapter.clirun import cli_module

    with pytest.raises(ValueError, match=r"^wait=False needs the Slicer application"):
        cli_module("spectrumattackcli", "SpectrumAttackCLI")
    monkeypatch.setattr(slicer, "app", object(), raising=False)
    monkeypatch.setattr(slicer, "modules", type("Modules", (), {})(), raising=False)
    with pytest.raises(ValueError, match=r"^The SpectrumAttackCLI CLI module is not loaded"):
        cli_module("spectrumattackcli", "SpectrumAttackCLI")


@pytest.mark.parametrize("script", [CLI_DIR / "SpectrumAttackCLI.py", ROBUSTNESS_CLI], ids=lambda p: p.stem)
def test_m8_a_path_outside_the_console_code_page_does_not_break_the_cli(script: Path, tmp_path: Path) -> None:
    """Slicer 5.10 on Windows: no PYTHONUTF8, the console is cp1252."""
    missing = tmp_path / "患者" / "ct.nrrd"
    arguments = (["--inputVolume", str(missing), "--outputVolume", str(tmp_path / "out.nrrd")]
                 if script.name == "SpectrumAttackCLI.py" else
                 ["--job", "audit", "--data", str(missing.with_suffix(".json")), "--outputDirectory", str(tmp_path)])
    completed = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, timeout=180,
                               env={**ENV, "PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0"})
    error = completed.stderr.decode("utf-8")
    assert completed.returncode == 1, error
    assert "UnicodeEncodeError" not in error and "患者" in error
    assert error.count("\n") == 1 and error.startswith(f"{script.stem}: error: ")


@pytest.mark.parametrize("script", [CLI_DIR / "SpectrumAttackCLI.py", ROBUSTNESS_CLI], ids=lambda p: p.stem)
def test_m10_slicer_5_8_gets_one_line_from_the_cli(script: Path) -> None:
    code = (f"import sys, runpy; sys.version_info = (3, 9, 10, 'final', 0); sys.version = '3.9.10 (main)'; "
            f"sys.argv = [{str(script)!r}]; runpy.run_path({str(script)!r}, run_name='__main__')")
    completed = _python(code)
    assert completed.returncode == 1
    assert completed.stderr == (f"{script.stem}: error: SpectrumAttack needs 3D Slicer 5.10 or later (Python "
                                "3.12); this Slicer runs Python 3.9.10.\n")
    import ast

    ast.parse(script.read_text(encoding="utf-8"), feature_version=(3, 9))  # 5.8 compiles the file first


def test_m10_minimum_python_is_what_the_engine_needs() -> None:
    source = (MODULE_DIR / "SpectrumAttack.py").read_text(encoding="utf-8")
    assert "MINIMUM_PYTHON = (3, 11)" in source
    assert "from typing import Self" in (ROOT / "SpectrumAttackLib" / "pipeline" / "staging.py").read_text()


def test_m11_pythonslicer_with_qt_importable_takes_the_logic_only_path(tmp_path: Path) -> None:
    """PythonSlicer can import ``qt``, but has no ``slicer.app``: the module must import as on slicer-core."""
    (tmp_path / "qt.py").write_text("")  # an importable qt, as in PythonSlicer
    completed = _python(f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(MODULE_DIR)!r}, {str(ROOT)!r}]; "
                        "import SpectrumAttack as m; print(m.APPLICATION, hasattr(m, 'SpectrumAttackLogic'), "
                        "hasattr(m, 'SpectrumAttackWidget'))")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "True", "False"]


@pytest.mark.parametrize("flag", ["--referenceLabel", "--cleanLabel", "--metricsFile"])
def test_m12_folder_mode_refuses_single_volume_outputs(cli_script: Any, flag: str,
                                                       capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_script.main(["--inputDirectory", "in", "--outputDirectory", "out", flag, "x.nrrd"])
    assert exit_info.value.code == 2
    assert f"{flag} belongs to a single-volume run" in capsys.readouterr().err


def test_m13_progress_never_goes_back_while_slicer_loads_the_outputs() -> None:
    from SpectrumAttackAdapter.clirun import ProgressTracker

    tracker = ProgressTracker()
    text = "SpectrumAttack step 3/10 attack\nSpectrumAttack step 4/10 train loss 0.51, validation Dice 0.62\n"
    first = tracker.report(40.0, text)
    assert (first.fraction, first.done, first.total, first.stage) == (0.4, 4, 10, "train")
    assert first.message == "loss 0.51, validation Dice 0.62"
    assert tracker.report(0.0, text).fraction == 0.4  # Slicer resets the node's progress
    loading = tracker.report(0.0, text, completing=True)
    assert (loading.fraction, loading.stage) == (1.0, "loading results")


def test_m13_empty_outputs_of_a_running_job_are_not_offered_as_inputs(scene: Any, ct_node: Any) -> None:
    from slicer_helpers import ijk_array
    from SpectrumAttackAdapter.clijob import CLIJob

    reference = np.zeros(ijk_array(ct_node).shape, np.int16)
    job = CLIJob(scene, ct_node, {"model": "unet-btcv-3mm", "attack": "pgd"}, reference, "pgd", None, None)
    try:
        assert all(node.GetHideFromEditors() for node in job.outputs.values())
        assert not ct_node.GetHideFromEditors()
    finally:
        job._remove([*job.outputs.values(), job._reference])
        import shutil

        shutil.rmtree(job.run.folder, ignore_errors=True)


def test_m13_the_device_help_names_only_what_the_choices_offer() -> None:
    from SpectrumAttackLib.attacks.parameters import GENERAL_SETTINGS

    device = next(r for r in GENERAL_SETTINGS if r.engine == "device")
    assert "cuda:N" not in device.help
    assert all(choice in device.help.lower() for choice in device.choices)
