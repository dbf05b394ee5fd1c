"""Stage 2: the shape VAE, trained on the label maps of a slice cache; evaluated, loaded, sampled.

Every trainer runs under ``torchrun`` with DistributedDataParallel, unchanged for the caller (see
:mod:`cardigan_utils.distributed`), and resumes exactly (see :mod:`cardigan_utils.loop`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.losses import DiceCELoss

from .. import distributed
from ..augment import affine_labels, random_affine_params
from ..checkpoint import build_from_config, load_checkpoint, load_weights, save_checkpoint
from ..config import STAGE_DEFAULTS, get_device, progress
from ..labels import structure_names
from ..loop import close_epoch, epoch_seed, rank_seed, restore, resume_from
from ..losses import kl_loss
from ..metrics import per_class_dice
from ..networks.vae import DENSITY_KEYS, ShapeVAE
from .latent import encode_cache
from .sampler import calibrate_bandwidth

_DEFAULTS = STAGE_DEFAULTS["vae"]

KIND = "vae"
"""The kind recorded in every shape VAE checkpoint."""

PRIOR_KEYS = ("prior_mean", "prior_chol", *DENSITY_KEYS)
"""Weights a checkpoint from before the fitted prior (or the kernel density) lacks: the model keeps
N(0, I) (or samples "kde" from the fitted Gaussian)."""


def _split_labels(cache, split: str) -> torch.Tensor:
    idx = cache.indices(split)
    if len(idx) == 0:
        raise ValueError(f"the cache {cache.path} has no {split!r} slices; rebuild it with more patients")
    return torch.from_numpy(np.ascontiguousarray(cache.labels[idx]))


def train_vae(
    cache,
    *,
    run_dir: str | Path,
    latent_dim: int = _DEFAULTS["latent_dim"],
    channels: list[int] | None = _DEFAULTS["channels"],
    max_epochs: int = _DEFAULTS["max_epochs"],
    batch_size: int = _DEFAULTS["batch_size"],
    lr: float = _DEFAULTS["lr"],
    beta: float = _DEFAULTS["beta"],
    kl_warmup_epochs: int = _DEFAULTS["kl_warmup_epochs"],
    augment: bool = _DEFAULTS["augment"],
    val_interval: int = _DEFAULTS["val_interval"],
    valid_target: float | None = _DEFAULTS["valid_target"],
    calibration_draws: int = _DEFAULTS["calibration_draws"],
    device: str | torch.device | None = None,
    seed: int = 0,
    resume: bool = True,
    progress_bar: bool = True,
    name: str = "vae",
) -> pd.DataFrame:
    """Train the shape VAE on the label maps of a slice cache.

    Loss: Dice + cross-entropy of the reconstruction (MONAI ``DiceCELoss``) + ``beta`` x KL, the
    KL weight ramped linearly from 0 over ``kl_warmup_epochs`` epochs. Checkpoints in ``run_dir``:
    ``<name>.pt`` (best validation loss; the one later notebooks use) and ``<name>_last.pt``
    (every epoch, for resuming), each with a ``.json`` config; ``<name>_history.csv``.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache` (train and val splits are used).
        run_dir: where checkpoints go.
        latent_dim: latent size.
        channels: encoder widths (default: by image size).
        max_epochs: epochs in total (a resumed run continues up to this).
        batch_size: batch size.
        lr: Adam learning rate.
        beta: KL weight after warm-up.
        kl_warmup_epochs: epochs of linear KL warm-up (0: none).
        augment: random rotation / scaling / shift of the label maps.
        val_interval: validate every this many epochs (and at the last).
        valid_target: after training, narrow the kernel density of the codes until this share of
            its draws decodes to valid shapes (:func:`~cardigan_utils.shapes.sampler.calibrate_bandwidth`);
            None keeps the leave-one-out width.
        calibration_draws: draws per width tried by that calibration.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None for the best available.
        seed: seed of the weights and of every epoch's randomness.
        resume: continue from ``<name>_last.pt`` if it exists.
        progress_bar: show a tqdm bar with the losses.
        name: checkpoint file stem.

    Returns:
        History: one row per epoch (epoch, loss, recon, kl, beta, and at validation epochs
        val_loss, val_dice_<class>, val_dice_mean, seconds).
    """
    ctx = distributed.context()
    device = distributed.device_for(ctx, device)
    run_dir = Path(run_dir)
    image_size = int(cache.manifest["image_size"])
    names = structure_names(cache.manifest["modality"])
    train_labels = _split_labels(cache, "train")
    val_labels = _split_labels(cache, "val")
    model_config = {"image_size": image_size, "num_classes": 4, "latent_dim": latent_dim, "channels": channels}
    torch.manual_seed(seed)
    model = ShapeVAE(**model_config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = DiceCELoss(to_onehot_y=False, softmax=True)
    config = {
        "model": model.config,
        "train": {"max_epochs": max_epochs, "batch_size": batch_size, "lr": lr, "beta": beta,
                  "kl_warmup_epochs": kl_warmup_epochs, "augment": augment, "seed": seed},
        "data": {"cache": str(cache.path), "dataset": cache.manifest["dataset"], "modality": cache.manifest["modality"]},
    }
    best_path = run_dir / f"{name}.pt"
    resumed = resume_from(run_dir, name, kind=KIND, device=device, keys=("model", "optimizer", "best"), resume=resume)
    start_epoch, history, best = resumed.start_epoch, resumed.history, float("inf")
    if resumed.state is not None:
        restore(resumed, {"model": model, "optimizer": optimizer}, optional=PRIOR_KEYS)
        best = float(resumed.state["best"])
    train_model = distributed.wrap(model, ctx, device)

    steps = int(np.ceil(len(distributed.shard(np.arange(len(train_labels)), ctx)) / batch_size))
    bar = progress(total=(max_epochs - start_epoch) * steps, desc="VAE", enabled=progress_bar and ctx.is_main)
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        torch.manual_seed(rank_seed(seed, epoch, ctx))  # reparameterisation noise
        order = torch.from_numpy(distributed.shard(torch.randperm(len(train_labels), generator=gen).numpy(), ctx))
        if ctx.rank:
            gen.manual_seed(rank_seed(seed, epoch, ctx))  # this rank's own augmentation
        weight = beta * min(1.0, (epoch + 1) / kl_warmup_epochs) if kl_warmup_epochs > 0 else beta
        model.train()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        for step in range(steps):
            batch = train_labels[order[step * batch_size : (step + 1) * batch_size]]
            if augment:
                batch = affine_labels(batch, random_affine_params(len(batch), generator=gen))
            batch = batch.to(device)
            target = model.one_hot(batch)
            logits, mu, logvar = train_model(target)
            recon = loss_fn(logits, target)
            kl = kl_loss(mu, logvar)
            loss = recon + weight * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in (("loss", loss), ("recon", recon), ("kl", kl)):
                sums[key] += value.item() / steps
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, recon=f"{recon.item():.3f}", kl=f"{kl.item():.1f}")
        sums = {k: distributed.mean(v, ctx) for k, v in sums.items()}
        distributed.sync_buffers([model], ctx)
        row: dict[str, Any] = {"epoch": epoch + 1, **sums, "beta": weight}
        if ctx.is_main:
            if (epoch + 1) % val_interval == 0 or epoch + 1 == max_epochs:
                row.update(evaluate_vae(model, val_labels, beta=weight, names=names, batch_size=batch_size))
                if row["val_loss"] < best:
                    best = row["val_loss"]
                    save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1},
                                    config={**config, "epoch": epoch + 1}, kind=KIND)
            close_epoch(row, history, t0=t0, run_dir=run_dir, name=name, kind=KIND, config=config,
                         last_state={"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                                     "best": best})
        else:
            history.append(row)
        distributed.barrier(ctx)  # the other ranks wait while rank 0 validates and writes
    bar.close()
    if ctx.is_main:
        # Fit the sampling densities (Gaussian and KDE) on the training codes of the best model and
        # store them with it.
        state, best_config = load_checkpoint(best_path, kind=KIND, map_location=str(device), keys=("model",))
        _load_model(model, state["model"], best_path)
        model.fit_density(torch.from_numpy(encode_cache(model, cache, split="train").mu))
        density = {"kind": "kde", "n_codes": len(model.density_codes), "bandwidth": round(float(model.density_bandwidth), 6),
                   "rule": "leave-one-out likelihood"}
        if valid_target is not None:
            density.update(calibrate_bandwidth(model, modality=cache.manifest["modality"], target=valid_target,
                                               n_draws=calibration_draws, seed=seed).as_config())
        save_checkpoint(best_path, {**state, "model": model.state_dict()},
                        config={**best_config, "prior": "fitted on train codes", "density": density}, kind=KIND)
    distributed.barrier(ctx)
    if not ctx.is_main:  # every rank ends with the model rank 0 wrote: the best epoch, with its prior
        state, _ = load_checkpoint(best_path, kind=KIND, map_location=str(device), keys=("model",))
        _load_model(model, state["model"], best_path)
    return pd.DataFrame(history)


def _load_model(model: ShapeVAE, weights: dict, path: Path) -> None:
    """Load a shape VAE's weights, its kernel density sized first; older checkpoints lack the priors."""
    model.match_density(weights)
    load_weights(model, weights, path=path, optional=PRIOR_KEYS)


@torch.no_grad()
def evaluate_vae(model, labels: torch.Tensor, *, beta: float, names: list[str], batch_size: int = 64) -> dict[str, float]:
    """Validation loss (posterior mean, no noise) and reconstruction Dice per class.

    Args:
        model: a :class:`~cardigan_utils.networks.vae.ShapeVAE`.
        labels: (N, H, W) label maps.
        beta: KL weight for the loss.
        names: names of classes 1..3.
        batch_size: evaluation batch.

    Returns:
        ``val_loss``, ``val_dice_<name>`` per class and ``val_dice_mean``.
    """
    device = next(model.parameters()).device
    loss_fn = DiceCELoss(to_onehot_y=False, softmax=True)
    model.eval()
    total, preds = 0.0, []
    for chunk in labels.split(batch_size):
        chunk = chunk.to(device)
        target = model.one_hot(chunk)
        logits, mu, logvar = model(target)
        total += float(loss_fn(logits, target) + beta * kl_loss(mu, logvar)) * len(chunk)
        preds.append(logits.argmax(1).cpu())
    dice = per_class_dice(torch.cat(preds), labels, num_classes=4)
    out = {"val_loss": total / len(labels)}
    out.update({f"val_dice_{n}": float(d) for n, d in zip(names, dice)})
    out["val_dice_mean"] = float(np.nanmean(dice.numpy()))
    return out


def load_vae(path: str | Path, *, device: str | torch.device | None = None):
    """Load a trained shape VAE from its checkpoint.

    Args:
        path: ``vae.pt`` (with ``vae.json`` beside it).
        device: where to put it (default: the best available).

    Returns:
        The :class:`~cardigan_utils.networks.vae.ShapeVAE` in eval mode, with the sampling
        densities fitted at the end of training (``sample_codes(prior="kde")``, the default, draws
        from the fitted Gaussian where a checkpoint from before the kernel density lacks it).

    Raises:
        CheckpointError: ``path`` is not a shape VAE checkpoint the kit wrote (one line saying why).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, kind=KIND, map_location=str(device), keys=("model",))
    model = build_from_config(ShapeVAE, config, path=path, kind=KIND)
    _load_model(model, state["model"], Path(path))
    return model.to(device).eval()
