"""The catalogue: the shipped Resources/models.json, torch-free import, look-up and schema errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from models_helpers import catalogue_entry

from SpectrumAttackLib.data.btcv import BTCV_CLASSES
from SpectrumAttackLib.models.catalogue import ModelEntry, get_entry, load_catalogue
from SpectrumAttackLib.resources import resource_dir

REPO = Path(__file__).resolve().parents[3]


def test_shipped_unet_btcv_3mm_entry(monkeypatch):
    monkeypatch.delenv("SPECTRUMATTACK_RESOURCES", raising=False)
    entry = get_entry("unet-btcv-3mm")
    assert entry.architecture == "unet" and entry.num_classes == 14
    assert entry.arguments == {"channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 1}
    assert entry.class_names == BTCV_CLASSES
    assert len({c.rgb for c in entry.classes}) == 14  # every class has its own colour
    pre = entry.preprocessing
    assert (pre.orientation, pre.spacing_mm, pre.roi) == ("RAS", (3.0, 3.0, 3.0), (64, 64, 64))
    assert (pre.a_min, pre.a_max, pre.b_min, pre.b_max) == (-175.0, 250.0, 0.0, 1.0)
    assert entry.weights_path == resource_dir() / "weights" / "unet-btcv-3mm.pt"
    assert entry.sha256 == "" or len(entry.sha256) == 64


def test_catalogue_imports_without_torch():
    code = (
        "import sys\n"
        "from SpectrumAttackLib.models import catalogue\n"
        "entries = catalogue.load_catalogue()\n"
        "assert entries and 'torch' not in sys.modules and 'monai' not in sys.modules, sorted(sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_unknown_name_lists_the_catalogue(resources):
    _, write = resources
    write(catalogue_entry("tiny-a", "weights/a.pt"), catalogue_entry("tiny-b", "weights/b.pt"))
    assert isinstance(get_entry("tiny-b"), ModelEntry)
    with pytest.raises(ValueError, match="model must be one of 'tiny-a', 'tiny-b'"):
        get_entry("tiny-c")


def _broken(**changes) -> dict:
    entry = catalogue_entry("tiny", "weights/t.pt")
    entry.update(changes)
    return entry


BAD_RGB = _broken(classes=[{"id": 0, "name": "a", "rgb": [0, 0, 300]}], num_classes=1)


@pytest.mark.parametrize(
    "content, name",
    [
        ({"version": 2, "models": []}, "version"),
        ({"version": 1, "models": [_broken(architecture="resnet")]}, "architecture"),
        ({"version": 1, "models": [_broken(num_classes=4)]}, "classes"),
        ({"version": 1, "models": [BAD_RGB]}, "rgb"),
        ({"version": 1, "models": [catalogue_entry("x", "a.pt"), catalogue_entry("x", "b.pt")]}, "unique"),
        ({"version": 1, "models": [{"name": "x"}]}, "fields"),
    ],
)
def test_schema_errors(tmp_path, content, name):
    path = tmp_path / "models.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=name):
        load_catalogue(path)


def test_not_json(tmp_path):
    path = tmp_path / "models.json"
    path.write_text("{version: 1")
    with pytest.raises(ValueError, match="catalogue must be valid JSON"):
        load_catalogue(path)
