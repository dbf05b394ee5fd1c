"""Labelled synthetic datasets: VAE shapes -> (plausibility filter) -> SPADE images, streamed to disk.

A synthetic set is a folder of shards, ``shard_00000.npz`` ... (``images`` float16 in [0, 1],
``labels`` uint8), each written atomically and drawn from its own seed, so that

- the set is the same for the same seed and batch size wherever it was interrupted,
- an interrupted run, started again, generates only the missing shards (no duplicates), and
- 100,000 pairs never sit in memory at once (one shard does).

``generation.json`` (the parameters) is written first, ``manifest.json`` (the totals) last: a
folder without a manifest is an unfinished set, and :func:`generate_dataset` completes it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .checkpoint import write_text_atomic
from .config import progress


def _shard_seed(seed: int, shard: int) -> int:
    return seed * 1_000_003 + shard


def generate_pairs(
    vae,
    generator,
    *,
    n: int,
    seed: int,
    modality: str = "mri",
    filter_plausible: bool = True,
    batch_size: int = 128,
    max_draws: int | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``n`` labelled pairs: VAE shapes (kept if plausible), rendered by the SPADE generator.

    Args:
        vae: a trained :class:`~cardigan_utils.networks.vae.ShapeVAE`.
        generator: a trained :class:`~cardigan_utils.networks.spade.SPADEGenerator` of the same size.
        n: pairs to return.
        seed: seed of the shape codes and style codes.
        modality: for the plausibility checks.
        filter_plausible: keep only shapes that pass every anatomical check; else keep all.
        batch_size: shapes per draw / images per forward pass.
        max_draws: give up (RuntimeError) after drawing this many shapes (default ``50 * n``).

    Returns:
        ``(images, labels, stats)``: (n, S, S) float32 images in [0, 1], (n, S, S) uint8 label maps,
        and ``{"drawn": shapes drawn, "kept": n}``.
    """
    from .metrics import plausibility_report
    from .train import render

    vae_size = vae.config["image_size"]
    if vae_size != generator.image_size:
        raise ValueError(f"the VAE makes {vae_size}x{vae_size} shapes, the generator "
                         f"{generator.image_size}x{generator.image_size} images: train both on the same cache")
    vae_device = next(vae.parameters()).device
    g_device = next(generator.parameters()).device
    shapes_gen = torch.Generator(device=vae_device).manual_seed(seed)
    max_draws = max_draws or 50 * n
    kept, drawn, total = [], 0, 0
    while total < n:
        if drawn >= max_draws:
            raise RuntimeError(f"only {total} of {n} plausible shapes in {drawn} draws; is the VAE trained? "
                               "(filter_plausible=False keeps every shape)")
        batch = vae.sample(batch_size, generator=shapes_gen).cpu().numpy()
        drawn += len(batch)
        if filter_plausible:
            batch = batch[plausibility_report(batch, modality=modality)["valid"].to_numpy()]
        kept.append(batch[: n - total])
        total += len(kept[-1])
    labels = np.concatenate(kept)
    z = None
    if generator.z_dim:
        z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed + 1))
    images = render(generator, torch.from_numpy(labels).to(g_device), z=z, batch_size=batch_size)
    return images, labels, {"drawn": drawn, "kept": n}


def generate_dataset(
    vae,
    generator,
    *,
    out_dir: str | Path,
    n: int,
    shard_size: int = 1000,
    seed: int = 0,
    modality: str = "mri",
    spacing_mm: float = 1.0,
    filter_plausible: bool = True,
    batch_size: int = 128,
    overwrite: bool = False,
    progress_bar: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Generate ``n`` labelled pairs into ``out_dir`` as shards; complete an unfinished set.

    Under ``torchrun --nproc_per_node N`` the shards are shared out: rank ``r`` writes shards
    ``r, r + N, ...`` (each from its own seed, so the set is the same whatever N is) and rank 0
    writes the parameters and the manifest. Load the models on ``distributed.device_for(...)``.

    Args:
        vae: a trained shape VAE.
        generator: a trained SPADE generator (same image size).
        out_dir: the set's folder.
        n: number of pairs.
        shard_size: pairs per shard file.
        seed: the set's seed (shard ``k`` uses its own seed derived from it).
        modality: ``"mri"`` or ``"echo"``.
        spacing_mm: in-plane pixel spacing of the images (that of the cache the models learnt from).
        filter_plausible: keep only anatomically valid shapes.
        batch_size: shapes per draw / images per forward pass.
        overwrite: replace a set generated with other parameters.
        progress_bar: a bar over the pairs.
        extra: JSON-ready notes stored in the manifest (e.g. the checkpoints used).

    Returns:
        ``out_dir``.
    """
    from . import distributed

    ctx = distributed.context()
    out_dir = Path(out_dir)
    params = {"n": int(n), "shard_size": int(shard_size), "seed": int(seed), "modality": modality,
              "image_size": int(generator.image_size), "spacing_mm": float(spacing_mm),
              "filter_plausible": bool(filter_plausible)}
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
    bar = progress(total=sum(min(shard_size, n - k * shard_size) for k in mine), desc="generate",
                   enabled=progress_bar and ctx.is_main, unit="pair")
    for k in mine:
        path = out_dir / f"shard_{k:05d}.npz"
        size = min(shard_size, n - k * shard_size)
        if path.exists():
            bar.update(size)
            continue
        images, labels, stats = generate_pairs(vae, generator, n=size, seed=_shard_seed(seed, k), modality=modality,
                                               filter_plausible=filter_plausible, batch_size=batch_size)
        tmp = out_dir / f"shard_{k:05d}.tmp.npz"
        np.savez(tmp, images=images.astype(np.float16), labels=labels, drawn=stats["drawn"])
        os.replace(tmp, path)
        bar.update(size)
    bar.close()
    distributed.barrier(ctx)  # every shard written before rank 0 counts them
    if ctx.is_main:
        drawn = sum(int(np.load(p)["drawn"]) for p in sorted(out_dir.glob("shard_*.npz")))
        manifest = {**params, "n_shards": n_shards, "shapes_drawn": drawn,
                    "plausible_fraction_of_drawn": round(n / drawn, 4) if filter_plausible else None,
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
                raise FileExistsError(f"{out_dir} holds a set generated with {old}; choose another folder or pass overwrite=True")
            for f in list(out_dir.glob("shard_*.npz")) + [out_dir / "manifest.json"]:
                f.unlink(missing_ok=True)
        elif (out_dir / "manifest.json").exists():
            return True
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and holds no synthetic set; choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(param_path, json.dumps(params, indent=1))
    for stray in out_dir.glob("*.tmp*"):
        stray.unlink()
    return False


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


def to_cache(set_dir: str | Path, cache_out: str | Path, *, dataset: str = "synthetic", overwrite: bool = False):
    """Write a finished synthetic set as a slice cache, so that it is read like real data.

    Every pair is a training slice of its own pseudo-patient (``synth000000`` ...), split
    ``"train"``; phase and slice position are unknown (empty). The arrays are filled shard by
    shard through memory maps, under a temporary name renamed at the end.

    Args:
        set_dir: the synthetic set.
        cache_out: the cache folder to create.
        dataset: the name stored in the cache manifest.
        overwrite: replace an existing cache there.

    Returns:
        The loaded :class:`~cardigan_utils.data.cache.SliceCache`.
    """
    import shutil
    import tempfile

    import pandas as pd

    from .data.cache import load_cache
    from .data.case import LABELS

    set_dir, cache_out = Path(set_dir), Path(cache_out)
    info = read_manifest(set_dir)
    if cache_out.exists():
        if not overwrite:
            raise FileExistsError(f"{cache_out} exists; choose another folder or pass overwrite=True")
    n, size, modality = info["n"], info["image_size"], info["modality"]
    cache_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_out.parent, prefix=cache_out.name + ".partial-"))
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.float32, shape=(n, size, size))
    labels = np.lib.format.open_memmap(tmp / "labels.npy", mode="w+", dtype=np.uint8, shape=(n, size, size))
    names = LABELS[modality]
    rows, i = [], 0
    for im, lab in iter_shards(set_dir):
        images[i : i + len(im)], labels[i : i + len(im)] = im, lab
        pixels = np.stack([(lab == c).reshape(len(lab), -1).sum(1) for c in (1, 2, 3)], axis=1)
        for j in range(len(im)):
            rows.append({"patient_id": f"synth{i + j:06d}", "phase": "", "view": "", "slice_index": 0, "slice_pos": "",
                         "split": "train", "group": "synthetic", "vendor": "", "spacing_mm": info["spacing_mm"],
                         **{f"area_{names[c]}": float(pixels[j, c - 1]) * info["spacing_mm"] ** 2 for c in (1, 2, 3)}})
        i += len(im)
    images.flush(), labels.flush()
    del images, labels
    table = pd.DataFrame(rows)
    table.to_csv(tmp / "slices.csv", index=False)
    table[["patient_id", "phase", "view", "split", "group", "vendor"]].to_csv(tmp / "cases.csv", index=False)
    manifest = {"dataset": dataset, "modality": modality, "image_size": size, "synthetic": True,
                "source": str(set_dir), "generation": info, "labels": {str(k): v for k, v in names.items()},
                "n_slices": n, "n_cases": n, "patients": {"train": n, "val": 0, "test": 0},
                "slices": {"train": n, "val": 0, "test": 0}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if cache_out.exists():
        shutil.rmtree(cache_out)
    tmp.rename(cache_out)
    return load_cache(cache_out)


def to_nnunet(set_dir: str | Path, root: str | Path, *, dataset_id: int, name: str, overwrite: bool = False,
              progress_bar: bool = True) -> Path:
    """Write a finished synthetic set as an nnU-Net v2 raw dataset (``DatasetNNN_Name``), resumably.

    Args:
        set_dir: the synthetic set.
        root: the ``nnUNet_raw`` folder.
        dataset_id: nnU-Net dataset id (1-999).
        name: dataset name.
        overwrite: rewrite a finished dataset of that id and name.
        progress_bar: a bar over the shards.

    Returns:
        The dataset folder.
    """
    from .data.case import LABELS
    from .data.export import finish_nnunet_dataset, nnunet_dataset_dir, start_nnunet_dataset, write_nnunet_cases

    info = read_manifest(set_dir)
    out = start_nnunet_dataset(nnunet_dataset_dir(root, dataset_id=dataset_id, name=name), overwrite=overwrite)
    start = 0
    for im, lab in progress(iter_shards(set_dir), total=info["n_shards"], desc="nnU-Net", enabled=progress_bar):
        # cases already on disk (an interrupted export) are kept, not written again
        write_nnunet_cases(out, im, lab, start_index=start, spacing=(info["spacing_mm"], info["spacing_mm"]))
        start += len(im)
    modality = info["modality"]
    finish_nnunet_dataset(out, label_names={v: k for k, v in LABELS[modality].items()},
                          channel_name="MRI" if modality == "mri" else "US",
                          extra={"description": f"CardiGAN synthetic set, {info['n']} pairs, seed {info['seed']}"})
    return out


def to_acdc_layout(set_dir: str | Path, out_dir: str | Path, *, slices_per_patient: int = 10,
                   slice_thickness_mm: float = 10.0, overwrite: bool = False) -> Path:
    """Write a finished synthetic set in an ACDC-like NIfTI layout (``training/patientXXXX/``).

    Each pseudo-patient stacks ``slices_per_patient`` pairs as one ED volume with its ``_gt`` and an
    ``Info.cfg`` (group ``SYN``; there is no ES frame). The slices of a pseudo-patient are
    independent shapes, not one heart from base to apex: the layout is for tools that read ACDC
    folders, not for volumes. Patients are ``patient001`` ...; past 999 the numbers grow a digit,
    which the official pattern (and the kit's ACDC reader) does not know.

    Args:
        set_dir: the synthetic set (MRI).
        out_dir: the dataset root to create.
        slices_per_patient: pairs per pseudo-patient.
        slice_thickness_mm: z spacing written to the headers.
        overwrite: write into a folder that already holds files.

    Returns:
        ``out_dir``.
    """
    from .data.acdc import write_acdc_patient
    from .data.case import Case

    out_dir = Path(out_dir)
    info = read_manifest(set_dir)
    if info["modality"] != "mri":
        raise ValueError("the ACDC layout holds MRI; write echo sets as nnU-Net datasets or a cache")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose another folder or pass overwrite=True")
    import shutil
    import tempfile

    # written under a temporary name and renamed at the end: a folder either holds the whole set or
    # is absent (an interrupted export leaves only a ``.partial-`` folder, removed by the next run)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(out_dir.name + ".partial-*"):
        shutil.rmtree(stale)
    final_dir, out_dir = out_dir, Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".partial-"))
    spacing = (info["spacing_mm"], info["spacing_mm"], float(slice_thickness_mm))
    buf_im, buf_lab, patient = [], [], 0

    def flush(images, labels, patient):
        case = Case(image=np.stack(images, axis=-1), label=np.stack(labels, axis=-1), spacing=spacing,
                    patient_id=f"patient{patient + 1:03d}", phase="ED", modality="mri", dataset="synthetic",
                    meta={"group": "SYN"})
        write_acdc_patient([case], out_dir / "training")

    for im, lab in iter_shards(set_dir):
        for a, b in zip(im, lab):
            buf_im.append(a.T)  # (x, y) as the readers give NIfTI arrays; the cache stores (row, col)
            buf_lab.append(b.T)
            if len(buf_im) == slices_per_patient:
                flush(buf_im, buf_lab, patient)
                buf_im, buf_lab, patient = [], [], patient + 1
    if buf_im:
        flush(buf_im, buf_lab, patient)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    out_dir.rename(final_dir)
    return final_dir
