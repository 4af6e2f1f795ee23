"""The BTCV-layout sample data built from the TotalSegmentator 2.4.0 archive: geometry, labels, idempotence, errors.

Voxel counts and HU facts come from sample-data.md §1.4–1.7, which were measured on the archive independently.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from SpectrumAttackLib.data import sample_data
from SpectrumAttackLib.data.btcv import BTCV_CLASSES
from SpectrumAttackLib.data.datalist import load_datalist
from SpectrumAttackLib.data.sample_data import (
    ARCHIVE_SHA256,
    SAMPLE_SPLIT,
    ensure_sample_data,
    sample_data_path,
    sample_data_ready,
    totalsegmentator_to_btcv,
)
from SpectrumAttackLib.io import read_volume

# sample-data.md §1.6, patient A, 61-class labels (example_seg_fast_force_split)
PATIENT_A_VOXELS = {1: 9668, 2: 7134, 3: 5090, 4: 1319, 6: 41692, 7: 4836, 8: 1839, 9: 2266, 10: 1086, 11: 695,
                    12: 166, 13: 210}  # fmt: skip
# patient B (example_seg_dicom): spleen, liver, stomach, aorta, IVC, portal/splenic vein, pancreas, right adrenal
PATIENT_B_VOXELS = {1: 130364, 6: 366698, 7: 74201, 8: 11675, 9: 4817, 10: 2952, 11: 1456, 12: 1254}


def _case(folder, number):
    return (read_volume(folder / f"imagesTr/img{number:04d}.nii.gz"),
            read_volume(folder / f"labelsTr/label{number:04d}.nii.gz"))  # fmt: skip


def test_layout_split_and_readme(sample_dataset):
    assert sample_dataset == sample_data_path() and sample_data_ready()
    split = json.loads((sample_dataset / SAMPLE_SPLIT).read_text())
    assert [c["image"] for c in split["training"]] == ["imagesTr/img0001.nii.gz"]
    assert [c["label"] for c in split["validation"]] == ["labelsTr/label0002.nii.gz", "labelsTr/label0003.nii.gz"]
    assert split["labels"] == {str(i): name for i, name in enumerate(BTCV_CLASSES)}
    assert len(load_datalist(sample_dataset, SAMPLE_SPLIT, "validation")) == 2
    readme = (sample_dataset / "README.txt").read_text()
    for fact in ("Apache-2.0", "TotalSegmentator", "doi:10.1148/ryai.230024", "silver", "2 patients", ARCHIVE_SHA256):
        assert fact in readme


def test_full_ct_case(sample_dataset):
    image, labels = _case(sample_dataset, 1)
    assert image.array.shape == labels.array.shape == (122, 101, 112)
    assert image.array.dtype == np.int16 and labels.array.dtype == np.uint8
    np.testing.assert_allclose(np.diag(image.affine)[:3], [3.0, 3.0, 3.0])
    np.testing.assert_allclose(labels.affine, image.affine)
    counts = np.bincount(labels.array.ravel(), minlength=14)
    assert {c: int(counts[c]) for c in range(1, 14) if counts[c]} == PATIENT_A_VOXELS  # no oesophagus


def test_top_slab_is_placed_at_slice_82(sample_dataset):
    full, _ = _case(sample_dataset, 1)
    slab, slab_labels = _case(sample_dataset, 2)
    assert slab.array.shape == (122, 101, 30)
    np.testing.assert_array_equal(slab.array, full.array[:, :, 82:])
    np.testing.assert_allclose(slab.affine[:3, 3], full.affine[:3, 3] + [0.0, 0.0, 82 * 3.0], atol=1e-4)
    assert set(np.unique(slab_labels.array)) == set(range(14)) - {5}


def test_dicom_case_geometry_and_alignment(sample_dataset):
    image, labels = _case(sample_dataset, 3)
    assert image.array.shape == labels.array.shape == (512, 512, 20)
    np.testing.assert_allclose(image.spacing_mm, (0.9765625, 0.9765625, 2.0), atol=1e-5)
    assert np.all(np.diag(image.affine)[:3] > 0)  # reoriented to RAS
    assert image.array.min() == -1024
    counts = np.bincount(labels.array.ravel(), minlength=14)
    assert {c: int(counts[c]) for c in range(1, 14) if counts[c]} == PATIENT_B_VOXELS
    # labels sit on the right tissue: contrast-enhanced aorta is bright, liver is soft tissue, outside is air
    hu = image.array.astype(float)
    assert hu[labels.array == 8].mean() > 130
    assert 40 < hu[labels.array == 6].mean() < 150
    assert hu[0, 0, :].mean() < -900


def test_label_values_and_hu_of_patient_a(sample_dataset):
    image, labels = _case(sample_dataset, 1)
    assert labels.array.max() <= 13
    assert 20 < image.array[labels.array == 6].mean() < 80  # native-phase liver


def test_mapping_is_by_name():
    class_map = {1: "liver", 2: "spleen", 3: "aorta", 7: "kidney_right", 8: "kidney_left", 9: "gallbladder",
                 10: "esophagus", 11: "stomach", 12: "inferior_vena_cava", 13: "portal_vein_and_splenic_vein",
                 14: "pancreas", 15: "adrenal_gland_right", 16: "adrenal_gland_left", 20: "femur_left"}  # fmt: skip
    lut = totalsegmentator_to_btcv(class_map)
    assert (lut[1], lut[2], lut[3], lut[10], lut[20], lut[4]) == (6, 1, 8, 5, 0, 0)
    with pytest.raises(RuntimeError, match="pancreas"):
        totalsegmentator_to_btcv({k: v for k, v in class_map.items() if v != "pancreas"})


def test_builds_from_cached_archive_without_network_and_is_idempotent(cached_archive, sample_dataset, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when a verified archive is cached")

    monkeypatch.setattr(subprocess, "run", no_network)
    folder = ensure_sample_data(cached_archive)
    assert folder == cached_archive / "btcv-sample" and sample_data_ready(cached_archive)
    built = json.loads((folder / "manifest.json").read_text())["files"]
    reference = json.loads((sample_dataset / "manifest.json").read_text())["files"]
    assert built == reference  # deterministic: identical files, byte for byte

    monkeypatch.setattr(sample_data, "_extract", lambda *a: pytest.fail("a complete dataset must not be rebuilt"))
    assert ensure_sample_data(cached_archive) == folder

    (folder / "labelsTr" / "label0003.nii.gz").write_bytes(b"damaged")
    assert not sample_data_ready(cached_archive)


def test_unreachable_index_gives_one_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "no-packages"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(RuntimeError, match="Could not download the sample data") as info:
        ensure_sample_data(tmp_path / "cache")
    message = str(info.value)
    assert "Traceback" not in message and ARCHIVE_SHA256 in message and info.value.__cause__ is None
    assert not (tmp_path / "cache" / "btcv-sample").exists()
