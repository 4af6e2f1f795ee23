"""Inputs of the bad-input battery: one tiny CT-like case, a tiny TorchScript model, and the broken variants.

Every case is written as files in a dataset layout (``imagesTr/img0001.nii.gz``, ``labelsTr/label0001.nii.gz``,
``split.json``) and kept as arrays, so that file-based interfaces and the logic on a scene see the same data.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

#: image edge (voxels) and spacing (mm) of the case; the model's ROI and spacing match, so no resampling happens.
SHAPE = (20, 18, 16)
SPACING = 4.0
ROI = (16, 16, 16)
NUM_CLASSES = 3
AFFINE = np.diag([SPACING, SPACING, SPACING, 1.0])
#: the attack every good run uses: FGSM, one step.
ATTACK = {"name": "fgsm", "params": {"eps": 4.0}}


def ct_like() -> tuple[np.ndarray, np.ndarray]:
    """``(image HU float32 [20, 18, 16], labels uint8)``: air, a soft-tissue body (class 1), a brighter organ (2)."""
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    image = np.full(SHAPE, -1000.0, dtype=np.float32)
    labels = np.zeros(SHAPE, dtype=np.uint8)
    body = i**2 + j**2 < 0.7
    organ = (i - 0.2) ** 2 + j**2 + k**2 < 0.15
    image[body], labels[body] = 40.0, 1
    image[organ], labels[organ] = 150.0, 2
    return image, labels


def torchscript_model(path: Path, stated_classes: int = NUM_CLASSES, seed: int = 0) -> Path:
    """A random tiny UNet (3 outputs, weights drawn with ``seed``) as TorchScript whose metadata states
    ``stated_classes`` and the preprocessing (RAS, 4 mm, −175..250 HU, ROI 16³), as MONAI's ``ckpt_export`` writes
    it."""
    from SpectrumAttackLib.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model("unet", NUM_CLASSES, channels=(4, 8), strides=(2,), num_res_units=0).eval()
    metadata = {"network_data_format": {"outputs": {"pred": {
        "num_channels": stated_classes, "channel_def": {str(c): f"class_{c}" for c in range(stated_classes)}}}}}
    inference = {"preprocessing": [
        {"_target_": "Orientationd", "axcodes": "RAS"},
        {"_target_": "Spacingd", "pixdim": [SPACING] * 3},
        {"_target_": "ScaleIntensityRanged", "a_min": -175.0, "a_max": 250.0, "b_min": 0.0, "b_max": 1.0}],
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(ROI)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.zeros(1, 1, *ROI), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"metadata.json": json.dumps(metadata),
                                                        "inference.json": json.dumps(inference)})
    return path


def unsafe_bundle(folder: Path, marker: Path) -> Path:
    """A MONAI bundle whose ``network_def`` holds a ``$`` expression that would create ``marker`` when evaluated."""
    from SpectrumAttackLib.models import build_model

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    metadata = {"name": "evil", "network_data_format": {"outputs": {"pred": {"num_channels": NUM_CLASSES}}}}
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata))
    expression = f"$__import__('pathlib').Path({str(marker)!r}).write_text('ran') and 2"
    network = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": NUM_CLASSES,
               "channels": [4, 8], "strides": [expression], "num_res_units": 0}
    (folder / "configs" / "inference.json").write_text(json.dumps({"network_def": network}))
    net = build_model("unet", NUM_CLASSES, channels=(4, 8), strides=(2,), num_res_units=0)
    torch.save(net.state_dict(), folder / "models" / "model.pt")
    return folder


#: a ``hubconf.py`` whose ``net`` entry point writes a marker file, then returns what the caller asked for (the plans'
#: network when called with its keyword arguments, else a LeakyReLU), so that a load that runs it succeeds.
HUBCONF = """from pathlib import Path

import torch


def net(*args, **kwargs):
    Path({marker!r}).write_text("hubconf.py ran")
    if "input_channels" in kwargs:
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
        return PlainConvUNet(**kwargs)
    return torch.nn.LeakyReLU(inplace=True)
"""


def unsafe_nnunet_folder(source: Path, target: Path, marker: Path, key: str, value: str) -> Path:
    """A copy of the nnU-Net model folder ``source`` at ``target`` (same folder name) whose 3d_fullres plans name
    ``value`` in ``key`` (``network_class_name`` or a key of ``arch_kwargs``), with a ``hub/hubconf.py`` in the folder
    that writes ``marker`` if it is ever imported. The arguments that make ``torch.hub.load`` import it are added
    where the named object would receive them (the network's keyword arguments, or ``<key>_kwargs``)."""
    target.mkdir(parents=True)
    for name in ("dataset.json", "plans.json"):
        (target / name).write_bytes((source / name).read_bytes())
    (target / "fold_0").mkdir()
    (target / "fold_0" / "checkpoint_final.pth").symlink_to(source / "fold_0" / "checkpoint_final.pth")
    (target / "hub").mkdir()
    (target / "hub" / "hubconf.py").write_text(HUBCONF.format(marker=str(marker)))
    hub = {"repo_or_dir": str(target / "hub"), "model": "net", "source": "local"}
    plans = json.loads((target / "plans.json").read_text())
    architecture = plans["configurations"]["3d_fullres"]["architecture"]
    if key == "network_class_name":
        architecture["network_class_name"] = value
        architecture["arch_kwargs"].update(hub)
    else:
        architecture["arch_kwargs"][key] = value
        architecture["arch_kwargs"][f"{key}_kwargs"] = hub
    (target / "plans.json").write_text(json.dumps(plans, indent=2))
    return target


@dataclass
class Inputs:
    """One battery case, ready for any interface.

    Attributes:
        root: the test's folder (listed before and after the run).
        data_dir: dataset folder with ``split.json``.
        image, label: the files (the label may be None); image_array, label_array: the same as arrays (None where
            the case is a file fault: missing, truncated, not an image).
        model: model path (TorchScript file or bundle folder).
        attack, params: the attack.
        output: the output folder (``--save_adv_images_dir``; Slicer CLI: the folder of its output files).
        batch: the Slicer CLI case runs in batch mode (a folder of results).
        marker: a file the unsafe bundle (or nnU-Net folder) would create.
        nnunet: the session's real nnU-Net model folder, for the cases that edit it (else None).
    """

    root: Path
    data_dir: Path
    image: Path
    label: Path | None
    image_array: np.ndarray | None
    label_array: np.ndarray | None
    model: Path
    attack: str = ATTACK["name"]
    params: dict[str, Any] = field(default_factory=lambda: dict(ATTACK["params"]))
    output: Path | None = None
    batch: bool = False
    marker: Path | None = None
    nnunet: Path | None = None


def write_case(root: Path, image: np.ndarray, labels: np.ndarray | None) -> tuple[Path, Path, Path | None]:
    """Write the dataset layout; returns ``(data_dir, image path, label path)``."""
    data_dir = root / "data"
    (data_dir / "imagesTr").mkdir(parents=True)
    (data_dir / "labelsTr").mkdir()
    image_path = data_dir / "imagesTr" / "img0001.nii.gz"
    nib.save(nib.Nifti1Image(image, AFFINE), image_path)
    label_path = None
    entry = {"image": "imagesTr/img0001.nii.gz"}
    if labels is not None:
        label_path = data_dir / "labelsTr" / "label0001.nii.gz"
        nib.save(nib.Nifti1Image(labels, AFFINE), label_path)
        entry["label"] = "labelsTr/label0001.nii.gz"
    (data_dir / "split.json").write_text(json.dumps({"training": [], "validation": [entry]}))
    return data_dir, image_path, label_path


def truncate(path: Path) -> None:
    """Cut a gzipped NIfTI in half (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def not_an_image(path: Path) -> None:
    """Replace the file by gzipped text with a NIfTI name."""
    path.write_bytes(gzip.compress(b"this is not a NIfTI file\n"))


def listing(root: Path) -> list[str]:
    """Every file and folder under ``root`` (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def environment() -> dict[str, str]:
    """The environment of subprocesses: one thread each (the machine is shared)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
