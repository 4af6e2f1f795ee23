"""read_volume / write_volume: NIfTI and NRRD round trips with oblique geometry, LPS↔RAS, atomic writes, errors."""

from __future__ import annotations

import nibabel as nib
import nrrd
import numpy as np
import pytest

from SpectrumAttackLib.io import Volume, read_volume, write_volume


def _oblique_affine() -> np.ndarray:
    """Rotation about two axes, anisotropic 0.8 × 1.2 × 2.5 mm voxels, a flip of J and an offset."""
    a, b = np.deg2rad(25.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag([0.8, -1.2, 2.5])
    affine[:3, 3] = [-101.5, 37.25, -812.0]
    return affine


@pytest.fixture
def volume() -> Volume:
    rng = np.random.default_rng(0)
    return Volume(array=rng.normal(size=(9, 7, 5)).astype(np.float32), affine=_oblique_affine())


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_round_trip_float(tmp_path, volume, suffix):
    path = write_volume(tmp_path / f"v{suffix}", volume.array, volume.affine)
    back = read_volume(path)
    assert back.array.dtype == np.float32 and back.array.shape == (9, 7, 5)
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)  # NIfTI stores float32 matrices
    np.testing.assert_allclose(back.spacing_mm, (0.8, 1.2, 2.5), atol=1e-6)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_round_trip_labels_with_rounding(tmp_path, volume, suffix):
    labels = np.zeros((9, 7, 5))
    labels[2:5, 1:4, 1:3] = 2.9999  # float labels from resampling are rounded, not truncated
    path = write_volume(tmp_path / f"l{suffix}", labels, volume.affine, dtype=np.uint8)
    back = read_volume(path)
    assert back.array.dtype == np.uint8
    assert set(np.unique(back.array)) == {0, 3} and int((back.array == 3).sum()) == 18


def test_nrrd_is_written_in_lps(tmp_path, volume):
    path = write_volume(tmp_path / "v.nrrd", volume.array, volume.affine)
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(header["space origin"], [101.5, -37.25, -812.0])
    np.testing.assert_allclose(np.asarray(header["space directions"])[0], volume.affine[:3, 0] * [-1, -1, 1])


def test_nrrd_and_nifti_agree_on_world_positions(tmp_path, volume):
    """The same voxel lands on the same RAS point whether the file is NRRD (LPS inside) or NIfTI (RAS)."""
    from_nrrd = read_volume(write_volume(tmp_path / "v.nrrd", volume.array, volume.affine))
    from_nifti = read_volume(write_volume(tmp_path / "v.nii.gz", volume.array, volume.affine))
    voxel = np.array([3, 5, 4, 1.0])
    np.testing.assert_allclose(from_nrrd.affine @ voxel, from_nifti.affine @ voxel, atol=1e-4)
    # and the NIfTI affine is nibabel's own reading of the file
    np.testing.assert_allclose(from_nifti.affine, nib.load(tmp_path / "v.nii.gz").affine)


def test_reads_ras_space_and_vector_nrrd(tmp_path):
    """A hand-written NRRD in RAS space with the component axis first (as Slicer writes vector volumes)."""
    data = np.arange(3 * 4 * 5 * 6, dtype=np.int16).reshape(3, 4, 5, 6)
    header = {
        "space": "right-anterior-superior",
        "space directions": np.array([[np.nan] * 3, [2.0, 0, 0], [0, 0, 3.0], [0, -1.5, 0]]),
        "space origin": np.array([10.0, 20.0, 30.0]),
        "kinds": ["vector", "domain", "domain", "domain"],
    }
    nrrd.write(str(tmp_path / "vec.nrrd"), data, header, index_order="F")
    vol = read_volume(tmp_path / "vec.nrrd")
    assert vol.array.shape == (4, 5, 6, 3)
    np.testing.assert_array_equal(vol.array[..., 1], data[1])
    np.testing.assert_allclose(vol.affine, [[2, 0, 0, 10], [0, 0, -1.5, 20], [0, 3, 0, 30], [0, 0, 0, 1]])


def test_refuses_to_overwrite(tmp_path, volume):
    path = write_volume(tmp_path / "v.nii.gz", volume.array, volume.affine)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_volume(path, volume.array * 2, volume.affine)
    write_volume(path, volume.array * 2, volume.affine, overwrite=True)
    np.testing.assert_array_equal(read_volume(path).array, volume.array * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"]  # no temporary files left


def test_unreadable_file_names_the_path(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not a volume at all")
    with pytest.raises(ValueError, match=r"path .*broken\.nii\.gz"):
        read_volume(path)
    bad_nrrd = tmp_path / "broken.nrrd"
    bad_nrrd.write_text("NRRD0004\ntype: banana\n\n")
    with pytest.raises(ValueError, match=r"path .*broken\.nrrd"):
        read_volume(bad_nrrd)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.nrrd"):
        read_volume(tmp_path / "absent.nrrd")


@pytest.mark.parametrize(
    "path, array, affine, dtype, name",
    [
        ("v.mha", np.zeros((2, 2, 2)), np.eye(4), np.float32, "path"),
        ("v.nii.gz", np.zeros((2, 2)), np.eye(4), np.float32, "array"),
        ("v.nii.gz", np.zeros((2, 2, 2)), np.eye(3), np.float32, "affine"),
        ("v.nii.gz", np.zeros((2, 2, 2)), np.diag([1.0, 1.0, 0.0, 1.0]), np.float32, "affine"),
        ("v.nii.gz", np.full((2, 2, 2), 300.0), np.eye(4), np.uint8, "array"),
    ],
)
def test_write_errors_name_the_parameter(tmp_path, path, array, affine, dtype, name):
    with pytest.raises(ValueError, match=name):
        write_volume(tmp_path / path, array, affine, dtype=dtype)
