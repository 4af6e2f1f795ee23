"""D11: the CT-vs-MR test on real volumes: the three sample CTs (two patients, one a DICOM series) pass, every
air-free crop of a CT passes, and TotalSegmentator 2.4.0's abdominal MR (minimum −47, 62 % of its voxels inside
−175…250 HU, which the old test let through) is flagged. The MR comes from the same cached archive as the sample
data; the test is skipped where that archive is not available."""

from __future__ import annotations

import gzip
import tarfile
import warnings

import nibabel as nib
import numpy as np
import pytest

from SpectrumAttackLib.data.sample_data import ARCHIVE_NAME, default_cache_dir, sample_data_path, sample_data_ready
from SpectrumAttackLib.pipeline.validate import warn_if_outside_window

WINDOW = (-175.0, 250.0)  # the bundled CT model's window (HU)


def _archive_volume(name: str) -> np.ndarray:
    archive = default_cache_dir() / ARCHIVE_NAME
    if not archive.is_file():
        pytest.skip(f"{ARCHIVE_NAME} is not in the sample-data cache (run `spectrum-attack sample-data`)")
    with tarfile.open(archive) as tar:
        data = tar.extractfile(f"TotalSegmentator-2.4.0/tests/reference_files/{name}").read()
    image = nib.Nifti1Image.from_bytes(gzip.decompress(data))
    return np.asarray(image.dataobj, dtype=np.float32)


def _verdict(array: np.ndarray) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return warn_if_outside_window("image", array, *WINDOW)


@pytest.mark.data
def test_real_mr_through_the_ct_model_is_flagged() -> None:
    mr = _archive_volume("example_mr_sm.nii.gz")
    assert mr.min() < 0 and np.mean((mr > WINDOW[0]) & (mr < WINDOW[1])) > 0.5  # what the old test let through
    message = _verdict(mr)
    assert message is not None and "only 0.0033 % of its voxels lie below -30 while" in message


@pytest.mark.data
@pytest.mark.skipif(not sample_data_ready(), reason="sample data not built (run `spectrum-attack sample-data`)")
@pytest.mark.parametrize("case", ["img0001", "img0002", "img0003"])
def test_real_cts_and_their_air_free_crops_pass(case: str) -> None:
    ct = np.asarray(nib.load(sample_data_path() / "imagesTr" / f"{case}.nii.gz").dataobj, dtype=np.float32)
    assert _verdict(ct) is None
    step, edge = 16, 32
    crops = [ct[i:i + edge, j:j + edge, k:k + edge] for i in range(0, ct.shape[0] - edge + 1, step)
             for j in range(0, ct.shape[1] - edge + 1, step) for k in range(0, ct.shape[2] - edge + 1, step)]
    inside_body = [c for c in crops if np.mean(c <= -500) < 0.01]  # no air: the hardest crops for the test
    assert all(_verdict(c) is None for c in inside_body)
