"""load_datalist: the seed's split format, MSD-style string entries, and errors naming --data_dir / --json_list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from SpectrumAttackLib.data.datalist import load_datalist


def test_relative_paths_become_absolute(dataset):
    cases = load_datalist(dataset, "split.json", "training")
    assert len(cases) == 2
    assert cases[0] == {
        "image": str((dataset / "imagesTr/img0001.nii.gz").resolve()),
        "label": str((dataset / "labelsTr/label0001.nii.gz").resolve()),
    }
    assert all(Path(c["image"]).is_file() and Path(c["label"]).is_file() for c in cases)


def test_validation_and_msd_string_entries(dataset):
    assert [Path(c["image"]).name for c in load_datalist(dataset, "split.json", "validation")] == ["img0003.nii.gz"]
    test_cases = load_datalist(dataset, "split.json", "test")
    assert list(test_cases[0]) == ["image"] and test_cases[0]["image"].endswith("img0001.nii.gz")


def test_split_file_given_as_path_and_extra_fields_kept(dataset, tmp_path):
    split = tmp_path / "elsewhere.json"
    entry = {"image": str(dataset / "imagesTr/img0001.nii.gz"), "label": "labelsTr/label0001.nii.gz", "id": 7}
    split.write_text(json.dumps({"training": [entry]}))
    (case,) = load_datalist(dataset, split)
    assert case["id"] == 7 and case["label"] == str((dataset / "labelsTr/label0001.nii.gz").resolve())


@pytest.mark.parametrize("data_dir", [None, "None", ""])
def test_data_dir_not_given(data_dir):
    with pytest.raises(ValueError, match="--data_dir"):
        load_datalist(data_dir, "split.json")


@pytest.mark.parametrize("json_list", [None, "None"])
def test_json_list_not_given(dataset, json_list):
    with pytest.raises(ValueError, match="--json_list"):
        load_datalist(dataset, json_list)


def test_data_dir_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        load_datalist(tmp_path / "nowhere", "split.json")


def test_json_list_missing(dataset):
    with pytest.raises(FileNotFoundError, match="--json_list"):
        load_datalist(dataset, "dataset_synapse_18_12.json")


def test_json_list_not_json(dataset):
    (dataset / "bad.json").write_text("{'training': []")
    with pytest.raises(ValueError, match="--json_list"):
        load_datalist(dataset, "bad.json")


def test_unknown_key_lists_the_available_ones(dataset):
    with pytest.raises(ValueError, match=r"key must be one of .*'training', 'validation', 'test'"):
        load_datalist(dataset, "split.json", "val")


def test_listed_files_missing(dataset):
    (dataset / "labelsTr/label0002.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"--data_dir must contain the files .* 1 of 4 are missing"):
        load_datalist(dataset, "split.json")
    assert len(load_datalist(dataset, "split.json", check_files=False)) == 2


def test_entry_without_image(dataset):
    (dataset / "odd.json").write_text(json.dumps({"training": [{"label": "labelsTr/label0001.nii.gz"}]}))
    with pytest.raises(ValueError, match="entry 0 of 'training'"):
        load_datalist(dataset, "odd.json")
