"""``workflows.harden`` on tiny MONAI nets: checkpoints and bundles in, bundles out, bad inputs, cancel."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from workflow_helpers import CLASSES, ROI, phantom_ct, trained_model

from SpectrumAttackLib.inference.tiles import Cancelled
from SpectrumAttackLib.io.volumes import Volume, write_volume
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.workflows.harden import harden

TINY = {"architecture": "unet", "num_classes": len(CLASSES), "channels": (4, 8, 16), "strides": (2, 2),
        "num_res_units": 1}
QUICK = {"steps": 2, "q_max": 20.0}  # vafa-3d with 2 steps: cheap, still an attack


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The tiny phantom UNet saved as a bare state dict."""
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.save(trained_model().model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Two phantom CTs and their labels as NIfTI files, and a split json next to them."""
    folder = tmp_path_factory.mktemp("data")
    entries = []
    for seed in range(2):
        hu, labels, affine = phantom_ct(seed)
        write_volume(folder / f"ct{seed}.nii.gz", hu, affine)
        write_volume(folder / f"seg{seed}.nii.gz", labels.astype(np.uint8), affine)
        entries.append({"image": f"ct{seed}.nii.gz", "label": f"seg{seed}.nii.gz"})
    (folder / "dataset.json").write_text(json.dumps({"training": entries[:1], "validation": entries[1:]}))
    (folder / "manifest.json").write_text(json.dumps({"files": []}))  # another json: not a split file
    return {"folder": folder, "split": folder / "dataset.json", **{f"ct{i}": folder / f"ct{i}.nii.gz" for i in (0, 1)},
            **{f"seg{i}": folder / f"seg{i}.nii.gz" for i in (0, 1)}}


def _arguments(checkpoint: Path) -> dict:
    """``load_model`` keywords of the tiny checkpoint (architecture, sizes and the phantom's preprocessing)."""
    from workflow_helpers import model_entry

    return {**TINY, "preprocessing": model_entry().preprocessing}


def test_checkpoint_becomes_a_bundle_that_loads_and_differs(checkpoint, data, tmp_path):
    before = _digest(data["folder"]) | {"model": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
    messages: list[str] = []
    result = harden([(data["ct0"], data["seg0"])], checkpoint, iterations=3, validation=[(data["ct1"], data["seg1"])],
                    output=tmp_path / "hard", device="cpu", precision="fp32", params=QUICK, seed=1,
                    model_arguments=_arguments(checkpoint), val_every=3,
                    progress=lambda p: messages.append(p.message))  # fmt: skip
    assert result.model_path == tmp_path / "hard" and result.model_kind == "bundle"
    hardened = load_model(result.model_path, "cpu")  # by its path alone: architecture and classes are recorded
    original = load_model(checkpoint, "cpu", **_arguments(checkpoint))
    assert hardened.entry.class_names == original.entry.class_names  # class_0... for a bare checkpoint
    assert hardened.entry.preprocessing == original.entry.preprocessing
    changed = [k for k, v in hardened.model.state_dict().items() if not torch.equal(v, original.model.state_dict()[k])]
    assert changed, "the fine-tuned weights equal the original ones"
    assert [row["iteration"] for row in result.history] == [1, 2, 3]
    assert [row["val_dice"] is not None for row in result.history] == [False, False, True]
    assert all(row["loss_freq"] is not None for row in result.history)  # VAFT has the frequency term
    manifest = json.loads(result.manifest.read_text())
    assert manifest["command"] == "harden" and manifest["arguments"]["mode"] == "vaft"
    assert manifest["arguments"]["attack"] == "vafa-3d" and manifest["arguments"]["params"]["steps"] == 2
    assert len(manifest["extra"]["history"]) == 3 and (result.model_path / "train_log.csv").is_file()
    assert any("iteration 3/3" in m and "ETA" in m for m in messages)
    assert any("validation Dice" in m for m in messages)
    assert (_digest(data["folder"]) | {"model": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}) == before
    assert _leftovers(tmp_path) == []


def test_bundle_is_copied_with_new_weights(checkpoint, data, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "docs").mkdir()
    metadata = {"name": "phantom", "version": "0.2.0", "network_data_format": {"outputs": {"pred": {
        "num_channels": 3, "channel_def": dict(enumerate(CLASSES))}}}}
    network_def = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                   "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}
    inference = {"network_def": network_def, "preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
        {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0]},
        {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -175, "a_max": 250, "b_min": 0.0,
         "b_max": 1.0, "clip": True}]}, "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(ROI)}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(metadata))
    (bundle / "configs" / "inference.json").write_text(json.dumps(inference))
    (bundle / "docs" / "README.md").write_text("the bundle's own notes\n")
    (bundle / "models" / "model.pt").write_bytes(checkpoint.read_bytes())
    (bundle / "models" / "model.ts").write_bytes(b"a TorchScript export of the old weights")
    before = _digest(bundle)
    result = harden([(data["ct0"], data["seg0"])], bundle, mode="adversarial", attack="pgd",
                    params={"steps": 2, "eps": 8.0, "alpha": 0.02}, iterations=2, output=tmp_path / "out",
                    device="cpu", precision="fp32")  # fmt: skip
    after = _digest(result.model_path)
    assert _digest(bundle) == before  # the input bundle is untouched
    for name in ("configs/metadata.json", "configs/inference.json", "docs/README.md"):
        assert after[name] == before[name]
    assert "models/model.ts" not in after and after["models/model.pt"] != before["models/model.pt"]
    hardened = load_model(result.model_path, "cpu")
    assert hardened.entry.name == "phantom" and hardened.report.complete
    assert all(row["loss_freq"] is None and row["loss_clean"] is None for row in result.history)  # adversarial mode
    assert all(row["val_dice"] is None for row in result.history)  # no validation data


def test_split_json_gives_training_and_validation(checkpoint, data, tmp_path):
    result = harden(data["folder"], checkpoint, mode="normal", iterations=1, output=tmp_path / "n", device="cpu",
                    precision="fp32", model_arguments=_arguments(checkpoint))  # fmt: skip
    assert result.history[0]["val_dice"] is not None  # the split's validation list was used
    assert result.history[0]["loss_adversarial"] is None
    manifest = json.loads(result.manifest.read_text())
    assert manifest["arguments"]["training_cases"] == 1 and manifest["arguments"]["validation_cases"] == 1


def test_volumes_in_memory_and_arrays(checkpoint, tmp_path):
    hu, labels, affine = phantom_ct(3)
    pairs = [(Volume(hu, affine), labels)]
    copy = hu.copy()
    result = harden(pairs, checkpoint, iterations=1, output=tmp_path / "m", device="cpu", precision="fp32",
                    params=QUICK, model_arguments=_arguments(checkpoint))  # fmt: skip
    assert result.model_kind == "bundle" and np.array_equal(hu, copy)


def _bad_cases(data: dict[str, Path]) -> list[tuple[str, dict, str]]:
    hu, labels, affine = phantom_ct(0)
    shifted = affine.copy()
    shifted[:3, 3] += 10.0
    too_many = labels.copy()
    too_many[0, 0, 0] = 5
    good = [(data["ct0"], data["seg0"])]
    return [
        ("no pairs", {"training": []}, r"training must hold at least one \(image, labels\) pair, got none"),
        ("classes", {"training": [(Volume(hu, affine), too_many)]},
         r"training\[0\] labels must hold class ids in \[0, 2\] \(the model has 3 classes\), got 5"),
        ("geometry", {"training": [(Volume(hu, affine), Volume(labels, shifted))]},
         r"training\[0\] labels must lie on the image's grid"),
        ("shape", {"training": [(Volume(hu, affine), labels[:-1])]}, r"training\[0\] labels must"),
        ("iterations", {"training": good, "iterations": 0}, r"iterations must be an integer in \[1, inf\], got 0"),
        ("mode", {"training": good, "mode": "fgsm"}, r"mode must be one of 'vaft', 'adversarial', 'normal'"),
        ("attack", {"training": good, "attack": "nope"}, r"attack must be one of"),
        ("params", {"training": good, "params": {"rho": 0.3}}, r"params must hold parameters of attack 'vafa-3d'"),
        ("seed in params", {"training": good, "params": {"seed": 3}}, r"params must not contain 'seed'"),
        ("validation", {"training": good, "validation": [(data["ct1"], data["seg0"].with_name("none.nii.gz"))]},
         r"none\.nii\.gz"),
    ]


@pytest.mark.parametrize("index", range(10))
def test_bad_input_one_message_nothing_written(checkpoint, data, tmp_path, index):
    what, arguments, message = _bad_cases(data)[index]
    before = _digest(data["folder"])
    kwargs = {"iterations": 1, "output": tmp_path / "out", "device": "cpu", "precision": "fp32",
              "model_arguments": _arguments(checkpoint), **arguments}
    training = kwargs.pop("training")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        harden(training, checkpoint, **kwargs)
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == [], what
    assert _digest(data["folder"]) == before


def test_existing_output_and_inputs_are_refused(checkpoint, data, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    common = {"iterations": 1, "device": "cpu", "precision": "fp32", "model_arguments": _arguments(checkpoint)}
    pairs = [(data["ct0"], data["seg0"])]
    with pytest.raises(ValueError, match="output must be a new or empty folder unless overwrite=True is given"):
        harden(pairs, checkpoint, output=tmp_path / "taken", **common)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="output must be a new folder apart from the inputs"):
        harden(pairs, checkpoint, output=data["folder"], overwrite=True, **common)
    result = harden(pairs, checkpoint, output=tmp_path / "taken", overwrite=True, mode="normal", **common)
    assert not (result.model_path / "keep.txt").exists() and (result.model_path / "models" / "model.pt").is_file()
    assert _leftovers(tmp_path) == []


def test_cancel_leaves_nothing(checkpoint, data, tmp_path):
    polls = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > 3  # reading, before training, iteration 1, then stop before iteration 2

    with pytest.raises(Cancelled):
        harden([(data["ct0"], data["seg0"])], checkpoint, iterations=50, output=tmp_path / "c", device="cpu",
               precision="fp32", params=QUICK, should_stop=stop, model_arguments=_arguments(checkpoint))
    assert not (tmp_path / "c").exists() and list(tmp_path.iterdir()) == []
