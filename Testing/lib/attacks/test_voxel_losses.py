"""SEA's losses (masked CE, class-balanced masked CE, Jensen–Shannon) and CE against direct per-voxel formulas."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.voxel_losses import LOSSES, VoxelLoss, class_weights, loss_function, per_volume


def _case(seed: int = 0, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(2, classes, 3, 4, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (2, 1, 3, 4, 5), generator=g)
    return logits, labels


def _direct(name: str, logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per-volume loss written voxel by voxel from the definitions (numpy, float64)."""
    z, y = logits.numpy(), labels[:, 0].numpy()
    batch, classes = z.shape[:2]
    out = np.zeros(batch)
    for b in range(batch):
        counts = np.bincount(y[b].ravel(), minlength=classes)
        present = int((counts > 0).sum())
        total = 0.0
        for index in np.ndindex(*y.shape[1:]):
            scores = z[(b, slice(None), *index)]
            p = np.exp(scores - scores.max())
            p /= p.sum()
            label = int(y[(b, *index)])
            ce = -math.log(p[label])
            correct = float(np.argmax(scores) == label)
            if name == "ce":
                total += ce
            elif name == "masked-ce":
                total += correct * ce
            elif name == "balanced-masked-ce":
                total += correct * ce * y[b].size / (present * counts[label])
            else:  # js
                q = np.eye(classes)[label]
                m = (p + q) / 2
                kl_p = sum(pc * math.log(pc / mc) for pc, mc in zip(p, m, strict=True) if pc > 0)
                kl_q = sum(qc * math.log(qc / mc) for qc, mc in zip(q, m, strict=True) if qc > 0)
                total += (kl_p + kl_q) / 2
        out[b] = total / y[b].size
    return out


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "dice-ce"])
def test_each_loss_equals_its_direct_formula(name):
    logits, labels = _case()
    np.testing.assert_allclose(per_volume(name, logits, labels).numpy(), _direct(name, logits, labels), rtol=1e-10)
    scalar = loss_function(name)(logits, labels)
    assert float(scalar) == pytest.approx(float(_direct(name, logits, labels).mean()), rel=1e-10)


def test_js_is_zero_on_a_confident_correct_voxel_and_bounded_by_log_two():
    labels = torch.zeros(1, 1, 1, 1, 2, dtype=torch.long)
    logits = torch.tensor([[50.0, -50.0], [-50.0, 50.0]]).T.reshape(1, 2, 1, 1, 2)  # correct, then fooled
    per_voxel = per_volume("js", logits[..., :1], labels[..., :1]), per_volume("js", logits[..., 1:], labels[..., 1:])
    assert float(per_voxel[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(per_voxel[1]) == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize("name", ["masked-ce", "balanced-masked-ce"])
def test_masked_losses_ignore_fooled_voxels_and_recompute_the_mask(name):
    logits, labels = _case(seed=3)
    logits.requires_grad_(True)
    fooled = logits.detach().argmax(1, keepdim=True) != labels
    assert fooled.any() and (~fooled).any()
    (grad,) = torch.autograd.grad(per_volume(name, logits, labels).sum(), logits)
    assert torch.all(grad.abs().sum(1, keepdim=True)[fooled] == 0)  # no gradient through a fooled voxel
    assert torch.all(grad.abs().sum(1, keepdim=True)[~fooled] > 0)
    # changing a fooled voxel's scores (keeping it fooled) changes nothing
    moved = logits.detach().clone()
    index = fooled.nonzero()[0]
    b, _, i, j, k = index.tolist()
    wrong = int(moved[b, :, i, j, k].argmax())
    moved[b, wrong, i, j, k] += 5.0
    assert torch.equal(per_volume(name, moved, labels), per_volume(name, logits.detach(), labels))
    # fooling a correct voxel removes its term: the mask follows the logits of each call
    b, _, i, j, k = (~fooled).nonzero()[0].tolist()
    label = int(labels[b, 0, i, j, k])
    before = per_volume(name, logits.detach(), labels)[b]
    moved[b, (label + 1) % logits.shape[1], i, j, k] = moved[b, :, i, j, k].max() + 10
    assert per_volume(name, moved, labels)[b] < before


def test_class_weights_come_from_each_volumes_histogram():
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1]).view(1, 1, 2, 2, 2)
    other = torch.tensor([2, 2, 2, 2, 0, 0, 0, 0]).view(1, 1, 2, 2, 2)
    weights = class_weights(torch.cat([labels, other]), 3)
    torch.testing.assert_close(weights, torch.tensor([[8 / 12, 2.0, 0.0], [1.0, 0.0, 1.0]]))
    # each present class carries the same total weight
    counts = torch.tensor([[6.0, 2.0, 0.0], [4.0, 0.0, 4.0]])
    assert torch.allclose((weights * counts)[0, :2], torch.tensor(4.0))


@pytest.mark.parametrize("name", ["pgd", "bim", "apgd"])
def test_loss_by_name_is_the_loss_function(name):
    images, labels = random_batch()
    model = make_unet()
    params = {"steps": 2, "precision": "fp32"}
    by_name = attacks.create(name, model, loss="js", **params)(images, labels)
    by_fn = attacks.create(name, model, loss_function("js"), **params)(images, labels)
    assert torch.equal(by_name.adversarial, by_fn.adversarial)
    assert by_name.config["loss"] == "js"


def test_a_loss_name_with_a_loss_fn_and_an_unknown_name_are_refused():
    with pytest.raises(ValueError, match="loss must be 'dice-ce'"):
        attacks.create("pgd", make_unet(), loss_function("ce"), loss="ce")
    with pytest.raises(ValueError, match="loss must be one of"):
        attacks.create("apgd", make_unet(), loss="dice")
    with pytest.raises(ValueError, match="not accepted"):
        attacks.create("segpgd", make_unet(), loss="ce")  # SegPGD's objective is its own


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "dice-ce"])
def test_voxel_loss_caches_give_the_fresh_values(name):
    """The loss object of an attack reuses the voxel weights of the same labels and hands out the cross-entropy
    of its last logits; both equal a fresh computation, and new values are never served stale."""
    loss = loss_function(name)
    assert isinstance(loss, VoxelLoss)
    logits, labels = _case(seed=5)
    for _ in range(2):  # the second call reuses the cached weights
        assert float(loss(logits, labels)) == float(per_volume(name, logits, labels).mean())
    ce = F.cross_entropy(logits, labels[:, 0], reduction="none").flatten(1).mean(1)
    assert torch.equal(loss.cross_entropy(logits.detach(), labels), ce)  # the detached view of the same logits
    other = logits + 1.0
    torch.testing.assert_close(loss.cross_entropy(other, labels), ce)  # same CE (shift), computed afresh
    labels[0, 0, 0, 0, 0] = (labels[0, 0, 0, 0, 0] + 1) % 3  # in place: the cached weights must not be reused
    assert float(loss(logits, labels)) == float(per_volume(name, logits, labels).mean())
    assert not torch.equal(loss.cross_entropy(logits, labels), ce)
    logits.add_(1.0)  # in place: the cached cross-entropy belongs to the old values
    assert loss.cross_entropy(logits, labels) is not loss._ce[2]


def test_cached_class_weights_are_dropped_with_their_labels():
    loss = loss_function("balanced-masked-ce")
    logits, labels = _case(seed=6)
    loss(logits, labels)
    assert loss._weights is not None
    del labels
    gc.collect()
    assert loss._weights is None


@pytest.mark.parametrize("name", ["masked-ce", "balanced-masked-ce", "js"])
def test_apgd_tracks_the_same_loss_with_the_shared_cross_entropy(name):
    """APGD's bookkeeping reads the cross-entropy its loss computed; a plain function of the same loss (no cache)
    gives the identical attack."""
    images, labels = random_batch()
    model = make_unet()
    params = {"steps": 4, "precision": "fp32", "eps": 8, "progressive_radius": True}
    shared = attacks.create("apgd", model, loss=name, **params)(images, labels)
    plain = attacks.create("apgd", model, lambda z, y: per_volume(name, z, y).mean(), **params)(images, labels)
    assert torch.equal(shared.adversarial, plain.adversarial)
    assert shared.history["loss"] == plain.history["loss"]
