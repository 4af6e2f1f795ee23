"""``workflows.harden`` on the real test nnU-Net folder: the new trained-model folder is loaded and run by nnU-Net's
own ``nnUNetPredictor``, and by ours."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.models.nnunet import read_nnunet_checkpoint
from SpectrumAttackLib.workflows.harden import harden

pytestmark = pytest.mark.slow


def _predict(model_folder: Path, image: Path) -> np.ndarray:
    """nnU-Net's own prediction of ``image`` with fold 0 of ``model_folder`` (no mirroring, CPU)."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False, device=torch.device("cpu"),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model_folder), use_folds=(0,),
                                                   checkpoint_name="checkpoint_final.pth")
    data, properties = SimpleITKIO().read_images([str(image)])
    return np.asarray(predictor.predict_single_npy_array(data, properties, None, None, False))


@pytest.fixture(scope="module")
def hardened(nnunet_model, nnunet_ct, tmp_path_factory):
    """Fold 0 of the test model fine-tuned with VAFT (FGSM examples) for two iterations on one sample crop."""
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in nnunet_model.rglob("*") if p.is_file()}
    output = tmp_path_factory.mktemp("harden") / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    result = harden([(nnunet_ct["small"], nnunet_ct["small_labels"])], nnunet_model, attack="fgsm", iterations=2,
                    crops=1, output=output, device="cpu", precision="fp32", model_arguments={"folds": [0]})
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in nnunet_model.rglob("*") if p.is_file()}
    assert after == before  # the input folder is never modified
    return result


def test_folder_layout_and_checkpoint_format(hardened, nnunet_model):
    folder = hardened.model_path
    assert hardened.model_kind == "nnunet" and len(hardened.history) == 2
    for name in ("plans.json", "dataset.json"):
        assert (folder / name).read_bytes() == (nnunet_model / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("fold_")) == ["fold_0"]  # fold 1: not tuned
    original = read_nnunet_checkpoint(nnunet_model / "fold_0" / "checkpoint_final.pth")
    new = read_nnunet_checkpoint(folder / "fold_0" / "checkpoint_final.pth")  # weights_only, allow-listed globals
    assert set(new) == set(original) | {"spectrumattack_hardening"}
    assert new["trainer_name"] == original["trainer_name"]
    assert new["init_args"]["configuration"] == "3d_fullres"
    assert new["inference_allowed_mirroring_axes"] == original["inference_allowed_mirroring_axes"]
    assert new["network_weights"].keys() == original["network_weights"].keys()  # deep-supervision heads kept
    changed = [k for k, v in new["network_weights"].items() if not torch.equal(v, original["network_weights"][k])]
    assert changed
    record = new["spectrumattack_hardening"]
    assert record["mode"] == "vaft" and record["attack"] == "fgsm" and record["deep_supervision"] is False
    assert json.loads(hardened.manifest.read_text())["arguments"]["iterations"] == 2


def test_nnunet_predictor_loads_and_predicts_the_hardened_model(hardened, nnunet_model, nnunet_ct):
    new = _predict(hardened.model_path, nnunet_ct["small"])
    old = _predict(nnunet_model, nnunet_ct["small"])
    assert new.shape == old.shape == (40, 56, 64)  # nnU-Net's (z, y, x) of the 64×56×40 crop
    assert not np.array_equal(new, old)
    ours = load_model(hardened.model_path, "cpu")  # our loader takes it too
    assert ours.entry.architecture == "nnunet" and ours.entry.arguments["folds"] == ["0"]


def test_several_folds_are_refused(nnunet_model, nnunet_ct, tmp_path):
    with pytest.raises(ValueError, match=r"model_arguments\['folds'\] must name one fold to fine-tune"):
        harden([(nnunet_ct["small"], nnunet_ct["small_labels"])], nnunet_model, iterations=1, output=tmp_path / "o",
               device="cpu", model_arguments={"folds": [0, 1]})
    assert list(tmp_path.iterdir()) == []


#: one cheap cell per model: the before/after audit's plumbing, not its figures.
_TINY_GRID = {"attacks": {"pgd": {"eps": [8], "params": {"steps": 2}}}}


def test_audit_maps_cases_with_nnunets_own_preprocessing(nnunet_model, nnunet_ct):
    from SpectrumAttackLib.inference.nnunet import NnUNetInference
    from SpectrumAttackLib.io.volumes import read_volume
    from SpectrumAttackLib.workflows.robustness import case_grid, volume_case

    original = load_model(nnunet_model, "cpu", folds=[0])
    volume = read_volume(nnunet_ct["resampled"])  # 0.98×0.98×2 mm: nnU-Net resamples it to the plans' spacing
    case = volume_case(volume, preprocessing=case_grid(original)).load()
    images, mapping = NnUNetInference(original.model, original.entry.preprocessing).to_model_grid(volume.array,
                                                                                                  volume.affine)
    torch.testing.assert_close(case.images, images, rtol=0, atol=0)
    assert case.spacing_mm == tuple(mapping.spacing_mm) == tuple(original.entry.preprocessing.spacing_mm)
    assert case.mapping.model_shape == mapping.model_shape


def test_audit_compares_the_original_and_the_hardened_model(hardened, nnunet_model, nnunet_ct):
    from SpectrumAttackLib.workflows.robustness import audit

    models = {"original": load_model(nnunet_model, "cpu", folds=[0]), "hardened": load_model(hardened.model_path,
                                                                                               "cpu")}
    outcome = audit(nnunet_ct["small"], labels=nnunet_ct["small_labels"], models=models, grid=_TINY_GRID,
                    device="cpu", precision="fp32")
    clean = {r["model"]: r["dice"] for r in outcome.clean}
    assert set(clean) == {"original", "hardened"} and clean["original"] != clean["hardened"]
    assert all(0.0 <= d <= 1.0 for d in clean.values())
    cells = {c["model"]: c for c in outcome.cells}
    for name, cell in cells.items():
        assert cell["attack"] == "pgd" and 0.0 < cell["ssim_3d"] < 1.0
        assert outcome.summary["per_model"][name]["clean_dice"] == pytest.approx(clean[name])


def test_audit_refuses_nnunet_mixed_with_monai_models(nnunet_model, nnunet_ct):
    from SpectrumAttackLib.workflows.robustness import audit

    with pytest.raises(ValueError, match=r"models must be all nnU-Net models or none, got nnU-Net models \(nn\)"):
        audit(nnunet_ct["small"], labels=nnunet_ct["small_labels"], grid=_TINY_GRID, device="cpu",
              models={"nn": load_model(nnunet_model, "cpu", folds=[0]), "unet": "unet-btcv-3mm"})
