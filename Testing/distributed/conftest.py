"""Fixtures of the distributed tests: a dataset over the sample CTs with an uneven validation split, a tiny UNet.

``dataset`` links the sample data's images and labels into a folder with ``split.json``: training img0001,
validation img0003, img0001, img0002 (three cases, so two ranks get unequal shares, in an order that is not
sorted, so the merged order is checked too). ``tiny_unet.pt`` is a randomly initialised UNet (channels 4 8 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from SpectrumAttackLib.data.sample_data import sample_data_path, sample_data_ready
from SpectrumAttackLib.models import build_model, save_checkpoint

VALIDATION = (3, 1, 2)
#: model flags of the tiny UNet and the tiny data settings (8 mm voxels, 32³ windows).
UNET_FLAGS = ("--model_name", "unet", "--unet_channels", "4", "8", "16", "--unet_strides", "2", "2",
              "--num_res_units", "1")
TINY_DATA = ("--roi_x", "32", "--roi_y", "32", "--roi_z", "32", "--space_x", "8", "--space_y", "8", "--space_z", "8",
             "--sw_batch_size", "4", "--workers", "0")


@dataclass(frozen=True)
class Dataset:
    """``data_dir`` holding ``split.json`` and the tiny UNet checkpoint."""

    data_dir: Path
    checkpoint: Path

    def data_flags(self) -> list[str]:
        return ["--data_dir", str(self.data_dir), "--json_list", "split.json", *UNET_FLAGS, *TINY_DATA]


def build_tiny_unet() -> torch.nn.Module:
    """The network of :data:`UNET_FLAGS` (14 BTCV classes), weights drawn from seed 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model("unet", 14, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Dataset:
    import json

    if not sample_data_ready():
        pytest.skip("sample data not built (run `spectrum-attack sample-data` or `make test`)")
    root = tmp_path_factory.mktemp("dist-data")
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).symlink_to(sample_data_path() / folder, target_is_directory=True)

    def entries(numbers):
        return [{"image": f"imagesTr/img{n:04d}.nii.gz", "label": f"labelsTr/label{n:04d}.nii.gz"} for n in numbers]

    (root / "split.json").write_text(json.dumps({"training": entries([1]), "validation": entries(VALIDATION)}))
    return Dataset(root, save_checkpoint(root / "tiny_unet.pt", build_tiny_unet()))
