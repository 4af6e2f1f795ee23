"""The bundled ``unet-btcv-3mm`` weights reproduce the per-organ Dice their catalogue entry states."""

from __future__ import annotations

import pytest

from SpectrumAttackLib.data.datalist import load_datalist
from SpectrumAttackLib.data.sample_data import SAMPLE_SPLIT, sample_data_path, sample_data_ready
from SpectrumAttackLib.data.transforms import DataConfig, eval_transforms
from SpectrumAttackLib.inference.sliding import predict_logits
from SpectrumAttackLib.metrics.evaluate import overlap_per_class
from SpectrumAttackLib.models import get_entry, load_model

pytestmark = pytest.mark.skipif(not sample_data_ready(), reason="sample data not built (spectrum-attack sample-data)")


def test_catalogue_clean_dice_on_training_case():
    entry = get_entry("unet-btcv-3mm")
    if not entry.weights_path.is_file():
        pytest.skip(f"bundled weights {entry.weights} not present")
    loaded = load_model(entry.name, "cpu")  # checks the sha256
    pre = entry.preprocessing
    cfg = DataConfig(a_min=pre.a_min, a_max=pre.a_max, b_min=pre.b_min, b_max=pre.b_max, spacing=pre.spacing_mm,
                     roi=pre.roi)
    training = load_datalist(sample_data_path(), SAMPLE_SPLIT, "training")
    assert [c["image"].endswith("img0001.nii.gz") for c in training] == [True]  # clean_dice is on this case
    case = eval_transforms(cfg)(training[0])
    logits = predict_logits(loaded.model, case["image"].as_tensor().unsqueeze(0), pre.roi, 0.5, 4)
    dice, _ = overlap_per_class(logits.argmax(1)[0].numpy(), case["label"].as_tensor()[0].numpy(),
                                entry.num_classes, preset="paper")
    measured = {name: float(dice[k]) for k, name in enumerate(entry.class_names) if name in entry.clean_dice}
    assert measured == pytest.approx(entry.clean_dice, abs=0.002)
    for organ in ("liver", "spleen", "right kidney", "left kidney", "stomach", "aorta"):
        assert measured[organ] > 0.7, organ
