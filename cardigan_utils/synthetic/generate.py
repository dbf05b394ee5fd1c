"""Stage 4: labelled synthetic sets: VAE shapes -> (anatomical filter) -> generator images, streamed to disk.

A synthetic set is a folder of shards, ``shard_00000.npz`` ... (``images`` float16 in [0, 1],
``labels`` uint8), each written atomically and drawn from its own seed, so that

- the set is the same for the same seed and batch size wherever it was interrupted,
- an interrupted run, started again, generates only the missing shards (no duplicates), and
- 100,000 pairs never sit in memory at once (one shard does).

``generation.json`` (the parameters) is written first, ``manifest.json`` (the totals) last: a
folder without a manifest is an unfinished set, and :func:`generate_dataset` completes it. The
parameters include a fingerprint of the two models' weights (:func:`models_fingerprint`): a set
made from another VAE or generator (a retrained or replaced ``spade.pt``) is never returned as
finished, nor completed with shards of the new models.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .. import distributed
from ..config import STAGE_DEFAULTS, progress
from ..images import ImageGenerator
from ..runs import TMP_MARK, atomic_path, state_fingerprint, write_text_atomic
from ..shapes.sampler import ValidBank, sample_valid_shapes, valid_bank

_DEFAULTS = STAGE_DEFAULTS["generate"]


def _shard_seed(seed: int, shard: int) -> int:
    return seed * 1_000_003 + shard


def generate_pairs(
    vae,
    generator: ImageGenerator,
    *,
    n: int,
    seed: int,
    modality: str = "mri",
    filter_plausible: bool = _DEFAULTS["filter_plausible"],
    batch_size: int = _DEFAULTS["render_batch_size"],
    max_draws: int | None = None,
    bank: ValidBank | None = None,
    style_extrapolation: float = _DEFAULTS["style_extrapolation"],
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``n`` labelled pairs: VAE shapes (anatomically valid, or as drawn), rendered by the image generator.

    Shapes come from :func:`~cardigan_utils.shapes.sampler.sample_valid_shapes`: codes drawn from
    the VAE's density of the training codes; a shape that fails the anatomical checks has its code
    warped to the nearest valid one (Painchaud et al., TMI 2020) rather than being thrown away.
    Style codes come from the generator's default prior (SPADE: the density of the real training
    images' style codes, where its checkpoint has one).

    Args:
        vae: a trained :class:`~cardigan_utils.networks.vae.ShapeVAE`.
        generator: a trained :class:`~cardigan_utils.images.contract.ImageGenerator` of the same size.
        n: pairs to return.
        seed: seed of the shape codes and style codes.
        modality: for the plausibility checks.
        filter_plausible: every shape passes every anatomical check (warped if it did not as
            drawn); else every shape as drawn.
        batch_size: shapes per draw / images per forward pass.
        max_draws: give up (RuntimeError) after drawing this many shapes (default ``50 * n``).
        bank: the valid codes to warp towards (:func:`~cardigan_utils.shapes.sampler.valid_bank`;
            default: built from the VAE's training codes on each call).
        style_extrapolation: the generator's ``sample_styles(extrapolation=...)``: 1 styles as the
            real images vary; above 1 wider than the training scanner's (the label maps are the same).

    Returns:
        ``(images, labels, stats)``: (n, S, S) float32 images in [0, 1], (n, S, S) uint8 label maps,
        and ``{"drawn": codes drawn, "valid": valid as drawn, "warped": made valid by warping,
        "kept": n}``.
    """
    vae_size = vae.config["image_size"]
    if vae_size != generator.image_size:
        raise ValueError(f"the VAE makes {vae_size}x{vae_size} shapes, the generator "
                         f"{generator.image_size}x{generator.image_size} images: train both on the same cache")
    if filter_plausible:
        labels, found = sample_valid_shapes(vae, n, modality=modality, seed=seed, bank=bank, batch_size=batch_size,
                                            max_draws=max_draws)
        stats = {"drawn": found["drawn"], "valid": found["valid"], "warped": found["warped"], "kept": n}
    else:
        shapes_gen = torch.Generator(device=next(vae.parameters()).device).manual_seed(seed)
        labels = vae.sample(n, generator=shapes_gen, batch_size=batch_size).cpu().numpy()
        stats = {"drawn": n, "valid": n, "warped": 0, "kept": n}
    styles = generator.sample_styles(n, seed=seed + 1, extrapolation=style_extrapolation)
    images = generator.render(labels, styles=styles, batch_size=batch_size)
    return images, labels, stats


def models_fingerprint(vae, generator: ImageGenerator) -> dict[str, str]:
    """What a synthetic set was made from: a SHA-256 of each model's weights.

    Computed from the loaded models (:func:`~cardigan_utils.runs.state_fingerprint`), so the same
    checkpoints give the same fingerprints on any device and under ``torchrun``.

    Args:
        vae: the shape VAE.
        generator: the image generator.

    Returns:
        ``{"vae": hex digest, "generator": hex digest}``.
    """
    return {"vae": state_fingerprint(vae), "generator": state_fingerprint(generator)}


def generate_dataset(
    vae,
    generator: ImageGenerator,
    *,
    out_dir: str | Path,
    n: int,
    shard_size: int = _DEFAULTS["shard_size"],
    seed: int = 0,
    modality: str = "mri",
    spacing_mm: float | None = 1.0,
    filter_plausible: bool = _DEFAULTS["filter_plausible"],
    batch_size: int = _DEFAULTS["render_batch_size"],
    overwrite: bool = False,
    progress_bar: bool = True,
    extra: dict[str, Any] | None = None,
    style_extrapolation: float = _DEFAULTS["style_extrapolation"],
) -> Path:
    """Generate ``n`` labelled pairs into ``out_dir`` as shards; complete an unfinished set.

    Under ``torchrun --nproc_per_node N`` the shards are shared out: rank ``r`` writes shards
    ``r, r + N, ...`` (each from its own seed, so the set is the same whatever N is) and rank 0
    writes the parameters and the manifest. Load the models on ``distributed.device_for(...)``.

    Args:
        vae: a trained shape VAE.
        generator: a trained image generator (same image size).
        out_dir: the set's folder.
        n: number of pairs.
        shard_size: pairs per shard file.
        seed: the set's seed (shard ``k`` uses its own seed derived from it).
        modality: ``"mri"`` or ``"echo"``.
        spacing_mm: in-plane pixel spacing of the images (that of the cache the models learnt from);
            None when the source's spacing is unknown (a derived CAMUS copy): ``generation.json``
            then says ``null`` and the exports write the 1.0 mm placeholder.
        filter_plausible: keep only anatomically valid shapes.
        batch_size: shapes per draw / images per forward pass.
        overwrite: replace a set generated with other parameters or from other models.
        progress_bar: a bar over the pairs.
        extra: JSON-ready notes stored in the manifest (e.g. the checkpoints used).
        style_extrapolation: see :func:`generate_pairs` (recorded in the set's parameters when not 1).

    Returns:
        ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` holds a set made with other parameters or from other models
            (and ``overwrite`` is False), or files that are no synthetic set.
    """
    ctx = distributed.context()
    out_dir = Path(out_dir)
    params = {"n": int(n), "shard_size": int(shard_size), "seed": int(seed), "modality": modality,
              "image_size": int(generator.image_size), "spacing_mm": None if spacing_mm is None else float(spacing_mm),
              "filter_plausible": bool(filter_plausible), "models": models_fingerprint(vae, generator)}
    if style_extrapolation != 1:  # only then, so that the sets made before the setting stay finished sets
        params["style_extrapolation"] = float(style_extrapolation)
    param_path = out_dir / "generation.json"
    if ctx.is_main:
        done = _prepare_set_dir(out_dir, params, overwrite=overwrite)
    distributed.barrier(ctx)
    if not ctx.is_main:
        done = (out_dir / "manifest.json").exists() and json.loads(param_path.read_text()) == params
    if done:
        return out_dir

    n_shards = -(-n // shard_size)
    start = time.perf_counter()
    mine = range(ctx.rank, n_shards, ctx.world_size)
    # the valid training codes that failing draws are warped towards: decoded and checked once
    bank = valid_bank(vae, modality=modality, batch_size=batch_size) if filter_plausible else None
    bar = progress(total=sum(min(shard_size, n - k * shard_size) for k in mine), desc="generate",
                   enabled=progress_bar and ctx.is_main, unit="pair")
    for k in mine:
        path = out_dir / f"shard_{k:05d}.npz"
        size = min(shard_size, n - k * shard_size)
        if path.exists():
            bar.update(size)
            continue
        images, labels, stats = generate_pairs(vae, generator, n=size, seed=_shard_seed(seed, k), modality=modality,
                                               filter_plausible=filter_plausible, batch_size=batch_size, bank=bank,
                                               style_extrapolation=style_extrapolation)
        with atomic_path(path) as tmp:
            np.savez(tmp, images=images.astype(np.float16), labels=labels, drawn=stats["drawn"], valid=stats["valid"],
                     warped=stats["warped"])
        bar.update(size)
    bar.close()
    distributed.barrier(ctx)  # every shard written before rank 0 counts them
    if ctx.is_main:
        counts: dict[str, int | None] = {key: 0 for key in ("drawn", "valid", "warped")}
        for shard in sorted(out_dir.glob("shard_*.npz")):
            with np.load(shard) as f:  # shards of sets made before warping hold "drawn" only
                counts = {key: None if total is None or key not in f else total + int(f[key])
                          for key, total in counts.items()}
        drawn = counts["drawn"]
        manifest = {**params, "n_shards": n_shards, "shapes_drawn": drawn,
                    # valid as drawn, before any filter or warping (None for shards of older sets)
                    "plausible_fraction_of_drawn": round(counts["valid"] / drawn, 4)
                    if filter_plausible and counts["valid"] is not None else None,
                    "shapes_warped": counts["warped"], "draws_per_accepted_shape": round(drawn / n, 4),
                    # where the style codes came from: the generator's fitted style density (None: N(0, I))
                    "style_density": generator.config.get("style_density"),
                    "style_extrapolation": float(style_extrapolation),
                    "seconds_this_call": round(time.perf_counter() - start, 1), "processes": ctx.world_size, **(extra or {})}
        write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1))
    distributed.barrier(ctx)
    return out_dir


def _prepare_set_dir(out_dir: Path, params: dict[str, Any], *, overwrite: bool) -> bool:
    """Check (or start) a set folder for ``params``; True when the set there is already finished."""
    param_path = out_dir / "generation.json"
    if param_path.exists():
        old = json.loads(param_path.read_text())
        if old != params:
            if not overwrite:
                raise FileExistsError(f"{out_dir} holds a set generated with {_differences(old, params)}; pass "
                                      "overwrite=True (`cardigan generate --overwrite`) to replace it, or choose "
                                      "another folder")
            for f in list(out_dir.glob("shard_*.npz")) + [out_dir / "manifest.json"]:
                f.unlink(missing_ok=True)
        elif (out_dir / "manifest.json").exists():
            return True
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and holds no synthetic set; choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(param_path, json.dumps(params, indent=1))
    for stray in out_dir.glob(f"*{TMP_MARK}*"):
        stray.unlink()
    return False


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between a set's parameters and the ones asked for, in words."""
    said = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key == "models" and not old.get(key):
            said.append("unrecorded models (made before sets recorded their models' fingerprints)")
        elif key == "models":
            changed = [{"vae": "the VAE"}.get(m, f"the {m}") for m in new[key] if old[key].get(m) != new[key][m]]
            said.append(f"other models ({' and '.join(changed)} changed since)")
        else:
            said.append(f"{key}={old.get(key)!r} (now {new.get(key)!r})")
    return ", ".join(said)


def read_manifest(set_dir: str | Path) -> dict[str, Any]:
    """The manifest of a finished synthetic set.

    Args:
        set_dir: the set's folder.

    Returns:
        Its ``manifest.json`` (parameters and totals).

    Raises:
        FileNotFoundError: no finished set there (none, or an interrupted one).
    """
    path = Path(set_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{set_dir}: no finished synthetic set; run generate_dataset (notebook 04) first")
    return json.loads(path.read_text())


def iter_shards(out_dir: str | Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The shards of a finished set, in order.

    Args:
        out_dir: the set's folder.

    Yields:
        ``(images, labels)``: float32 (k, S, S) in [0, 1] and uint8 (k, S, S).
    """
    out_dir = Path(out_dir)
    read_manifest(out_dir)
    for path in sorted(out_dir.glob("shard_[0-9][0-9][0-9][0-9][0-9].npz")):
        with np.load(path) as data:
            yield data["images"].astype(np.float32), data["labels"]


def load_synthetic(out_dir: str | Path, *, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` pairs of a finished set in memory (for galleries and measures, not 100,000 pairs).

    Args:
        out_dir: the set's folder.
        n: how many (None: all).

    Returns:
        ``(images, labels)``.
    """
    images, labels, total = [], [], 0
    for im, lab in iter_shards(out_dir):
        images.append(im)
        labels.append(lab)
        total += len(im)
        if n is not None and total >= n:
            break
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]
