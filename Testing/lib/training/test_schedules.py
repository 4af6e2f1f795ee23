"""Learning-rate schedules and optimisers of the reference trainer."""

from __future__ import annotations

import math

import pytest
import torch

from SpectrumAttackLib.training.schedules import (
    LinearWarmupCosineAnnealingLR,
    cosine_anneal,
    make_optimizer,
    make_scheduler,
)


def _optimizer(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lrs(scheduler, optimizer, epochs: int) -> list[float]:
    """LR used in each epoch when the schedule is stepped once per epoch."""
    values = []
    for _ in range(epochs):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def _reference_recursive(base: float, warmup: int, max_epochs: int) -> list[float]:
    """The reference's recursive ``LinearWarmupCosineAnnealingLR.get_lr`` (warm-up start 0, eta_min 0)."""
    lrs = []
    lr = 0.0
    for epoch in range(max_epochs):
        if epoch == 0:
            lr = 0.0
        elif epoch < warmup:
            lr = lr + base / (warmup - 1)
        elif epoch == warmup:
            lr = base
        else:
            lr = (1 + math.cos(math.pi * (epoch - warmup) / (max_epochs - warmup))) / (
                1 + math.cos(math.pi * (epoch - warmup - 1) / (max_epochs - warmup))) * lr
        lrs.append(lr)
    return lrs


def test_warmup_cosine_matches_reference_recursion():
    optimizer = _optimizer(1e-3)
    got = _lrs(LinearWarmupCosineAnnealingLR(optimizer, warmup_epochs=5, max_epochs=20), optimizer, 20)
    assert got == pytest.approx(_reference_recursive(1e-3, 5, 20), rel=1e-9, abs=1e-15)
    assert got[0] == 0.0
    assert got[4] == pytest.approx(1e-3)  # base LR reached at epoch w - 1
    assert got[5] == pytest.approx(1e-3)
    assert got[19] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 14 / 15)))  # never exactly 0


def test_cosine_anneal_matches_torch():
    a, b = _optimizer(), _optimizer()
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(b, T_max=12)
    assert _lrs(cosine_anneal(a, 12), a, 12) == pytest.approx(_lrs(reference, b, 12), rel=1e-9)


def test_no_warmup_starts_at_base_lr():
    optimizer = _optimizer(2e-4)
    lrs = _lrs(make_scheduler("warmup_cosine", optimizer, warmup_epochs=0, max_epochs=4), optimizer, 4)
    assert lrs == pytest.approx([2e-4 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_state_dict_keeps_shape_of_new_run():
    """A scheduler state loaded into one built for a longer run continues the longer schedule."""
    short_opt, long_opt = _optimizer(), _optimizer()
    short = LinearWarmupCosineAnnealingLR(short_opt, warmup_epochs=2, max_epochs=4)
    _lrs(short, short_opt, 3)
    longer = LinearWarmupCosineAnnealingLR(long_opt, warmup_epochs=2, max_epochs=10)
    longer.load_state_dict(short.state_dict())
    assert longer.last_epoch == 3 and longer.max_epochs == 10
    longer.step()
    expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * (4 - 2) / (10 - 2)))
    assert long_opt.param_groups[0]["lr"] == pytest.approx(expected)


def test_long_warmup_warns():
    with pytest.warns(UserWarning, match="warmup_epochs"):
        make_scheduler("warmup_cosine", _optimizer(), warmup_epochs=50, max_epochs=2)


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [("adamw", torch.optim.AdamW, {}), ("adam", torch.optim.Adam, {}),
     ("sgd", torch.optim.SGD, {"momentum": 0.9, "nesterov": True})],
)
def test_optimizers(name, cls, extra):
    optimizer = make_optimizer(name, [torch.nn.Parameter(torch.zeros(1))], lr=3e-4, reg_weight=1e-5, momentum=0.9)
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 3e-4 and group["weight_decay"] == 1e-5
    for key, value in extra.items():
        assert group[key] == value


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda p: make_optimizer("rmsprop", p, lr=1e-4, reg_weight=0.0), "optim_name"),
        (lambda p: make_optimizer("adamw", p, lr=0.0, reg_weight=0.0), "optim_lr"),
        (lambda p: make_optimizer("adamw", p, lr=1e-4, reg_weight=-1.0), "reg_weight"),
        (lambda p: make_optimizer("sgd", p, lr=1e-4, reg_weight=0.0, momentum=1.0), "momentum"),
        (lambda p: make_scheduler("step", _optimizer(), warmup_epochs=0, max_epochs=2), "lrschedule"),
        (lambda p: make_scheduler("warmup_cosine", _optimizer(), warmup_epochs=-1, max_epochs=2), "warmup_epochs"),
        (lambda p: make_scheduler("cosine_anneal", _optimizer(), warmup_epochs=0, max_epochs=0), "max_epochs"),
    ],
)
def test_bad_values_raise(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call([torch.nn.Parameter(torch.zeros(1))])
