"""Fixtures of the command-line tests: a synthetic dataset with a fitted model, the sample data, a tiny UNETR.

``blob_data``: three synthetic CT-like volumes (two blob organs, in HU, 1 mm voxels, a non-trivial origin) written
as NIfTI with a split file, and the root conftest's fitted tiny UNet saved as a checkpoint, so that "the attack
lowers Dice" is measurable. ``sample_split``: the real sample CTs behind the README's split-file name (validation
case img0002) with a tiny randomly initialised UNETR checkpoint, for the seed README's command lines.
"""

from __future__ import annotations

import shlex

import pytest
import torch
from cli_helpers import README_SPLIT, BlobData, SampleSplit, write_blob_case, write_split

from SpectrumAttackLib.cli.main import main
from SpectrumAttackLib.data.sample_data import sample_data_path, sample_data_ready
from SpectrumAttackLib.models import build_model, save_checkpoint


@pytest.fixture(scope="session")
def blob_data(fitted_net, tmp_path_factory) -> BlobData:
    root = tmp_path_factory.mktemp("blob-data")
    images, labels = fitted_net.images[:, 0].numpy(), fitted_net.labels[:, 0].numpy()  # held-out volumes
    write_blob_case(root, 1, images[0], labels[0])
    write_blob_case(root, 2, images[1], labels[1])
    write_blob_case(root, 3, images[0, ::-1].copy(), labels[0, ::-1].copy())
    write_split(root, "split.json", validation=[1, 2], training=[3])
    checkpoint = save_checkpoint(root / "blob_unet.pt", fitted_net.model)
    return BlobData(root, checkpoint)


@pytest.fixture(scope="session")
def sample_split(tmp_path_factory) -> SampleSplit:
    if not sample_data_ready():
        pytest.skip("sample data not built (run `spectrum-attack sample-data` or `make test`)")
    root = tmp_path_factory.mktemp("sample")
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).symlink_to(sample_data_path() / folder, target_is_directory=True)
    write_split(root, README_SPLIT, validation=[2], training=[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model("unet-r", 14, roi=(32, 32, 32), feature_size=4, hidden_size=32, mlp_dim=64, num_heads=2)
    checkpoint = save_checkpoint(root / "unetr_tiny.pt", model)
    return SampleSplit(root, README_SPLIT, checkpoint)


@pytest.fixture()
def run_cli(capsys):
    """``run_cli("attack --flag ...") -> (exit code, stdout, stderr)`` through ``main``."""

    def run(line: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(shlex.split(line))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
