"""Per-epoch and per-batch seeds derived from the run's seed.

Every random draw of epoch ``e`` (data order, MONAI augmentation, dropout, attack starts) is seeded from
``(seed, e)`` at the start of the epoch, so the random state at an epoch boundary is a function of the epoch
number alone. A run resumed from a checkpoint of epoch ``e`` (which stores ``seed`` and ``e``) therefore repeats
exactly the epochs an uninterrupted run would have made, without storing generator states.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from monai.data.utils import set_rnd
from torch.utils.data import DataLoader, RandomSampler

from SpectrumAttackLib.runtime import make_generator

__all__ = ["attack_seed", "derive_seed", "seed_epoch"]

_EPOCH_STREAM = 0
_ATTACK_STREAM = 1


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 31-bit seed for the stream ``(seed, *keys)`` (NumPy ``SeedSequence``)."""
    return int(np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(1)[0] >> 1)


def attack_seed(seed: int, epoch: int, iteration: int, rank: int = 0) -> int:
    """Seed of the training attack for one batch."""
    return derive_seed(seed, _ATTACK_STREAM, epoch, iteration, rank)


def seed_epoch(loader: Any, seed: int, epoch: int, rank: int = 0) -> int:
    """Seed everything random in epoch ``epoch`` of rank ``rank``; returns the epoch seed.

    Seeds the global torch (CPU and CUDA), NumPy and ``random`` generators (as MONAI's ``set_determinism``
    does: models draw dropout from them), the loader's shuffling sampler, the base seed of its worker processes
    (MONAI's ``worker_init_fn`` seeds each worker's transforms from it), and the random transforms of its
    dataset for in-process loading (``workers=0``). A ``DistributedSampler`` gets ``set_epoch(epoch)``.
    """
    value = derive_seed(seed, _EPOCH_STREAM, epoch, rank)
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)
    if isinstance(loader, DataLoader):
        loader.generator = make_generator(derive_seed(value, 1))
        sampler = loader.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        elif isinstance(sampler, RandomSampler):
            sampler.generator = make_generator(derive_seed(value, 2))
        set_rnd(loader.dataset, derive_seed(value, 3))
    return value
