"""Training loops. Each returns its history as a DataFrame and writes checkpoints it can resume from.

Reproducibility: every epoch draws its randomness (shuffling, augmentation, reparameterisation
noise) from generators seeded with ``(seed, epoch)``, so a run resumed from the checkpoint of
epoch k continues exactly as the uninterrupted run would have (on the CPU; GPU kernels may
differ in the last bits).

Every trainer also runs under ``torchrun`` with DistributedDataParallel, unchanged for the caller:
see :mod:`cardigan_utils.distributed` for what is shared, what is per rank, and who writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .config import get_device, progress, use_bf16
from .metrics import per_class_dice


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _rank_seed(seed: int, epoch: int, ctx: distributed.Context) -> int:
    """The seed of this rank's own randomness (augmentation, noise) in an epoch; rank 0's is the one-process seed."""
    return _epoch_seed(seed, epoch) + 1_000_003 * ctx.rank


def _close_epoch(row: dict[str, Any], history: list[dict[str, Any]], *, t0: float, run_dir: Path, name: str,
                 config: dict[str, Any], last_state: dict[str, Any]) -> None:
    """End an epoch: time it, append it to the history CSV, write the resumable checkpoint."""
    row["seconds"] = round(time.perf_counter() - t0, 2)
    history.append(row)
    pd.DataFrame(history).to_csv(run_dir / f"{name}_history.csv", index=False)
    save_checkpoint(run_dir / f"{name}_last.pt", last_state, config={**config, "epoch": row["epoch"]})


def _split_labels(cache, split: str) -> torch.Tensor:
    idx = cache.indices(split)
    if len(idx) == 0:
        raise ValueError(f"the cache {cache.path} has no {split!r} slices; rebuild it with more patients")
    return torch.from_numpy(np.ascontiguousarray(cache.labels[idx]))


def train_vae(
    cache,
    *,
    run_dir: str | Path,
    latent_dim: int = 32,
    channels: list[int] | None = None,
    max_epochs: int = 50,
    batch_size: int = 32,
    lr: float = 1e-3,
    beta: float = 1e-3,
    kl_warmup_epochs: int = 5,
    augment: bool = True,
    val_interval: int = 1,
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
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None for the best available.
        seed: seed of the weights and of every epoch's randomness.
        resume: continue from ``<name>_last.pt`` if it exists.
        progress_bar: show a tqdm bar with the losses.
        name: checkpoint file stem.

    Returns:
        History: one row per epoch (epoch, loss, recon, kl, beta, and at validation epochs
        val_loss, val_dice_<class>, val_dice_mean, seconds).
    """
    from monai.losses import DiceCELoss

    from .augment import affine_labels, random_affine_params
    from .data.case import LABELS
    from .losses import kl_loss
    from .networks.vae import ShapeVAE

    ctx = distributed.context()
    device = distributed.device_for(ctx, device)
    run_dir = Path(run_dir)
    image_size = int(cache.manifest["image_size"])
    names = [LABELS[cache.manifest["modality"]][k] for k in (1, 2, 3)]
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
    last_path, best_path = run_dir / f"{name}_last.pt", run_dir / f"{name}.pt"
    history: list[dict[str, Any]] = []
    start_epoch, best = 0, float("inf")
    if resume and last_path.exists():
        state, _ = load_checkpoint(last_path, map_location=str(device))
        _load_weights(model, state["model"], path=last_path)
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]), float(state["best"])
        history = pd.read_csv(run_dir / f"{name}_history.csv").to_dict("records")[:start_epoch]
    train_model = distributed.wrap(model, ctx, device)

    steps = int(np.ceil(len(distributed.shard(np.arange(len(train_labels)), ctx)) / batch_size))
    bar = progress(total=(max_epochs - start_epoch) * steps, desc="VAE", enabled=progress_bar and ctx.is_main)
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        torch.manual_seed(_rank_seed(seed, epoch, ctx))  # reparameterisation noise
        order = torch.from_numpy(distributed.shard(torch.randperm(len(train_labels), generator=gen).numpy(), ctx))
        if ctx.rank:
            gen.manual_seed(_rank_seed(seed, epoch, ctx))  # this rank's own augmentation
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
                    save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1}, config={**config, "epoch": epoch + 1})
            _close_epoch(row, history, t0=t0, run_dir=run_dir, name=name, config=config,
                         last_state={"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                                     "best": best})
        else:
            history.append(row)
        distributed.barrier(ctx)  # the other ranks wait while rank 0 validates and writes
    bar.close()
    if ctx.is_main:
        # Fit the sampling prior on the training codes of the best model and store it with it.
        from .latent import encode_cache

        state, best_config = load_checkpoint(best_path, map_location=str(device))
        _load_weights(model, state["model"], path=best_path)
        model.fit_prior(torch.from_numpy(encode_cache(model, cache, split="train").mu))
        save_checkpoint(best_path, {**state, "model": model.state_dict()}, config={**best_config, "prior": "fitted on train codes"})
    distributed.barrier(ctx)
    if not ctx.is_main:  # every rank ends with the model rank 0 wrote: the best epoch, with its prior
        _load_weights(model, load_checkpoint(best_path, map_location=str(device))[0]["model"], path=best_path)
    return pd.DataFrame(history)


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
    from monai.losses import DiceCELoss

    from .losses import kl_loss

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
        The :class:`~cardigan_utils.networks.vae.ShapeVAE` in eval mode.
    """
    from .networks.vae import ShapeVAE

    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, map_location=str(device))
    model = ShapeVAE(**config["model"]).to(device)
    _load_weights(model, state["model"], path=Path(path))
    return model.eval()


def _load_weights(model, state: dict, *, path: Path) -> None:
    """Load a state dict; a checkpoint from before the fitted prior existed keeps N(0, I)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"prior_mean", "prior_chol"}:
        raise RuntimeError(f"{path}: weights do not fit this model (missing {missing}, unexpected {unexpected}); "
                           "was it written by another version of the kit? Train again in a new run_dir")


# --------------------------------------------------------------------------------------------
# SPADE GAN


def spade_step(
    generator,
    discriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    seg: torch.Tensor,
    real: torch.Tensor,
    *,
    encoder=None,
    fm_weight: float = 10.0,
    kl_weight: float = 0.05,
    amp_dtype: torch.dtype | None = None,
    g_discriminator=None,
) -> dict[str, torch.Tensor]:
    """One SPADE training iteration: a discriminator step, then a generator step.

    The generator runs once: its output, detached, trains the discriminator (hinge loss); the
    same output then trains the generator against the updated discriminator (hinge + feature
    matching + KL of the style encoder). The discriminator's weights are frozen during the
    generator step so no weight gradient is computed for them. The reference trainer runs the
    generator twice and computes those gradients; this order gives the same updates for less work.

    Args:
        generator: a :class:`~cardigan_utils.networks.spade.SPADEGenerator` (or its compiled wrapper).
        discriminator: a :class:`~cardigan_utils.networks.discriminator.MultiScaleDiscriminator`.
        opt_g: optimiser of the generator (and encoder).
        opt_d: optimiser of the discriminator.
        seg: (B, L, H, W) one-hot label maps.
        real: (B, C, H, W) real images in [-1, 1].
        encoder: optional :class:`~cardigan_utils.networks.spade.StyleEncoder`.
        fm_weight: weight of feature matching.
        kl_weight: weight of the style KL (ignored without encoder).
        amp_dtype: autocast dtype (``torch.bfloat16``) or None for full precision.
        g_discriminator: the discriminator to call in the generator step (default ``discriminator``).
            Under DistributedDataParallel pass the unwrapped module: its weights are frozen in that
            step, and a DDP wrapper would wait for gradients that never come. Spectral norm stays
            the same on every rank either way: its power iteration depends only on the weights
            and on the vector ``u``, which DDP copies from rank 0 before every wrapped forward.

    Returns:
        Detached scalar losses ``d``, ``g_gan``, ``fm``, ``kl`` (no host sync: call ``.item()`` when needed).
    """
    from .losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, kl_loss

    n = seg.shape[0]
    autocast = torch.autocast(device_type=seg.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)
    with autocast:
        z, kl = None, torch.zeros((), device=seg.device)
        if encoder is not None:
            mu, logvar = encoder(real)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kl = kl_loss(mu, logvar)
        fake = generator(seg, z)
        both = discriminator(torch.cat([fake.detach(), real]), torch.cat([seg, seg]))
        d_loss = hinge_d_loss([s[-1][n:] for s in both], [s[-1][:n] for s in both])
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    g_discriminator = discriminator if g_discriminator is None else g_discriminator
    discriminator.requires_grad_(False)
    try:
        with autocast:
            fake_out = g_discriminator(fake, seg)
            with torch.no_grad():
                real_out = g_discriminator(real, seg)
            g_gan = hinge_g_loss([s[-1] for s in fake_out])
            fm = feature_matching_loss(fake_out, real_out)
            g_loss = g_gan + fm_weight * fm + (kl_weight * kl if encoder is not None else 0.0)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    finally:
        discriminator.requires_grad_(True)
    return {"d": d_loss.detach(), "g_gan": g_gan.detach(), "fm": fm.detach(), "kl": kl.detach()}


def build_spade(
    *,
    image_size: int,
    ngf: int = 32,
    hidden_channels: int = 128,
    z_dim: int = 0,
    ndf: int = 64,
    n_layers_d: int = 4,
    num_scales: int = 2,
    spectral_norm: bool = True,
    label_channels: int = 4,
    image_channels: int = 1,
):
    """The generator, discriminator and (if ``z_dim``) style encoder of a SPADE GAN.

    Args:
        image_size: 64, 128 or 256.
        ngf: generator width (last block; head at ``16 * ngf``).
        hidden_channels: SPADE hidden width.
        z_dim: style code size; > 0 adds the style encoder (multi-modal output).
        ndf: discriminator width.
        n_layers_d: layers per discriminator scale.
        num_scales: discriminator scales.
        spectral_norm: spectral normalisation in G and D.
        label_channels: label classes (one-hot channels).
        image_channels: image channels.

    Returns:
        ``(generator, discriminator, encoder_or_None)`` on the CPU.
    """
    from .networks.discriminator import MultiScaleDiscriminator
    from .networks.spade import SPADEGenerator, StyleEncoder

    generator = SPADEGenerator(image_size=image_size, label_channels=label_channels, out_channels=image_channels,
                               ngf=ngf, hidden_channels=hidden_channels, z_dim=z_dim, spectral_norm=spectral_norm)
    discriminator = MultiScaleDiscriminator(image_channels=image_channels, label_channels=label_channels, ndf=ndf,
                                            n_layers=n_layers_d, num_scales=num_scales, spectral_norm=spectral_norm)
    encoder = StyleEncoder(image_size=image_size, in_channels=image_channels, z_dim=z_dim, spectral_norm=spectral_norm) if z_dim else None
    return generator, discriminator, encoder


def train_spade(
    cache,
    *,
    run_dir: str | Path,
    ngf: int = 32,
    hidden_channels: int = 128,
    z_dim: int = 0,
    ndf: int = 64,
    n_layers_d: int = 4,
    num_scales: int = 2,
    spectral_norm: bool = True,
    max_epochs: int = 20,
    batch_size: int = 16,
    lr_g: float = 1e-4,
    lr_d: float = 4e-4,
    betas: tuple[float, float] = (0.0, 0.9),
    fm_weight: float = 10.0,
    kl_weight: float = 0.05,
    sample_interval: int = 1,
    n_fixed: int = 8,
    device: str | torch.device | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    seed: int = 0,
    resume: bool = True,
    progress_bar: bool = True,
    name: str = "spade",
) -> pd.DataFrame:
    """Train a SPADE GAN to render the slice cache's label maps as its images.

    Two-time-scale Adam (G ``lr_g``, D ``lr_d``, ``betas``), hinge loss + feature matching
    (+ KL with a style encoder). Writes to ``run_dir``: ``<name>.pt`` (generator and encoder, for
    later notebooks), ``<name>_last.pt`` (everything, for resuming; every epoch),
    ``<name>_history.csv`` and ``<name>_samples/epoch_NNNN.png``: the same ``n_fixed`` validation
    label maps (with fixed style codes, drawn in ``labels.png``) rendered every ``sample_interval`` epochs.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache` (train split for training, val for the fixed batch).
        run_dir: where checkpoints and samples go.
        ngf, hidden_channels, z_dim, ndf, n_layers_d, num_scales, spectral_norm: see :func:`build_spade`.
        max_epochs: epochs in total (a resumed run continues up to this).
        batch_size: batch size.
        lr_g: generator (and encoder) learning rate.
        lr_d: discriminator learning rate.
        betas: Adam betas.
        fm_weight: feature matching weight.
        kl_weight: style KL weight.
        sample_interval: render the fixed batch every this many epochs (and at the last).
        n_fixed: size of the fixed batch.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None for the best available.
        amp: bf16 autocast; None: where it pays (CUDA, CPUs with native bf16; see ``use_bf16``).
        channels_last: channels-last memory format; None: on for CUDA.
        compile: wrap G and D in ``torch.compile`` (CUDA; slow to start, faster after).
        seed: seed of the weights and of every epoch's randomness.
        resume: continue from ``<name>_last.pt`` if it exists.
        progress_bar: show a tqdm bar with the losses.
        name: checkpoint file stem.

    Returns:
        History: one row per epoch (epoch, d, g_gan, fm, kl, seconds, img_per_s).
    """
    from matplotlib.image import imsave

    from .networks.spade import one_hot

    ctx = distributed.context()
    device = distributed.device_for(ctx, device)
    amp = use_bf16(device) if amp is None else amp
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    amp_dtype = torch.bfloat16 if amp else None
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    run_dir = Path(run_dir)
    image_size = int(cache.manifest["image_size"])
    train_idx = cache.indices("train")
    val_idx = cache.indices("val")
    if len(train_idx) == 0:
        raise ValueError(f"the cache {cache.path} has no train slices; rebuild it with more patients")
    fixed_idx = (val_idx if len(val_idx) else train_idx)[:n_fixed]
    model_config = dict(image_size=image_size, ngf=ngf, hidden_channels=hidden_channels, z_dim=z_dim, ndf=ndf,
                        n_layers_d=n_layers_d, num_scales=num_scales, spectral_norm=spectral_norm)
    torch.manual_seed(seed)
    generator, discriminator, encoder = build_spade(**model_config)
    for m in (generator, discriminator, encoder):
        if m is not None:
            m.to(device=device, memory_format=fmt)
    g_params = list(generator.parameters()) + (list(encoder.parameters()) if encoder is not None else [])
    betas = (float(betas[0]), float(betas[1]))
    opt_g = torch.optim.Adam(g_params, lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    fixed_z = torch.randn(len(fixed_idx), z_dim, generator=torch.Generator().manual_seed(seed)) if z_dim else None
    config = {
        "model": model_config,
        "train": {"max_epochs": max_epochs, "batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d, "betas": list(betas),
                  "fm_weight": fm_weight, "kl_weight": kl_weight, "amp": amp, "seed": seed},
        "data": {"cache": str(cache.path), "dataset": cache.manifest["dataset"], "modality": cache.manifest["modality"]},
    }
    last_path, final_path = run_dir / f"{name}_last.pt", run_dir / f"{name}.pt"
    samples_dir = run_dir / f"{name}_samples"
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and last_path.exists():
        state, last_config = load_checkpoint(last_path, map_location=str(device))
        if last_config.get("model") not in (None, model_config):
            raise ValueError(f"{last_path} was trained with {last_config['model']}, not {model_config}: "
                             "use another run_dir, or resume=False to start again")
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        if encoder is not None:
            encoder.load_state_dict(state["encoder"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start_epoch = int(state["epoch"])
        history = pd.read_csv(run_dir / f"{name}_history.csv").to_dict("records")[:start_epoch]

    def compiled(model):
        return torch.compile(model) if compile else model

    step_g = compiled(distributed.wrap(generator, ctx, device))
    step_d = compiled(distributed.wrap(discriminator, ctx, device))
    step_e = distributed.wrap(encoder, ctx, device) if encoder is not None else None
    plain_d = compiled(discriminator) if ctx.distributed else step_d  # the generator step's (see spade_step)
    images = cache.images
    labels = cache.labels

    def batch_of(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(idx)  # memory-mapped reads in file order
        real = torch.from_numpy(np.ascontiguousarray(images[idx]))[:, None].to(device) * 2 - 1
        seg = one_hot(torch.from_numpy(np.ascontiguousarray(labels[idx])).to(device))
        return seg.contiguous(memory_format=fmt), real.contiguous(memory_format=fmt)

    per_rank = len(distributed.shard(np.arange(len(train_idx)), ctx))
    steps = per_rank // batch_size  # drop the last partial batch: batch norm needs full batches
    if steps == 0:
        raise ValueError(f"{per_rank} training slices per process is less than one batch of {batch_size}")
    bar = progress(total=max(0, max_epochs - start_epoch) * steps, desc="SPADE", enabled=progress_bar and ctx.is_main)
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        torch.manual_seed(_rank_seed(seed, epoch, ctx))  # style noise
        order = distributed.shard(torch.randperm(len(train_idx), generator=gen).numpy(), ctx)
        generator.train(), discriminator.train()
        if encoder is not None:
            encoder.train()
        sums: dict[str, torch.Tensor] = {}
        for step in range(steps):
            seg, real = batch_of(train_idx[order[step * batch_size : (step + 1) * batch_size]])
            losses = spade_step(step_g, step_d, opt_g, opt_d, seg, real, encoder=step_e, fm_weight=fm_weight,
                                kl_weight=kl_weight, amp_dtype=amp_dtype, g_discriminator=plain_d)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value / steps
            bar.update(1)
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(epoch=epoch + 1, d=f"{losses['d'].item():.2f}", g=f"{losses['g_gan'].item():.2f}",
                                fm=f"{losses['fm'].item():.2f}")
        distributed.sync_buffers([generator, discriminator, encoder], ctx)
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {"epoch": epoch + 1, **{k: distributed.mean(float(v), ctx) for k, v in sums.items()},
                               "seconds": round(seconds, 2),
                               "img_per_s": round(steps * batch_size * ctx.world_size / seconds, 1)}
        history.append(row)
        if not ctx.is_main:
            distributed.barrier(ctx)  # rank 0 renders samples and writes the checkpoints
            continue
        if (epoch + 1) % sample_interval == 0 or epoch + 1 == max_epochs:
            seg, _ = batch_of(fixed_idx)
            fake = render(generator, seg, z=fixed_z)
            samples_dir.mkdir(parents=True, exist_ok=True)
            if not (samples_dir / "labels.png").exists():
                from .viz import label_image

                imsave(samples_dir / "labels.png", np.concatenate([label_image(m) for m in labels[np.sort(fixed_idx)]], axis=1))
            imsave(samples_dir / f"epoch_{epoch + 1:04d}.png", np.concatenate(list(fake), axis=1), cmap="gray", vmin=0, vmax=1)
        pd.DataFrame(history).to_csv(run_dir / f"{name}_history.csv", index=False)
        state = {"generator": generator.state_dict(), "encoder": encoder.state_dict() if encoder is not None else {},
                 "epoch": epoch + 1}
        save_checkpoint(final_path, state, config={**config, "epoch": epoch + 1})
        save_checkpoint(last_path, {**state, "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(),
                                    "opt_d": opt_d.state_dict()}, config={**config, "epoch": epoch + 1})
        distributed.barrier(ctx)
    bar.close()
    return pd.DataFrame(history)


@torch.no_grad()
def render(generator, seg: torch.Tensor, *, z: torch.Tensor | None = None, batch_size: int = 64,
           amp: bool | None = None) -> np.ndarray:
    """Images of label maps from a trained generator, in eval mode, as [0, 1] arrays.

    Args:
        generator: a :class:`~cardigan_utils.networks.spade.SPADEGenerator`.
        seg: (N, L, H, W) one-hot maps, or (N, H, W) integer label maps.
        z: (N, z_dim) style codes for a multi-modal generator; None draws them from N(0, I)
            with the global torch generator (seed it for repeatable images).
        batch_size: images per forward pass.
        amp: bf16 autocast; None: where it pays (``use_bf16``; 2x faster on a CPU with native bf16).

    Returns:
        (N, H, W) float32 images in [0, 1] (first channel).
    """
    from .networks.spade import one_hot

    device = next(generator.parameters()).device
    amp = use_bf16(device) if amp is None else amp
    if seg.dim() == 3:
        seg = one_hot(seg, num_classes=generator.label_channels)
    was_training = generator.training
    generator.eval()
    out = []
    for i in range(0, len(seg), batch_size):
        zi = z[i : i + batch_size].to(device) if z is not None else None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            image = generator(seg[i : i + batch_size].to(device).float(), zi)
        out.append(((image.float() + 1) / 2).clamp(0, 1)[:, 0].cpu())
    generator.train(was_training)
    return torch.cat(out).numpy()


def load_spade(path: str | Path, *, device: str | torch.device | None = None):
    """Load a trained SPADE generator (and its style encoder, if it has one).

    Args:
        path: ``spade.pt`` (with ``spade.json`` beside it).
        device: where to put it (default: the best available).

    Returns:
        ``(generator, encoder_or_None, config)``, the networks in eval mode.
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, map_location=str(device))
    generator, _, encoder = build_spade(**config["model"])
    generator.load_state_dict(state["generator"])
    generator.to(device).eval()
    if encoder is not None:
        encoder.load_state_dict(state["encoder"])
        encoder.to(device).eval()
    return generator, encoder, config


# --------------------------------------------------------------------------------------------
# Segmentation U-Net


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
    channels: tuple[int, ...] = (16, 32, 64, 128, 256),
    num_res_units: int = 2,
    max_epochs: int = 20,
    batch_size: int = 16,
    steps_per_epoch: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    augment=None,
    names: tuple[str, ...] = ("RV", "MYO", "LV"),
    data: dict[str, Any] | None = None,
    val_interval: int = 1,
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
        max_epochs: epochs in total (a resumed run continues up to this).
        batch_size: batch size per process.
        steps_per_epoch: batches per epoch and process (default: one pass over all sources, shared
            by the processes under ``torchrun``).
        lr: AdamW learning rate (cosine-annealed to 0 over ``max_epochs``).
        weight_decay: AdamW weight decay.
        augment: ``f(images (B, 1, S, S), labels (B, S, S), generator) -> (images, labels)`` on the
            device, or None.
        names: names of classes 1..3 for the history columns.
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
    from monai.losses import DiceCELoss

    from .networks.unet import build_unet

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
    model = build_unet(channels=channels, num_res_units=num_res_units).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    config = {"model": model.config, "data": data or {},
              "train": {"max_epochs": max_epochs, "batch_size": batch_size, "steps_per_epoch": steps, "lr": lr,
                        "weight_decay": weight_decay, "augment": augment is not None, "amp": amp, "seed": seed,
                        "sources": sizes}}
    last_path, best_path = run_dir / f"{name}_last.pt", run_dir / f"{name}.pt"
    history: list[dict[str, Any]] = []
    start_epoch, best = 0, -1.0
    if resume and last_path.exists():
        state, last_config = load_checkpoint(last_path, map_location=str(device))
        if last_config.get("model") != model.config:
            raise ValueError(f"{last_path} holds another U-Net ({last_config.get('model')}); use another run_dir or resume=False")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best = int(state["epoch"]), float(state["best"])
        history = pd.read_csv(run_dir / f"{name}_history.csv").to_dict("records")[:start_epoch]
    train_model = distributed.wrap(model, ctx, device)

    bar = progress(total=max(0, max_epochs - start_epoch) * steps, desc="U-Net", enabled=progress_bar and ctx.is_main)
    for epoch in range(start_epoch, max_epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        order = distributed.shard(torch.randperm(total, generator=gen).numpy(), ctx)
        if ctx.rank:
            gen.manual_seed(_rank_seed(seed, epoch, ctx))  # this rank's own augmentation
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
            row.update({f"val_dice_{n}": float(d) for n, d in zip(names, dice)})
            row["val_dice_mean"] = float(np.nanmean(dice.numpy()))
            if row["val_dice_mean"] > best:
                best = row["val_dice_mean"]
                save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1}, config={**config, "epoch": epoch + 1})
        _close_epoch(row, history, t0=t0, run_dir=run_dir, name=name, config=config,
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
    """
    from .networks.unet import build_unet

    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, map_location=str(device))
    model = build_unet(**config["model"]).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), config
