"""The training loop: checkpoints, validation over all cases, exact resume, adversarial modes, settings."""

from __future__ import annotations

import csv

import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, RandFlipd, RandSpatialCropd

from SpectrumAttackLib.training.config import TrainConfig
from SpectrumAttackLib.training.loop import train
from SpectrumAttackLib.training.validation import validate


@pytest.fixture
def loader(cases):
    """A factory of identical loaders: shuffled batches of 2 random 12³ crops with random flips."""
    return lambda: _loader(cases)


def _loader(cases) -> DataLoader:
    transform = Compose([
        RandSpatialCropd(keys=("image", "label"), roi_size=(12, 12, 12), random_size=False),
        RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=0),
    ])
    return DataLoader(Dataset(cases, transform), batch_size=2, shuffle=True, num_workers=0)


def _config(tmp_path=None, **overrides) -> TrainConfig:
    settings = dict(max_epochs=2, val_every=1, roi=(12, 12, 12), warmup_epochs=0, optim_lr=1e-2, seed=3)
    if tmp_path is not None:
        settings.update(save_model_dir=tmp_path, save_checkpoint=True)
    settings.update(overrides)
    return TrainConfig(**settings)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


class _InterruptError(Exception):
    pass


def test_checkpoints_and_log(tmp_path, val_cases, loader, make_model):
    model = make_model()
    result = train(model, loader(), val_cases, _config(tmp_path), device="cpu")
    assert result.last_epoch == 2 and len(result.history) == 2
    latest = torch.load(tmp_path / "model_latest.pt", weights_only=True)
    assert {"state_dict", "optimizer", "scheduler", "scaler", "epoch", "best_metric", "best_epoch", "config",
            "seed"} <= set(latest)
    assert latest["epoch"] == 2 and latest["seed"] == 3 and latest["config"]["max_epochs"] == 2
    for key, value in model.state_dict().items():
        assert torch.equal(latest["state_dict"][key], value)
    best = torch.load(tmp_path / "model_best.pt", weights_only=True)
    dices = [r.val_dice for r in result.history]
    assert best["epoch"] == result.best_epoch == 1 + dices.index(max(dices))
    assert best["best_metric"] == pytest.approx(max(dices)) == pytest.approx(result.best_metric)
    with (tmp_path / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["val_dice"]) for r in rows] == pytest.approx(dices, rel=1e-5)
    assert all(float(r["loss"]) > 0 and r["loss_freq"] == "" for r in rows)


def test_validation_uses_every_case(val_cases, loader, make_model):
    model = make_model()
    result = train(model, loader(), val_cases, _config(max_epochs=1), device="cpu")
    per_case = [validate(model, [case], roi=(12, 12, 12)).mean_dice for case in val_cases]
    assert per_case[0] != pytest.approx(per_case[1])  # the last case alone would give another value
    assert result.history[-1].val_dice == pytest.approx(sum(per_case) / 2)


def test_validation_schedule(val_cases, loader, make_model):
    result = train(make_model(), loader(), val_cases, _config(max_epochs=3, val_every=2), device="cpu")
    assert [r.val_dice is not None for r in result.history] == [False, True, True]  # every 2nd and the last


def test_resume_repeats_uninterrupted_run(tmp_path, val_cases, loader, make_model):
    reference = make_model()
    train(reference, loader(), val_cases, _config(tmp_path / "a"), device="cpu")

    def stop_after_first_validation(progress):
        if progress.message.startswith("epoch 1: validation"):
            raise _InterruptError

    interrupted = make_model()
    with pytest.raises(_InterruptError):
        train(interrupted, loader(), val_cases, _config(tmp_path / "b"), device="cpu",
              progress=stop_after_first_validation)
    resumed = make_model()
    result = train(resumed, loader(), val_cases, _config(tmp_path / "b", resume=True), device="cpu")
    assert [r.epoch for r in result.history] == [2]
    assert _same_weights(resumed, reference)
    with (tmp_path / "b" / "train_log.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2]


def test_resume_refuses_another_val_metric(tmp_path, val_cases, loader, make_model):
    train(make_model(), loader(), val_cases, _config(tmp_path, max_epochs=1), device="cpu")
    with pytest.raises(ValueError, match="val_metric must be 'foreground'"):
        train(make_model(), loader(), val_cases, _config(tmp_path, resume=True, val_metric="reference"),
              device="cpu")


def test_seed_changes_run(val_cases, loader, make_model):
    a, b = make_model(), make_model()
    train(a, loader(), val_cases, _config(max_epochs=1), device="cpu")
    train(b, loader(), val_cases, _config(max_epochs=1, seed=4), device="cpu")
    assert not _same_weights(a, b)


def test_resume_without_checkpoint(tmp_path, val_cases, loader, make_model):
    with pytest.raises(FileNotFoundError, match="resume"):
        train(make_model(), loader(), val_cases, _config(tmp_path, resume_best=True), device="cpu")


def test_pretrained_weights_are_fine_tuned(tmp_path, val_cases, loader, make_model):
    source = make_model(seed=7)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "pretrained.pt")
    fine_tuned = make_model(seed=0)
    train(fine_tuned, loader(), val_cases, _config(max_epochs=1, pretrained_path=tmp_path / "pretrained.pt"),
          device="cpu")
    train(source, loader(), val_cases, _config(max_epochs=1), device="cpu")
    assert _same_weights(fine_tuned, source)


def test_adversarial_training_trains_on_attack_output(val_cases, loader, make_model):
    """PGD with eps 0 returns the clean crops, so it must reproduce normal training; eps 8 must not."""
    normal, zero_budget, attacked = make_model(), make_model(), make_model()
    train(normal, loader(), val_cases, _config(max_epochs=1), device="cpu")
    adv = dict(adv_training_mode=True, attack_name="pgd", max_epochs=1)
    train(zero_budget, loader(), val_cases, _config(**adv, attack_params={"eps": 0, "steps": 1}), device="cpu")
    result = train(attacked, loader(), val_cases, _config(**adv, attack_params={"eps": 8, "steps": 2}),
                   device="cpu")
    assert _same_weights(zero_budget, normal)
    assert not _same_weights(attacked, normal)
    assert result.history[0].loss_adversarial is not None and result.history[0].loss_clean is None


def test_vaft_logs_all_terms(tmp_path, val_cases, loader, make_model):
    config = _config(tmp_path, max_epochs=1, adv_training_mode=True, freq_reg_mode=True, attack_name="pgd",
                     attack_params={"eps": 8, "steps": 1})
    record = train(make_model(), loader(), val_cases, config, device="cpu").history[0]
    assert record.loss_freq > 0
    assert record.loss == pytest.approx(record.loss_clean + record.loss_adversarial + record.loss_freq)


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"freq_reg_mode": True}, "--freq_reg_mode"),
        ({"adv_training_mode": True}, "attack_name"),
        ({"resume": True}, "save_model_dir"),
        ({"resume_best": True, "resume_latest": True, "save_model_dir": "x"}, "resume_best"),
        ({"attack_params": {"seed": 1}}, "attack_params"),
        ({"roi": (12, 12)}, "roi"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"infer_overlap": 1.0}, "infer_overlap"),
        ({"optim_name": "lbfgs"}, "optim_name"),
        ({"lrschedule": "poly"}, "lrschedule"),
        ({"val_metric": "hd95"}, "val_metric"),
    ],
)
def test_bad_settings(overrides, parameter):
    with pytest.raises(ValueError, match=parameter):
        TrainConfig(**overrides)


def test_empty_loader(val_cases, make_model):
    with pytest.raises(ValueError, match="train_loader"):
        train(make_model(), [], val_cases, _config(), device="cpu")
