"""nnU-Net v2 trained-model folders: loading, refusals, and predictions equal to nnUNetPredictor's.

The model folder is the session's ``nnunet_model`` (built with nnU-Net's own tools, see ``nnunet_helpers``).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunet_helpers import LABELS

from SpectrumAttackLib.data.btcv import BTCV_COLOURS
from SpectrumAttackLib.io.volumes import read_volume
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.models.nnunet import NnUNetEnsemble, NnUNetPreprocessing, read_nnunet_checkpoint

pytestmark = pytest.mark.slow

#: float16's subnormal step: nnU-Net accumulates the Gaussian-weighted logits in float16.
FLOAT16_SUBNORMAL_STEP = 2.0**-24


def _float16_step(value: float) -> float:
    """The gap between ``|value|`` and the next float16 number above it."""
    x = torch.tensor(abs(value), dtype=torch.float16)
    return float(torch.nextafter(x, torch.tensor(float("inf"), dtype=torch.float16)) - x)


def _summed_gaussian(shape: tuple[int, ...], patch: tuple[int, ...]) -> torch.Tensor:
    """nnU-Net's float16 sum ``[H, W, D]`` of the Gaussian weights of the windows it places on a ``shape`` volume
    (``n_predictions`` of ``nnUNetPredictor``, padding cropped off), from nnU-Net's own functions."""
    from acvl_utils.cropping_and_padding.padding import pad_nd_image
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian, compute_steps_for_sliding_window

    padded, revert = pad_nd_image(torch.zeros(shape), patch, "constant", {"value": 0}, True)
    gaussian = compute_gaussian(patch, 1 / 8, 10, dtype=torch.float16, device=torch.device("cpu"))
    total = torch.zeros(padded.shape, dtype=torch.float16)
    for start in itertools.product(*compute_steps_for_sliding_window(padded.shape, patch, 0.5)):
        total[tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True))] += gaussian
    return total[revert].float()


def _copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_folder_loads_with_classes_preprocessing_and_folds(nnunet_model: Path) -> None:
    plans = json.loads((nnunet_model / "plans.json").read_text())
    config = plans["configurations"]["3d_fullres"]
    intensity = plans["foreground_intensity_properties_per_channel"]["0"]
    loaded = load_model(nnunet_model, "cpu")
    entry = loaded.entry
    assert isinstance(loaded.model, NnUNetEnsemble) and not loaded.model.training
    assert entry.architecture == "nnunet" and entry.arguments["folds"] == ["0", "1"]
    assert entry.class_names == LABELS
    assert entry.classes[LABELS.index("liver")].rgb == BTCV_COLOURS[6]
    assert entry.classes[LABELS.index("kidney_left")].rgb == BTCV_COLOURS[3]
    prep = entry.preprocessing
    assert isinstance(prep, NnUNetPreprocessing)
    assert prep.roi == tuple(config["patch_size"]) and prep.spacing_mm == tuple(config["spacing"])
    assert (prep.a_min, prep.a_max) == (intensity["percentile_00_5"], intensity["percentile_99_5"])
    assert loaded.model.mirror_axes == (0, 1, 2) and not loaded.model.mirroring
    # the normalisation layer is nnU-Net's CT normalisation of the clipped window
    x = torch.tensor([0.0, 0.5, 1.0])
    hu = prep.a_min + x.double() * (prep.a_max - prep.a_min)
    expected = (hu - intensity["mean"]) / intensity["std"]
    torch.testing.assert_close(loaded.model.intensity(x.double()), expected)


def test_folds_are_averaged_and_checkpoint_choice_counts(nnunet_model: Path) -> None:
    patch = torch.rand((1, 1, 40, 56, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        both = load_model(nnunet_model, "cpu", folds=[0, 1]).model(patch)
        fold0 = load_model(nnunet_model, "cpu", folds=[0]).model(patch)
        fold1 = load_model(nnunet_model, "cpu", folds=1).model(patch)
        best = load_model(nnunet_model, "cpu", folds=[0], checkpoint="best").model(patch)
    torch.testing.assert_close(both, (fold0 + fold1) / 2, atol=1e-5, rtol=1e-5)
    assert (fold0 - fold1).abs().max() > 0.1
    assert (fold0 - best).abs().max() > 0.1


@pytest.mark.parametrize(("image", "mirroring"), [("image", False), ("resampled", True)])
def test_prediction_equals_nnunet_predictor(nnunet_model: Path, nnunet_ct: dict[str, Path], tmp_path: Path,
                                            image: str, mirroring: bool) -> None:
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    from SpectrumAttackLib.inference.nnunet import NnUNetInference

    path = nnunet_ct[image]
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(nnunet_model), (0,), "checkpoint_final.pth")
    data, _, properties = DefaultPreprocessor(verbose=False).run_case(
        [str(path)], None, predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json)
    their_logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).float()
    if mirroring:  # the steps predict_from_files_sequential runs (the file route costs 8 more passes here)
        theirs = np.transpose(convert_predicted_logits_to_segmentation_with_correct_shape(
            their_logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager,
            properties), (2, 1, 0))
    else:
        predictor.predict_from_files_sequential([[str(path)]], str(tmp_path), save_probabilities=False,
                                                overwrite=True)
        (written,) = tmp_path.glob("*.nii.gz")  # nnU-Net names it after the case, without the channel suffix
        theirs = read_volume(written).array

    loaded = load_model(nnunet_model, "cpu", folds=[0], mirroring=mirroring)
    run = NnUNetInference(loaded.model, loaded.entry.preprocessing)
    volume = read_volume(path)
    images, mapping = run.to_model_grid(volume.array, volume.affine)
    assert mapping.resampled == (image == "resampled")
    torch.testing.assert_close(loaded.model.intensity(images)[0], torch.from_numpy(data), atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the sliding window fed nnU-Net's own network input: bit for bit nnU-Net's logits
        assert torch.equal(run.window.blend_normalised(torch.from_numpy(data)[None])[0], their_logits)
    logits = run.predict_logits(images)
    seg = run.segmentation(logits, mapping)
    assert seg.shape == theirs.shape
    assert (seg == theirs).mean() >= 0.999
    # From our own input (equal to nnU-Net's up to float32 rounding, checked above), each logit may differ by
    # float16 rounding of nnU-Net's blend: a step at the logits' magnitude, and where the summed weight w is
    # subnormal in float16 (window corners) one accumulator step, 2^-24 / w; two of each (accumulator and quotient).
    weight = _summed_gaussian(tuple(data.shape[1:]), tuple(loaded.entry.preprocessing.roi))
    allowed = 2 * (_float16_step(float(their_logits.abs().max())) + FLOAT16_SUBNORMAL_STEP / weight)
    assert bool(((logits[0] - their_logits).abs() <= allowed).all())
    assert len(np.unique(seg)) > 1  # not a constant prediction


def _checkpoint(nnunet_model: Path) -> dict:
    return read_nnunet_checkpoint(nnunet_model / "fold_0" / "checkpoint_final.pth")


class _Payload:
    """Pickles as a call of ``os.system`` (what a malicious checkpoint would hold)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_foreign_object_is_refused_without_running_it(nnunet_model: Path, tmp_path: Path) -> None:
    folder = _copy_model(nnunet_model, tmp_path / nnunet_model.name)
    marker = tmp_path / "ran"
    checkpoint = _checkpoint(nnunet_model)
    checkpoint["logging"] = {"note": _Payload(marker)}
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(ValueError, match=r"another pickled object and was refused without running it"):
        load_model(folder, "cpu", folds=[0])
    assert not marker.exists()


def test_folder_errors_are_one_clear_message(nnunet_model: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"fold_3/checkpoint_final.pth does not exist \(available: 0, 1\)"):
        load_model(nnunet_model, "cpu", folds=[0, 3])
    with pytest.raises(ValueError, match=r"checkpoint must be one of"):
        load_model(nnunet_model, "cpu", checkpoint="latest")
    no_plans = _copy_model(nnunet_model, tmp_path / "no-plans" / nnunet_model.name)
    (no_plans / "plans.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"must contain plans.json"):
        load_model(no_plans, "cpu")
    other = _copy_model(nnunet_model, tmp_path / "other" / nnunet_model.name)
    from monai.networks.nets import UNet

    checkpoint = _checkpoint(nnunet_model)
    checkpoint["network_weights"] = UNet(3, 1, 14, (4, 8), (2,)).state_dict()
    torch.save(checkpoint, other / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(ValueError, match=r"fold_0/checkpoint_final.pth .* must hold the weights of the network"):
        load_model(other, "cpu", folds=[0])
    with pytest.raises(ValueError, match=r"apply to nnU-Net model folders only"):
        load_model("unet-btcv-3mm", "cpu", folds=[0])


def test_region_based_and_cascade_models_are_refused(nnunet_model: Path, tmp_path: Path) -> None:
    regions = _copy_model(nnunet_model, tmp_path / "regions" / nnunet_model.name)
    dataset = json.loads((regions / "dataset.json").read_text())
    dataset["labels"] = {"background": 0, "whole": [1, 2], "core": 2}
    dataset["regions_class_order"] = [1, 2]
    (regions / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match=r"region-based models are not supported"):
        load_model(regions, "cpu", folds=[0])
    cascade = _copy_model(nnunet_model, tmp_path / "cascade" / nnunet_model.name)
    plans = json.loads((cascade / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["previous_stage"] = "3d_lowres"
    (cascade / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ValueError, match=r"cascades are not supported"):
        load_model(cascade, "cpu", folds=[0])


def test_missing_extra_names_it(nnunet_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nnunetv2", None)
    with pytest.raises(ImportError, match=r"pip install 'SpectrumAttack\[nnunet\]'"):
        load_model(nnunet_model, "cpu")


def test_loader_imports_without_nnunet_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    code = ("import SpectrumAttackLib.models.loading, SpectrumAttackLib.inference.nnunet, sys; "
            "print('nnunetv2' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # nnU-Net is imported only when a folder is loaded
