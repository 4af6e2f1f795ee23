"""The module's self-test (``SpectrumAttackTest`` in ``SpectrumAttack.py`` calls these): the Logic on a synthetic
CT-like volume with a tiny MONAI UNet (random weights), on ``slicer.mrmlScene``; in the application also the
background run through the CLI module and its cancellation. ``case`` is the running ``unittest.TestCase``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import slicer

from SpectrumAttackAdapter.model_list import catalogue_names
from SpectrumAttackLib.models.catalogue import get_entry

__all__ = ["attack_adds_results", "background_run_and_cancel", "bad_inputs", "missing_engine", "synthetic_ct",
           "tiny_model"]


def missing_engine(requirements_file: Path) -> str:
    """Why the self-test cannot run here ("" when it can): PyTorch or a package of ``requirements.txt`` is missing.
    Tests never install anything: Slicer's CTest harness runs each ``test_*`` method unattended."""
    import importlib.util

    from SpectrumAttackAdapter.dependencies import missing_requirements, read_requirements

    try:
        torch_found = importlib.util.find_spec("torch") is not None
    except ImportError:  # an import hook or a broken install refuses it
        torch_found = False
    if not torch_found:
        return "PyTorch is not installed (install it with PyTorch Utils)"
    missing = missing_requirements(read_requirements(requirements_file))
    return f"{', '.join(missing)} not installed (Apply installs them after asking)" if missing else ""


def synthetic_ct(shape: tuple[int, int, int] = (24, 20, 16)) -> Any:
    """A CT-like volume (HU): air, a soft-tissue body, a brighter organ; 3 mm voxels, RAS."""
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    array = np.full(shape, -1000.0, dtype=np.float32)
    array[i**2 + j**2 < 0.8] = 40.0
    array[(i - 0.3) ** 2 + j**2 + k**2 < 0.2] = 150.0
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "SpectrumAttackTestCT")
    node.SetSpacing(3.0, 3.0, 3.0)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array.transpose(2, 1, 0)))
    return node


def tiny_model() -> Any:
    import torch

    from SpectrumAttackLib.models import LoadedModel, build_model

    entry = get_entry(catalogue_names()[0])
    torch.manual_seed(0)
    net = build_model(entry.architecture, entry.num_classes, channels=(4, 8), strides=(2,), num_res_units=0)
    return LoadedModel(model=net.eval(), entry=entry, report=None)

def bad_inputs(case: Any, logic_class: Any) -> None:
    case._message("Bad inputs are refused")
    logic = logic_class()
    with case.assertRaisesRegex(ValueError, "inputVolume"):
        logic.run(None, model="unet-btcv-3mm")
    flat = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "flat")
    slicer.util.updateVolumeFromArray(flat, np.zeros((1, 8, 8), np.float32))
    with case.assertRaisesRegex(ValueError, "inputVolume"):
        logic.run(flat, model="unet-btcv-3mm")
    with case.assertRaisesRegex(ValueError, "attack"):
        logic.run(synthetic_ct(), model="unet-btcv-3mm", attack="nope")

def attack_adds_results(case: Any, logic_class: Any) -> None:
    case._message("PGD on a synthetic CT with a tiny UNet")
    volume = synthetic_ct()
    before = np.array(slicer.util.arrayFromVolume(volume))
    logic = logic_class()
    result = logic.run(volume, model=tiny_model(), attack="pgd",
                       params={"steps": 2, "eps": 8, "alpha": 0.01}, showResult=False)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), before)
    for node in (result.adversarialVolume, result.perturbationVolume):
        case.assertEqual(node.GetImageData().GetDimensions(), volume.GetImageData().GetDimensions())
    perturbation = slicer.util.arrayFromVolume(result.perturbationVolume)
    entry = get_entry(catalogue_names()[0])
    bound = 8 / 255 * (entry.preprocessing.a_max - entry.preprocessing.a_min)
    case.assertLessEqual(float(np.abs(perturbation).max()), bound * 1.001)
    segmentation = result.cleanSegmentation.GetSegmentation()
    case.assertEqual(segmentation.GetNumberOfSegments(), entry.num_classes - 1)
    case.assertEqual(segmentation.GetNthSegment(0).GetName(), entry.classes[1].name)
    case.assertGreater(result.metricsTable.GetNumberOfRows(), entry.num_classes)

    from SpectrumAttackAdapter.layout import show_side_by_side

    application = hasattr(slicer, "app")  # its layout manager
    case.assertEqual(show_side_by_side(volume, result), application)
    if application:
        yellow = slicer.app.layoutManager().sliceWidget("Yellow").mrmlSliceCompositeNode()
        case.assertEqual(yellow.GetBackgroundVolumeID(), result.adversarialVolume.GetID())
    case._message("Test passed")

def background_run_and_cancel(case: Any, logic_class: Any) -> None:
    """The Widget's path: the CLI module in the background, then a cancelled run (application only)."""
    if getattr(getattr(slicer, "modules", None), "spectrumattackcli", None) is None:
        case._message("No SpectrumAttackCLI module (not the application): background run skipped")
        return
    import tempfile
    import time

    from SpectrumAttackLib.models import build_model, save_checkpoint

    case._message("FGSM in the background through the CLI module")
    checkpoint = Path(tempfile.mkdtemp(prefix="SpectrumAttackTest-")) / "unet.pt"
    save_checkpoint(checkpoint, build_model("unet", 3))
    volume = synthetic_ct()
    logic = logic_class()

    def runAndWait(cancel: bool) -> tuple[Any, Any]:
        finished: list[tuple[Any, Any]] = []
        job = logic.run(volume, model=str(checkpoint), attack="fgsm", params={"eps": 4}, architecture="unet",
                        numClasses=3, wait=False, onFinished=lambda r, e: finished.append((r, e)),
                        showResult=False)
        if cancel:
            job.cancel()
        deadline = time.monotonic() + 600
        while not finished and time.monotonic() < deadline:
            slicer.app.processEvents()
            time.sleep(0.05)
        case.assertTrue(finished, "the background run did not finish in 10 minutes")
        return finished[0]

    result, error = runAndWait(cancel=False)
    case.assertIsNone(error)
    case.assertEqual(result.cleanSegmentation.GetSegmentation().GetNumberOfSegments(), 2)
    case.assertEqual(result.adversarialVolume.GetImageData().GetDimensions(),
                     volume.GetImageData().GetDimensions())
    before = slicer.mrmlScene.GetNumberOfNodes()
    result, error = runAndWait(cancel=True)
    case.assertEqual((result, error), (None, "cancelled"))
    case.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
    case._message("Test passed")
