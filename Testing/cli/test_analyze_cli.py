"""``spectrum-attack analyze``: an attack on one image, then the frequency analysis of its perturbation."""

from __future__ import annotations

import json

import pytest
from cli_helpers import BLOB_MODEL


def test_analyze_command_on_an_image(run_cli, blob_data, tmp_path):
    image, label = blob_data.data_dir / "imagesTr" / "img0001.nii.gz", blob_data.data_dir / "labelsTr/label0001.nii.gz"
    out = tmp_path / "frequency"
    model = BLOB_MODEL.replace("--space_x 1 --space_y 1 --space_z 1 ", "")  # the model's own preprocessing
    code, stdout, err = run_cli(f"analyze {model} --use_pretrained --pretrained_path {blob_data.checkpoint} "
                                f"--image {image} --label {label} --attack_name pgd --eps 16 --alpha 0.02 --steps 3 "
                                f"--cutoffs 0.25 0.5 --output {out}")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["frequency.json", "frequency.png", "manifest.json"]
    analysis = json.loads((out / "frequency.json").read_text())
    bands = {b["band"]: b for b in analysis["bands"]}
    assert bands["low"]["energy"] + bands["middle"]["energy"] + bands["high"]["energy"] == pytest.approx(1, abs=1e-6)
    assert bands["all"]["dice"] == pytest.approx(analysis["adversarial_dice"], abs=1e-6)
    assert analysis["adversarial_dice"] < analysis["clean_dice"]
    assert [r["cutoff"] for r in analysis["radial"]] == [0.25, 0.5] and analysis["attack"] == "pgd"
    assert "band kept" in stdout
