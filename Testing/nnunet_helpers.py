"""A real nnU-Net v2 trained-model folder, built with nnU-Net's own tools from the sample CT.

Steps (nnU-Net 2.x API): the sample cases converted to nnU-Net's raw format (``generate_dataset_json``), fingerprint
extraction, the default planner (with a small GPU memory target, :data:`PLANNER_GPU_GB`), preprocessing of
``3d_fullres``, then nnU-Net's trainer ``initialize()`` and ``save_checkpoint()``: the network the planner planned,
with nnU-Net's initial weights (training on CPU is not affordable in a test run). The folder is laid out as
``nnUNetv2_train`` leaves it::

    nnUNetTrainer__nnUNetPlans__3d_fullres/  dataset.json  plans.json
        fold_0/checkpoint_final.pth  fold_0/checkpoint_best.pth  fold_1/checkpoint_final.pth

Fold 1 and fold 0's "best" checkpoint are the same network re-initialised with other seeds, so fold choice and
checkpoint choice change the prediction. nnU-Net's ``nnUNet_raw``/``_preprocessed``/``_results`` variables point into
the build folder only while it is built.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

DATASET_ID = 901
DATASET = f"Dataset{DATASET_ID}_SpectrumSample"
MODEL_NAME = "nnUNetTrainer__nnUNetPlans__3d_fullres"
#: the planner's GPU memory target (``nnUNetv2_plan_experiment -gpu_memory_target``): 0.5 GB plans a 40×56×64 patch
#: and a 4-stage PlainConvUNet (32…256), 8× cheaper per window than the default target's 80×112×128 / 5 stages,
#: which takes 5–25 s per window on a 2-core CPU.
PLANNER_GPU_GB = 0.5
#: the sample's BTCV classes under their TotalSegmentator names (as a TotalSegmentator dataset.json spells them).
LABELS = ("background", "spleen", "kidney_right", "kidney_left", "gallbladder", "esophagus", "liver", "stomach",
          "aorta", "inferior_vena_cava", "portal_vein_and_splenic_vein", "pancreas", "adrenal_gland_right",
          "adrenal_gland_left")


@contextlib.contextmanager
def nnunet_environment(root: Path) -> Iterator[None]:
    """nnU-Net's three folder variables set to folders under ``root`` for the duration."""
    saved = {k: os.environ.get(k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    try:
        for key in saved:
            folder = root / key.split("_", 1)[1]
            folder.mkdir(parents=True, exist_ok=True)
            os.environ[key] = str(folder)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_model_folder(root: Path, sample: Path) -> Path:
    """Build the trained-model folder under ``root`` from the sample data folder; returns the model folder."""
    import torch
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess_dataset,
    )
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    with nnunet_environment(root), contextlib.redirect_stdout(io.StringIO()):
        raw = root / "raw" / DATASET
        (raw / "imagesTr").mkdir(parents=True)
        (raw / "labelsTr").mkdir()
        for number in (1, 2):
            shutil.copy(sample / f"imagesTr/img000{number}.nii.gz", raw / f"imagesTr/case{number}_0000.nii.gz")
            shutil.copy(sample / f"labelsTr/label000{number}.nii.gz", raw / f"labelsTr/case{number}.nii.gz")
        generate_dataset_json(str(raw), {0: "CT"}, {name: i for i, name in enumerate(LABELS)}, 2, ".nii.gz",
                              dataset_name=DATASET, description="SpectrumAttack test model (initial weights)")
        extract_fingerprints([DATASET_ID], num_processes=1, check_dataset_integrity=True, verbose=False,
                             show_progress_bar=False)
        plan_experiments([DATASET_ID], gpu_memory_target_in_gb=PLANNER_GPU_GB)
        preprocess_dataset(DATASET_ID, configurations=("3d_fullres",), num_processes=[1], show_progress_bar=False)
        preprocessed = root / "preprocessed" / DATASET
        plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
        dataset = json.loads((preprocessed / "dataset.json").read_text())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            trainer = nnUNetTrainer({**plans, "continue_training": False}, "3d_fullres", 0, dataset,
                                    device=torch.device("cpu"))
            trainer.initialize()
            # what training sets up before its first epoch: the mirroring axes its checkpoints record
            trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
            model = Path(trainer.output_folder).parent
            trainer.save_checkpoint(str(model / "fold_0" / "checkpoint_final.pth"))
            for seed, target in ((1, model / "fold_1" / "checkpoint_final.pth"),
                                 (2, model / "fold_0" / "checkpoint_best.pth")):
                torch.manual_seed(seed)
                trainer.network.apply(trainer.network.initialize)
                target.parent.mkdir(exist_ok=True)
                trainer.save_checkpoint(str(target))
        shutil.copy(preprocessed / "nnUNetPlans.json", model / "plans.json")
        shutil.copy(preprocessed / "dataset.json", model / "dataset.json")
    return model


def write_crop(source: Path, target: Path, crop: tuple[slice, slice, slice]) -> Path:
    """Write ``source[crop]`` (a NIfTI file) to ``target`` with the matching affine; returns ``target``."""
    import nibabel as nib
    import numpy as np

    image = nib.load(source)
    affine = image.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ [s.start or 0 for s in crop] + affine[:3, 3]
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[crop], affine), target)
    return target
