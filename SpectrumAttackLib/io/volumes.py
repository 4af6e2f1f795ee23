"""Volumes on disk with their geometry: NIfTI (nibabel) and NRRD (pynrrd).

A :class:`Volume` is a numpy array in **IJK** index order (``array[i, j, k]``, nibabel's order) plus the 4×4
**IJK→RAS** matrix (nibabel's ``affine``, millimetres). NRRD files state their geometry in LPS (Slicer's
default) or RAS; :func:`read_volume` and :func:`write_volume` convert to and from RAS here, so nothing else in
the Lib ever sees LPS.

Example:
    >>> vol = read_volume("imagesTr/img0001.nii.gz")
    >>> vol.array.shape, vol.spacing_mm
    ((122, 101, 112), (3.0, 3.0, 3.0))
    >>> write_volume("out.nrrd", vol.array, vol.affine, dtype=np.int16, overwrite=True)
"""

from __future__ import annotations

import os
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np

__all__ = ["SUFFIXES", "Volume", "read_volume", "volume_format", "write_volume"]

#: File-name endings understood by :func:`read_volume` and :func:`write_volume`, with their format.
SUFFIXES: dict[str, str] = {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd"}

# Flips the first two axes: LPS <-> RAS (its own inverse).
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NRRD_SPACES = {
    "left-posterior-superior": _LPS_TO_RAS,
    "LPS": _LPS_TO_RAS,
    "right-anterior-superior": np.eye(4),
    "RAS": np.eye(4),
}


@dataclass(frozen=True)
class Volume:
    """A voxel array with its placement in patient space.

    Attributes:
        array: voxel values, ``[I, J, K]`` (optionally ``[I, J, K, C]`` for multi-component volumes), the file's
            dtype (float when the file stores a scaling).
        affine: ``[4, 4]`` float64, maps ``(i, j, k, 1)`` to RAS millimetres.
    """

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along I, J and K in millimetres (column norms of the affine)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))


def volume_format(path: str | os.PathLike, name: str = "path") -> str:
    """``"nifti"`` or ``"nrrd"`` from the file name; ``name`` is the parameter named in the error.

    Raises:
        ValueError: the ending is none of :data:`SUFFIXES`.
    """
    file_name = Path(path).name.lower()
    for suffix, kind in SUFFIXES.items():
        if file_name.endswith(suffix):
            return kind
    allowed = ", ".join(repr(s) for s in SUFFIXES)
    raise ValueError(f"{name} must end with one of {allowed}, got {str(path)!r}.")


def read_volume(path: str | os.PathLike, *, name: str = "path") -> Volume:
    """Read a NIfTI or NRRD file into a :class:`Volume` (IJK array, IJK→RAS affine).

    ``name`` is the parameter named in error messages (``"--image"``, ``"inputVolume"``).

    NRRD ``space directions`` / ``space origin`` in LPS are converted to RAS; a NRRD without a space gets a
    diagonal affine from its ``spacings`` (1 mm where absent). Non-spatial NRRD axes (vector components) are
    moved to the end.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unknown file ending, a folder, or the file cannot be parsed (the message names the path).
    """
    path = Path(path)
    kind = volume_format(path, name)
    if path.is_dir():
        raise ValueError(f"{name} must be a volume file, got {str(path)!r} (a folder).")
    if not path.is_file():
        raise FileNotFoundError(f"{name} must be an existing volume file, got {str(path)!r} (no such file).")
    try:
        return _read_nifti(path) if kind == "nifti" else _read_nrrd(path)
    except (OSError, EOFError, ValueError, KeyError, zlib.error, nib.filebasedimages.ImageFileError,
            nrrd.NRRDError) as exc:
        raise ValueError(f"{name} must be a readable {kind.upper()} volume, got {str(path)!r} "
                         f"({str(exc).strip() or type(exc).__name__}).") from None


def _read_nifti(path: Path) -> Volume:
    image = nib.load(str(path))
    array = np.asanyarray(image.dataobj)
    return Volume(array=np.asarray(array), affine=np.asarray(image.affine, dtype=np.float64))


def _read_nrrd(path: Path) -> Volume:
    data, header = nrrd.read(str(path), index_order="F")
    directions = header.get("space directions")
    if directions is None:
        spacings = np.asarray(header.get("spacings", [1.0] * data.ndim), dtype=np.float64)
        spatial = [i for i in range(data.ndim) if np.isfinite(spacings[i])][:3]
        matrix = np.diag([float(spacings[i]) for i in spatial])
        origin = np.zeros(3)
        to_ras = np.eye(4)
    else:
        directions = np.asarray(directions, dtype=np.float64)
        spatial = [i for i in range(data.ndim) if np.all(np.isfinite(directions[i]))]
        matrix = directions[spatial].T
        origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
        space = header.get("space", "left-posterior-superior")
        if space not in _NRRD_SPACES:
            raise ValueError(f"unsupported NRRD space {space!r}")
        to_ras = _NRRD_SPACES[space]
    if len(spatial) != 3 or matrix.shape != (3, 3):
        raise ValueError(f"expected 3 spatial axes, found {len(spatial)}")
    others = [i for i in range(data.ndim) if i not in spatial]
    array = np.transpose(data, spatial + others) if others else data
    affine = np.eye(4)
    affine[:3, :3] = matrix
    affine[:3, 3] = origin
    return Volume(array=np.ascontiguousarray(array), affine=to_ras @ affine)


def _check_affine(affine: np.ndarray) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be a 4x4 IJK->RAS matrix, got shape {affine.shape!r}.")
    if not np.all(np.isfinite(affine)) or not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"affine must be finite with last row [0, 0, 0, 1], got {affine.tolist()!r}.")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"affine must have an invertible 3x3 part, got {affine[:3, :3].tolist()!r}.")
    return affine


def _cast(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast with rounding (float → integer) and a range check instead of silent wrap-around."""
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(array.dtype, np.integer):
        array = np.rint(array)
    if np.issubdtype(dtype, np.integer) and array.size:
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise ValueError(
                f"array must fit dtype {dtype.name} [{info.min}, {info.max}], got values in [{low}, {high}]."
            )
    return array.astype(dtype, copy=False)


def write_volume(
    path: str | os.PathLike,
    array: np.ndarray,
    affine: np.ndarray,
    dtype: np.dtype | type | str = np.float32,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``array`` (IJK order) with its IJK→RAS ``affine`` as NIfTI or NRRD, chosen by the file ending.

    The file is written next to its destination under a temporary name and moved into place with
    ``os.replace``, so readers never see a half-written volume. NRRD files are written gzip-compressed in
    Slicer's LPS space; NIfTI files get both sform and qform (code 1, scanner) and millimetre units.

    Args:
        path: destination ending in ``.nii.gz``, ``.nii`` or ``.nrrd``.
        array: ``[I, J, K]`` or ``[I, J, K, C]`` voxel values.
        affine: ``[4, 4]`` IJK→RAS matrix in millimetres.
        dtype: stored voxel type; floats are rounded when stored as integers. Default float32.
        overwrite: replace an existing file. Default False.

    Returns:
        The path written.

    Raises:
        ValueError: bad ending, array rank, affine, or values outside ``dtype``'s range.
        FileExistsError: the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    kind = volume_format(path)
    affine = _check_affine(affine)
    array = np.asarray(array)
    if array.ndim not in (3, 4):
        raise ValueError(f"array must have 3 (I, J, K) or 4 (I, J, K, C) axes, got shape {array.shape!r}.")
    data = _cast(array, np.dtype(dtype))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = next(s for s in SUFFIXES if path.name.lower().endswith(s))
    # A unique hidden name in the destination folder (same file system, so os.replace is atomic); the file is
    # created by the writer with the usual permissions (mkstemp would make it owner-only).
    temp = path.with_name(f".{path.name[: -len(suffix)]}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        if kind == "nifti":
            _write_nifti(temp, data, affine)
        else:
            _write_nrrd(temp, data, affine)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units(xyz="mm")
    nib.save(image, str(path))


def _write_nrrd(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    lps = _LPS_TO_RAS @ affine
    directions = lps[:3, :3].T
    kinds = ["domain"] * 3
    if data.ndim == 4:
        directions = np.vstack([directions, np.full((1, 3), np.nan)])
        kinds.append("vector")
    header = {
        "space": "left-posterior-superior",
        "space directions": directions,
        "space origin": lps[:3, 3],
        "kinds": kinds,
        "encoding": "gzip",
    }
    nrrd.write(str(path), np.asfortranarray(data), header, index_order="F")
