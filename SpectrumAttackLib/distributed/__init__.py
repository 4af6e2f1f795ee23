"""Scaling out with ``torch.distributed``: process context, collectives, sharding, DDP and the launcher.

``spectrum-attack train`` and ``attack`` run unchanged under ``torchrun --nproc_per_node N`` (one or several
nodes) or with the seed's ``--distributed --world_size NODES --rank NODE --dist-url tcp://host:port`` flags.
Training wraps the network in ``DistributedDataParallel`` with a ``DistributedSampler``; attack generation shares
the cases out so each is written once. gloo on the CPU, nccl on CUDA.

Example::

    from SpectrumAttackLib.distributed import launch, shard_indices

    def worker(args, ctx):
        for index in shard_indices(len(cases), ctx.rank, ctx.world_size):
            ...
        return 0

    launch(worker, args)
"""

from SpectrumAttackLib.distributed.collectives import (
    all_reduce_sum,
    barrier,
    broadcast_object,
    gather_objects,
    gather_results,
    on_main,
)
from SpectrumAttackLib.distributed.context import (
    BACKENDS,
    DistContext,
    cleanup,
    init_distributed,
    processes_per_node,
    resolve_context,
)
from SpectrumAttackLib.distributed.ddp import wrap_model
from SpectrumAttackLib.distributed.launcher import Worker, launch
from SpectrumAttackLib.distributed.sharding import SHARD_MODES, distributed_sampler, shard, shard_indices

__all__ = [
    "BACKENDS",
    "SHARD_MODES",
    "DistContext",
    "Worker",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup",
    "distributed_sampler",
    "gather_objects",
    "gather_results",
    "init_distributed",
    "launch",
    "on_main",
    "processes_per_node",
    "resolve_context",
    "shard",
    "shard_indices",
    "wrap_model",
]
