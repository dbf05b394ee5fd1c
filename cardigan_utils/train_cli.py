"""``cardigan train {vae,spade,segmenter}`` and ``cardigan generate``: notebook cells as commands, for ``torchrun``.

The same parameters as the notebooks: the profile's values (``config.PROFILES``) under the
defaults of the notebooks' ``parameters`` cells (:data:`NOTEBOOK_DEFAULTS`; a test keeps the two
in step), with ``-p NAME VALUE`` on top. One process, or several on one or many GPUs::

    cardigan train vae --run-dir runs/demo --profile quick
    torchrun --nproc_per_node 4 -m cardigan_utils.runner train spade --run-dir runs/acdc --profile full --dataset acdc

The slice cache must exist (notebook 01, or ``cardigan run --only 01``). Checkpoints go where
the notebooks put them (``<run_dir>/vae.pt``, ``<run_dir>/spade.pt``), so notebooks 02-04 carry
on from a model trained here; the U-Net goes to ``<run_dir>/segmenter/``. ``cardigan generate``
writes notebook 04's synthetic set and its slice cache, its shards shared out over the processes.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import numpy as np

TRAINERS = ("vae", "spade", "segmenter")

NOTEBOOK_DEFAULTS: dict[str, dict[str, Any]] = {
    "vae": {"latent_dim": 32, "beta": 1e-3},        # 02_shape_vae's parameters cell
    "spade": {"fm_weight": 10.0, "compile": False},  # 03_spade_gan's parameters cell
    "segmenter": {"augment": True},                  # the real+aug regime of 05_segmentation
}
"""Defaults of the notebooks' parameters cells that are not in the profiles."""

_PROFILE_KEYS = {
    "vae": ("max_epochs", "batch_size"),
    "spade": ("max_epochs", "batch_size", "ngf", "hidden_channels", "ndf", "z_dim"),
    "segmenter": ("max_epochs", "steps_per_epoch", "batch_size", "channels"),
}
_STAGE = {"vae": "vae", "spade": "spade", "segmenter": "segment"}


def _trainer(kind: str):
    from . import train

    return {"vae": train.train_vae, "spade": train.train_spade, "segmenter": train.train_segmenter}[kind]


def train_parameters(kind: str, *, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments a notebook would pass to the trainer, with ``overrides`` on top.

    Args:
        kind: ``"vae"``, ``"spade"`` or ``"segmenter"``.
        profile: a profile name.
        overrides: more keyword arguments of the trainer (``augment`` is a bool for the U-Net).

    Returns:
        The keyword arguments (without the data, ``run_dir``, ``device`` and ``seed``).

    Raises:
        ValueError: an unknown trainer, or an override the trainer does not take.
    """
    from .config import profile_params

    if kind not in TRAINERS:
        raise ValueError(f"unknown trainer {kind!r}; choose one of {TRAINERS}")
    params = profile_params(profile, stage=_STAGE[kind])
    kw = {**NOTEBOOK_DEFAULTS[kind], **{k: params[k] for k in _PROFILE_KEYS[kind]}}
    if kind == "segmenter":
        kw["channels"] = tuple(kw["channels"])
    accepted = set(inspect.signature(_trainer(kind)).parameters) - {"cache", "sources", "val", "run_dir", "device", "seed"}
    unknown = sorted(set(overrides or {}) - accepted)
    if unknown:
        raise ValueError(f"train {kind} takes no {unknown}; its parameters: {sorted(accepted)}")
    return {**kw, **(overrides or {})}


def run_training(kind: str, *, run_dir: str | Path, profile: str = "quick", dataset: str = "phantom-mri",
                 image_size: int | None = None, seed: int = 0, device: str | None = None,
                 overrides: dict[str, Any] | None = None):
    """Train one model on the slice cache of ``run_dir``, as its notebook would.

    Args:
        kind: ``"vae"``, ``"spade"`` or ``"segmenter"``.
        run_dir: the run directory (holds ``cache/`` from notebook 01).
        profile: the profile whose values are used.
        dataset: the dataset name of the cache.
        image_size: the cache's size (default: the profile's).
        seed: the seed.
        device: ``"cpu"``, ``"cuda"`` ... or None (under ``torchrun`` each process takes its GPU).
        overrides: trainer keyword arguments on top of the profile.

    Returns:
        The trainer's history.

    Raises:
        FileNotFoundError: the slice cache is missing (run notebook 01 first).
    """
    from .config import progress_enabled

    kw = train_parameters(kind, profile=profile, overrides=overrides)
    cache = _cache(run_dir, profile=profile, dataset=dataset, image_size=image_size)
    trainer = _trainer(kind)
    common = {"run_dir": Path(run_dir), "device": device, "seed": seed, "progress_bar": progress_enabled()}
    if kind != "segmenter":
        return trainer(cache, **common, **kw)
    from .augment import augment_batch
    from .train import data_config

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = cache.indices(name)
        return cache.images[idx], cache.labels[idx]

    augment = functools.partial(augment_batch, modality=cache.manifest["modality"]) if kw.pop("augment") else None
    return trainer([split("train")], val=split("val"), augment=augment, data=data_config(cache),
                   **{**common, "run_dir": Path(run_dir) / "segmenter"}, **kw)


def _cache(run_dir, *, profile: str, dataset: str, image_size: int | None):
    """The slice cache notebook 01 wrote into ``run_dir``, or a FileNotFoundError saying how to make it."""
    from .config import profile_params
    from .data import load_run_cache

    return load_run_cache(run_dir, dataset, image_size or profile_params(profile)["image_size"])


def run_generation(*, run_dir: str | Path, profile: str = "quick", dataset: str = "phantom-mri",
                   image_size: int | None = None, seed: int = 0, device: str | None = None,
                   overrides: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Notebook 04's synthetic set (and its slice cache for notebook 05) from ``run_dir``'s models.

    Under ``torchrun`` each process loads the models on its own device and writes its own shards.

    Args:
        run_dir: the run directory (the cache of notebook 01, ``vae.pt``, ``spade.pt``).
        profile: the profile whose ``generate`` values are used.
        dataset: the dataset name of the cache.
        image_size: the cache's size (default: the profile's).
        seed: the set's seed.
        device: the device (under ``torchrun`` on CUDA, each process takes its own GPU).
        overrides: ``n_synthetic``, ``shard_size``, ``filter_plausible``.
        overwrite: replace a set made with other parameters (else FileExistsError).

    Returns:
        The set's folder.
    """
    from . import distributed, generate
    from .config import profile_params, progress_enabled
    from .data import cache_dir
    from .train import load_spade, load_vae

    unknown = sorted(set(overrides or {}) - {"n_synthetic", "shard_size", "filter_plausible"})
    if unknown:
        raise ValueError(f"generate takes no {unknown}; its parameters: n_synthetic, shard_size, filter_plausible")
    params = profile_params(profile, stage="generate", image_size=image_size, **(overrides or {}))
    cache = _cache(run_dir, profile=profile, dataset=dataset, image_size=params["image_size"])
    ctx = distributed.context()
    where = distributed.device_for(ctx, device)
    vae = load_vae(Path(run_dir) / "vae.pt", device=where)
    generator, _, _ = load_spade(Path(run_dir) / "spade.pt", device=where)
    set_dir = Path(run_dir) / "synthetic" / f"{dataset}_{params['image_size']}"
    generate.generate_dataset(vae, generator, out_dir=set_dir, n=params["n_synthetic"], shard_size=params["shard_size"],
                              seed=seed, modality=cache.manifest["modality"],
                              spacing_mm=float(cache.slices["spacing_mm"].median()),
                              filter_plausible=params["filter_plausible"], progress_bar=progress_enabled(), overwrite=overwrite,
                              extra={"vae": str(Path(run_dir) / "vae.pt"), "spade": str(Path(run_dir) / "spade.pt"),
                                     "source_dataset": dataset})
    if ctx.is_main:
        generate.to_cache(set_dir, cache_dir(run_dir, f"synthetic-{dataset}", params["image_size"]),
                          dataset=f"synthetic-{dataset}", overwrite=True)
    distributed.barrier(ctx)
    return set_dir


def run_arguments(p) -> None:
    """The arguments ``train``, ``generate`` and ``study`` share: where the run is and how it was made.

    Args:
        p: a sub-command's parser.
    """
    from .config import DATASETS, PROFILES

    p.add_argument("--run-dir", required=True, help="run directory holding notebook 01's slice cache")
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--dataset", choices=DATASETS, default="phantom-mri")
    p.add_argument("--image-size", type=int, default=None, help="slice side of the cache (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (under torchrun on CUDA: each process's own GPU)")


def _with_params(p, *, what: str):
    run_arguments(p)
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help=f"{what} (JSON value)")


def add_parser(sub) -> None:
    """Add ``train`` and ``generate`` to the ``cardigan`` sub-commands.

    Args:
        sub: the parser's sub-parsers object.
    """
    p = sub.add_parser("train", help="train the VAE, the GAN or the U-Net as the notebooks do (also under torchrun)")
    p.add_argument("model", choices=TRAINERS)
    _with_params(p, what="trainer keyword argument, e.g. -p max_epochs 5")
    g = sub.add_parser("generate", help="notebook 04's synthetic set from the run's VAE and GAN (also under torchrun)")
    _with_params(g, what="n_synthetic, shard_size or filter_plausible, e.g. -p n_synthetic 20000")
    g.add_argument("--overwrite", action="store_true", help="replace a set made with other parameters")


def main(args) -> int:
    """Run ``cardigan train`` from parsed arguments.

    Args:
        args: the parsed ``train`` arguments.

    Returns:
        The exit status.
    """
    import sys

    from .distributed import close, context
    from .runner import _value as value

    common = dict(run_dir=args.run_dir, profile=args.profile, dataset=args.dataset, image_size=args.image_size,
                  seed=args.seed, device=args.device, overrides={k: value(v) for k, v in args.param})
    ctx = context()
    try:
        if args.command == "generate":
            set_dir = run_generation(**common, overwrite=args.overwrite)
        else:
            history = run_training(args.model, **common)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"cardigan: {err}", file=sys.stderr)
        close(ctx)
        return 1
    if ctx.is_main and args.command == "generate":
        from .generate import read_manifest

        manifest = read_manifest(set_dir)
        print(f"cardigan: {manifest['n']} pairs in {manifest['n_shards']} shard(s) by {ctx.world_size} process(es) "
              f"in {Path(set_dir).resolve()}")
    elif ctx.is_main:
        where = Path(args.run_dir) / ("segmenter" if args.model == "segmenter" else "")
        print(f"cardigan: {args.model} trained to epoch {int(history.epoch.max()) if len(history) else 0} "
              f"on {ctx.world_size} process(es); checkpoints in {where.resolve()}")
    close(ctx)
    return 0
