"""The segmentation study: regimes x real-data fractions x seeds, each run trained, scored per domain.

Regimes (Skandarani et al., MIDL 2020):

- ``real``: the real training patients only;
- ``real+aug``: the same with classical augmentation;
- ``synthetic``: the GAN's labelled images only;
- ``real+synthetic``: both, ``mix_ratio`` synthetic slices per real slice;
- ``real+aug+synthetic``: both, with classical augmentation.

Every finished run appends its rows to one tidy CSV (regime, fraction, seed, domain, patient_id,
phase, view, structure, dice, hd95_mm, volumes), written atomically; a study started again skips
the runs already in it, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

REGIMES = ("real", "real+aug", "synthetic", "real+synthetic", "real+aug+synthetic")
RUN_KEYS = ["regime", "fraction", "seed"]


def training_patients(cache, *, fraction: float, seed: int) -> list[str]:
    """A stratified, seeded ``fraction`` of the cache's training patients (at least one).

    Args:
        cache: the real :class:`~cardigan_utils.data.cache.SliceCache`.
        fraction: share of training patients, in (0, 1].
        seed: which subset.

    Returns:
        Sorted patient ids.
    """
    from .data import choose_patients

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
        A list of ``(images, labels)`` arrays for :func:`~cardigan_utils.train.train_segmenter`.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    patients = training_patients(real_cache, fraction=fraction, seed=seed)
    real_idx = np.flatnonzero(real_cache.slices.patient_id.isin(patients).to_numpy()
                              & (real_cache.slices.split == "train").to_numpy())
    sources = []
    if "real" in regime:
        sources.append((np.asarray(real_cache.images[real_idx]), np.asarray(real_cache.labels[real_idx])))
    if "synthetic" in regime:
        if synthetic_cache is None:
            raise ValueError(f"regime {regime!r} needs the synthetic cache (run notebooks/04_generate.ipynb)")
        n = min(len(synthetic_cache), max(1, int(round(mix_ratio * len(real_idx)))))
        pick = np.sort(np.random.default_rng(seed).choice(len(synthetic_cache), size=n, replace=False))
        sources.append((np.asarray(synthetic_cache.images[pick]), np.asarray(synthetic_cache.labels[pick])))
    return sources


def _done_runs(results_csv: Path) -> set[tuple[str, float, int]]:
    if not results_csv.exists():
        return set()
    done = pd.read_csv(results_csv, usecols=RUN_KEYS).drop_duplicates()
    return {(r.regime, float(r.fraction), int(r.seed)) for r in done.itertuples()}


def _append_atomic(results_csv: Path, rows: pd.DataFrame) -> None:
    table = pd.concat([pd.read_csv(results_csv, keep_default_na=False, na_values=[""]), rows]) if results_csv.exists() else rows
    tmp = results_csv.with_name(results_csv.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, results_csv)


def run_study(
    real_cache,
    synthetic_cache,
    *,
    run_dir: str | Path,
    domains: dict[str, tuple[Any, np.ndarray]],
    regimes: Sequence[str] = REGIMES,
    fractions: Sequence[float] = (0.05, 0.25, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    mix_ratio: float = 1.0,
    max_epochs: int = 20,
    batch_size: int = 16,
    steps_per_epoch: int | None = None,
    channels: tuple[int, ...] = (16, 32, 64, 128, 256),
    device=None,
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
        regimes: which regimes.
        fractions: shares of the real training patients.
        seeds: seeds (patient subset, synthetic subset, weights).
        mix_ratio: synthetic slices per real slice.
        max_epochs: U-Net epochs per run.
        batch_size: batch size.
        steps_per_epoch: batches per epoch (default: one pass; set it to train every regime
            for the same number of steps whatever its data size).
        channels: U-Net widths.
        device: training device (None: the best available).
        progress_bar: the U-Net progress bars.
        log: called with one line per run.

    Returns:
        The whole results table (earlier runs included).
    """
    from .augment import augment_batch
    from .metrics import segmentation_scores
    from .train import data_config, load_segmenter, predict, train_segmenter

    study_dir = Path(run_dir) / "study"
    study_dir.mkdir(parents=True, exist_ok=True)
    results_csv = study_dir / "results.csv"
    done = _done_runs(results_csv)
    modality = real_cache.manifest["modality"]
    val_idx = real_cache.indices("val")
    val = (np.asarray(real_cache.images[val_idx]), np.asarray(real_cache.labels[val_idx]))
    for regime in regimes:
        for fraction in fractions:
            for seed in seeds:
                if (regime, float(fraction), int(seed)) in done:
                    log(f"{regime} {fraction:g} seed {seed}: already in {results_csv.name}")
                    continue
                sources = run_sources(regime, real_cache, synthetic_cache, fraction=fraction, seed=seed,
                                      mix_ratio=mix_ratio)
                augment = functools.partial(augment_batch, modality=modality) if "aug" in regime else None
                out = study_dir / f"{regime}_{fraction:g}_{seed}"
                train_segmenter(sources, val=val, run_dir=out, channels=channels, max_epochs=max_epochs,
                                batch_size=batch_size, steps_per_epoch=steps_per_epoch, augment=augment,
                                data=data_config(real_cache), device=device, seed=seed, progress_bar=progress_bar)
                model, _ = load_segmenter(out / "segmenter.pt", device=device)
                frames = []
                for domain, (cache, idx) in domains.items():
                    scores = segmentation_scores(predict(model, cache.images[idx]), cache, idx)
                    frames.append(scores.assign(domain=domain))
                rows = pd.concat(frames).assign(regime=regime, fraction=float(fraction), seed=int(seed),
                                                n_train=int(sum(len(s[0]) for s in sources)))
                _append_atomic(results_csv, rows[RUN_KEYS + [c for c in rows.columns if c not in RUN_KEYS]])
                mean = rows.groupby("domain").dice.mean().round(3).to_dict()
                log(f"{regime} {fraction:g} seed {seed}: {int(rows.n_train.iloc[0])} training slices, mean Dice {mean}")
    return pd.read_csv(results_csv)
