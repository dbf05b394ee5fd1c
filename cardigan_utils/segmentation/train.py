"""Stage 5: the segmentation U-Net (MONAI), trained on real and/or synthetic slices; prediction, loading."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.losses import DiceCELoss

from .. import distributed
from ..checkpoint import build_from_config, load_checkpoint, load_weights, save_checkpoint
from ..config import STAGE_DEFAULTS, get_device, progress, use_bf16
from ..loop import close_epoch, epoch_seed, rank_seed, restore, resume_from
from ..labels import structure_names
from ..metrics import per_class_dice
from ..networks.unet import build_unet

_DEFAULTS = STAGE_DEFAULTS["segment"]

KIND = "segmenter"
"""The kind recorded in every segmentation U-Net checkpoint."""


def _gather(sources: list[tuple[np.ndarray, np.ndarray]], starts: np.ndarray, idx: np.ndarray):
    """Images and labels of global indices ``idx`` over the concatenation of ``sources``."""
    which = np.searchsorted(starts, idx, side="right") - 1
    images, labels = [], []
    for s in np.unique(which):
        local = np.sort(idx[which == s] - starts[s])  # memory-mapped reads in file order
        images.append(np.asarray(sources[s][0][local], np.float32))
        labels.append(np.asarray(sources[s][1][local]))
    return np.concatenate(images), np.concatenate(labels)


def train_segmenter(
    sources: list[tuple[np.ndarray, np.ndarray]],
    *,
    val: tuple[np.ndarray, np.ndarray],
    run_dir: str | Path,
    channels: tuple[int, ...] = _DEFAULTS["channels"],
    num_res_units: int = _DEFAULTS["num_res_units"],
    norm: str = "instance",
    max_epochs: int = _DEFAULTS["max_epochs"],
    batch_size: int = _DEFAULTS["batch_size"],
    steps_per_epoch: int | None = _DEFAULTS["steps_per_epoch"],
    lr: float = _DEFAULTS["lr"],
    weight_decay: float = _DEFAULTS["weight_decay"],
    augment=None,
    names: tuple[str, ...] | None = None,
    data: dict[str, Any] | None = None,
    val_interval: int = _DEFAULTS["val_interval"],
    device: str | torch.device | None = None,
    amp: bool | None = None,
    seed: int = 0,
    resume: bool = True,
    progress_bar: bool = True,
    name: str = "segmenter",
) -> pd.DataFrame:
    """Train a 2-D U-Net (MONAI) with Dice + cross-entropy on one or more image/label sources.

    The training set is the concatenation of ``sources`` (e.g. the real training slices and a
    synthetic set); each epoch visits a seeded permutation of it. Checkpoints in ``run_dir``:
    ``<name>.pt`` (best validation mean Dice), ``<name>_last.pt`` (every epoch, for resuming),
    ``<name>_history.csv``.

    Args:
        sources: ``(images, labels)`` pairs: (N, S, S) images in [0, 1] and (N, S, S) label maps
            (memory-mapped arrays are read batch by batch).
        val: validation ``(images, labels)``.
        run_dir: where checkpoints go.
        channels: U-Net widths per level.
        num_res_units: residual units per level.
        norm: ``"instance"`` or ``"batch"`` (:func:`~cardigan_utils.networks.unet.build_unet`).
        max_epochs: epochs in total (a resumed run continues up to this).
        batch_size: batch size per process.
        steps_per_epoch: batches per epoch and process (default: one pass over all sources, shared
            by the processes under ``torchrun``).
        lr: AdamW learning rate (cosine-annealed to 0 over ``max_epochs``).
        weight_decay: AdamW weight decay.
        augment: ``f(images (B, 1, S, S), labels (B, S, S), generator) -> (images, labels)`` on the
            device, or None.
        names: names of classes 1..3 for the history columns; None: those of ``data``'s modality
            (the MRI ones without ``data``).
        data: how the slices were cut, stored with the weights for ``cardigan segment``:
            ``{"modality", "image_size", "fov_mm"}`` (see :func:`data_config`).
        val_interval: validate every this many epochs (and at the last).
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None for the best available.
        amp: bf16 autocast; None: where it pays (``use_bf16``).
        seed: seed of the weights and of every epoch's randomness.
        resume: continue from ``<name>_last.pt`` if it exists.
        progress_bar: a tqdm bar with the loss.
        name: checkpoint file stem.

    Returns:
        History: one row per epoch (epoch, loss, lr, and at validation epochs val_dice_<name>,
        val_dice_mean; seconds).
    """
    column_names = names or structure_names((data or {}).get("modality", "mri"))
    ctx = distributed.context()
    device = distributed.device_for(ctx, device)
    amp = use_bf16(device) if amp is None else amp
    run_dir = Path(run_dir)
    sizes = [len(s[0]) for s in sources]
    if not sources or min(sizes) == 0 or any(len(i) != len(l) for i, l in sources):
        raise ValueError(f"sources must be non-empty (images, labels) pairs of equal length, got sizes {sizes}")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    total = int(sum(sizes))
    steps = steps_per_epoch or max(1, len(distributed.shard(np.arange(total), ctx)) // batch_size)  # per process
    torch.manual_seed(seed)
    model = build_unet(channels=channels, num_res_units=num_res_units, norm=norm).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    config = {"model": model.config, "data": data or {},
              "train": {"max_epochs": max_epochs, "batch_size": batch_size, "steps_per_epoch": steps, "lr": lr,
                        "weight_decay": weight_decay, "augment": augment is not None, "amp": amp, "seed": seed,
                        "sources": sizes}}
    best_path = run_dir / f"{name}.pt"
    resumed = resume_from(run_dir, name, kind=KIND, device=device, keys=("model", "optimizer", "scheduler", "best"),
                          resume=resume)
    start_epoch, history, best = resumed.start_epoch, resumed.history, -1.0
    if resumed.state is not None:
        if resumed.config.get("model") != model.config:
            raise ValueError(f"{run_dir / name}_last.pt holds another U-Net ({resumed.config.get('model')}); "
                             "use another run_dir or resume=False")
        restore(resumed, {"model": model, "optimizer": optimizer, "scheduler": scheduler})
        best = float(resumed.state["best"])
    train_model = distributed.wrap(model, ctx, device)

    bar = progress(total=max(0, max_epochs - start_epoch) * steps, desc="U-Net", enabled=progress_bar and ctx.is_main)
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        order = distributed.shard(torch.randperm(total, generator=gen).numpy(), ctx)
        if ctx.rank:
            gen.manual_seed(rank_seed(seed, epoch, ctx))  # this rank's own augmentation
        order = np.resize(order, steps * batch_size)  # wraps around when steps_per_epoch asks for more
        model.train()
        loss_sum = torch.zeros((), device=device)
        for step in range(steps):
            images, labels = _gather(sources, starts, order[step * batch_size : (step + 1) * batch_size])
            x = torch.from_numpy(images)[:, None].to(device)
            y = torch.from_numpy(labels.astype(np.int64)).to(device)
            if augment is not None:
                x, y = augment(x, y, gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = train_model(x)
            loss = loss_fn(logits.float(), y[:, None])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() / steps
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        scheduler.step()
        distributed.sync_buffers([model], ctx)
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": distributed.mean(float(loss_sum), ctx),
                               "lr": optimizer.param_groups[0]["lr"]}
        if not ctx.is_main:
            history.append(row)
            distributed.barrier(ctx)  # rank 0 validates and writes the checkpoints
            continue
        if (epoch + 1) % val_interval == 0 or epoch + 1 == max_epochs:
            pred = predict(model, val[0], amp=amp)
            dice = per_class_dice(torch.from_numpy(pred), torch.from_numpy(np.asarray(val[1])), num_classes=4)
            row.update({f"val_dice_{n}": float(d) for n, d in zip(column_names, dice)})
            row["val_dice_mean"] = float(np.nanmean(dice.numpy()))
            if row["val_dice_mean"] > best:
                best = row["val_dice_mean"]
                save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1},
                                config={**config, "epoch": epoch + 1}, kind=KIND)
        close_epoch(row, history, t0=t0, run_dir=run_dir, name=name, kind=KIND, config=config,
                     last_state={"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best})
        distributed.barrier(ctx)
    bar.close()
    return pd.DataFrame(history)


def data_config(cache) -> dict[str, Any]:
    """How a slice cache cut its slices: what a segmenter trained on it needs to cut new volumes.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.

    Returns:
        ``{"modality", "image_size", "fov_mm", "dataset"}``.
    """
    m = cache.manifest
    return {"modality": m["modality"], "image_size": int(m["image_size"]), "fov_mm": m.get("fov_mm"),
            "dataset": m.get("dataset")}


@torch.no_grad()
def predict(model, images: np.ndarray, *, batch_size: int = 64, amp: bool | None = None) -> np.ndarray:
    """Label maps predicted for 2-D images (argmax of the logits), in eval mode.

    Args:
        model: a segmentation network (logits out).
        images: (N, S, S) images in [0, 1] (memory-mapped arrays are fine).
        batch_size: images per forward pass.
        amp: bf16 autocast; None: where it pays.

    Returns:
        (N, S, S) uint8 label maps.
    """
    device = next(model.parameters()).device
    amp = use_bf16(device) if amp is None else amp
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.array(images[i : i + batch_size], np.float32))[:, None].to(device)  # a writable copy
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        out.append(logits.float().max(1).indices.to(torch.uint8).cpu())  # max(1).indices: see ShapeVAE.decode_labels
    model.train(was_training)
    return torch.cat(out).numpy()


def load_segmenter(path: str | Path, *, device: str | torch.device | None = None):
    """Load a trained segmentation U-Net.

    Args:
        path: ``segmenter.pt`` (with its ``.json`` beside it).
        device: where to put it (default: the best available).

    Returns:
        ``(model, config)``, the model in eval mode.

    Raises:
        CheckpointError: ``path`` is not a segmenter checkpoint the kit wrote (one line saying why).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, kind=KIND, map_location=str(device), keys=("model",))
    model = build_from_config(build_unet, config, path=path, kind=KIND)
    load_weights(model, state["model"], path=path)
    return model.to(device).eval(), config
