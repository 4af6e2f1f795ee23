"""Constants and file writers shared by the command-line tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

#: HU window of the seed: the blob intensities in [0, 1] are written as a_min + x·(a_max − a_min).
A_MIN, A_MAX = -175.0, 250.0
BLOB_AFFINE = np.array([[1.0, 0, 0, 10.0], [0, 1.0, 0, -20.0], [0, 0, 1.0, 5.0], [0, 0, 0, 1]])

#: model and data flags of the blob dataset (the fitted UNet: channels 4 8 16, strides 2 2, 3 classes).
BLOB_MODEL = ("--model_name unet --unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 --out_channels 3 "
              "--space_x 1 --space_y 1 --space_z 1 --roi_x 24 --roi_y 24 --roi_z 24")

#: tiny settings appended to the seed README's lines: 8 mm voxels, 32³ tiles, a small ViT, 2 steps.
TINY = ("--space_x 8 --space_y 8 --space_z 8 --roi_x 32 --roi_y 32 --roi_z 32 --feature_size 4 --hidden_size 32 "
        "--mlp_dim 64 --num_heads 2 --steps 2 --sw_batch_size 4")
#: the README's split file name; the tests' copy lists img0001 for training and img0002 for validation.
README_SPLIT = "dataset_synapse_18_12.json"


@dataclass(frozen=True)
class BlobData:
    """The synthetic dataset: ``data_dir`` with ``split.json`` (validation img0001, img0002; training img0003)."""

    data_dir: Path
    checkpoint: Path

    def flags(self) -> str:
        return (f"{BLOB_MODEL} --data_dir {self.data_dir} --json_list split.json --use_pretrained "
                f"--pretrained_path {self.checkpoint}")


@dataclass(frozen=True)
class SampleSplit:
    """A dataset folder over the sample CTs (``data_dir``, ``json_list``; validation case img0002) and a random
    tiny UNETR checkpoint (14 classes, ROI 32, the ViT of :data:`TINY`)."""

    data_dir: Path
    json_list: str
    checkpoint: Path


def write_blob_case(folder: Path, number: int, images: np.ndarray, labels: np.ndarray) -> None:
    """Write ``images`` ``[H, W, D]`` in [0, 1] as HU (float32) and ``labels`` (uint8) with :data:`BLOB_AFFINE`."""
    hu = A_MIN + images * (A_MAX - A_MIN)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(hu.astype(np.float32), BLOB_AFFINE), folder / f"imagesTr/img{number:04d}.nii.gz")
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), BLOB_AFFINE),
             folder / f"labelsTr/label{number:04d}.nii.gz")


def write_split(folder: Path, name: str, validation: list[int], training: list[int]) -> None:
    """A split file ``name`` in ``folder`` listing ``img<n>``/``label<n>`` pairs."""
    def entries(numbers: list[int]) -> list[dict[str, str]]:
        return [{"image": f"imagesTr/img{n:04d}.nii.gz", "label": f"labelsTr/label{n:04d}.nii.gz"} for n in numbers]

    (folder / name).write_text(json.dumps({"training": entries(training), "validation": entries(validation)}))
