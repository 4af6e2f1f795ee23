"""Data loaders over datalist entries: MONAI ``CacheDataset`` / ``Dataset`` and MONAI's ``DataLoader``.

MONAI's loader seeds every worker's random transforms differently and collates with ``list_data_collate``, which
flattens the per-volume lists of random crops into one batch (``batch_size`` volumes × ``num_samples`` crops, as
in the seed).

Example:
    >>> files = load_datalist(data_dir, "dataset_sample.json", "training")
    >>> loader = make_loader(files, train_transforms(cfg, seed=0), batch_size=1, shuffle=True, workers=0, cache=True)
    >>> batch = next(iter(loader))     # batch["image"]: [4, 1, *roi]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.data import CacheDataset, DataLoader, Dataset, list_data_collate
from torch.utils.data import Sampler

from SpectrumAttackLib.checks import check_int

__all__ = ["make_loader"]


def make_loader(
    files: Sequence[dict[str, Any]],
    transforms: Callable,
    batch_size: int = 1,
    shuffle: bool = False,
    workers: int = 0,
    cache: bool = False,
    sampler: Sampler | None = None,
    *,
    seed: int | None = None,
) -> DataLoader:
    """A loader over ``files`` (dicts of paths, see :func:`~SpectrumAttackLib.data.datalist.load_datalist`).

    Args:
        files: the cases.
        transforms: a pipeline from :mod:`SpectrumAttackLib.data.transforms`.
        batch_size: volumes per batch (>= 1).
        shuffle: reshuffle every epoch; must be False with a ``sampler``.
        workers: loader processes (0: load in the main process); also the threads that fill the cache.
        cache: keep the deterministic part of the pipeline in memory (``CacheDataset``, cache rate 1, as the seed's
            training data); False: plain ``Dataset`` (the seed's ``--use_normal_dataset``).
        sampler: e.g. a ``DistributedSampler``; it owns the order.
        seed: seeds the shuffling order (None: torch's global generator).

    Raises:
        ValueError: empty ``files``, bad ``batch_size`` / ``workers``, or ``shuffle`` together with ``sampler``.
    """
    if len(files) == 0:
        raise ValueError("files must list at least one case, got an empty list.")
    batch_size = check_int("batch_size", batch_size, 1)
    workers = check_int("workers", workers, 0)
    if shuffle and sampler is not None:
        raise ValueError("shuffle must be False when a sampler is given (the sampler owns the order), got True.")
    if cache:
        dataset = CacheDataset(data=list(files), transform=transforms, cache_rate=1.0, num_workers=max(1, workers),
                               progress=False)  # fmt: skip
    else:
        dataset = Dataset(data=list(files), transform=transforms)
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        collate_fn=list_data_collate,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
    )
