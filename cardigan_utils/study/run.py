"""The segmentation study: regimes x real-data fractions x seeds, each run trained, scored per domain.

Regimes (Skandarani et al., MIDL 2020):

- ``real``: the real training patients only;
- ``real+aug``: the same with classical augmentation;
- ``synthetic``: the GAN's labelled images only;
- ``real+synthetic``: both, ``mix_ratio`` synthetic slices per real slice;
- ``real+aug+synthetic``: both, with classical augmentation;
- ``real+strong-aug``: the real patients with domain-randomising augmentation
  (:func:`~cardigan_utils.augment.strong_augment_batch`: tissue contrast, intensity curves,
  resolution, noise of scanners never seen);
- ``real+strong-aug+synthetic``: both, with that augmentation.

Every finished run appends its rows to the results table (:mod:`.results`); a study started
again skips the runs already in it, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import segmentation
from ..augment import augment_batch, strong_augment_batch
from ..config import STAGE_DEFAULTS, profile_params
from ..data import choose_patients, dataset_specs, get_dataset, load_cases, prepare_cache
from ..data.cache import check_fully_labelled, load_cache, load_run_cache
from ..data.phantom import ECHO_VENDORS, MRI_VENDORS
from ..metrics import cache_unlabelled, segmentation_scores
from ..runs import cache_dir, study_dir, synthetic_cache_name, write_text_atomic
from .results import (
    RUN_KEYS,
    append_results,
    check_regimes,
    done_runs,
    read_results,
    regime_parts,
    results_path,
)
from .shards import shard_runs

_DEFAULTS = STAGE_DEFAULTS["segment"]

AUGMENT_FUNCTIONS = {"classical": augment_batch, "strong": strong_augment_batch}
"""The batch augmentation of each kind a regime names (:func:`~.results.regime_parts`)."""


def regime_augment(regime: str, *, modality: str,
                   strong_augment_strength: float = _DEFAULTS["strong_augment_strength"]):
    """The ``augment`` hook of :func:`~cardigan_utils.segmentation.train_segmenter` for a regime.

    Args:
        regime: one of :data:`REGIMES`.
        modality: ``"mri"`` or ``"echo"``.
        strong_augment_strength: ``strength`` of the strong augmentation (``+strong-aug`` regimes).

    Returns:
        ``functools.partial(augment_batch, modality=modality)``,
        ``functools.partial(strong_augment_batch, modality=modality, strength=strong_augment_strength)``,
        or None for a regime without augmentation.
    """
    kind = regime_parts(regime).augmentation
    if kind is None:
        return None
    settings = {"strength": strong_augment_strength} if kind == "strong" else {}
    return functools.partial(AUGMENT_FUNCTIONS[kind], modality=modality, **settings)


def training_patients(cache, *, fraction: float, seed: int) -> list[str]:
    """A stratified, seeded ``fraction`` of the cache's training patients (at least one).

    Args:
        cache: the real :class:`~cardigan_utils.data.cache.SliceCache`.
        fraction: share of training patients, in (0, 1].
        seed: which subset.

    Returns:
        Sorted patient ids.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    train = cache.slices[cache.slices.split == "train"]
    groups = train.groupby("patient_id")["group"].first().to_dict()
    n = max(1, int(round(fraction * len(groups))))
    return choose_patients(groups, n, seed=seed)


def run_sources(regime: str, real_cache, synthetic_cache, *, fraction: float, seed: int,
                mix_ratio: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The training sources of one run: the real slices of the chosen patients and/or synthetic slices.

    Args:
        regime: one of :data:`REGIMES`.
        real_cache: the real slice cache.
        synthetic_cache: the synthetic slice cache (notebook 04), or None for real-only regimes.
        fraction: share of the real training patients.
        seed: seed of the patient subset and of the synthetic subset.
        mix_ratio: synthetic slices per real slice in the mixed regimes (all synthetic slices if
            the set is smaller); the ``synthetic`` regime uses as many as the real slices times
            ``mix_ratio`` too, so that regimes compare at equal size.

    Returns:
        A list of ``(images, labels)`` arrays for :func:`~cardigan_utils.segmentation.train_segmenter`.
    """
    parts = regime_parts(regime)
    patients = training_patients(real_cache, fraction=fraction, seed=seed)
    real_idx = np.flatnonzero(real_cache.slices.patient_id.isin(patients).to_numpy()
                              & (real_cache.slices.split == "train").to_numpy())
    sources = []
    if parts.real:
        sources.append((np.asarray(real_cache.images[real_idx]), np.asarray(real_cache.labels[real_idx])))
    if parts.synthetic:
        if synthetic_cache is None:
            raise ValueError(f"regime {regime!r} needs the synthetic cache (run notebooks/04_generate.ipynb)")
        n = min(len(synthetic_cache), max(1, int(round(mix_ratio * len(real_idx)))))
        pick = np.sort(np.random.default_rng(seed).choice(len(synthetic_cache), size=n, replace=False))
        sources.append((np.asarray(synthetic_cache.images[pick]), np.asarray(synthetic_cache.labels[pick])))
    return sources


def run_path(run_dir: str | Path, regime: str, fraction: float, seed: int) -> Path:
    """The folder of one run's U-Net (``segmenter.pt`` ...) inside ``run_dir/study``.

    Args:
        run_dir: the run directory.
        regime: one of :data:`REGIMES`.
        fraction: the real-data fraction.
        seed: the seed.

    Returns:
        ``run_dir/study/<regime>_<fraction>_<seed>``.
    """
    return study_dir(run_dir) / f"{regime}_{float(fraction):g}_{int(seed)}"


def study_domains(real_cache, *, run_dir: str | Path, n_patients: int, seed: int = 0,
                  ood_datasets: Mapping[str, str | Path] | None = None,
                  progress: bool = True) -> dict[str, tuple[Any, np.ndarray]]:
    """The domains every run is scored on: in-domain test patients and out-of-domain data.

    - ``in-domain``: the real cache's test patients.
    - A phantom trained on some of its scanners: ``vendor <X>``, ``n_patients`` new patients
      (anatomy never seen, indices after the training ones) of each scanner left out of training.
    - A real dataset (ACDC, CAMUS): the phantom of its modality (``phantom-mri``, ``phantom-echo``),
      ``n_patients`` phantom patients of every scanner.
    - ``ood_datasets``: every patient of other registered datasets of the same modality, e.g.
      ``{"mnms": "/data/MnM", "sunnybrook": "/data/SCD"}``, one domain per vendor where the
      dataset says it (``mnms vendor A``, ...), else one named after the dataset. A dataset that
      labels only some structures (Sunnybrook: no RV) is scored on those only.

    Args:
        real_cache: the training cache (notebook 01).
        run_dir: the run directory (the extra caches go to ``run_dir/cache``, ``ood-<name>_<size>``).
        n_patients: patients per out-of-domain phantom scanner.
        seed: phantom seed (the training one, so new patients are drawn after its indices).
        ood_datasets: ``{registered dataset name: its folder}`` (None: none). A folder of None
            uses the dataset's environment variable.
        progress: progress bars.

    Returns:
        ``{name: (cache, row indices)}`` for :func:`run_study`.

    Raises:
        ValueError: an unknown dataset name (the registered ones listed), a generated one, or one
            of another modality than the training data.
    """
    manifest = real_cache.manifest
    size, dataset, modality = int(manifest["image_size"]), manifest["dataset"], manifest["modality"]
    domains = {"in-domain": (real_cache, real_cache.indices("test"))}
    if not get_dataset(dataset).needs_folder:  # a phantom: its scanners left out of training
        seen = set(real_cache.slices.vendor)
        first = 1 + max(int(str(p).removeprefix("phantom")) for p in real_cache.slices.patient_id.unique())
        for vendor in sorted(set(MRI_VENDORS if modality == "mri" else ECHO_VENDORS) - seen):
            cases = load_cases(dataset, n_patients=n_patients, seed=seed, vendors=(vendor,), first_index=first)
            cache = prepare_cache(dataset, run_dir=run_dir, image_size=size, cases=cases, seed=seed,
                                  name=f"{dataset}-vendor{vendor}", progress=progress)
            domains[f"vendor {vendor}"] = (cache, np.arange(len(cache)))
    else:  # a real dataset: the phantom of its modality, every simulated scanner
        phantom = f"phantom-{modality}"
        cache = prepare_cache(phantom, run_dir=run_dir, image_size=size, n_patients=n_patients, seed=seed,
                              progress=progress)
        domains[phantom] = (cache, np.arange(len(cache)))
    for name, folder in (ood_datasets or {}).items():
        spec = get_dataset(name)
        if not spec.needs_folder or spec.modality != modality:
            raise ValueError(f"ood_datasets: {name} is {'generated' if not spec.needs_folder else spec.modality}; "
                             f"give real {modality} datasets, e.g. "
                             f"{[s.name for s in dataset_specs() if s.needs_folder and s.modality == modality]}")
        cache = prepare_cache(name, run_dir=run_dir, image_size=size, data_dir=folder, seed=seed, name=f"ood-{name}",
                              progress=progress)
        domains.update(vendor_domains(cache, name))
    return domains


def vendor_domains(cache, name: str) -> dict[str, tuple[Any, np.ndarray]]:
    """A dataset's cache as study domains: one per vendor it names, the rest under its own name.

    Args:
        cache: the dataset's slice cache.
        name: the dataset's name.

    Returns:
        ``{"<name> vendor <V>": (cache, rows), ...}``, plus ``{name: (cache, rows)}`` for slices
        without a vendor (all of them when the dataset names none).
    """
    vendor = cache.slices["vendor"].astype(str).to_numpy() if "vendor" in cache.slices else np.full(len(cache), "")
    domains = {f"{name} vendor {v}": (cache, np.flatnonzero(vendor == v)) for v in sorted(set(vendor) - {""})}
    if (vendor == "").any():
        domains[name] = (cache, np.flatnonzero(vendor == ""))
    return domains


def study_inputs(
    run_dir: str | Path,
    *,
    profile: str,
    dataset: str,
    seed: int = 0,
    image_size: int | None = None,
    regimes: Sequence[str] | None = None,
    fractions: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    mix_ratio: float | None = None,
    max_epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    n_ood_patients: int | None = None,
    strong_augment_strength: float | None = None,
    ood_datasets: Mapping[str, str | Path] | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """What :func:`run_study` needs, from a run directory that notebooks 01 (and 04) filled, and a profile.

    The slice cache of notebook 01, the synthetic cache of notebook 04 if it ran, the domains of
    :func:`study_domains`, and the profile's ``"segment"`` values with the overrides on top
    (``None``: the profile's). Notebook 05 and ``cardigan study`` both start here.

    Args:
        run_dir: the run directory.
        profile: one of ``config.PROFILES``.
        dataset: the dataset notebook 01 cached.
        seed: the seed of the out-of-domain phantom patients.
        image_size: slice side (default: the profile's).
        regimes: which regimes (default: the profile's, ``segment.regimes``; without a synthetic set,
            those of them without synthetic images).
        fractions: shares of the real training patients.
        seeds: seeds of the runs.
        mix_ratio: synthetic slices per real slice.
        max_epochs: U-Net epochs per run.
        steps_per_epoch: batches per epoch.
        batch_size: batch size.
        n_ood_patients: patients per unseen phantom scanner.
        strong_augment_strength: ``strength`` of the ``+strong-aug`` regimes' augmentation.
        ood_datasets: other registered datasets to score on, ``{name: folder}`` (see :func:`study_domains`).
        progress: progress bars while out-of-domain caches are built.
        log: told when the synthetic set is missing.

    Returns:
        The keyword arguments of :func:`run_study` (``real_cache``, ``synthetic_cache``, ``run_dir``,
        ``domains``, ``regimes``, ``fractions``, ``seeds``, ``mix_ratio``, ``max_epochs``,
        ``steps_per_epoch``, ``batch_size``, ``channels``, ``strong_augment_strength``):
        ``run_study(**inputs, device=...)``.

    Raises:
        FileNotFoundError: no slice cache of ``dataset`` at that size (run notebook 01).
        ValueError: an unknown regime, or a synthetic regime without notebook 04's set.
    """
    params = profile_params(profile, stage="segment", image_size=image_size, fractions=fractions, seeds=seeds,
                            mix_ratio=mix_ratio, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                            batch_size=batch_size, n_ood_patients=n_ood_patients,
                            strong_augment_strength=strong_augment_strength)
    check_regimes(params["regimes"] if regimes is None else regimes)
    size = int(params["image_size"])
    real = load_run_cache(run_dir, dataset, size)
    synthetic_path = cache_dir(run_dir, synthetic_cache_name(dataset), size)
    synthetic = load_cache(synthetic_path) if synthetic_path.exists() else None
    if regimes is None:
        regimes = list(params["regimes"])
        if synthetic is None:
            regimes = [r for r in regimes if not regime_parts(r).synthetic]
            log(f"no synthetic set (run notebooks/04_generate.ipynb): only {regimes}")
    needs_synthetic = [r for r in regimes if regime_parts(r).synthetic]
    if synthetic is None and needs_synthetic:
        raise ValueError(f"the regimes {needs_synthetic} need the synthetic set that "
                         f"notebooks/04_generate.ipynb writes to {synthetic_path}; run it first")
    domains = study_domains(real, run_dir=run_dir, n_patients=params["n_ood_patients"], seed=seed,
                            ood_datasets=ood_datasets, progress=progress)
    return {"real_cache": real, "synthetic_cache": synthetic, "run_dir": run_dir, "domains": domains,
            "regimes": list(regimes), "fractions": list(params["fractions"]), "seeds": list(params["seeds"]),
            "mix_ratio": params["mix_ratio"], "max_epochs": params["max_epochs"],
            "steps_per_epoch": params["steps_per_epoch"], "batch_size": params["batch_size"],
            "channels": tuple(params["channels"]), "strong_augment_strength": params["strong_augment_strength"]}


def run_study(
    real_cache,
    synthetic_cache,
    *,
    run_dir: str | Path,
    domains: dict[str, tuple[Any, np.ndarray]],
    regimes: Sequence[str] = _DEFAULTS["regimes"],
    fractions: Sequence[float] = _DEFAULTS["fractions"],
    seeds: Sequence[int] = _DEFAULTS["seeds"],
    mix_ratio: float = _DEFAULTS["mix_ratio"],
    max_epochs: int = _DEFAULTS["max_epochs"],
    batch_size: int = _DEFAULTS["batch_size"],
    steps_per_epoch: int | None = _DEFAULTS["steps_per_epoch"],
    channels: tuple[int, ...] = _DEFAULTS["channels"],
    strong_augment_strength: float = _DEFAULTS["strong_augment_strength"],
    device=None,
    shard: tuple[int, int] | None = None,
    progress_bar: bool = True,
    log=print,
) -> pd.DataFrame:
    """Train and score every (regime, fraction, seed) not yet in ``<run_dir>/study/results.csv``.

    Validation uses the real cache's validation patients in every regime. Each run's U-Net is
    kept in ``<run_dir>/study/<regime>_<fraction>_<seed>/`` (resumable on its own).

    Args:
        real_cache: the real slice cache (train, val and in-domain test splits).
        synthetic_cache: the synthetic cache of notebook 04 (None if only real regimes run).
        run_dir: the run directory.
        domains: ``{name: (cache, row indices)}`` to score every run on, e.g.
            ``{"in-domain": (real_cache, real_cache.indices("test"))}``.
        regimes: which regimes (some of :data:`REGIMES`).
        fractions: shares of the real training patients.
        seeds: seeds (patient subset, synthetic subset, weights).
        mix_ratio: synthetic slices per real slice.
        max_epochs: U-Net epochs per run.
        batch_size: batch size.
        steps_per_epoch: batches per epoch (default: one pass; set it to train every regime
            for the same number of steps whatever its data size).
        channels: U-Net widths.
        strong_augment_strength: ``strength`` of the ``+strong-aug`` regimes' augmentation (a study
            continued with another strength keeps the runs already done: use a new run directory).
        device: training device (None: the best available).
        shard: ``(i, n)`` to train only shard ``i`` of ``n`` of the runs (:func:`shard_runs`) and
            append to ``study/results_shard<i>of<n>.csv`` instead, skipping the runs already in
            that file or in ``results.csv``; ``study/results_shard<i>of<n>.done`` marks it
            finished for :func:`merge_shards`. None: every run, into ``results.csv``.
        progress_bar: the U-Net progress bars.
        log: called with one line per run.

    Returns:
        The whole results table (earlier runs included); with a shard, the table of its file.
    """
    check_regimes(regimes)
    check_fully_labelled(real_cache)
    study_dir(run_dir).mkdir(parents=True, exist_ok=True)
    results_csv = results_path(run_dir)
    runs = [(regime, float(fraction), int(seed)) for regime in regimes for fraction in fractions for seed in seeds]
    out_csv = results_csv
    if shard is not None:
        runs = shard_runs(runs, shard=shard[0], n_shards=shard[1])
        out_csv = results_path(run_dir, shard)
        results_path(run_dir, shard, suffix="done").unlink(missing_ok=True)  # marked again once this call has done them all
    done = {run: path.name for path in (out_csv, results_csv) for run in done_runs(path)}
    modality = real_cache.manifest["modality"]
    told: set[str] = set()  # domains whose unlabelled structures were logged
    val_idx = real_cache.indices("val")
    val = (np.asarray(real_cache.images[val_idx]), np.asarray(real_cache.labels[val_idx]))
    for regime, fraction, seed in runs:
        if (regime, fraction, seed) in done:
            log(f"{regime} {fraction:g} seed {seed}: already in {done[regime, fraction, seed]}")
            continue
        sources = run_sources(regime, real_cache, synthetic_cache, fraction=fraction, seed=seed, mix_ratio=mix_ratio)
        augment = regime_augment(regime, modality=modality, strong_augment_strength=strong_augment_strength)
        out = run_path(run_dir, regime, fraction, seed)
        segmentation.train_segmenter(sources, val=val, run_dir=out, channels=channels, max_epochs=max_epochs,
                                     batch_size=batch_size, steps_per_epoch=steps_per_epoch, augment=augment,
                                     data=segmentation.data_config(real_cache), device=device, seed=seed,
                                     progress_bar=progress_bar)
        model, _ = segmentation.load_segmenter(out / "segmenter.pt", device=device)
        frames = []
        for domain, (cache, idx) in domains.items():
            scores = segmentation_scores(segmentation.predict(model, cache.images[idx]), cache, idx)
            frames.append(scores.assign(domain=domain))
            unlabelled = cache_unlabelled(cache, idx)
            if unlabelled and domain not in told:
                told.add(domain)
                log(f"{domain}: {', '.join(unlabelled)} not labelled there, not scored")
        rows = pd.concat(frames).assign(regime=regime, fraction=fraction, seed=seed,
                                        n_train=int(sum(len(s[0]) for s in sources)))
        append_results(out_csv, rows[RUN_KEYS + [c for c in rows.columns if c not in RUN_KEYS]])
        mean = rows.groupby("domain").dice.mean().round(3).to_dict()
        log(f"{regime} {fraction:g} seed {seed}: {int(rows.n_train.iloc[0])} training slices, mean Dice {mean}")
    if shard is None:
        return read_results(results_csv)
    write_text_atomic(results_path(run_dir, shard, suffix="done"), json.dumps({"shard": list(shard), "runs": runs}))
    return read_results(out_csv) if out_csv.exists() else pd.DataFrame(columns=RUN_KEYS)
