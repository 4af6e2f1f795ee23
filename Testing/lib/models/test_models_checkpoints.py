"""load_checkpoint / save_checkpoint: container formats, prefixes, legacy MONAI keys, mismatch errors, atomic save."""

from __future__ import annotations

import warnings

import pytest
import torch
from models_helpers import TINY_UNETR, tiny_unet, tiny_unetr
from torch import nn

from SpectrumAttackLib.models import load_checkpoint, save_checkpoint
from SpectrumAttackLib.models.checkpoints import read_state_dict


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": sd},
        lambda sd: {"model_state_dict": sd, "optimizer": {}},
    ],
    ids=["bare", "state_dict", "model", "model_state_dict"],
)
def test_container_formats(tmp_path, wrap):
    source, target = tiny_unet(seed=1), tiny_unet(seed=2)
    assert not _same_weights(source, target)
    torch.save(wrap(source.state_dict()), tmp_path / "w.pt")
    report = load_checkpoint(target, tmp_path / "w.pt", strict=True)
    assert _same_weights(source, target)
    assert report.complete and report.renamed == {} and report.ignored == ()


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_stripped_and_reported(tmp_path, prefix):
    source, target = tiny_unet(seed=1), tiny_unet(seed=2)
    torch.save({"state_dict": {prefix + k: v for k, v in source.state_dict().items()}}, tmp_path / "w.pt")
    report = load_checkpoint(target, tmp_path / "w.pt", strict=True)
    assert _same_weights(source, target)
    key = next(iter(source.state_dict()))
    assert report.renamed[prefix + key] == key
    assert len(report.renamed) == len(source.state_dict())


def test_legacy_monai_unetr_keys(tmp_path):
    """MONAI <= 0.7 UNETR checkpoints carry a patch-embedding class token and lack norm_cross_attn (MONAI >= 1.4)."""
    source, target = tiny_unetr(seed=1), tiny_unetr(seed=2)
    state = {k: v for k, v in source.state_dict().items() if ".norm_cross_attn." not in k}
    state["vit.patch_embedding.cls_token"] = torch.zeros(1, 1, TINY_UNETR["hidden_size"])
    torch.save({"state_dict": state}, tmp_path / "old.pt")
    report = load_checkpoint(target, tmp_path / "old.pt", strict=True)
    assert report.complete
    assert "vit.patch_embedding.cls_token" in report.ignored
    assert "vit.blocks.0.norm_cross_attn.weight" in report.ignored
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


def test_other_class_count_names_num_classes(tmp_path):
    torch.save(tiny_unet(num_classes=14).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="num_classes") as info:
        load_checkpoint(tiny_unet(num_classes=4), tmp_path / "w.pt")
    assert "14 output classes" in str(info.value) and "--out_channels" in str(info.value)


def test_other_class_count_unetr(tmp_path):
    torch.save(tiny_unetr(num_classes=14).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="num_classes"):
        load_checkpoint(tiny_unetr(num_classes=3), tmp_path / "w.pt")


def test_other_architecture(tmp_path):
    torch.save({"state_dict": tiny_unet().state_dict()}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="architecture") as info:
        load_checkpoint(tiny_unetr(), tmp_path / "w.pt")
    assert "holds unet weights" in str(info.value)


def test_other_patch_embedding_says_which(tmp_path):
    torch.save(tiny_unetr(pos_embed="perceptron").state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="pos_embed") as info:
        load_checkpoint(tiny_unetr(pos_embed="conv"), tmp_path / "w.pt")
    assert "pos_embed='perceptron'" in str(info.value)


def test_other_roi_points_at_roi(tmp_path):
    torch.save(tiny_unetr(roi=(32, 32, 32)).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="roi"):
        load_checkpoint(tiny_unetr(roi=(48, 48, 48)), tmp_path / "w.pt")


def test_partial_checkpoint_warns_or_raises_when_strict(tmp_path):
    state = tiny_unet(seed=1).state_dict()
    dropped = next(k for k in state if k.endswith("bias"))
    state.pop(dropped)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="strict"):
        load_checkpoint(tiny_unet(seed=2), tmp_path / "w.pt", strict=True)
    with pytest.warns(UserWarning, match="not in the file"):
        report = load_checkpoint(tiny_unet(seed=2), tmp_path / "w.pt")
    assert report.missing == (dropped,) and not report.complete


def test_pickled_model_is_refused(tmp_path):
    torch.save(tiny_unet(), tmp_path / "model.pt")  # a whole pickled module, not weights
    with pytest.raises(ValueError, match="weights-only"):
        load_checkpoint(tiny_unet(), tmp_path / "model.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch")  # torch.jit.script in torch 2.13
def test_torchscript_file_is_refused_as_weights(tmp_path):
    torch.jit.script(tiny_unet()).save(str(tmp_path / "scripted.pt"))
    with pytest.raises(ValueError, match="weights-only") as info:
        load_checkpoint(tiny_unet(), tmp_path / "scripted.pt")
    assert "pass the TorchScript file as the model itself" in str(info.value)


def test_not_a_state_dict(tmp_path):
    torch.save({"epoch": 3, "best_acc": 0.5}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="state dict"):
        read_state_dict(tmp_path / "w.pt")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tiny_unet(), tmp_path / "absent.pt")


def test_save_checkpoint_round_trip_and_extra(tmp_path):
    source = tiny_unet(seed=1)
    optimiser = torch.optim.AdamW(source.parameters(), lr=1e-3)
    path = save_checkpoint(tmp_path / "run" / "model_best.pt", source, epoch=7, optimizer=optimiser.state_dict())
    assert [p.name for p in path.parent.iterdir()] == ["model_best.pt"]  # no temporary file left
    content = torch.load(path, weights_only=True)
    assert content["epoch"] == 7 and "param_groups" in content["optimizer"]
    target = tiny_unet(seed=2)
    load_checkpoint(target, path, strict=True)
    assert _same_weights(source, target)


def test_save_checkpoint_unwraps_data_parallel(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataParallel on a CPU-only machine warns
        wrapped = nn.DataParallel(tiny_unet())
    assert all(k.startswith("module.") for k in wrapped.state_dict())
    path = save_checkpoint(tmp_path / "w.pt", wrapped)
    assert not any(k.startswith("module.") for k in read_state_dict(path))


def test_save_checkpoint_reserved_key(tmp_path):
    with pytest.raises(ValueError, match="extra"):
        save_checkpoint(tmp_path / "w.pt", tiny_unet(), state_dict={})
