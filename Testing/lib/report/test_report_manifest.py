"""manifest.json fields and the strict-JSON helper."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import torch

import SpectrumAttackLib
from SpectrumAttackLib.report.jsonable import dump_json, to_jsonable
from SpectrumAttackLib.report.manifest import MANIFEST_NAME, git_state, write_manifest

SHA = "ab" * 32


class Band(str, Enum):
    LOW = "low"


def strict_loads(text: str):
    def reject(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


def test_manifest_fields(tmp_path):
    arguments = {"attack_name": "saa", "block_size": (8, 8, 8), "data_dir": Path("/data"), "band": Band.LOW}
    path = write_manifest(
        tmp_path / "run", command="attack", arguments=arguments, seed=7, weights_sha256=SHA.upper(),
        extra={"rho": 0.2, "seconds": float("nan")},
    )
    assert path == tmp_path / "run" / MANIFEST_NAME
    data = strict_loads(path.read_text())
    assert data["command"] == "attack" and data["seed"] == 7 and data["weights_sha256"] == SHA
    assert data["arguments"] == {"attack_name": "saa", "block_size": [8, 8, 8], "data_dir": "/data", "band": "low"}
    assert data["extra"] == {"rho": 0.2, "seconds": None}
    assert torch.__version__.startswith(data["versions"]["torch"].split("+")[0])
    assert data["versions"]["SpectrumAttack"] == SpectrumAttackLib.__version__
    assert set(data["versions"]) >= {"python", "monai", "numpy", "nibabel", "pytorch-msssim"}
    assert data["device"]["cuda_available"] == torch.cuda.is_available()
    assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None
    assert {"git_commit", "git_dirty", "platform"} <= set(data)


def test_git_commit_matches_checkout():
    source = Path(SpectrumAttackLib.__file__).resolve().parent.parent
    try:
        top = subprocess.run(["git", "-C", str(source), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, check=True).stdout.strip()
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    state = git_state()
    if Path(top).resolve() != source:
        assert state == {"commit": None, "dirty": None}
    else:
        assert state["commit"] == head and isinstance(state["dirty"], bool)


def test_manifest_without_optional_fields(tmp_path):
    data = strict_loads(write_manifest(tmp_path, command="evaluate", arguments={}, seed=None).read_text())
    assert data["seed"] is None and data["weights_sha256"] is None and data["extra"] == {}


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [({"command": ""}, "command"), ({"weights_sha256": "abc"}, "weights_sha256")],
)
def test_manifest_bad_arguments(tmp_path, kwargs, parameter):
    arguments = {"command": "attack", "arguments": {}, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=parameter):
        write_manifest(tmp_path, **arguments)


def test_to_jsonable_rules():
    value = {
        "nan": float("nan"),
        "inf": -float("inf"),
        "np": np.float32(0.5),
        "npint": np.int64(3),
        "array": np.array([[1, 2]]),
        "tensor": torch.tensor([0.25, float("nan")]),
        "scalar": torch.tensor(2),
        "tuple": (1, "a"),
        "set": {"b", "a"},
        1: Path("x/y"),
        "object": object,
    }
    out = to_jsonable(value)
    assert out["nan"] is None and out["inf"] is None
    assert out["np"] == 0.5 and isinstance(out["npint"], int)
    assert out["array"] == [[1, 2]] and out["tensor"] == [0.25, None] and out["scalar"] == 2
    assert out["tuple"] == [1, "a"] and out["set"] == ["a", "b"] and out["1"] == "x/y"
    assert out["object"] == repr(object)
    json.dumps(out, allow_nan=False)


def test_dump_json_is_strict(tmp_path):
    path = dump_json(tmp_path / "a" / "b.json", {"x": float("nan"), "y": [1.5, float("inf")]})
    assert strict_loads(path.read_text()) == {"x": None, "y": [1.5, None]}
