"""The Logic's server mode on a real slicer-core scene against a real ``spectrum-attack serve`` on 127.0.0.1: the
client process has torch and MONAI made unimportable, and the nodes it gets are those of a local run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_helpers import BLOCK_TORCH, TOKENS, phantom, start_server, write_tiny_model, write_tokens

#: Runs in a fresh process: builds the scene, sets the Compute choice and runs the Logic; prints a JSON
#: description of what landed in the scene. MODE, URL, CASE are substituted.
SCRIPT = r'''
import hashlib, json, sys
import numpy as np
import slicer
from slicer_helpers import MODULE_DIR, ijk_array, volume_from_ijk
import SpectrumAttack
from SpectrumAttackAdapter import compute
from SpectrumAttackLib.progress import Cancelled

slicer.mrmlScene = scene = slicer.vtkMRMLScene()
case = np.load(CASE)
volume = volume_from_ijk(scene, case["hu"].astype(np.float32), case["affine"], "phantom")
labels = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "phantom labels")
labels.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(case["affine"]))
slicer.util.updateVolumeFromArray(labels, np.ascontiguousarray(case["labels"].transpose(2, 1, 0)))
node = slicer.vtkMRMLScriptedModuleNode()
node.SetSingletonTag("SpectrumAttack")
node.SetModuleName("SpectrumAttack")
node = scene.AddNode(node)
compute.set_backend(compute.parameter_node(scene), MODE, URL)
logic = SpectrumAttack.SpectrumAttackLogic()
reports = []
result = logic.run(volume, model="tiny-unet", attack="saa", params={"steps": 2, "rho": 0.3, "blockSize": 8},
                   referenceSegmentation=labels, precision="fp32", seed=1, showResult=False, onProgress=reports.append)
def digest(node):
    return hashlib.sha256(np.ascontiguousarray(ijk_array(node)).tobytes()).hexdigest()
def segments(node):
    seg = node.GetSegmentation()
    return [[seg.GetNthSegment(i).GetName(), [round(c, 6) for c in seg.GetNthSegment(i).GetColor()]]
            for i in range(seg.GetNumberOfSegments())]
table = result.metricsTable.GetTable()
rows = [[table.GetValue(r, c).ToString() for c in range(table.GetNumberOfColumns())]
        for r in range(table.GetNumberOfRows())]
description = {
    "names": [n.GetName() for n in result.nodes()],
    "classes": [n.GetClassName() for n in result.nodes()],
    "adversarial": digest(result.adversarialVolume), "perturbation": digest(result.perturbationVolume),
    "segments": [segments(result.cleanSegmentation), segments(result.adversarialSegmentation)],
    "table": [[table.GetColumn(c).GetName() for c in range(table.GetNumberOfColumns())], *rows],
    "dice": result.metrics["adversarial"]["dice"],
    "progress": bool(reports) and reports[-1].done == reports[-1].total,
}
nodes_before = scene.GetNumberOfNodes()
def stop(report):
    logic.cancel()
try:
    logic.run(volume, model="tiny-unet", attack="pgd", params={"steps": 100000}, precision="fp32",
              showResult=False, onProgress=stop)
    description["cancelled"] = False
except Cancelled:
    description["cancelled"] = scene.GetNumberOfNodes() == nodes_before
summary = logic.audit(volume, model="tiny-unet", preset={"attacks": {"gn": {"std": [4]}}}, precision="fp32")
description["audit_nodes"] = sorted(scene.GetNodeByID(summary["nodes"]["table"]).GetName().split())
scene.SetSaveToXMLString(1)
scene.Commit()
xml = scene.GetSceneXMLString()
description["url_in_scene"] = URL in xml if URL else None
description["token_in_scene"] = TOKEN in xml
description["torch"] = "torch" in sys.modules
description["monai"] = "monai" in sys.modules
print("DESCRIPTION " + json.dumps(description))
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("remote-slicer")
    resources = folder / "resources"
    write_tiny_model(resources)
    server = start_server(folder / "data", write_tokens(folder / "tokens.txt"), resources)
    yield server, resources, folder
    server.stop()


def _describe(mode: str, url: str, resources: Path, case: Path, block_torch: bool) -> dict[str, Any]:
    import os
    import subprocess

    code = (BLOCK_TORCH if block_torch else "") + "import sys\nsys.path.insert(0, " + repr(
        str(Path(__file__).resolve().parent)) + ")\n" + SCRIPT.replace("MODE", repr(mode)).replace(
        "URL", repr(url)).replace("CASE", repr(str(case))).replace("TOKEN", repr(TOKENS["alice"]))
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                   "SPECTRUMATTACK_RESOURCES": str(resources), "SPECTRUMATTACK_SERVER_TOKEN": TOKENS["alice"],
                   "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("DESCRIPTION "))
    return json.loads(line[len("DESCRIPTION "):])


@pytest.mark.slow
def test_server_mode_without_torch_adds_the_nodes_of_a_local_run(served: Any) -> None:
    server, resources, folder = served
    hu, labels, affine = phantom()
    case = folder / "case.npz"
    np.savez(case, hu=hu, labels=labels, affine=affine)
    remote = _describe("server", server.url, resources, case, block_torch=True)
    local = _describe("local", "", resources, case, block_torch=False)
    assert remote["torch"] is False and remote["monai"] is False and local["torch"] is True
    assert remote["token_in_scene"] is False and remote["url_in_scene"] is True
    assert remote["progress"] and remote["cancelled"] is True
    for key in ("names", "classes", "adversarial", "perturbation", "segments", "dice", "audit_nodes"):
        assert remote[key] == local[key], key
    untimed = (lambda rows: [r for r in rows if r[0] != "Time"])  # noqa: E731 - wall-clock time differs
    assert untimed(remote["table"]) == untimed(local["table"]) and len(remote["table"]) > 5
    assert remote["names"][0] == "phantom adversarial (saa)"


def test_server_mode_reports_a_refused_token_in_one_line(served: Any, monkeypatch: pytest.MonkeyPatch,
                                                         scene: Any, module: Any) -> None:
    from SpectrumAttackAdapter import compute

    from SpectrumAttackLib.remote import AuthenticationError

    server, _, _ = served
    hu, _, affine = phantom()
    from slicer_helpers import volume_from_ijk

    volume = volume_from_ijk(scene, hu.astype(np.float32), affine, "phantom")
    import slicer

    node = slicer.vtkMRMLScriptedModuleNode()
    node.SetSingletonTag("SpectrumAttack")
    node.SetModuleName("SpectrumAttack")
    compute.set_backend(scene.AddNode(node), "server", server.url)
    monkeypatch.setenv(compute.TOKEN_ENV, "not-the-token-0123456789")
    with pytest.raises(AuthenticationError, match="refused the token"):
        module.SpectrumAttackLogic().run(volume, model="tiny-unet", attack="fgsm", showResult=False)
    monkeypatch.setenv(compute.TOKEN_ENV, "")
    with pytest.raises(ValueError, match="serverToken must be set"):
        module.SpectrumAttackLogic().run(volume, model="tiny-unet", attack="fgsm", showResult=False)
    compute.set_backend(node, "local")
    assert module.SpectrumAttackLogic().computeBackend() == compute.Backend("local")
    with pytest.raises(ValueError, match="serverUrl must start with http"):
        compute.set_backend(node, "server", "gpu-box:8765")
