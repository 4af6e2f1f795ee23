"""Bad input: one line ``spectrum-attack: error: <message naming the flag>``, exit code 2, no partial output."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from cli_helpers import BLOB_AFFINE, write_split

from SpectrumAttackLib.models import build_model, save_checkpoint

ATTACK = "--attack_name fgsm --eps 8"


def check_error(result, *words: str) -> str:
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("spectrum-attack: error: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture()
def broken_data(blob_data, tmp_path):
    """A copy of the blob dataset the test may damage."""
    copy = tmp_path / "data"
    shutil.copytree(blob_data.data_dir, copy)
    return copy


def flags_with(blob_data, data_dir) -> str:
    return blob_data.flags().replace(f"--data_dir {blob_data.data_dir}", f"--data_dir {data_dir}")


def test_missing_data_dir(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "out"
    flags = flags_with(blob_data, tmp_path / "nowhere")
    check_error(run_cli(f"attack {flags} --save_adv_images_dir {out} {ATTACK}"), "--data_dir")
    assert not out.exists()


def test_data_dir_not_given(blob_data, run_cli, tmp_path) -> None:
    flags = blob_data.flags().replace(f"--data_dir {blob_data.data_dir}", "")
    check_error(run_cli(f"attack {flags} --save_adv_images_dir {tmp_path / 'out'} {ATTACK}"), "--data_dir")


def test_missing_split_file(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "out"
    flags = blob_data.flags().replace("--json_list split.json", "--json_list nosuch.json")
    check_error(run_cli(f"attack {flags} --save_adv_images_dir {out} {ATTACK}"), "--json_list")
    assert not out.exists()


def test_image_label_shape_mismatch(blob_data, broken_data, run_cli, tmp_path) -> None:
    label = np.zeros((24, 24, 20), dtype=np.uint8)
    nib.save(nib.Nifti1Image(label, BLOB_AFFINE), broken_data / "labelsTr/label0002.nii.gz")
    out = tmp_path / "out"
    line = check_error(run_cli(f"attack {flags_with(blob_data, broken_data)} --save_adv_images_dir {out} {ATTACK}"),
                       "img0002", "label")
    assert "[24, 24, 20]" in line
    assert not out.exists() or not any(out.rglob("*"))  # case img0001 was done, but nothing was kept


def test_unreadable_nifti(blob_data, broken_data, run_cli, tmp_path) -> None:
    (broken_data / "imagesTr/img0001.nii.gz").write_bytes(b"not a nifti file")
    out = tmp_path / "out"
    check_error(run_cli(f"attack {flags_with(blob_data, broken_data)} --save_adv_images_dir {out} {ATTACK}"),
                "--data_dir", "img0001.nii.gz")
    assert not out.exists()


def test_class_count_not_matching_the_checkpoint(blob_data, run_cli, tmp_path) -> None:
    flags = blob_data.flags().replace("--out_channels 3", "--out_channels 5")
    check_error(run_cli(f"attack {flags} --save_adv_images_dir {tmp_path / 'out'} {ATTACK}"), "--out_channels")
    assert not (tmp_path / "out").exists()


def test_labels_beyond_the_model_classes(blob_data, broken_data, run_cli, tmp_path) -> None:
    label = np.asarray(nib.load(broken_data / "labelsTr/label0001.nii.gz").dataobj).copy()
    label[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(label, BLOB_AFFINE), broken_data / "labelsTr/label0001.nii.gz")
    check_error(run_cli(f"attack {flags_with(blob_data, broken_data)} --debugging {ATTACK}"), "label0001.nii.gz",
                "3 classes", "got 7")


def test_checkpoint_of_another_architecture(blob_data, run_cli, tmp_path) -> None:
    other = save_checkpoint(tmp_path / "unetr.pt", build_model("unet-r", 3, roi=(32, 32, 32), feature_size=8,
                                                                hidden_size=32, mlp_dim=64, num_heads=2))
    flags = blob_data.flags().replace(str(blob_data.checkpoint), str(other))
    check_error(run_cli(f"attack {flags} --save_adv_images_dir {tmp_path / 'out'} {ATTACK}"), "--model_name")
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint(blob_data, run_cli, tmp_path) -> None:
    flags = blob_data.flags().replace(str(blob_data.checkpoint), str(tmp_path / "none.pt"))
    check_error(run_cli(f"attack {flags} --debugging {ATTACK}"), "none.pt")


def test_swin_unetr_feature_size_not_multiple_of_12(blob_data, run_cli, tmp_path) -> None:
    flags = blob_data.flags().replace("--model_name unet", "--model_name swin-unetr")
    check_error(run_cli(f"attack {flags} --feature_size 16 --save_adv_images_dir {tmp_path / 'out'} {ATTACK}"),
                "--feature_size", "12", "16")
    assert not (tmp_path / "out").exists()


def test_output_folder_not_writable(blob_data, run_cli, tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    check_error(run_cli(f"attack {blob_data.flags()} --save_adv_images_dir {blocker / 'sub'} {ATTACK}"),
                "--save_adv_images_dir", "writable")


def test_output_folder_holding_results_is_refused(blob_data, run_cli, tmp_path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    check_error(run_cli(f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0001 --output {out} "
                        "--steps 1 --block_size 8 8 8"), "--output", "--overwrite")
    assert (out / "metrics.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging folder left


def test_no_output_folder_without_debugging(blob_data, run_cli) -> None:
    check_error(run_cli(f"attack {blob_data.flags()} {ATTACK}"), "--save_adv_images_dir", "--debugging")


def test_bad_attack_values(blob_data, run_cli, tmp_path) -> None:
    check_error(run_cli(f"attack {blob_data.flags()} --debugging --attack_name pgd --eps -1"), "eps")
    check_error(run_cli(f"attack {blob_data.flags()} --debugging --attack_name saa --block_size 8 8"), "block_size")
    check_error(run_cli(f"attack {blob_data.flags()} --debugging --attack_name saa --attack_mode blocks"),
                "--attack_mode")
    check_error(run_cli(f"attack {blob_data.flags()} --debugging --attack_name saa --metrics_preset fancy"),
                "--metrics_preset")
    check_error(run_cli(f"attack {blob_data.flags()} --debugging --gen_val_adv_mode --gen_train_adv_mode "
                        f"{ATTACK}"), "--gen_train_adv_mode")


def test_unknown_flag_is_a_usage_error(run_cli) -> None:
    code, _, err = run_cli("attack --no_such_flag 1")
    assert code == 2
    assert "unrecognized arguments: --no_such_flag" in err


def test_evaluate_without_adversarial_images(blob_data, run_cli, tmp_path) -> None:
    empty = tmp_path / "adv"
    empty.mkdir()
    check_error(run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {empty} --no_sub_dir_adv_images"),
                "--adv_images_dir", "img0001_adv.nii.gz")
    check_error(run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {tmp_path / 'none'} "
                        "--no_sub_dir_adv_images"), "--adv_images_dir")
    check_error(run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {empty}"), "--attack_name")


def test_evaluate_rejects_an_adversarial_image_of_another_shape(blob_data, run_cli, tmp_path) -> None:
    adv = tmp_path / "adv"
    adv.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((24, 24, 12), np.float32), BLOB_AFFINE), adv / "img0001_adv.nii.gz")
    out = tmp_path / "eval"
    check_error(run_cli(f"evaluate {blob_data.flags()} --adv_images_dir {adv} --no_sub_dir_adv_images "
                        f"--output {out}"), "--adv_images_dir", "img0001", "[24, 24, 12]")
    assert not out.exists() or not any(out.iterdir())


def test_demo_with_an_unknown_case(blob_data, run_cli, tmp_path) -> None:
    check_error(run_cli(f"demo {blob_data.flags()} --model {blob_data.checkpoint} --case img0042 "
                        f"--output {tmp_path / 'd'}"), "--case", "img0001")
    assert not (tmp_path / "d").exists()


def test_debug_environment_shows_the_traceback(blob_data, monkeypatch, run_cli) -> None:
    monkeypatch.setenv("SPECTRUMATTACK_DEBUG", "1")
    with pytest.raises(ValueError, match="--save_adv_images_dir"):
        run_cli(f"attack {blob_data.flags()} {ATTACK}")


def test_duplicate_case_names_in_the_split(blob_data, broken_data, run_cli) -> None:
    write_split(broken_data, "split.json", validation=[1, 1], training=[3])
    check_error(run_cli(f"attack {flags_with(blob_data, broken_data)} --debugging {ATTACK}"), "--json_list",
                "img0001")


def test_split_without_validation_list(blob_data, broken_data, run_cli) -> None:
    (broken_data / "split.json").write_text(json.dumps({"training": []}))
    check_error(run_cli(f"attack {flags_with(blob_data, broken_data)} --debugging {ATTACK}"), "--json_list",
                "'validation'", "--gen_val_adv_mode")
