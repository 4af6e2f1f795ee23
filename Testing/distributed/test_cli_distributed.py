"""``spectrum-attack attack`` and ``train`` over two gloo processes on the CPU, against one plain process.

- attack, with the seed's ``--distributed --world_size 2 --rank r --dist-url`` flags (one process per "node"):
  every case is attacked and written by exactly one rank, and the merged results equal a single-process run's;
- train, under ``torchrun --standalone --nproc_per_node 2`` for one epoch, then resumed to two epochs with the
  seed's flags: one log row per epoch and valid checkpoints (written by rank 0 only), and the validation Dice
  all-reduced over the ranks equals the single-process validation Dice of the same weights on all cases.
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from dist_helpers import (
    TINY_DATA,
    VALIDATION,
    build_tiny_unet,
    check_ok,
    run_together,
    seed_flag_ranks,
    single,
    torchrun,
)

from SpectrumAttackLib.cli.converters import data_config_from_args
from SpectrumAttackLib.cli.main import build_parser
from SpectrumAttackLib.data.datalist import load_datalist
from SpectrumAttackLib.data.loaders import make_loader
from SpectrumAttackLib.data.transforms import eval_transforms
from SpectrumAttackLib.distributed import shard_indices
from SpectrumAttackLib.models import load_checkpoint
from SpectrumAttackLib.training import validate

pytestmark = pytest.mark.slow

CASES = [f"img{n:04d}" for n in VALIDATION]
VOLUMES = ("_adv.nii.gz", "_perturbation.nii.gz", "_pred_clean.nii.gz", "_pred_adversarial.nii.gz")
TRAIN = ("--save_checkpoint", "--val_every", "1", "--warmup_epochs", "0", "--noamp", "--adv_training_mode",
         "--freq_reg_mode", "--attack_name", "pgd", "--steps", "1", "--exp_name", "vaft")


def _without_seconds(tree: dict) -> dict:
    return {k: v for k, v in tree.items() if k != "seconds"}


def test_attack_on_two_ranks_equals_one_process(dataset, tmp_path):
    words = ["attack", *dataset.data_flags(), "--use_pretrained", "--pretrained_path", str(dataset.checkpoint),
             "--attack_name", "pgd", "--steps", "2", "--no_sub_dir_adv_images"]
    ranks = run_together(seed_flag_ranks([*words, "--save_adv_images_dir", str(tmp_path / "two")]), tmp_path)
    check_ok(ranks)
    check_ok(run_together([single([*words, "--save_adv_images_dir", str(tmp_path / "one")])], tmp_path))
    two, one = tmp_path / "two", tmp_path / "one"

    # each case attacked and written by the rank that owns it, and by no other
    for rank, result in enumerate(ranks):
        mine = {CASES[i] for i in shard_indices(len(CASES), rank, 2)}
        assert {c for c in CASES if f"{c}: Dice" in result.stdout} == mine
    assert "mean over 3 case(s)" in ranks[0].stdout and "mean over" not in ranks[1].stdout
    assert "uses gloo" in ranks[0].stderr and "uses gloo" not in ranks[1].stderr  # nccl is the seed's default
    expected = {f"{c}{end}" for c in CASES for end in (*VOLUMES, "_report.png")}
    expected |= {"metrics.csv", "metrics.json", "manifest.json"}
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} == expected
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # staging folder moved away

    for name in (f"{c}{end}" for c in CASES for end in VOLUMES):
        a, b = nib.load(two / name), nib.load(one / name)
        assert np.array_equal(a.get_fdata(), b.get_fdata()), name
        assert np.array_equal(a.affine, b.affine), name
    merged, alone = (json.loads((folder / "metrics.json").read_text()) for folder in (two, one))
    assert [c["case_id"] for c in merged["cases"]] == [c["case_id"] for c in alone["cases"]] == CASES
    for a, b in zip(merged["cases"], alone["cases"], strict=True):
        assert _without_seconds(a["metrics"]) == _without_seconds(b["metrics"])
    assert _without_seconds(merged["mean"]) == _without_seconds(alone["mean"])
    assert merged["count"] == alone["count"]
    with (two / "metrics.csv").open() as f2, (one / "metrics.csv").open() as f1:
        rows2, rows1 = list(csv.DictReader(f2)), list(csv.DictReader(f1))
    assert [_without_seconds(r) for r in rows2] == [_without_seconds(r) for r in rows1]
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (two, one)]
    assert [m["extra"]["processes"] for m in manifests] == [2, 1]


def test_train_on_two_ranks_stopped_and_resumed(dataset, tmp_path):
    words = ["train", *dataset.data_flags(), *TRAIN, "--save_model_dir", str(tmp_path / "runs")]
    folder = tmp_path / "runs" / "vaft"
    check_ok(run_together([torchrun([*words, "--max_epochs", "1"])], tmp_path))
    assert torch.load(folder / "model_latest.pt", weights_only=True)["epoch"] == 1

    resumed = run_together(seed_flag_ranks([*words, "--max_epochs", "2", "--resume"], backend="gloo"), tmp_path)
    check_ok(resumed)
    assert "trained 2 epochs (vaft)" in resumed[0].stdout and resumed[1].stdout == ""
    assert sorted(p.name for p in folder.iterdir()) == ["model_best.pt", "model_latest.pt", "train_log.csv"]
    with (folder / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # one writer: no duplicated rows
    latest = torch.load(folder / "model_latest.pt", weights_only=True)
    assert latest["epoch"] == 2 and latest["config"]["mode"] == "vaft"
    assert latest["optimizer"]["state"]  # the optimiser carried on

    cfg = data_config_from_args(build_parser().parse_args(["train", *TINY_DATA]))
    loader = make_loader(load_datalist(dataset.data_dir, "split.json", "validation"), eval_transforms(cfg))
    model = build_tiny_unet()
    load_checkpoint(model, folder / "model_latest.pt", strict=True)
    outcome = validate(model, loader, roi=cfg.roi, overlap=0.5, sw_batch_size=4, precision="fp32")  # --noamp
    assert float(outcome.count) == len(CASES)
    assert float(rows[-1]["val_dice"]) == pytest.approx(outcome.mean_dice, rel=1e-5)  # the log keeps 6 digits
    best = torch.load(folder / "model_best.pt", weights_only=True)
    load_checkpoint(model, folder / "model_best.pt", strict=True)
    best_dice = validate(model, loader, roi=cfg.roi, overlap=0.5, sw_batch_size=4, precision="fp32").mean_dice
    assert best["best_metric"] == pytest.approx(best_dice, abs=1e-7)
    assert float(rows[best["best_epoch"] - 1]["val_dice"]) == pytest.approx(best_dice, rel=1e-5)
