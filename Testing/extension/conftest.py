"""Fixtures of the Slicer-side tests: a real ``vtkMRMLScene`` from slicer-core as ``slicer.mrmlScene``, the sample
CT (cropped) read through a Slicer storage node, and tiny models in every form the module accepts.

Every test here is skipped when slicer-core is not installed; the sample-data tests also when the sample data
cannot be fetched.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the installed 'slicer' package is not slicer-core", allow_module_level=True)

from slicer_helpers import CLI_DIR, CROP, MODULE_DIR, TINY_UNET, load_volume  # noqa: E402 - after the skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.slicer)


@pytest.fixture
def scene() -> Any:
    """A fresh scene assigned to ``slicer.mrmlScene`` (as the application would), removed afterwards."""
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = slicer.vtkMRMLScene()
    yield slicer.mrmlScene
    slicer.mrmlScene.Clear(1)
    slicer.mrmlScene = previous


@pytest.fixture(scope="session")
def module() -> Any:
    """``SpectrumAttack/SpectrumAttack.py`` imported as Slicer would (its folder on ``sys.path``)."""
    import SpectrumAttack

    assert Path(SpectrumAttack.__file__).resolve() == MODULE_DIR / "SpectrumAttack.py"
    return SpectrumAttack


@pytest.fixture(scope="session")
def sample_ct(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cropped sample CT and its labels as NIfTI files (``image``, ``labels``)."""
    import nibabel as nib

    from SpectrumAttackLib.data.sample_data import ensure_sample_data

    try:
        folder = ensure_sample_data()
    except RuntimeError as error:
        pytest.skip(f"sample data unavailable: {error}")
    out = tmp_path_factory.mktemp("sample-ct")
    paths = {}
    for key, name in (("image", "imagesTr/img0001.nii.gz"), ("labels", "labelsTr/label0001.nii.gz")):
        source = nib.load(folder / name)
        array = np.asarray(source.dataobj)[CROP]
        affine = source.affine.copy()
        affine[:3, 3] = affine[:3, :3] @ [s.start for s in CROP] + affine[:3, 3]
        paths[key] = out / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(array.astype(np.int16), affine), paths[key])
    return paths


@pytest.fixture
def ct_node(scene: Any, sample_ct: dict[str, Path]) -> Any:
    """The cropped sample CT as a scalar volume node of ``scene``."""
    return load_volume(scene, sample_ct["image"], "img0001")


@pytest.fixture(scope="session")
def tiny_loaded() -> Any:
    """A ``LoadedModel``: the catalogue entry ``unet-btcv-3mm`` (14 BTCV classes, 3 mm, window −175..250 HU, ROI
    64³) with a tiny random-weight UNet of the same architecture."""
    torch = pytest.importorskip("torch")
    from SpectrumAttackLib.models import LoadedModel, build_model, get_entry

    entry = get_entry("unet-btcv-3mm")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_model(entry.architecture, entry.num_classes, **TINY_UNET)
    return LoadedModel(model=net.eval(), entry=entry, report=None)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_loaded: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny UNet's weights as a checkpoint file."""
    from SpectrumAttackLib.models import save_checkpoint

    path = tmp_path_factory.mktemp("checkpoint") / "tiny_unet.pt"
    save_checkpoint(path, tiny_loaded.model)
    return path


@pytest.fixture(scope="session")
def tiny_torchscript(tiny_loaded: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny UNet as a TorchScript file carrying the catalogue model's classes and preprocessing (the
    ``metadata.json`` / ``inference.json`` extra files MONAI's ``ckpt_export`` writes), for the CLI."""
    import torch

    entry = tiny_loaded.entry
    pre = entry.preprocessing
    metadata = {"network_data_format": {"outputs": {"pred": {
        "num_channels": entry.num_classes, "channel_def": {str(c.id): c.name for c in entry.classes}}}}}
    inference = {"preprocessing": [
        {"_target_": "Orientationd", "axcodes": pre.orientation},
        {"_target_": "Spacingd", "pixdim": list(pre.spacing_mm)},
        {"_target_": "ScaleIntensityRanged", "a_min": pre.a_min, "a_max": pre.a_max, "b_min": pre.b_min,
         "b_max": pre.b_max}],
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(pre.roi)}}
    path = tmp_path_factory.mktemp("torchscript") / "tiny_unet.ts"
    with warnings.catch_warnings():  # torch.jit's deprecation and tracer notes are not about this code
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(tiny_loaded.model, torch.zeros(1, 1, *pre.roi), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"metadata.json": json.dumps(metadata),
                                                        "inference.json": json.dumps(inference)})
    return path


@pytest.fixture
def tiny_catalogue(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A resources folder whose ``unet-btcv-3mm`` entry is the tiny UNet (``SPECTRUMATTACK_RESOURCES`` points at
    it), so that code naming the catalogue model runs without the bundled weights."""
    from SpectrumAttackLib.resources import ENV_VAR, resource_dir

    catalogue = json.loads((resource_dir() / "models.json").read_text())
    for entry in catalogue["models"]:
        if entry["name"] == "unet-btcv-3mm":
            entry["arguments"] = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_UNET.items()}
            entry["weights"] = "weights/tiny.pt"
            entry["sha256"] = ""
    (tmp_path / "weights").mkdir()
    shutil.copy(tiny_checkpoint, tmp_path / "weights" / "tiny.pt")
    (tmp_path / "models.json").write_text(json.dumps(catalogue))
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def band_model(tiny_loaded: Any) -> Any:
    """A ``LoadedModel`` that labels voxels by intensity band (in the catalogue's window, [0, 1] units):
    background below 0.3, soft tissue 0.3–0.8, dense above 0.8 — a 1×1×1 convolution with linear logits, so its
    segmentation follows the anatomy (a position-sensitive reference for the geometry tests) and gradients flow.
    Preprocessing is the catalogue model's (RAS, 3 mm, −175..250 HU, ROI 64³)."""
    import torch

    from SpectrumAttackLib.models import LoadedModel
    from SpectrumAttackLib.models.catalogue import ClassInfo, ModelEntry

    conv = torch.nn.Conv3d(1, 3, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([-10.0, 0.0, 10.0]).view(3, 1, 1, 1, 1))
        conv.bias.copy_(torch.tensor([3.0, 0.0, -8.0]))
    classes = (ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "soft tissue", (200, 120, 100)),
               ClassInfo(2, "dense", (240, 240, 210)))
    entry = ModelEntry("intensity-bands", "unet", 3, classes, tiny_loaded.entry.preprocessing)
    return LoadedModel(model=conv.eval(), entry=entry, report=None)


@pytest.fixture(scope="session")
def cli_script() -> Any:
    """``SpectrumAttackCLI/SpectrumAttackCLI.py`` imported as a module (for its parser and ``main``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("SpectrumAttackCLI", CLI_DIR / "SpectrumAttackCLI.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script
