"""What every trainer shares: per-epoch seeds, resuming from the last checkpoint, closing an epoch.

Reproducibility: every epoch draws its randomness (shuffling, augmentation, reparameterisation
noise) from generators seeded with ``(seed, epoch)``, so a run resumed from the checkpoint of
epoch k continues exactly as the uninterrupted run would have (on the CPU; GPU kernels may
differ in the last bits). Under ``torchrun`` each rank also draws its own augmentation from
:func:`rank_seed` (see :mod:`cardigan_utils.distributed`).

Each trainer (the shape VAE, the image generator, the U-Net) supplies only its iteration; the
files are the same for all three: ``<name>_last.pt`` (everything, every epoch, for resuming),
``<name>_history.csv`` (one row per epoch) and the trainer's own best or final checkpoint.

A ``<name>_last.pt`` that cannot be resumed from (truncated, of another kind, weights that do not
fit) stops the trainer with one line saying so and what to do; it never starts over silently,
which would overwrite the epochs already trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from .runs import write_csv_atomic


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shared randomness (the data order), the same on every rank.

    Args:
        seed: the run's seed.
        epoch: the epoch (from 0).

    Returns:
        An integer seed.
    """
    return seed * 100_003 + epoch


def rank_seed(seed: int, epoch: int, ctx: distributed.Context) -> int:
    """The seed of this rank's own randomness (augmentation, noise) in an epoch.

    Args:
        seed: the run's seed.
        epoch: the epoch (from 0).
        ctx: the process context; rank 0's seed is the one-process seed.

    Returns:
        An integer seed.
    """
    return epoch_seed(seed, epoch) + 1_000_003 * ctx.rank


@dataclass
class Resumed:
    """Where a trainer starts: from scratch, or from its ``<name>_last.pt``.

    Attributes:
        state: the last checkpoint's state dicts (None when starting from scratch).
        config: the last checkpoint's JSON config (``{}`` from scratch).
        start_epoch: the first epoch to train (0 from scratch).
        history: the history rows of the epochs already trained.
        path: the checkpoint resumed from (None from scratch).
    """

    state: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None


def last_path(run_dir: str | Path, name: str) -> Path:
    """The resumable checkpoint of a trainer.

    Args:
        run_dir: where the trainer writes.
        name: the checkpoint stem.

    Returns:
        ``run_dir/<name>_last.pt``.
    """
    return Path(run_dir) / f"{name}_last.pt"


def resume_advice(path: str | Path) -> str:
    """What to do with a ``<name>_last.pt`` that cannot be resumed from.

    Args:
        path: the checkpoint.

    Returns:
        The advice, as error messages give it.
    """
    return (f"delete it and {Path(path).with_suffix('.json').name} to train from scratch, "
            "or train in another run dir (resume=False in Python)")


def resume_from(run_dir: str | Path, name: str, *, kind: str, device, keys: tuple[str, ...] = (),
                resume: bool = True) -> Resumed:
    """Read what a trainer needs to continue: the last checkpoint and the history before it.

    Args:
        run_dir: where the trainer writes.
        name: the checkpoint stem.
        kind: the kind of model the trainer trains (``"vae"``, ``"spade"``, ``"segmenter"``).
        device: where the tensors go.
        keys: entries the checkpoint's state must hold besides ``epoch`` (models, optimisers).
        resume: False starts from scratch even when a checkpoint exists.

    Returns:
        A :class:`Resumed`; the caller loads ``state`` into its models and optimisers (:func:`restore`).

    Raises:
        CheckpointError: a ``<name>_last.pt`` that cannot be resumed from (damaged, another kind,
            no config), saying to delete it or to train elsewhere.
    """
    path = last_path(run_dir, name)
    if not (resume and path.exists()):
        return Resumed()
    try:
        state, config = load_checkpoint(path, kind=kind, map_location=str(device), keys=("epoch", *keys), resumable=True)
    except CheckpointError as err:
        raise CheckpointError(path, f"{err.problem}, so training cannot resume from it", resume_advice(path)) from None
    start = int(state["epoch"])
    history = pd.read_csv(Path(run_dir) / f"{name}_history.csv").to_dict("records")[:start]
    return Resumed(state=state, config=config, start_epoch=start, history=history, path=path)


def restore(resumed: Resumed, targets: dict[str, Any], *, optional: tuple[str, ...] = ()) -> None:
    """Load a resumed run's state into its networks, optimisers and schedulers.

    Args:
        resumed: what :func:`resume_from` returned (with a state).
        targets: checkpoint entry -> what it is loaded into (``{"model": model, "optimizer": optimizer}``).
        optional: network entries an older checkpoint may lack (see
            :func:`~cardigan_utils.checkpoint.load_weights`).

    Raises:
        CheckpointError: weights that do not fit, saying to delete the checkpoint or to train elsewhere.
    """
    for part, target in targets.items():
        load_weights(target, resumed.state[part], path=resumed.path, part=part, optional=optional,
                     advice=resume_advice(resumed.path))


def close_epoch(row: dict[str, Any], history: list[dict[str, Any]], *, t0: float, run_dir: str | Path, name: str,
                kind: str, config: dict[str, Any], last_state: dict[str, Any]) -> None:
    """End an epoch on rank 0: time it, append it to the history CSV, write the resumable checkpoint.

    Args:
        row: the epoch's history row (``epoch`` and the losses); ``seconds`` is added unless set.
        history: the rows so far (``row`` is appended).
        t0: ``time.perf_counter()`` at the epoch's start.
        run_dir: where the trainer writes.
        name: the checkpoint stem.
        kind: the kind of model (recorded in the checkpoint, which is marked resumable).
        config: the run's JSON config (the epoch is added).
        last_state: everything needed to resume (models, optimisers, ``epoch``, ...).
    """
    row.setdefault("seconds", round(time.perf_counter() - t0, 2))
    history.append(row)
    write_csv_atomic(Path(run_dir) / f"{name}_history.csv", pd.DataFrame(history))
    save_checkpoint(last_path(run_dir, name), last_state, config={**config, "epoch": row["epoch"]}, kind=kind,
                    resumable=True)
