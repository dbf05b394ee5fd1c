"""One trainer, one or many processes: PyTorch's DistributedDataParallel under ``torchrun``.

The trainers (``train_vae``, ``train_spade``, ``train_segmenter``) call :func:`context` first. In a
notebook or a plain ``python`` call there is no ``torchrun`` environment and they run as one
process, exactly as before. Under ``torchrun --nproc_per_node N`` every process joins the same
process group (NCCL on CUDA, gloo on the CPU), wraps its model in DistributedDataParallel and
trains on its own share of each epoch:

- **Data.** Every rank draws the same seeded permutation of the training set and takes every
  N-th index from its rank on (the partition of ``torch.utils.data.DistributedSampler``; the kit
  indexes memory-mapped arrays itself instead of going through a DataLoader, see :func:`shard`).
- **Batch size and learning rate.** ``batch_size`` is per process: the effective batch is
  ``batch_size x N``. Learning rates are not changed. For the U-Net and the VAE the linear
  scaling rule (learning rate x N, Goyal et al. 2017) is a reasonable start; GANs are sensitive to
  their two learning rates, so keep SPADE's and check the samples.
- **One writer.** Rank 0 alone shows progress, validates, writes checkpoints, histories and
  samples; the other ranks wait for it at the end of every epoch. Every rank resumes from the same
  ``<name>_last.pt``, so an interrupted multi-process run continues where it stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .config import get_device


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank, the number of processes and its local GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True under ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True for the process that logs and writes (rank 0)."""
        return self.rank == 0


def context() -> Context:
    """This process's place in the run; joins the process group on first use under ``torchrun``.

    Reads the ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` variables ``torchrun`` sets. Without
    them (a notebook, a plain script) the run is one process and nothing is initialised.

    Returns:
        A :class:`Context`.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context()
    ctx = Context(rank=int(os.environ["RANK"]), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        # gloo for CPU tensors, NCCL for CUDA ones: a CPU run (--device cpu) works on a GPU machine too.
        # The timeout covers the other ranks waiting while rank 0 alone validates and writes.
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=60))
    return ctx


def device_for(ctx: Context, device):
    """The device of this process: its own GPU under ``torchrun`` on CUDA, else the device asked for.

    Args:
        ctx: from :func:`context`.
        device: what the caller asked for (``None``, a name or a ``torch.device``).

    Returns:
        A ``torch.device``.
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    if ctx.distributed and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device


def wrap(model: torch.nn.Module, ctx: Context, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else ``model`` itself.

    DDP copies rank 0's weights and buffers to every rank when it wraps, and again (buffers) before
    every forward, so all ranks start equal and stay equal: gradients are averaged across ranks
    in ``backward``.

    Args:
        model: the module (already on ``device``).
        ctx: from :func:`context`.
        device: its device.

    Returns:
        The module to call in the training step.
    """
    if not ctx.distributed:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(order: np.ndarray, ctx: Context) -> np.ndarray:
    """This rank's share of an epoch's permutation (the partition of ``DistributedSampler``).

    Every rank draws the same ``order`` from the same seeded generator; rank ``r`` keeps
    ``order[r::N]`` after dropping the tail that would leave the ranks unequal, so every rank runs
    the same number of steps. The kit does this itself instead of using ``DistributedSampler``
    because its trainers index memory-mapped arrays without a DataLoader and keep drawing their
    augmentation from the same generator, so a one-process run is unchanged bit for bit.

    Args:
        order: the epoch's permutation of training indices.
        ctx: from :func:`context`.

    Returns:
        The indices this rank trains on, in order.
    """
    if not ctx.distributed:
        return order
    usable = len(order) - len(order) % ctx.world_size
    return order[:usable][ctx.rank :: ctx.world_size]


def sync_buffers(models, ctx: Context) -> None:
    """Copy rank 0's buffers (batch-norm running statistics, spectral-norm vectors) to every rank.

    DDP copies them before each wrapped forward, so after the last step of an epoch the ranks
    differ by that step's own update. Called at the end of every epoch, so that what rank 0 writes
    is what every rank holds. No-op for one process.

    Args:
        models: modules (None entries are skipped).
        ctx: from :func:`context`.
    """
    if not ctx.distributed:
        return
    for model in models:
        for buffer in (model.buffers() if model is not None else ()):
            dist.broadcast(buffer.data, src=0)


def barrier(ctx: Context) -> None:
    """Wait until every rank gets here (no-op for one process).

    Args:
        ctx: from :func:`context`.
    """
    if ctx.distributed:
        dist.barrier()


def mean(value: float, ctx: Context) -> float:
    """The mean of a number over the ranks (for the history), or the number itself for one process.

    Args:
        value: this rank's value (e.g. its mean loss over the epoch).
        ctx: from :func:`context`.

    Returns:
        The mean over all ranks.
    """
    if not ctx.distributed:
        return value
    total = torch.tensor(float(value), dtype=torch.float64)  # a CPU tensor: reduced by gloo
    dist.all_reduce(total)
    return float(total) / ctx.world_size


def close(ctx: Context) -> None:
    """Leave the process group at the end of a ``torchrun`` job (no-op for one process).

    Args:
        ctx: from :func:`context`.
    """
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
