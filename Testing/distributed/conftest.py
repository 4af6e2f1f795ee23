"""Fixtures of the distributed tests: a dataset over the sample CTs with an uneven validation split, a tiny UNet.

``dataset`` links the sample data's images and labels into a folder with ``split.json``: training img0001,
validation img0003, img0001, img0002 (three cases, so two ranks get unequal shares, in an order that is not
sorted, so the merged order is checked too). ``tiny_unet.pt`` is a randomly initialised UNet (channels 4 8 16).
"""

from __future__ import annotations

import json

import pytest
from dist_helpers import VALIDATION, Dataset, build_tiny_unet

from SpectrumAttackLib.data.sample_data import sample_data_path, sample_data_ready
from SpectrumAttackLib.models import save_checkpoint


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Dataset:
    if not sample_data_ready():
        pytest.skip("sample data not built (run `spectrum-attack sample-data` or `make test`)")
    root = tmp_path_factory.mktemp("dist-data")
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).symlink_to(sample_data_path() / folder, target_is_directory=True)

    def entries(numbers):
        return [{"image": f"imagesTr/img{n:04d}.nii.gz", "label": f"labelsTr/label{n:04d}.nii.gz"} for n in numbers]

    (root / "split.json").write_text(json.dumps({"training": entries([1]), "validation": entries(VALIDATION)}))
    return Dataset(root, save_checkpoint(root / "tiny_unet.pt", build_tiny_unet()))
