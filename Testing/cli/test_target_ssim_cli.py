"""``spectrum-attack attack --target_ssim``: the budget driven to a 3-D SSIM per case, and how it was reached."""

from __future__ import annotations

import json

import pytest


def test_attack_at_a_target_ssim_records_budget_ssim_and_runs(blob_data, tmp_path) -> None:
    from SpectrumAttackLib.cli.main import main

    out = tmp_path / "adv"
    code = main(["attack", *blob_data.flags().split(), "--gen_val_adv_mode", "--save_adv_images_dir", str(out),
                 "--attack_name", "pgd", "--steps", "2", "--target_ssim", "0.97", "--precision", "fp32"])
    assert code == 0
    (metrics_file,) = out.glob("*/metrics.json")
    document = json.loads(metrics_file.read_text())
    records = [row["metrics"]["target_ssim"] for row in document["cases"]]
    assert len(records) == 2
    for record in records:
        assert record["status"] in ("reached", "projected") and record["budget_name"] == "eps"
        assert record["weight"] == 1 if record["status"] == "reached" else 0.9 <= record["weight"] < 1
        assert 0.97 <= record["ssim"] <= 0.972 and 1 <= record["runs"] <= 8 and record["budget"] > 0


@pytest.mark.parametrize(("flags", "message"), [
    (["--attack_name", "dfb", "--target_ssim", "0.97"], "strength knob"),
    (["--attack_name", "pgd", "--target_ssim", "1.5"], "--target_ssim must be"),
])
def test_bad_target_ssim_requests_fail_before_any_work(blob_data, tmp_path, capsys, flags, message) -> None:
    from SpectrumAttackLib.cli.main import main

    code = main(["attack", *blob_data.flags().split(), "--gen_val_adv_mode", "--save_adv_images_dir",
                 str(tmp_path / "adv"), *flags])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "adv").exists()
