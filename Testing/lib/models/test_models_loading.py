"""load_model: catalogue names (sha256, missing weights), checkpoints, TorchScript files and MONAI bundles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from models_helpers import TINY_UNET, catalogue_entry, tiny_unet
from monai.data.torchscript_utils import save_net_with_metadata

from SpectrumAttackLib.models import LoadedModel, build_model, load_model, save_checkpoint
from SpectrumAttackLib.models.catalogue import Preprocessing

# TorchScript is deprecated in torch 2.13 but is still how users ship scripted models.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:torch"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

X = torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))


def _outputs_equal(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor = X) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_catalogue_model_with_verified_sha256(resources):
    folder, write = resources
    source = tiny_unet(seed=3)
    weights = save_checkpoint(folder / "weights" / "tiny.pt", source)
    write(catalogue_entry("tiny", "weights/tiny.pt", sha256=hashlib.sha256(weights.read_bytes()).hexdigest()))
    loaded = load_model("tiny", "cpu")
    assert isinstance(loaded, LoadedModel)
    assert not loaded.model.training and loaded.device == torch.device("cpu")
    assert loaded.entry.class_names == ("organ 0", "organ 1", "organ 2") and loaded.report.complete
    assert loaded.entry.preprocessing.spacing_mm == (2.0, 2.0, 2.0)
    assert _outputs_equal(loaded.model, source)


def test_catalogue_sha256_mismatch(resources):
    folder, write = resources
    save_checkpoint(folder / "weights" / "tiny.pt", tiny_unet())
    write(catalogue_entry("tiny", "weights/tiny.pt", sha256="0" * 64))
    with pytest.raises(ValueError, match="sha256"):
        load_model("tiny", "cpu")


def test_catalogue_missing_weights_says_how_to_get_them(resources):
    _, write = resources
    write(catalogue_entry("tiny", "weights/absent.pt"))
    with pytest.raises(FileNotFoundError, match="weights of catalogue model 'tiny' not found") as info:
        load_model("tiny", "cpu")
    assert "SPECTRUMATTACK_RESOURCES" in str(info.value) and "made by the test" in str(info.value)


def test_unknown_catalogue_name(resources):
    _, write = resources
    write(catalogue_entry("tiny", "weights/t.pt"))
    with pytest.raises(ValueError, match="model must be one of 'tiny'"):
        load_model("tinny", "cpu")


def test_checkpoint_path(tmp_path):
    source = tiny_unet(num_classes=4, seed=5)
    path = save_checkpoint(tmp_path / "model_best.pt", source, epoch=1)
    loaded = load_model(path, "cpu", architecture="unet", num_classes=4, **TINY_UNET)
    assert loaded.entry.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert loaded.entry.weights_path == path.resolve() and loaded.entry.preprocessing == Preprocessing()
    assert _outputs_equal(loaded.model, source)


def test_checkpoint_roi_sets_preprocessing_roi(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", tiny_unet())
    loaded = load_model(path, "cpu", architecture="unet", num_classes=3, roi=(32, 32, 32), **TINY_UNET)
    assert loaded.entry.preprocessing.roi == (32, 32, 32)


def test_checkpoint_needs_architecture_and_classes(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", tiny_unet())
    with pytest.raises(ValueError, match="architecture"):
        load_model(path, "cpu", num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        load_model(path, "cpu", architecture="unet", num_classes=5, **TINY_UNET)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file must exist"):
        load_model(tmp_path / "nothing.pt", "cpu", architecture="unet", num_classes=3)


def test_torchscript_file(tmp_path):
    source = tiny_unet(seed=7)
    path = tmp_path / "scripted.pt"
    torch.jit.trace(source, X).save(str(path))
    with pytest.warns(UserWarning, match="does not state orientation, spacing_mm"):
        loaded = load_model(path, "cpu", num_classes=3)
    assert loaded.report is None and loaded.entry.architecture == "torchscript"
    assert loaded.entry.class_names == ("class_0", "class_1", "class_2")
    assert _outputs_equal(loaded.model, source)
    with pytest.raises(ValueError, match="num_classes"):
        load_model(path, "cpu")


def test_torchscript_with_monai_metadata(tmp_path):
    source = tiny_unet(seed=7)
    meta = {"network_data_format": {"outputs": {"pred": {"num_channels": 3, "channel_def": {
        "0": "background", "1": "liver", "2": "spleen"}}}}}  # fmt: skip
    config = {"preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "Spacingd", "keys": "image", "pixdim": [2.5, 2.5, 4.0]},
        {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164, "b_min": 0, "b_max": 1},
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32]}}  # fmt: skip
    save_net_with_metadata(torch.jit.script(source), str(tmp_path / "model"), meta_values=meta,
                           more_extra_files={"inference.json": json.dumps(config).encode()})  # fmt: skip
    loaded = load_model(tmp_path / "model.ts", "cpu")
    assert loaded.entry.class_names == ("background", "liver", "spleen")
    assert loaded.entry.preprocessing == Preprocessing("RAS", (2.5, 2.5, 4.0), -57.0, 164.0, 0.0, 1.0, (32, 32, 32))
    assert _outputs_equal(loaded.model, source)


def _bundle(folder: Path, network_def: dict | None, state: dict, *, transforms: bool = True) -> Path:
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    metadata = {"name": "tiny_bundle", "version": "0.1.0", "description": "a test bundle",
                "network_data_format": {"inputs": {"image": {"num_channels": 1, "spatial_shape": [16, 16, 16]}},
                                        "outputs": {"pred": {"num_channels": 3, "channel_def": {
                                            "0": "background", "1": "kidney", "2": "tumour"}}}}}  # fmt: skip
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata))
    config: dict = {}
    if network_def is not None:
        config["network_def"] = network_def
    if transforms:
        config["preprocessing"] = {"_target_": "Compose", "transforms": [
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [1.0, 1.0, 1.0]},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -200, "a_max": 300, "b_min": 0.0,
             "b_max": 1.0, "clip": True}]}  # fmt: skip
        config["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [16, 16, 16]}
    (folder / "configs" / "inference.json").write_text(json.dumps(config))
    torch.save(state, folder / "models" / "model.pt")
    return folder


def test_bundle_with_network_def(tmp_path):
    source = tiny_unet(seed=9)
    network_def = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                   "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}  # fmt: skip
    folder = _bundle(tmp_path / "tiny_bundle", network_def, source.state_dict())
    loaded = load_model(folder, "cpu")
    assert loaded.entry.name == "tiny_bundle" and loaded.entry.architecture == "bundle"
    assert loaded.entry.class_names == ("background", "kidney", "tumour")
    assert loaded.entry.preprocessing == Preprocessing("RAS", (1.0, 1.0, 1.0), -200.0, 300.0, 0.0, 1.0, (16, 16, 16))
    assert loaded.report.complete and _outputs_equal(loaded.model, source)


def test_old_swin_unetr_bundle_drops_img_size(tmp_path):
    source = build_model("swin-unetr", 3, feature_size=12, roi=(64, 64, 64))
    network_def = {"_target_": "SwinUNETR", "img_size": [96, 96, 96], "in_channels": 1, "out_channels": 3,
                   "feature_size": 12}  # fmt: skip
    folder = _bundle(tmp_path / "swin", network_def, source.state_dict())
    loaded = load_model(folder, "cpu")
    assert loaded.report.complete
    reference = source.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in loaded.model.state_dict().items())


def test_bundle_without_network_def_needs_architecture(tmp_path):
    source = tiny_unet(seed=9)
    folder = _bundle(tmp_path / "plain", None, {"state_dict": source.state_dict()}, transforms=False)
    with pytest.raises(ValueError, match="architecture"):
        load_model(folder, "cpu")
    with pytest.warns(UserWarning, match="spacing_mm"):  # the bundle states no preprocessing
        loaded = load_model(folder, "cpu", architecture="unet", **TINY_UNET)
    assert loaded.entry.num_classes == 3 and loaded.entry.preprocessing.roi == (16, 16, 16)  # from spatial_shape
    assert _outputs_equal(loaded.model, source)


def test_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(ValueError, match="bundle"):
        load_model(tmp_path, "cpu")


def test_bundle_with_broken_metadata(tmp_path):
    folder = _bundle(tmp_path / "broken", None, tiny_unet().state_dict())
    (folder / "configs" / "metadata.json").write_text("{'name': ")
    with pytest.raises(ValueError, match="bundle configs must be valid"):
        load_model(folder, "cpu", architecture="unet", num_classes=3, **TINY_UNET)
