"""SA² and PGD on a real nnU-Net v2 model folder through the Python API (the single-volume workflow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from SpectrumAttackLib.inference.nnunet import NnUNetInference
from SpectrumAttackLib.io.volumes import read_volume
from SpectrumAttackLib.models import load_model
from SpectrumAttackLib.workflows.single import attack_single_volume

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("attack", "params", "mode"), [
    ("saa", {"steps": 1, "rho": 0.2, "block_size": 8, "lambda_dice": 0.01}, "sliding-window"),
    ("pgd", {"steps": 1, "eps": 4}, "tiles"),
])
def test_attack_runs_in_input_units_and_grid(nnunet_model: Path, nnunet_ct: dict[str, Path], attack: str,
                                             params: dict, mode: str) -> None:
    loaded = load_model(nnunet_model, "cpu", folds=[0])
    volume = read_volume(nnunet_ct["small"])
    before = volume.array.copy()
    labels = read_volume(nnunet_ct["small_labels"]).array
    result = attack_single_volume(volume, model=loaded, attack=attack, params=params, reference_labels=labels,
                                  attack_mode=mode, tile_batch_size=1)
    np.testing.assert_array_equal(volume.array, before)
    assert result.adversarial.shape == volume.array.shape and result.adversarial.dtype == np.float32
    np.testing.assert_allclose(result.adversarial, volume.array + result.perturbation, atol=1e-3)
    prep = loaded.entry.preprocessing
    hu_per_unit = prep.a_max - prep.a_min  # the clip range is the [0, 1] window
    assert np.abs(result.perturbation).max() > 0.01 * hu_per_unit
    if attack == "pgd":  # no resampling at 3 mm: ε maps to HU exactly
        assert np.abs(result.perturbation).max() <= 4 / 255 * hu_per_unit + 1e-3
    # the clean segmentation is nnU-Net's prediction of the input
    run = NnUNetInference(loaded.model, prep)
    expected, _, mapping = run.predict(volume.array, volume.affine)
    np.testing.assert_array_equal(result.seg_clean, expected)
    assert result.seg_adv.shape == volume.array.shape
    assert result.model_grid["spacing_mm"] == prep.spacing_mm
    assert result.attack_config["model_grid_shape"] == list(mapping.model_shape)
    assert result.metrics["reference"] == "labels" and "dice" in result.metrics["adversarial"]
