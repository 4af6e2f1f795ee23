"""The plans allow-list (:mod:`SpectrumAttackLib.models.nnunet_plans`) on plans dicts as nnU-Net's planners write
them; the same check on a real model folder, through every interface, is in the battery."""

from __future__ import annotations

import copy
import sys

import pytest

pytest.importorskip("dynamic_network_architectures", reason="the nnunet extra is not installed")

from SpectrumAttackLib.models.nnunet_plans import checked_plans

ARCHITECTURE = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
    "arch_kwargs": {"n_stages": 2, "features_per_stage": [8, 16], "conv_op": "torch.nn.modules.conv.Conv3d",
                    "kernel_sizes": [[3, 3, 3]] * 2, "strides": [[1, 1, 1], [2, 2, 2]], "n_blocks_per_stage": [1, 1],
                    "n_conv_per_stage_decoder": [1], "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
                    "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}


def plans(**changes: object) -> dict:
    architecture = copy.deepcopy(ARCHITECTURE)
    for key, value in changes.items():
        (architecture if key == "network_class_name" else architecture["arch_kwargs"])[key] = value
    return {"configurations": {"3d_fullres": {"architecture": architecture}, "3d_lowres": {"inherits_from": "x"}}}


def test_planner_plans_are_accepted_and_spelt_as_the_checked_classes() -> None:
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
    from torch import nn

    original = plans()
    checked = checked_plans(original, "m")["configurations"]["3d_fullres"]["architecture"]
    assert original == plans()  # the caller's dict is not changed
    import pydoc

    assert pydoc.locate(checked["network_class_name"]) is ResidualEncoderUNet
    kwargs = checked["arch_kwargs"]
    assert [pydoc.locate(kwargs[k]) for k in ("conv_op", "norm_op", "nonlin")] == [
        nn.Conv3d, nn.InstanceNorm3d, nn.LeakyReLU]
    assert kwargs["dropout_op"] is None


def test_a_network_class_that_moved_is_found_by_its_name_among_the_allowed() -> None:
    moved = plans(network_class_name="dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet")
    name = checked_plans(moved, "m")["configurations"]["3d_fullres"]["architecture"]["network_class_name"]
    assert name == "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


@pytest.mark.parametrize(("key", "value"), [
    ("network_class_name", "dynamic_network_architectures.architectures.unet.torch.hub.load"),
    ("network_class_name", "dynamic_network_architectures.architectures.unet.nn.Conv3d"),  # allowed, but not here
    ("network_class_name", "torch.nn.Module"),
    ("nonlin", "torch.nn.modules.module.torch.hub.load"),
    ("nonlin", "torch.nn.Linear"),  # a torch.nn class outside the set
    ("conv_op", "torch.nn.modules.conv.os.system"),
    ("norm_op", "subprocess.Popen"),
    ("dropout_op", "torch.nn.Dropout3d.__init__"),
    ("norm_op_kwargs", {"eps": 1e-5, "factory": "torch.hub.load"}),  # a name outside the import list
])
def test_anything_else_is_refused_naming_the_key(key: str, value: object) -> None:
    where = "network_class_name" if key == "network_class_name" else f"arch_kwargs.{key}"
    with pytest.raises(ValueError, match=rf"in 'configurations\.3d_fullres\.architecture\.{where}(\.factory)?', got"):
        checked_plans(plans(**{key: value}), "m")


def test_nothing_outside_torch_and_the_network_package_is_imported() -> None:
    name = "xml.dom.minidom"
    saved = sys.modules.pop(name, None)
    try:
        with pytest.raises(ValueError, match=r"arch_kwargs\.nonlin"):
            checked_plans(plans(nonlin=f"{name}.parseString"), "m")
        assert name not in sys.modules
    finally:
        if saved is not None:
            sys.modules[name] = saved
