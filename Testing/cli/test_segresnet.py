"""SegResNet (MONAI, the settings of Malik et al. 2024) everywhere the other architectures are: built, saved and
loaded as a checkpoint, trained by ``spectrum-attack train``, attacked by ``attack`` (with MI-FGSM) and compared by
``transfer`` (VMI-FGSM) and ``audit``, on tiny sizes."""

from __future__ import annotations

import json

import pytest
import torch

from SpectrumAttackLib.models import build_model, load_model
from SpectrumAttackLib.models.checkpoints import save_checkpoint

#: the blob data's grid with a SegResNet of width 8 (SegResNet needs ROI multiples of 8).
SEGRESNET = ("--model_name segresnet --init_filters 8 --out_channels 3 --space_x 1 --space_y 1 --space_z 1 "
             "--roi_x 24 --roi_y 24 --roi_z 24")


def test_segresnet_is_built_with_the_peer_settings_and_round_trips_a_checkpoint(tmp_path):
    model = build_model("segresnet", 3, init_filters=8)
    assert (model.init_filters, model.blocks_down, model.blocks_up) == (8, (1, 2, 2, 4), (1, 1, 1))
    assert build_model("segresnet", 14).init_filters == 32  # the peer's width by default
    model.eval()
    x = torch.rand(1, 1, 24, 16, 8)
    assert model(x).shape == (1, 3, 24, 16, 8)
    path = save_checkpoint(tmp_path / "segresnet.pt", model)
    loaded = load_model(path, "cpu", architecture="segresnet", num_classes=3, init_filters=8, roi=(24, 24, 24))
    assert loaded.entry.architecture == "segresnet"
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    with pytest.raises(ValueError, match="holds segresnet weights"):
        load_model(path, "cpu", architecture="unet", num_classes=3, roi=(24, 24, 24))
    with pytest.raises(ValueError, match=r"init_filters must be a multiple of 8 for segresnet"):
        build_model("segresnet", 3, init_filters=12)
    with pytest.raises(ValueError, match=r"roi must be multiples of 8 for segresnet"):
        build_model("segresnet", 3, roi=(20, 24, 24))


def test_train_then_attack_then_transfer_and_audit(run_cli, blob_data, tmp_path):
    data = f"--data_dir {blob_data.data_dir} --json_list split.json"
    runs = tmp_path / "runs"
    code, _, err = run_cli(f"train {SEGRESNET} {data} --max_epochs 1 --val_every 1 --workers 0 --warmup_epochs 0 "
                           f"--save_checkpoint --save_model_dir {runs} --no_sub_dir_model --seed 0")
    assert code == 0, err
    checkpoint = runs / "model_latest.pt"
    assert set(torch.load(checkpoint, weights_only=True)["state_dict"]) == set(
        build_model("segresnet", 3, init_filters=8).state_dict())
    model = f"{SEGRESNET} --use_pretrained --pretrained_path {checkpoint}"
    adv = tmp_path / "adv"
    code, _, err = run_cli(f"attack {model} {data} --attack_name mi-fgsm --eps 8 --steps 2 --gen_val_adv_mode "
                             f"--save_adv_images_dir {adv} --no_sub_dir_adv_images")
    assert code == 0, err
    assert len(list(adv.rglob("*.nii.gz"))) >= 2
    out_dir = tmp_path / "transfer"
    code, _, err = run_cli(f"transfer --models {blob_data.checkpoint} segresnet={checkpoint} --model_name unet "
                           "--unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 --init_filters 8 "
                           f"--out_channels 3 --space_x 1 --space_y 1 --space_z 1 --roi_x 24 --roi_y 24 --roi_z 24 "
                           f"{data} --output {out_dir} --attack_name vmi-fgsm --vmi_samples 2 --steps 2 --eps 8")
    assert code == 0, err
    result = json.loads((out_dir / "transfer.json").read_text())
    assert len(result["adversarial_dice"]) == 2 and result["attack"] == "vmi-fgsm"
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"attacks": {"mi-fgsm": {"eps": [8], "params": {"steps": 1}}}}))
    code, _, err = run_cli(f"audit {model} {data} --grid {grid} --output {tmp_path / 'audit'}")
    assert code == 0, err
    cells = json.loads((tmp_path / "audit" / "audit.json").read_text())["cells"]
    assert [c["attack"] for c in cells] == ["mi-fgsm", "mi-fgsm"]
