"""Stage 3, the first generator family: SPADE (Park et al. 2019), label map -> image.

Build, one training step, the training loop, render, save and load; :data:`FAMILY` offers them
behind the generator contract (:mod:`cardigan_utils.images.contract`), and :class:`SpadeRenderer`
is a trained SPADE generator as the rest of the kit uses it.

New style codes are drawn from a density of the style encoder's codes of the real training images
(:func:`fit_style_density`, run at the end of :func:`train_spade` and kept in ``spade.pt``), not
from N(0, I): with a small KL weight those codes fill only part of N(0, I), and styles drawn from
the rest of it give images of a narrower range of contrasts than the real ones (issue 22).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.image import imsave

from .. import distributed
from ..checkpoint import build_from_config, load_checkpoint, load_weights, save_checkpoint
from ..config import STAGE_DEFAULTS, get_device, progress, use_bf16
from ..labels import NUM_CLASSES, label_image, one_hot
from ..loop import close_epoch, epoch_seed, rank_seed, restore, resume_from
from ..losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, kl_loss
from ..networks.density import BANDWIDTH_RULES, DENSITY_KINDS, CodeDensity
from ..networks.discriminator import MultiScaleDiscriminator
from ..networks.spade import SPADEGenerator, StyleEncoder
from .contract import GeneratorFamily

_DEFAULTS = STAGE_DEFAULTS["spade"]

FAMILY_NAME = "spade"
"""The family name recorded in every SPADE checkpoint's config (also its checkpoints' kind)."""

PAPER_MODULATION = {"modulation_kernel": 3, "block_modulation": False}
"""The SPADE paper's modulation (two 3x3 convolutions per norm): what a checkpoint without these settings has."""


def _with_paper_modulation(model: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``model`` settings, with the paper's modulation where they predate the setting."""
    return {**PAPER_MODULATION, **model}


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
    simultaneous: bool = _DEFAULTS["simultaneous"],
) -> dict[str, torch.Tensor]:
    """One SPADE training iteration: a discriminator update and a generator update.

    The generator runs once. With ``simultaneous`` (the kit's default) the discriminator runs once
    too, on the generated and the real images together, and both networks are updated from that
    one pass: D by the gradient of its hinge loss, G by the gradient of its own (hinge + feature
    matching + KL of the style encoder), each loss differentiated with respect to its own network
    only. G is thus judged by the discriminator before this iteration's D update, as in the
    reference trainer (which updates G first, then D), for one discriminator pass instead of
    three: on the 2-core CPU that pass is about a third of the iteration.

    Without ``simultaneous``: a D step on the detached output, then a G step against the updated
    discriminator (two more passes, real features recomputed), with D's weights frozen so that no
    weight gradient is computed for them.

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
        g_discriminator: the discriminator to call in the generator step of the two-pass update
            (default ``discriminator``). Under DistributedDataParallel pass the unwrapped module:
            its weights are frozen in that step, and a DDP wrapper would wait for gradients that
            never come. Spectral norm stays the same on every rank either way: its power iteration
            depends only on the weights and on the vector ``u``, which DDP copies from rank 0
            before every wrapped forward.
        simultaneous: one discriminator pass for both updates (see above).

    Returns:
        Detached scalar losses ``d``, ``g_gan``, ``fm``, ``kl`` (no host sync: call ``.item()`` when needed).
    """
    n = seg.shape[0]
    autocast = torch.autocast(device_type=seg.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)

    def g_objective(fake_out, real_out):
        g_gan = hinge_g_loss([s[-1] for s in fake_out])
        fm = feature_matching_loss(fake_out, real_out)
        return g_gan, fm, g_gan + fm_weight * fm + (kl_weight * kl if encoder is not None else 0.0)

    with autocast:
        z, kl = None, torch.zeros((), device=seg.device)
        if encoder is not None:
            mu, logvar = encoder(real)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kl = kl_loss(mu, logvar)
        fake = generator(seg, z)
        both = discriminator(torch.cat([fake if simultaneous else fake.detach(), real]), torch.cat([seg, seg]))
        d_loss = hinge_d_loss([s[-1][n:] for s in both], [s[-1][:n] for s in both])
        if simultaneous:
            g_gan, fm, g_loss = g_objective([[f[:n] for f in s] for s in both], [[f[n:] for f in s] for s in both])
    if simultaneous:
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        # each loss reaches only its own network's weights (inputs=): G's loss goes through D's
        # activations but computes no gradient for D's weights, D's loss never enters G
        d_loss.backward(inputs=[p for group in opt_d.param_groups for p in group["params"]], retain_graph=True)
        g_loss.backward(inputs=[p for group in opt_g.param_groups for p in group["params"]])
        opt_d.step()
        opt_g.step()
        return {"d": d_loss.detach(), "g_gan": g_gan.detach(), "fm": fm.detach(), "kl": kl.detach()}

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
            g_gan, fm, g_loss = g_objective(fake_out, real_out)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    finally:
        discriminator.requires_grad_(True)
    return {"d": d_loss.detach(), "g_gan": g_gan.detach(), "fm": fm.detach(), "kl": kl.detach()}


def build_spade(
    *,
    image_size: int,
    ngf: int = _DEFAULTS["ngf"],
    hidden_channels: int = _DEFAULTS["hidden_channels"],
    z_dim: int = _DEFAULTS["z_dim"],
    ndf: int = _DEFAULTS["ndf"],
    n_layers_d: int = _DEFAULTS["n_layers_d"],
    num_scales: int = _DEFAULTS["num_scales"],
    spectral_norm: bool = _DEFAULTS["spectral_norm"],
    modulation_kernel: int = _DEFAULTS["modulation_kernel"],
    block_modulation: bool = _DEFAULTS["block_modulation"],
    label_channels: int = NUM_CLASSES,
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
        modulation_kernel: kernel of the generator's gamma / beta convolutions (3 in the paper).
        block_modulation: one modulation per generator block instead of one per norm (see
            :class:`~cardigan_utils.networks.spade.SPADEResBlock`).
        label_channels: label classes (one-hot channels).
        image_channels: image channels.

    Returns:
        ``(generator, discriminator, encoder_or_None)`` on the CPU.
    """
    generator = SPADEGenerator(image_size=image_size, label_channels=label_channels, out_channels=image_channels,
                               ngf=ngf, hidden_channels=hidden_channels, z_dim=z_dim, spectral_norm=spectral_norm,
                               modulation_kernel=modulation_kernel, block_modulation=block_modulation)
    discriminator = MultiScaleDiscriminator(image_channels=image_channels, label_channels=label_channels, ndf=ndf,
                                            n_layers=n_layers_d, num_scales=num_scales, spectral_norm=spectral_norm)
    encoder = StyleEncoder(image_size=image_size, in_channels=image_channels, z_dim=z_dim, spectral_norm=spectral_norm) if z_dim else None
    return generator, discriminator, encoder


def train_spade(
    cache,
    *,
    run_dir: str | Path,
    ngf: int = _DEFAULTS["ngf"],
    hidden_channels: int = _DEFAULTS["hidden_channels"],
    z_dim: int = _DEFAULTS["z_dim"],
    ndf: int = _DEFAULTS["ndf"],
    n_layers_d: int = _DEFAULTS["n_layers_d"],
    num_scales: int = _DEFAULTS["num_scales"],
    spectral_norm: bool = _DEFAULTS["spectral_norm"],
    modulation_kernel: int = _DEFAULTS["modulation_kernel"],
    block_modulation: bool = _DEFAULTS["block_modulation"],
    max_epochs: int = _DEFAULTS["max_epochs"],
    batch_size: int = _DEFAULTS["batch_size"],
    lr_g: float = _DEFAULTS["lr_g"],
    lr_d: float = _DEFAULTS["lr_d"],
    betas: tuple[float, float] = _DEFAULTS["betas"],
    fm_weight: float = _DEFAULTS["fm_weight"],
    kl_weight: float = _DEFAULTS["kl_weight"],
    simultaneous: bool = _DEFAULTS["simultaneous"],
    sample_interval: int = _DEFAULTS["sample_interval"],
    n_fixed: int = _DEFAULTS["n_fixed"],
    device: str | torch.device | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    compile: bool = _DEFAULTS["compile"],
    style_bandwidth: str | float = _DEFAULTS["style_bandwidth"],
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
    With a style encoder, the last ``<name>.pt`` also holds the style density of the final networks
    (:func:`fit_style_density` on the train split), recorded as ``style_density`` in its config.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache` (train split for training, val for the fixed batch).
        run_dir: where checkpoints and samples go.
        ngf, hidden_channels, z_dim, ndf, n_layers_d, num_scales, spectral_norm, modulation_kernel,
            block_modulation: see :func:`build_spade`.
        max_epochs: epochs in total (a resumed run continues up to this).
        batch_size: batch size.
        lr_g: generator (and encoder) learning rate.
        lr_d: discriminator learning rate.
        betas: Adam betas.
        fm_weight: feature matching weight.
        kl_weight: style KL weight.
        simultaneous: both networks updated from one discriminator pass (see :func:`spade_step`).
        sample_interval: render the fixed batch every this many epochs (and at the last).
        n_fixed: size of the fixed batch.
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or None for the best available.
        amp: bf16 autocast; None: where it pays (CUDA, CPUs with native bf16; see ``use_bf16``).
        channels_last: channels-last memory format; None: on for CUDA.
        compile: wrap G and D in ``torch.compile`` (CUDA; slow to start, faster after).
        style_bandwidth: kernel width of the style density (see :func:`fit_style_density`).
        seed: seed of the weights and of every epoch's randomness.
        resume: continue from ``<name>_last.pt`` if it exists.
        progress_bar: show a tqdm bar with the losses.
        name: checkpoint file stem.

    Returns:
        History: one row per epoch (epoch, d, g_gan, fm, kl, seconds, img_per_s).
    """
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
                        n_layers_d=n_layers_d, num_scales=num_scales, spectral_norm=spectral_norm,
                        modulation_kernel=modulation_kernel, block_modulation=block_modulation)
    torch.manual_seed(seed)
    generator, discriminator, encoder = build_spade(**model_config)
    for m in (generator, discriminator, encoder):
        if m is not None:
            m.to(device=device, memory_format=fmt)
    g_params = list(generator.parameters()) + (list(encoder.parameters()) if encoder is not None else [])
    betas = (float(betas[0]), float(betas[1]))
    # fused Adam: one kernel for all parameters, 3x faster than the default on this CPU (6.5 M weights: 5 ms, not 16)
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    opt_g = torch.optim.Adam(g_params, lr=lr_g, betas=betas, **fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas, **fused)
    fixed_z = torch.randn(len(fixed_idx), z_dim, generator=torch.Generator().manual_seed(seed)) if z_dim else None
    config = {
        "family": FAMILY_NAME,
        "model": model_config,
        "train": {"max_epochs": max_epochs, "batch_size": batch_size, "lr_g": lr_g, "lr_d": lr_d, "betas": list(betas),
                  "fm_weight": fm_weight, "kl_weight": kl_weight, "simultaneous": simultaneous, "amp": amp,
                  "seed": seed},
        "data": {"cache": str(cache.path), "dataset": cache.manifest["dataset"], "modality": cache.manifest["modality"]},
    }
    final_path = run_dir / f"{name}.pt"
    samples_dir = run_dir / f"{name}_samples"
    resumed = resume_from(run_dir, name, kind=FAMILY_NAME, device=device, resume=resume,
                          keys=("generator", "discriminator", "opt_g", "opt_d") + (("encoder",) if encoder is not None else ()))
    start_epoch, history, state = resumed.start_epoch, resumed.history, resumed.state
    if state is not None:
        trained = resumed.config.get("model")
        if trained is not None and _with_paper_modulation(trained) != model_config:
            raise ValueError(f"{run_dir / name}_last.pt was trained with {resumed.config['model']}, not {model_config}: "
                             "use another run_dir, or resume=False to start again")
        networks = {"generator": generator, "discriminator": discriminator, "encoder": encoder}
        restore(resumed, {**{k: m for k, m in networks.items() if m is not None}, "opt_g": opt_g, "opt_d": opt_d})

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
        gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        torch.manual_seed(rank_seed(seed, epoch, ctx))  # style noise
        order = distributed.shard(torch.randperm(len(train_idx), generator=gen).numpy(), ctx)
        generator.train(), discriminator.train()
        if encoder is not None:
            encoder.train()
        sums: dict[str, torch.Tensor] = {}
        for step in range(steps):
            seg, real = batch_of(train_idx[order[step * batch_size : (step + 1) * batch_size]])
            losses = spade_step(step_g, step_d, opt_g, opt_d, seg, real, encoder=step_e, fm_weight=fm_weight,
                                kl_weight=kl_weight, amp_dtype=amp_dtype, g_discriminator=plain_d,
                                simultaneous=simultaneous)
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
        if not ctx.is_main:
            history.append(row)
            distributed.barrier(ctx)  # rank 0 renders samples and writes the checkpoints
            continue
        if (epoch + 1) % sample_interval == 0 or epoch + 1 == max_epochs:
            seg, _ = batch_of(fixed_idx)
            fake = render(generator, seg, z=fixed_z)
            samples_dir.mkdir(parents=True, exist_ok=True)
            if not (samples_dir / "labels.png").exists():
                imsave(samples_dir / "labels.png", np.concatenate([label_image(m) for m in labels[np.sort(fixed_idx)]], axis=1))
            imsave(samples_dir / f"epoch_{epoch + 1:04d}.png", np.concatenate(list(fake), axis=1), cmap="gray", vmin=0, vmax=1)
        state = {"generator": generator.state_dict(), "encoder": encoder.state_dict() if encoder is not None else {},
                 "epoch": epoch + 1}
        save_checkpoint(final_path, state, config={**config, "epoch": epoch + 1}, kind=FAMILY_NAME)
        close_epoch(row, history, t0=t0, run_dir=run_dir, name=name, kind=FAMILY_NAME, config=config,
                    last_state={**state, "discriminator": discriminator.state_dict(), "opt_g": opt_g.state_dict(),
                                "opt_d": opt_d.state_dict()})
        distributed.barrier(ctx)
    bar.close()
    if encoder is not None and ctx.is_main and final_path.exists():
        # the style density of the final networks, fitted on the train split and kept in <name>.pt
        # (also when a finished run is resumed: a checkpoint from before the density gets one)
        renderer = load_spade(final_path, device=device)
        fit_style_density(renderer, cache, bandwidth=style_bandwidth, seed=seed, progress_bar=progress_bar)
        save_spade(renderer, final_path)
    distributed.barrier(ctx)
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


class SpadeRenderer:
    """A trained SPADE generator behind the generator contract (:class:`~cardigan_utils.images.contract.ImageGenerator`).

    Args:
        network: the :class:`~cardigan_utils.networks.spade.SPADEGenerator`, in eval mode.
        config: the checkpoint's JSON config (``family``, ``model``, ``train``, ``data``, and
            ``style_density`` once one is fitted).
        encoder: its :class:`~cardigan_utils.networks.spade.StyleEncoder`, or None.
        density: the density its style codes are drawn from (a
            :class:`~cardigan_utils.networks.density.CodeDensity`, kept on the CPU); None: an
            unfitted one, N(0, I). None without style codes.
    """

    family = FAMILY_NAME

    def __init__(self, network: SPADEGenerator, *, config: dict[str, Any], encoder: StyleEncoder | None = None,
                 density: CodeDensity | None = None) -> None:
        self.network, self.encoder, self.config = network, encoder, config
        if density is None and network.z_dim:
            density = CodeDensity(dim=network.z_dim)
        self.density = density

    @property
    def image_size(self) -> int:
        """Side of the square images (and label maps) it renders."""
        return int(self.network.image_size)

    @property
    def style_dim(self) -> int:
        """Size of a style code; 0 when every label map has one image only."""
        return int(self.network.z_dim)

    @property
    def device(self) -> torch.device:
        """Where the network's weights are."""
        return next(self.network.parameters()).device

    @property
    def style_prior(self) -> str:
        """What :meth:`sample_styles` draws from by default: ``"kde"`` (the fitted style density),
        ``"standard"`` (N(0, I): no density fitted, as in checkpoints from before it) or ``"none"``
        (no style codes)."""
        if not self.style_dim:
            return "none"
        return "kde" if self.density.fitted else "standard"

    def sample_styles(self, n: int, *, seed: int, prior: str = "kde", extrapolation: float = 1.0) -> torch.Tensor | None:
        """``n`` style codes, drawn from a generator of that seed (None without style codes).

        Args:
            n: how many.
            seed: the seed.
            prior: ``"kde"`` (the kernel density of the real training images' codes, see
                :func:`fit_style_density`), ``"fitted"`` (the Gaussian fitted to them) or
                ``"standard"`` (N(0, I), what the KL term aims at). Without a fitted density
                (checkpoints from before it) every prior is N(0, I).
            extrapolation: how far from the centre of the real styles: each code is moved to
                ``mean + extrapolation * (code - mean)`` (``mean`` of the fitted density; 0 for
                N(0, I)). 1 draws styles as the real images vary; above 1 the images' contrast, noise
                and bias field range wider than the training scanner's (issue 23), the label maps
                they render are unchanged.

        Returns:
            (n, style_dim) float32 codes on the CPU, or None.
        """
        if prior not in DENSITY_KINDS:
            raise ValueError(f"prior must be one of {DENSITY_KINDS}, not {prior!r}")
        if not extrapolation > 0:
            raise ValueError(f"extrapolation must be > 0 (1: styles as the real images vary), got {extrapolation}")
        if not self.style_dim:
            return None
        codes = self.density.sample(n, kind=prior, generator=torch.Generator().manual_seed(seed))
        if extrapolation == 1:
            return codes
        fitted = self.density.fitted and prior != "standard"
        centre = self.density.mean if fitted else torch.zeros_like(self.density.mean)
        return centre + float(extrapolation) * (codes - centre)

    @torch.no_grad()
    def encode_styles(self, images: np.ndarray | torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """The style codes of images: the style encoder's posterior means, in eval mode.

        Args:
            images: (N, H, W) images in [0, 1].
            batch_size: images per forward pass.

        Returns:
            (N, style_dim) float32 codes on the CPU.
        """
        if self.encoder is None:
            raise ValueError("this generator has no style encoder (z_dim=0): its images have no style codes")
        was_training = self.encoder.training
        self.encoder.eval()
        out = []
        for i in range(0, len(images), batch_size):
            chunk = images[i : i + batch_size]
            chunk = torch.from_numpy(np.ascontiguousarray(chunk)) if isinstance(chunk, np.ndarray) else chunk
            mu, _ = self.encoder(chunk.to(self.device, torch.float32)[:, None] * 2 - 1)
            out.append(mu.float().cpu())
        self.encoder.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.style_dim)

    def render(self, labels: torch.Tensor | np.ndarray, *, styles: torch.Tensor | None = None,
               batch_size: int = 64) -> np.ndarray:
        """Images of label maps (see :func:`render`).

        Args:
            labels: (N, H, W) integer label maps (or (N, L, H, W) one-hot).
            styles: (N, style_dim) codes from :meth:`sample_styles`; None draws them from the
                default prior (:attr:`style_prior`) with the global torch generator (seed it for
                repeatable images).
            batch_size: images per forward pass.

        Returns:
            (N, H, W) float32 images in [0, 1].
        """
        labels = torch.from_numpy(np.ascontiguousarray(labels)) if isinstance(labels, np.ndarray) else labels
        if styles is None and self.style_dim:
            styles = self.density.sample(len(labels))
        return render(self.network, labels.to(self.device), z=styles, batch_size=batch_size)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights of the generator and of its style encoder, and its fitted style density.

        The density is part of what a synthetic set is made from (its styles), so it counts in the
        set's fingerprint; an unfitted one (N(0, I)) adds nothing, so a checkpoint from before
        the density keeps the fingerprint its sets recorded.

        Returns:
            ``{"generator.<name>": tensor, "encoder.<name>": tensor, "style_density.<name>": tensor}``
            (no encoder entries without one, no density entries while it is unfitted).
        """
        density = self.density if self.density is not None and self.density.fitted else None
        parts = {"generator": self.network, "encoder": self.encoder, "style_density": density}
        return {f"{part}.{name}": value for part, module in parts.items() if module is not None
                for name, value in module.state_dict().items()}


def fit_style_density(renderer: SpadeRenderer, cache, *, split: str = "train",
                      bandwidth: str | float = _DEFAULTS["style_bandwidth"], batch_size: int = 64, seed: int = 0,
                      progress_bar: bool = True) -> dict[str, Any]:
    """Fit the density new style codes are drawn from to the style codes of a cache's real images.

    The codes are the style encoder's posterior means of the ``split`` images; the density is the
    kernel density of :func:`~cardigan_utils.networks.density.fit_density` (with the Gaussian fitted
    to them beside it). The renderer is changed in place: its ``density`` and its config's
    ``style_density`` record; :func:`save_spade` writes both. :func:`train_spade` runs this at its
    end; for a checkpoint from before the density::

        generator = load_spade("runs/old/spade.pt")
        fit_style_density(generator, load_run_cache("runs/old", "phantom-mri", 64))
        save_spade(generator, "runs/old/spade.pt")

    Args:
        renderer: a :class:`SpadeRenderer` with a style encoder.
        cache: a :class:`~cardigan_utils.data.cache.SliceCache` of the images it learnt from.
        split: the cache split whose images give the codes.
        bandwidth: the kernel width: ``"cv"`` (leave-one-out likelihood), ``"scott"``,
            ``"silverman"`` or a number > 0 in whitened units. On the quick phantom GAN at 64x64
            (``benchmarks/style_spread.py``) "cv" chose h = 0.77, and the spread of per-image class
            means was 0.76-0.93 of the real test patients' (N(0, I) styles: 0.46-0.54); Scott's
            0.91 gave 0.78-0.95, h = 0.25 or 0.5 left the LV below 0.75, the fitted Gaussian alone 0.66-0.80.
        batch_size: images per forward pass of the encoder.
        seed: seed of the cross-validation subset.
        progress_bar: a bar over the encoder's batches.

    Returns:
        The record kept in the config: ``kind``, ``split``, ``n_codes``, ``bandwidth``, ``rule``.
    """
    idx = np.sort(cache.indices(split))
    if len(idx) < 2:
        raise ValueError(f"the {split!r} split of {cache.path} has {len(idx)} slices; a style density needs at least 2")
    chunks = np.array_split(idx, -(-len(idx) // batch_size))  # read from the memory-mapped cache a batch at a time
    codes = torch.cat([renderer.encode_styles(cache.images[chunk], batch_size=batch_size)
                       for chunk in progress(chunks, enabled=progress_bar, desc="style codes")])
    h = renderer.density.fit(codes, bandwidth=bandwidth, seed=seed)
    record = {"kind": "kde", "split": split, "n_codes": len(codes), "bandwidth": round(h, 6),
              "rule": BANDWIDTH_RULES.get(bandwidth, "given") if isinstance(bandwidth, str) else "given"}
    renderer.config = {**renderer.config, "style_density": record}
    return record


def save_spade(renderer: SpadeRenderer, path: str | Path) -> Path:
    """Write a SPADE generator as :func:`load_spade` reads it: its networks, its style density and its config.

    Args:
        renderer: the :class:`SpadeRenderer`.
        path: ``spade.pt`` (the config goes to ``spade.json`` beside it).

    Returns:
        ``path``.
    """
    state: dict[str, Any] = {"generator": renderer.network.state_dict(),
                             "encoder": renderer.encoder.state_dict() if renderer.encoder is not None else {},
                             "epoch": renderer.config.get("epoch")}
    if renderer.density is not None and renderer.density.fitted:
        state["style_density"] = renderer.density.state_dict()
    config = {k: v for k, v in renderer.config.items() if k not in ("kind", "resumable")}
    return save_checkpoint(path, state, config=config, kind=FAMILY_NAME)


def load_spade(path: str | Path, *, device: str | torch.device | None = None) -> SpadeRenderer:
    """Load a trained SPADE generator (and its style encoder, if it has one).

    Args:
        path: ``spade.pt`` (with ``spade.json`` beside it).
        device: where to put it (default: the best available).

    Returns:
        The :class:`SpadeRenderer`, its networks in eval mode, with the style density the
        checkpoint holds (N(0, I) for one from before the density).

    Raises:
        CheckpointError: ``path`` is not a SPADE checkpoint the kit wrote (one line saying why).
    """
    device = get_device(device) if not isinstance(device, torch.device) else device
    state, config = load_checkpoint(path, kind=FAMILY_NAME, map_location=str(device), keys=("generator",))
    if isinstance(config.get("model"), dict):
        config = {**config, "model": _with_paper_modulation(config["model"])}
    generator, _, encoder = build_from_config(build_spade, config, path=path, kind=FAMILY_NAME)
    load_weights(generator, state["generator"], path=path, part="generator")
    generator.to(device).eval()
    if encoder is not None:
        load_weights(encoder, state.get("encoder", {}), path=path, part="encoder")
        encoder.to(device).eval()
    density = CodeDensity(dim=generator.z_dim) if generator.z_dim else None
    if density is not None and "style_density" in state:  # on the CPU, where styles are drawn
        density.match(state["style_density"])
        load_weights(density, state["style_density"], path=path, part="style_density")
    return SpadeRenderer(generator, config=config, encoder=encoder, density=density)


FAMILY = GeneratorFamily(name=FAMILY_NAME, stage="spade", build=build_spade, step=spade_step, train=train_spade,
                         load=load_spade)
"""SPADE behind the generator contract."""
