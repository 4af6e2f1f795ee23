"""Constants and file writers shared by the command-line tests (imported by ``conftest.py`` and the tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

#: Every flag of seed-flags.md with its default (argparse dest → default).
SEED_DEFAULTS = {
    "use_pretrained": False, "pretrained_path": "", "resume": False, "resume_latest": False, "resume_best": False,
    "resume_but_restart": False, "logdir": "None", "data_dir": "None", "json_list": "None", "save_checkpoint": False,
    "max_epochs": 5000, "val_every": 100, "batch_size": 1, "sw_batch_size": 1, "optim_lr": 1e-4,
    "optim_name": "adamw", "reg_weight": 1e-5, "momentum": 0.99, "noamp": False, "lrschedule": "warmup_cosine",
    "warmup_epochs": 50, "distributed": False, "world_size": 1, "rank": 0, "dist_url": "tcp://127.0.0.1:23456",
    "dist_backend": "nccl", "workers": 8, "model_name": "None", "pos_embed": "perceptron", "norm_name": "instance",
    "num_heads": 12, "mlp_dim": 3072, "hidden_size": 768, "feature_size": 16, "in_channels": 1, "out_channels": 14,
    "res_block": False, "conv_block": False, "dropout_rate": 0.0, "dropout_path_rate": 0.0, "spatial_dims": 3,
    "use_checkpoint": False, "dataset": None, "use_normal_dataset": False, "a_min": -175.0, "a_max": 250.0,
    "b_min": 0.0, "b_max": 1.0, "space_x": 1.5, "space_y": 1.5, "space_z": 2.0, "roi_x": 96, "roi_y": 96,
    "roi_z": 96, "RandFlipd_prob": 0.2, "RandRotate90d_prob": 0.2, "RandScaleIntensityd_prob": 0.1,
    "RandShiftIntensityd_prob": 0.1, "smooth_dr": 1e-6, "smooth_nr": 0.0, "infer_overlap": 0.5,
    "attack_name": None, "steps": 20, "alpha": 0.01, "eps": 4, "std": 4, "targeted": False, "q_max": 20,
    "num_spectrum_augs": 10, "rho": 0.2, "use_ssim_loss": False, "lambda_dice": 0.01, "lambda_ce": 0.01,
    "lambda_ssim": 1, "block_size": [8, 8, 8], "freq_band": "all", "gen_train_adv_mode": False,
    "gen_val_adv_mode": False, "adv_training_mode": False, "freq_reg_mode": False, "adv_images_dir": "",
    "save_adv_images_dir": None, "save_model_dir": None, "no_sub_dir_model": False, "no_sub_dir_adv_images": False,
    "debugging": False, "exp_name": None,
}

#: HU window of the seed: the blob intensities in [0, 1] are written as a_min + x·(a_max − a_min).
A_MIN, A_MAX = -175.0, 250.0
BLOB_AFFINE = np.array([[1.0, 0, 0, 10.0], [0, 1.0, 0, -20.0], [0, 0, 1.0, 5.0], [0, 0, 0, 1]])

#: model and data flags of the blob dataset (the fitted UNet: channels 4 8 16, strides 2 2, 3 classes).
BLOB_MODEL = ("--model_name unet --unet_channels 4 8 16 --unet_strides 2 2 --num_res_units 1 --out_channels 3 "
              "--space_x 1 --space_y 1 --space_z 1 --roi_x 24 --roi_y 24 --roi_z 24")

#: tiny settings appended to the seed README's lines: 8 mm voxels, 32³ tiles, a small ViT, 2 steps.
TINY = ("--space_x 8 --space_y 8 --space_z 8 --roi_x 32 --roi_y 32 --roi_z 32 --feature_size 4 --hidden_size 32 "
        "--mlp_dim 64 --num_heads 2 --steps 2 --sw_batch_size 4")
#: the README's split file name; the tests' copy lists img0001 for training and img0002 for validation.
README_SPLIT = "dataset_synapse_18_12.json"


@dataclass(frozen=True)
class BlobData:
    """The synthetic dataset: ``data_dir`` with ``split.json`` (validation img0001, img0002; training img0003)."""

    data_dir: Path
    checkpoint: Path

    def flags(self) -> str:
        return (f"{BLOB_MODEL} --data_dir {self.data_dir} --json_list split.json --use_pretrained "
                f"--pretrained_path {self.checkpoint}")


@dataclass(frozen=True)
class SampleSplit:
    """A dataset folder over the sample CTs (``data_dir``, ``json_list``; validation case img0002) and a random
    tiny UNETR checkpoint (14 classes, ROI 32, the ViT of :data:`TINY`)."""

    data_dir: Path
    json_list: str
    checkpoint: Path


def write_blob_case(folder: Path, number: int, images: np.ndarray, labels: np.ndarray) -> None:
    """Write ``images`` ``[H, W, D]`` in [0, 1] as HU (float32) and ``labels`` (uint8) with :data:`BLOB_AFFINE`."""
    hu = A_MIN + images * (A_MAX - A_MIN)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(hu.astype(np.float32), BLOB_AFFINE), folder / f"imagesTr/img{number:04d}.nii.gz")
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), BLOB_AFFINE),
             folder / f"labelsTr/label{number:04d}.nii.gz")


def write_split(folder: Path, name: str, validation: list[int], training: list[int]) -> None:
    """A split file ``name`` in ``folder`` listing ``img<n>``/``label<n>`` pairs."""
    def entries(numbers: list[int]) -> list[dict[str, str]]:
        return [{"image": f"imagesTr/img{n:04d}.nii.gz", "label": f"labelsTr/label{n:04d}.nii.gz"} for n in numbers]

    (folder / name).write_text(json.dumps({"training": entries(training), "validation": entries(validation)}))
