"""The module file: imports with slicer-core alone, GUI wiring against the .ui file, the self-test, and the
console example given for the README."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from typing import Any

import pytest
from slicer_helpers import MODULE_DIR, ROOT

UI_FILE = MODULE_DIR / "Resources" / "UI" / "SpectrumAttack.ui"
MODULE_FILE = MODULE_DIR / "SpectrumAttack.py"

#: The README's "Python console" example, run below against a slicer-core scene.
CONSOLE_EXAMPLE = '''\
import slicer
from SpectrumAttack import SpectrumAttackLogic

volume = slicer.util.getNode("img0001")  # a CT loaded with File > Add Data
logic = SpectrumAttackLogic()  # in Slicer also: slicer.util.getModuleLogic("SpectrumAttack")
result = logic.run(volume, model="unet-btcv-3mm", attack="saa",
                   params={"steps": 10, "rho": 0.4, "block_size": 16, "lambda_dice": 0.2,
                           "use_ssim_loss": True, "lambda_ssim": 0.75})
for organ, dice in result.metrics["adversarial"]["dice_per_class"].items():
    print(f"{organ:30s} Dice vs clean prediction {dice:.3f}")
print(result.adversarialVolume.GetName(), result.perturbationVolume.GetName(), result.metricsTable.GetName())
'''


def test_module_imports_with_slicer_core_alone_and_without_torch() -> None:
    code = (f"import sys; sys.path[:0] = [{str(MODULE_DIR)!r}, {str(ROOT)!r}]; import SpectrumAttack as m; "
            "print(m.APPLICATION, 'torch' in sys.modules, hasattr(m, 'SpectrumAttackLogic'), "
            "hasattr(m, 'SpectrumAttackWidget'), hasattr(m, 'SpectrumAttackParameterNode'))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "False", "True", "False", "False"]


def test_module_metadata_cites_the_papers() -> None:
    source = MODULE_FILE.read_text()
    for needle in ("SA²", "ISBI 2025", "VAFA", "MICCAI 2023", "arXiv:2307.07269"):
        assert needle in source


def test_self_test_passes_on_a_slicer_core_scene(module: Any, scene: Any) -> None:
    pytest.importorskip("torch")
    suite = unittest.TestSuite([module.SpectrumAttackTest("runTest")])
    outcome = unittest.TextTestRunner(stream=open(os.devnull, "w"), verbosity=0).run(suite)  # noqa: SIM115
    assert outcome.wasSuccessful(), outcome.failures + outcome.errors


def test_console_example_runs(module: Any, scene: Any, ct_node: Any, tiny_catalogue: Any,
                              capsys: pytest.CaptureFixture) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(CONSOLE_EXAMPLE, "console-example", "exec"), namespace)
    result = namespace["result"]
    assert all(node.GetScene() is scene for node in result.nodes())
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("spleen") and printed[-1].startswith("img0001 adversarial (saa)")


def test_slicer_page_shows_the_console_example() -> None:
    assert CONSOLE_EXAMPLE.strip() in (ROOT / "docs/slicer.md").read_text(encoding="utf-8")
