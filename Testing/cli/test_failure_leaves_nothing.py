"""``evaluate``, ``transfer`` and ``demo`` failing after their staging folder exists (the manifest writer raising,
as a full disk would) leave nothing in the output's parent folder: no result, no staging folder, no output folder.

A mutation probe found that skipping the removal of the staging folder on failure went unnoticed (the other tests
look only at the target folder); these look at the parent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import SpectrumAttackLib.report.manifest as manifest
from SpectrumAttackLib.models import build_model, save_checkpoint

FGSM = "--attack_name fgsm --eps 8"


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture()
def failing_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the manifest could not be written (disk full)")

    monkeypatch.setattr(manifest, "write_manifest", fail)


@pytest.fixture()
def adversarial_folder(blob_data, run_cli, tmp_path) -> Path:
    out = tmp_path / "adv"
    code, _, err = run_cli(f"attack {blob_data.flags()} {FGSM} --save_adv_images_dir {out} --no_sub_dir_adv_images")
    assert code == 0, err
    return out


def _fails_cleanly(run_cli, line: str, parent: Path) -> None:
    before = _listing(parent)
    code, _, err = run_cli(line)
    assert code == 2 and err.strip() == "spectrum-attack: error: the manifest could not be written (disk full)", err
    assert _listing(parent) == before  # no staging folder, no output folder, no result


def test_evaluate(blob_data, run_cli, adversarial_folder, failing_manifest, tmp_path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    _fails_cleanly(run_cli, f"evaluate {blob_data.flags()} --adv_images_dir {adversarial_folder} "
                            f"--no_sub_dir_adv_images {FGSM} --output {parent / 'eval'}", parent)


def test_transfer(blob_data, run_cli, failing_manifest, tmp_path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        other = save_checkpoint(tmp_path / "other.pt", build_model("unet", 3, channels=(4, 8, 16), strides=(2, 2),
                                                                   num_res_units=1))
    parent = tmp_path / "parent"
    parent.mkdir()
    _fails_cleanly(run_cli, f"transfer --models unet={blob_data.checkpoint} unet={other} --unet_channels 4 8 16 "
                            f"--unet_strides 2 2 --num_res_units 1 --out_channels 3 --roi_x 24 --roi_y 24 --roi_z 24 "
                            f"--data_dir {blob_data.data_dir} --json_list split.json {FGSM} "
                            f"--output {parent / 'transfer'}", parent)


def test_demo(blob_data, run_cli, failing_manifest, tmp_path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    _fails_cleanly(run_cli, f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0001 {FGSM} "
                            f"--output {parent / 'demo'}", parent)

