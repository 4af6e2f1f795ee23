"""Validation: sliding-window Dice averaged over every case, fresh state each call (seed defect §13 item 7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from SpectrumAttackLib.training.validation import validate


class ThresholdNet(nn.Module):
    """Two-class network: class 1 where the intensity is above 0.5 (a 1×1×1 convolution with fixed weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.5, -0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _case(label_start: int) -> dict[str, torch.Tensor]:
    """A bright 4³ cube at the origin; the label cube starts ``label_start`` voxels further along H."""
    image = torch.zeros(1, 1, 12, 8, 8)
    image[..., 0:4, 0:4, 0:4] = 1.0
    label = torch.zeros(1, 1, 12, 8, 8)
    label[..., label_start : label_start + 4, 0:4, 0:4] = 1
    return {"image": image, "label": label}


def test_mean_over_all_cases():
    model = ThresholdNet()
    cases = [_case(0), _case(2)]  # Dice 1 (exact) and 0.5 (half the cube overlaps)
    result = validate(model, cases, roi=(8, 8, 8), overlap=0.5)
    assert result.per_case == pytest.approx([1.0, 0.5])
    assert result.mean_dice == pytest.approx(0.75)
    assert float(result.count) == 2
    again = validate(model, cases, roi=(8, 8, 8), overlap=0.5)  # nothing carried over between calls
    assert again.mean_dice == pytest.approx(0.75) and float(again.count) == 2


def test_rank_share_and_reducible_sums():
    model = ThresholdNet()
    cases = [_case(0), _case(2), _case(1)]
    parts = [validate(model, cases, roi=(8, 8, 8), rank=r, world_size=2) for r in range(2)]
    assert parts[0].per_case == pytest.approx([1.0, 0.75]) and parts[1].per_case == pytest.approx([0.5])
    total = sum(float(p.dice_sum) for p in parts) / sum(float(p.count) for p in parts)
    assert total == pytest.approx(validate(model, cases, roi=(8, 8, 8)).mean_dice)


def test_restores_training_mode():
    model = ThresholdNet().train()
    validate(model, [_case(0)], roi=(8, 8, 8))
    assert model.training


def _hallucinating_case() -> dict[str, torch.Tensor]:
    """The cube predicted as class 1 where the labels hold no class 1 at all (the labels are background only)."""
    case = _case(0)
    case["label"] = torch.zeros_like(case["label"])
    return case


def test_reference_rule_skips_classes_absent_from_the_labels_and_counts_background():
    model = ThresholdNet()
    cube = _case(2)  # foreground Dice 0.5; the cubes' union is 96 of 768 voxels, each map has 704 background
    background = 2 * (768 - 96) / (704 + 704)
    fore = validate(model, [cube, _hallucinating_case()], roi=(8, 8, 8))
    ref = validate(model, [cube, _hallucinating_case()], roi=(8, 8, 8), metric="reference")
    assert fore.per_case == pytest.approx([0.5, 0.0])  # the hallucinated organ scores 0
    # Reference: mean over background and organ; in the second case the organ is absent from the labels (skipped)
    # and only the background counts (704 of 768 voxels correctly background).
    assert ref.per_case == pytest.approx([(background + 0.5) / 2, 2 * 704 / (704 + 768)])
    assert ref.mean_dice > fore.mean_dice


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="metric"):
        validate(ThresholdNet(), [_case(0)], roi=(8, 8, 8), metric="hd95")
