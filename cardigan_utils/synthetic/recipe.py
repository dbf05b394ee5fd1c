"""Stage 4's recipe: the synthetic set of a run directory and its slice cache, as notebook 04 and
``cardigan generate`` both make it (one recipe, two callers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import distributed
from ..config import profile_params
from ..data.cache import cache_spacing, load_run_cache
from ..images import load_generator
from ..runs import cache_dir, model_path, synthetic_cache_name, synthetic_dir
from ..shapes import load_vae
from .export import to_cache
from .generate import generate_dataset

GENERATE_PARAMETERS = ("n_synthetic", "shard_size", "filter_plausible", "render_batch_size", "style_extrapolation")
"""What a caller may set of the ``generate`` stage (``-p NAME VALUE`` of ``cardigan generate``)."""


def generation_parameters(profile: str, *, image_size: int | None = None,
                          overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``generate`` stage's parameters of a profile, with ``overrides`` on top.

    Args:
        profile: a profile name.
        image_size: the cache's size (default: the profile's).
        overrides: some of :data:`GENERATE_PARAMETERS` (``None`` values: the profile's).

    Returns:
        The flat parameters (``image_size``, ``n_synthetic``, ``shard_size``, ...).

    Raises:
        ValueError: an override the stage does not take.
    """
    unknown = sorted(set(overrides or {}) - set(GENERATE_PARAMETERS))
    if unknown:
        raise ValueError(f"generate takes no {unknown}; its parameters: {', '.join(GENERATE_PARAMETERS)}")
    return profile_params(profile, stage="generate", image_size=image_size, **(overrides or {}))


def make_synthetic_set(run_dir: str | Path, *, dataset: str, params: dict[str, Any], seed: int = 0,
                       device: str | None = None, overwrite: bool = False, progress_bar: bool = True) -> Path:
    """The run's synthetic set, from its VAE and generator, and the slice cache notebook 05 reads.

    The set goes to ``runs.synthetic_dir`` and its cache to ``runs.cache_dir(run_dir,
    "synthetic-<dataset>", size)``. An interrupted set is completed, a finished one reused. Under
    ``torchrun`` each process loads the models on its own device and writes its own shards.

    Args:
        run_dir: the run directory (notebook 01's cache, ``vae.pt`` and ``spade.pt``).
        dataset: the dataset notebook 01 cached.
        params: :func:`generation_parameters` (``image_size``, ``n_synthetic``, ``shard_size``,
            ``filter_plausible``, ``render_batch_size``, ``style_extrapolation``).
        seed: the set's seed.
        device: ``"cpu"``, ``"cuda"`` ... or None (under ``torchrun`` on CUDA, each process's GPU).
        overwrite: replace a set made with other parameters or from other models (else FileExistsError).
        progress_bar: a bar over the pairs.

    Returns:
        The set's folder.

    Raises:
        FileNotFoundError: the cache or a model is missing (the message says which notebook to run).
    """
    size = int(params["image_size"])
    cache = load_run_cache(run_dir, dataset, size)
    ctx = distributed.context()
    where = distributed.device_for(ctx, device)
    vae_path, generator_path = model_path(run_dir, "vae"), model_path(run_dir, "spade")
    vae = load_vae(vae_path, device=where)
    generator = load_generator(generator_path, device=where)
    set_dir = synthetic_dir(run_dir, dataset, size)
    generate_dataset(vae, generator, out_dir=set_dir, n=params["n_synthetic"], shard_size=params["shard_size"],
                     seed=seed, modality=cache.manifest["modality"], spacing_mm=cache_spacing(cache),
                     filter_plausible=params["filter_plausible"], batch_size=params["render_batch_size"],
                     progress_bar=progress_bar, overwrite=overwrite, style_extrapolation=params["style_extrapolation"],
                     extra={"vae": str(vae_path), "spade": str(generator_path), "source_dataset": dataset})
    if ctx.is_main:
        name = synthetic_cache_name(dataset)
        to_cache(set_dir, cache_dir(run_dir, name, size), dataset=name, overwrite=True)
    distributed.barrier(ctx)
    return set_dir
