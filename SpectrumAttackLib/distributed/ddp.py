"""The training model of a distributed run: ``DistributedDataParallel`` around the network."""

from __future__ import annotations

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from SpectrumAttackLib.distributed.context import DistContext

__all__ = ["wrap_model"]


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Move ``model`` to ``ctx.device`` and, with several ranks, wrap it in ``DistributedDataParallel``.

    DDP copies rank 0's weights to every rank when it is built and averages the gradients over the ranks in each
    backward pass. On CUDA, batch-norm layers become ``SyncBatchNorm`` first (the seed did so for
    ``--norm_name batch``). Attacks and validation must call the network inside (``model.module``,
    :func:`SpectrumAttackLib.training.loop.unwrap_model`): ranks attack and validate different numbers of
    crops and cases, and a DDP forward may run collectives.
    """
    model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    if ctx.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[ctx.device.index], output_device=ctx.device.index)
    return DistributedDataParallel(model)
