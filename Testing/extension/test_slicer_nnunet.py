"""SpectrumAttackLogic with a real nnU-Net v2 model folder on a slicer-core scene (the console's and the GUI's
"my model" path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from slicer_helpers import ijk_array, ijk_to_ras, load_volume

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("attack", "params"), [
    ("saa", {"steps": 1, "rho": 0.2, "block_size": 8, "lambda_dice": 0.01}),
    ("pgd", {"steps": 1, "eps": 4}),
])
def test_logic_attacks_an_nnunet_folder(module: Any, scene: Any, nnunet_model: Path, nnunet_ct: dict[str, Path],
                                        attack: str, params: dict) -> None:
    node = load_volume(scene, nnunet_ct["small"], "img0001")
    before = ijk_array(node).copy()
    result = module.SpectrumAttackLogic().run(node, model=str(nnunet_model), attack=attack, params=params,
                                              modelArguments={"folds": [0]}, showResult=False)
    np.testing.assert_array_equal(ijk_array(node), before)
    adversarial, perturbation = ijk_array(result.adversarialVolume), ijk_array(result.perturbationVolume)
    assert adversarial.shape == before.shape
    np.testing.assert_allclose(ijk_to_ras(result.adversarialVolume), ijk_to_ras(node), atol=1e-6)
    np.testing.assert_allclose(adversarial, before + perturbation, atol=1e-2)
    assert np.abs(perturbation).max() > 1.0  # HU
    segmentation = result.cleanSegmentation.GetSegmentation()
    names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
    assert {"liver", "spleen", "kidney_left"} <= names  # dataset.json's class names


def test_logic_hardens_an_nnunet_folder_that_nnunet_predicts_with(module: Any, scene: Any, nnunet_model: Path,
                                                                   nnunet_ct: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    node = load_volume(scene, nnunet_ct["small"], "img0001")
    labels = load_volume(scene, nnunet_ct["small_labels"], "labels", "vtkMRMLLabelMapVolumeNode")
    logic = module.SpectrumAttackLogic()
    output = tmp_path / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    outcome = logic.harden([(node, labels)], model=str(nnunet_model), modelArguments={"folds": [0]}, attack="fgsm",
                           params={"eps": 4}, iterations=2, output=output, device="cpu", precision="fp32",
                           auditPreset={"attacks": {"pgd": {"eps": [8], "params": {"steps": 2}}}})
    assert Path(outcome.modelPath) == output and outcome.modelName in logic.modelChoices()
    before, after = outcome.comparison["rows"]  # audited before and after on nnU-Net's own grid
    assert (before["model"], after["model"]) == ("original", "hardened")
    assert before["clean_dice"] != after["clean_dice"]
    assert outcome.table.GetNumberOfRows() == 2 and outcome.chart is not None

    def predict(folder: Path) -> np.ndarray:
        predictor = nnUNetPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(folder), use_folds=(0,),
                                                       checkpoint_name="checkpoint_final.pth")
        data, properties = SimpleITKIO().read_images([str(nnunet_ct["small"])])
        return np.asarray(predictor.predict_single_npy_array(data, properties, None, None, False))

    hardened, original = predict(output), predict(nnunet_model)  # nnU-Net's own predictor loads the new folder
    assert hardened.shape == original.shape and not np.array_equal(hardened, original)
