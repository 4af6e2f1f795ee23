"""Small synthetic CT-like cases written as real NIfTI files, shared by the data tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from SpectrumAttackLib.io import write_volume

SHAPE = (24, 20, 16)
#: LPS-oriented 2 × 2.5 × 3 mm grid, so that reorientation to RAS and resampling both have work to do.
AFFINE = np.array([[-2.0, 0, 0, 30.0], [0, -2.5, 0, 40.0], [0, 0, 3.0, -50.0], [0, 0, 0, 1]])
BODY = (slice(3, 21), slice(2, 18), slice(2, 14))  # soft tissue inside air


def make_case(folder: Path, index: int, *, shape: tuple[int, int, int] = SHAPE) -> dict[str, str]:
    """Write ``imagesTr/img{index}.nii.gz`` (HU) and ``labelsTr/label{index}.nii.gz`` (classes 0, 1, 2)."""
    rng = np.random.default_rng(index)
    image = np.full(shape, -1000.0)
    image[BODY] = 40.0 + 10.0 * rng.standard_normal(image[BODY].shape)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[5:12, 4:10, 3:9] = 1
    image[5:12, 4:10, 3:9] = 120.0
    labels[14:19, 10:16, 6:12] = 2
    image[14:19, 10:16, 6:12] = -50.0
    image_name, label_name = f"imagesTr/img{index:04d}.nii.gz", f"labelsTr/label{index:04d}.nii.gz"
    write_volume(folder / image_name, image, AFFINE, dtype=np.int16)
    write_volume(folder / label_name, labels, AFFINE, dtype=np.uint8)
    return {"image": image_name, "label": label_name}


def make_dataset(folder: Path, n_train: int = 2, n_val: int = 1, split: str = "split.json") -> Path:
    """A dataset folder in the seed's layout with a split file; returns the folder."""
    cases = [make_case(folder, i + 1) for i in range(n_train + n_val)]
    content = {"training": cases[:n_train], "validation": cases[n_train:], "test": [cases[0]["image"]]}
    (folder / split).write_text(json.dumps(content))
    return folder
