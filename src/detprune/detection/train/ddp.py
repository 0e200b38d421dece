"""DistributedDataParallel plumbing for ``fit`` under ``torchrun``.

``fit`` calls ``init_distributed`` itself: when ``torchrun`` sets ``WORLD_SIZE > 1`` it joins
the process group (NCCL on GPUs, gloo on CPU), and everything else in this module degrades
to a no-op in a single process, so the same code path serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True if ``init_distributed`` created the process group

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``None`` -> ``cuda:LOCAL_RANK`` if CUDA is available, else CPU."""
    if device is None:
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def init_distributed(device: str | None = None) -> DistContext:
    """Join the ``torchrun`` process group if ``WORLD_SIZE > 1`` (or reuse one already initialised)."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = resolve_device(device, local)
        return DistContext(dist.get_rank(), local, dist.get_world_size(), dev, owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=resolve_device(device))
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), local, dist.get_world_size(), dev, owns_group=True)


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if ``init_distributed`` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Synchronise ranks (no-op in a single process)."""
    if ctx.distributed:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def distributed_loader(loader: DataLoader, *, shuffle: bool | None = None, seed: int = 0) -> DataLoader:
    """Rebuild ``loader`` with a ``DistributedSampler`` so each rank sees a disjoint shard.

    ``shuffle`` defaults to whether ``loader`` shuffled (``RandomSampler``). Loaders built with a
    custom ``batch_sampler`` cannot be rebuilt automatically and raise.
    """
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError("cannot add a DistributedSampler to a loader with a custom batch_sampler; build it yourself")
    if shuffle is None:
        shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = DistributedSampler(loader.dataset, shuffle=shuffle, seed=seed, drop_last=loader.drop_last)
    extra = {"prefetch_factor": loader.prefetch_factor} if loader.num_workers > 0 else {}
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
        generator=loader.generator,
        **extra,
    )


@torch.no_grad()
def broadcast_buffers(module: nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BN running stats) to all ranks.

    DDP syncs buffers at the *start* of each forward, so after the last step every rank holds
    statistics of its own last batch; broadcasting keeps models (and EMAs) bit-identical.
    """
    if ctx.distributed:
        for buf in module.buffers():
            dist.broadcast(buf, src)


def all_reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Mean of per-rank scalars (e.g. epoch losses) over the job."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    t /= ctx.world_size
    mean = dict(zip(keys, t.tolist()))
    return {k: mean[k] for k in values}
