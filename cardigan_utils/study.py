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

Across processes (one per GPU, or a Slurm job array) the runs are split into shards
(:func:`shard_runs`): shard ``i`` of ``n`` writes ``study/results_shard<i>of<n>.csv`` and, once all
its runs are done, ``study/results_shard<i>of<n>.done``; :func:`merge_shards` folds the shard files
into ``study/results.csv`` and refuses to do so while a shard is missing or unfinished.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

REGIMES = ("real", "real+aug", "synthetic", "real+synthetic", "real+aug+synthetic")
RUN_KEYS = ["regime", "fraction", "seed"]


def _check_regimes(regimes: Sequence[str]) -> None:
    unknown = sorted(set(regimes) - set(REGIMES))
    if unknown:
        raise ValueError(f"unknown regime(s) {unknown}; the regimes are {REGIMES}")


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
    _check_regimes([regime])
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
    return Path(run_dir) / "study" / f"{regime}_{float(fraction):g}_{int(seed)}"


def study_domains(real_cache, *, run_dir: str | Path, n_patients: int, seed: int = 0,
                  data_dir: str | Path | None = None, progress: bool = True) -> dict[str, tuple[Any, np.ndarray]]:
    """The domains every run is scored on: in-domain test patients and out-of-domain data.

    - ``in-domain``: the real cache's test patients.
    - A phantom trained on some of its scanners: ``vendor <X>``, ``n_patients`` new patients
      (anatomy never seen, indices after the training ones) of each scanner left out of training.
    - ACDC (any real MRI): ``phantom-mri``, ``n_patients`` phantom patients of every scanner.
    - ``data_dir``: every patient of another dataset in the ACDC layout (e.g. a converted M&Ms
      or a hospital's export), as ``external``.

    Args:
        real_cache: the training cache (notebook 01).
        run_dir: the run directory (the extra caches go to ``run_dir/cache``).
        n_patients: patients per out-of-domain phantom scanner.
        seed: phantom seed (the training one, so new patients are drawn after its indices).
        data_dir: an extra dataset in the ACDC layout, or None.
        progress: progress bars.

    Returns:
        ``{name: (cache, row indices)}`` for :func:`run_study`.
    """
    from .data import load_cases, prepare_cache
    from .data.phantom import ECHO_VENDORS, MRI_VENDORS

    manifest = real_cache.manifest
    size, dataset, modality = int(manifest["image_size"]), manifest["dataset"], manifest["modality"]
    domains = {"in-domain": (real_cache, real_cache.indices("test"))}
    if dataset.startswith("phantom"):
        seen = set(real_cache.slices.vendor)
        first = 1 + max(int(str(p).removeprefix("phantom")) for p in real_cache.slices.patient_id.unique())
        for vendor in sorted(set(MRI_VENDORS if modality == "mri" else ECHO_VENDORS) - seen):
            cases = load_cases(dataset, n_patients=n_patients, seed=seed, vendors=(vendor,), first_index=first)
            cache = prepare_cache(dataset, run_dir=run_dir, image_size=size, cases=cases, seed=seed,
                                  name=f"{dataset}-vendor{vendor}", progress=progress)
            domains[f"vendor {vendor}"] = (cache, np.arange(len(cache)))
    elif modality == "mri":
        cache = prepare_cache("phantom-mri", run_dir=run_dir, image_size=size, n_patients=n_patients, seed=seed,
                              progress=progress)
        domains["phantom-mri"] = (cache, np.arange(len(cache)))
    if data_dir is not None:
        cache = prepare_cache("acdc" if modality == "mri" else "camus", run_dir=run_dir, image_size=size,
                              data_dir=data_dir, seed=seed, name="external", progress=progress)
        domains["external"] = (cache, np.arange(len(cache)))
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
    ood_data_dir: str | Path | None = None,
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
        regimes: which regimes (default: all five, or the real ones without a synthetic set).
        fractions: shares of the real training patients.
        seeds: seeds of the runs.
        mix_ratio: synthetic slices per real slice.
        max_epochs: U-Net epochs per run.
        steps_per_epoch: batches per epoch.
        batch_size: batch size.
        n_ood_patients: patients per unseen phantom scanner.
        ood_data_dir: another dataset in the ACDC layout to score on, or None.
        progress: progress bars while out-of-domain caches are built.
        log: told when the synthetic set is missing.

    Returns:
        The keyword arguments of :func:`run_study` (``real_cache``, ``synthetic_cache``, ``run_dir``,
        ``domains``, ``regimes``, ``fractions``, ``seeds``, ``mix_ratio``, ``max_epochs``,
        ``steps_per_epoch``, ``batch_size``, ``channels``): ``run_study(**inputs, device=...)``.

    Raises:
        FileNotFoundError: no slice cache of ``dataset`` at that size (run notebook 01).
        ValueError: an unknown regime, or a synthetic regime without notebook 04's set.
    """
    from .config import profile_params
    from .data import cache_dir, load_cache, load_run_cache

    params = profile_params(profile, stage="segment", image_size=image_size, fractions=fractions, seeds=seeds,
                            mix_ratio=mix_ratio, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                            batch_size=batch_size, n_ood_patients=n_ood_patients)
    size = int(params["image_size"])
    real = load_run_cache(run_dir, dataset, size)
    synthetic_path = cache_dir(run_dir, f"synthetic-{dataset}", size)
    synthetic = load_cache(synthetic_path) if synthetic_path.exists() else None
    if regimes is None:
        regimes = list(REGIMES if synthetic is not None else ("real", "real+aug"))
        if synthetic is None:
            log(f"no synthetic set (run notebooks/04_generate.ipynb): only {regimes}")
    _check_regimes(regimes)
    if synthetic is None and any("synthetic" in regime for regime in regimes):
        raise ValueError(f"the regimes {[r for r in regimes if 'synthetic' in r]} need the synthetic set that "
                         f"notebooks/04_generate.ipynb writes to {synthetic_path}; run it first")
    domains = study_domains(real, run_dir=run_dir, n_patients=params["n_ood_patients"], seed=seed,
                            data_dir=ood_data_dir, progress=progress)
    return {"real_cache": real, "synthetic_cache": synthetic, "run_dir": run_dir, "domains": domains,
            "regimes": list(regimes), "fractions": list(params["fractions"]), "seeds": list(params["seeds"]),
            "mix_ratio": params["mix_ratio"], "max_epochs": params["max_epochs"],
            "steps_per_epoch": params["steps_per_epoch"], "batch_size": params["batch_size"],
            "channels": tuple(params["channels"])}


def _done_runs(results_csv: Path) -> set[tuple[str, float, int]]:
    if not results_csv.exists():
        return set()
    done = pd.read_csv(results_csv, usecols=RUN_KEYS).drop_duplicates()
    return {(r.regime, float(r.fraction), int(r.seed)) for r in done.itertuples()}


def _read_results(results_csv: Path) -> pd.DataFrame:
    # only empty cells are missing values: a domain or patient named "NA" stays a name
    return pd.read_csv(results_csv, keep_default_na=False, na_values=[""])


def _write_atomic(results_csv: Path, table: pd.DataFrame) -> None:
    tmp = results_csv.with_name(results_csv.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, results_csv)


def _append_atomic(results_csv: Path, rows: pd.DataFrame) -> None:
    _write_atomic(results_csv, pd.concat([_read_results(results_csv), rows]) if results_csv.exists() else rows)


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
        shard: ``(i, n)`` to train only shard ``i`` of ``n`` of the runs (:func:`shard_runs`) and
            append to ``study/results_shard<i>of<n>.csv`` instead, skipping the runs already in
            that file or in ``results.csv``; ``study/results_shard<i>of<n>.done`` marks it
            finished for :func:`merge_shards`. None: every run, into ``results.csv``.
        progress_bar: the U-Net progress bars.
        log: called with one line per run.

    Returns:
        The whole results table (earlier runs included); with a shard, the table of its file.
    """
    from .augment import augment_batch
    from .checkpoint import write_text_atomic
    from .metrics import segmentation_scores
    from .train import data_config, load_segmenter, predict, train_segmenter

    study_dir = Path(run_dir) / "study"
    study_dir.mkdir(parents=True, exist_ok=True)
    results_csv = study_dir / "results.csv"
    runs = [(regime, float(fraction), int(seed)) for regime in regimes for fraction in fractions for seed in seeds]
    out_csv = results_csv
    if shard is not None:
        runs = shard_runs(runs, shard=shard[0], n_shards=shard[1])
        out_csv = _shard_file(study_dir, shard, "csv")
        _shard_file(study_dir, shard, "done").unlink(missing_ok=True)  # marked again once this call has done them all
    done = {run: path.name for path in (out_csv, results_csv) for run in _done_runs(path)}
    modality = real_cache.manifest["modality"]
    val_idx = real_cache.indices("val")
    val = (np.asarray(real_cache.images[val_idx]), np.asarray(real_cache.labels[val_idx]))
    for regime, fraction, seed in runs:
        if (regime, fraction, seed) in done:
            log(f"{regime} {fraction:g} seed {seed}: already in {done[regime, fraction, seed]}")
            continue
        sources = run_sources(regime, real_cache, synthetic_cache, fraction=fraction, seed=seed, mix_ratio=mix_ratio)
        augment = functools.partial(augment_batch, modality=modality) if "aug" in regime else None
        out = run_path(run_dir, regime, fraction, seed)
        train_segmenter(sources, val=val, run_dir=out, channels=channels, max_epochs=max_epochs,
                        batch_size=batch_size, steps_per_epoch=steps_per_epoch, augment=augment,
                        data=data_config(real_cache), device=device, seed=seed, progress_bar=progress_bar)
        model, _ = load_segmenter(out / "segmenter.pt", device=device)
        frames = []
        for domain, (cache, idx) in domains.items():
            scores = segmentation_scores(predict(model, cache.images[idx]), cache, idx)
            frames.append(scores.assign(domain=domain))
        rows = pd.concat(frames).assign(regime=regime, fraction=fraction, seed=seed,
                                        n_train=int(sum(len(s[0]) for s in sources)))
        _append_atomic(out_csv, rows[RUN_KEYS + [c for c in rows.columns if c not in RUN_KEYS]])
        mean = rows.groupby("domain").dice.mean().round(3).to_dict()
        log(f"{regime} {fraction:g} seed {seed}: {int(rows.n_train.iloc[0])} training slices, mean Dice {mean}")
    if shard is None:
        return _read_results(results_csv)
    write_text_atomic(_shard_file(study_dir, shard, "done"), json.dumps({"shard": list(shard), "runs": runs}))
    return _read_results(out_csv) if out_csv.exists() else pd.DataFrame(columns=RUN_KEYS)


# --------------------------------------------------------------------------------------------
# Shards: the runs split over processes, and the merge of their results
# --------------------------------------------------------------------------------------------

_SHARD_FILE = re.compile(r"results_shard(\d+)of(\d+)\.(csv|done)")


def _check_shard(shard: int, n_shards: int) -> None:
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard}/{n_shards} does not exist: shards are numbered from 0, "
                         f"0 <= shard < n_shards (e.g. 0/8 to 7/8)")


def parse_shard(text: str) -> tuple[int, int]:
    """Read a shard written ``i/n`` (shard ``i`` of ``n``, numbered from 0), as ``--shard`` takes it.

    Args:
        text: e.g. ``"2/8"``.

    Returns:
        ``(i, n)``, e.g. ``(2, 8)``.

    Raises:
        ValueError: text that is not ``i/n`` with ``0 <= i < n``, e.g. ``"a/b"`` or ``"8/8"``.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"a shard is written i/n, e.g. 0/8 (shard 0 of 8), got {text!r}")
    shard, n_shards = int(match[1]), int(match[2])
    _check_shard(shard, n_shards)
    return shard, n_shards


def shard_runs(runs: Sequence[tuple[str, float, int]], *, shard: int, n_shards: int) -> list[tuple[str, float, int]]:
    """The runs that shard ``shard`` of ``n_shards`` trains.

    The runs are put in one fixed order whatever order they come in (regimes in :data:`REGIMES`
    order, then fractions ascending, then seeds ascending; duplicates dropped) and dealt out
    round-robin: shard ``i`` takes runs ``i``, ``i + n_shards``, ... The seeds of one regime and
    fraction, which cost the same, land on different shards; and every process given the same
    runs finds the same split without talking to the others.

    Args:
        runs: ``(regime, fraction, seed)`` triples, e.g. every combination of a study.
        shard: which shard, from 0.
        n_shards: how many shards.

    Returns:
        This shard's runs, in the fixed order (empty when there are fewer runs than shards).

    Raises:
        ValueError: ``shard`` outside ``0 <= shard < n_shards``, or a regime not in :data:`REGIMES`.
    """
    _check_shard(shard, n_shards)
    unique = {(str(regime), float(fraction), int(seed)) for regime, fraction, seed in runs}
    _check_regimes([regime for regime, _, _ in unique])
    ordered = sorted(unique, key=lambda run: (REGIMES.index(run[0]), run[1], run[2]))
    return ordered[shard::n_shards]


def _shard_file(study_dir: Path, shard: tuple[int, int], suffix: str) -> Path:
    return study_dir / f"results_shard{shard[0]}of{shard[1]}.{suffix}"


def _unfinished_shards(found: dict[tuple[int, int], set[str]]) -> list[str]:
    """What keeps the shards in ``found`` (``{(i, n): {"csv", "done"}}``) from being one finished array."""
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        names = ", ".join(f"results_shard{i}of{n}.*" for i, n in sorted(found))
        return [f"the shard files disagree on the number of shards ({names})"]
    problems = []
    for i in range(counts[0] if counts else 0):
        kinds = found.get((i, counts[0]), set())
        if "done" not in kinds:
            state = "unfinished: it stopped before its last run" if kinds else "missing"
            problems.append(f"results_shard{i}of{counts[0]}.csv ({state}; run `cardigan study --shard {i}/{counts[0]}`)")
    return problems


def merge_shards(run_dir: str | Path, *, allow_missing: bool = False) -> pd.DataFrame:
    """Fold ``results.csv`` and every ``results_shard<i>of<n>.csv`` of ``run_dir/study`` into ``results.csv``.

    Rows of the same run, domain, volume and structure found twice are kept once; the table is
    ordered as :func:`shard_runs` orders runs and written atomically; the shard files (and their
    ``.done`` marks) are then removed, so that a later array, of any size, starts afresh.

    Args:
        run_dir: the run directory.
        allow_missing: merge whatever shard files are there, even when some shard is missing,
            unfinished or from an array of another size.

    Returns:
        The merged results table (as :func:`run_study` returns it).

    Raises:
        ValueError: (unless ``allow_missing``) a shard of the array has not finished, naming its
            file, or the shard files come from arrays of different sizes.
        FileNotFoundError: no results at all.
    """
    study_dir = Path(run_dir) / "study"
    results_csv = study_dir / "results.csv"
    found: dict[tuple[int, int], set[str]] = {}
    for path in study_dir.glob("results_shard*of*.*"):
        match = _SHARD_FILE.fullmatch(path.name)
        if match:
            found.setdefault((int(match[1]), int(match[2])), set()).add(match[3])
    problems = [] if allow_missing else _unfinished_shards(found)
    if problems:
        raise ValueError(f"cannot merge the study in {study_dir}, a merge now would give a partial table: "
                         + "; ".join(problems)
                         + " (allow_missing=True, `cardigan study --merge --allow-missing`, merges what is there)")
    files = [results_csv] + [_shard_file(study_dir, shard, "csv") for shard in sorted(found)]
    tables = [_read_results(path) for path in files if path.exists()]
    if not tables:
        raise FileNotFoundError(f"{study_dir}: no study results to merge; run `cardigan study` (or notebook 05) first")
    table = pd.concat(tables, ignore_index=True)
    row_keys = [c for c in RUN_KEYS + ["domain", "patient_id", "phase", "view", "structure"] if c in table]
    table = table.drop_duplicates(subset=row_keys)
    order = np.lexsort((table.seed.to_numpy(), table.fraction.to_numpy(), table.regime.map(REGIMES.index).to_numpy()))
    _write_atomic(results_csv, table.iloc[order])
    for shard, kinds in found.items():
        for kind in kinds:
            _shard_file(study_dir, shard, kind).unlink(missing_ok=True)
    return _read_results(results_csv)


# --------------------------------------------------------------------------------------------
# Reading the results
# --------------------------------------------------------------------------------------------


def run_means(results: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """One number per run and domain: ``metric`` averaged over volumes and structures (and per structure).

    Args:
        results: the table of :func:`run_study`.
        metric: ``"dice"`` or ``"hd95_mm"`` (NaNs, structures absent from a volume, are skipped).

    Returns:
        One row per (domain, regime, fraction, seed): ``mean`` and one column per structure.
    """
    keys = ["domain", "regime", "fraction", "seed"]
    per_structure = results.pivot_table(index=keys, columns="structure", values=metric, aggfunc="mean")
    per_structure.columns.name = None
    return per_structure.assign(mean=results.groupby(keys)[metric].mean()).reset_index()


def summary_table(results: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """Mean and standard deviation over seeds of each run's mean ``metric`` (the paper's table).

    Args:
        results: the table of :func:`run_study`.
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        One row per (domain, fraction, regime), in :data:`REGIMES` order: ``mean``, ``std`` (over
        seeds; NaN with one seed), ``n_seeds`` and the mean of each structure.
    """
    runs = run_means(results, metric=metric)
    structures = [c for c in runs.columns if c not in ("domain", "regime", "fraction", "seed", "mean")]
    g = runs.groupby(["domain", "fraction", "regime"])
    table = g[structures].mean().assign(mean=g["mean"].mean(), std=g["mean"].std(), n_seeds=g["seed"].nunique())
    table = table.reset_index()
    order = {r: i for i, r in enumerate(REGIMES)}
    table = table.sort_values(["domain", "fraction", "regime"], key=lambda s: s.map(order) if s.name == "regime" else s)
    return table[["domain", "fraction", "regime", "mean", "std", "n_seeds", *structures]].reset_index(drop=True)


def paper_table(summary: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """``mean ± std`` strings, regimes down and (domain, % of real patients) across, for display.

    Args:
        summary: the table of :func:`summary_table`.
        digits: decimals shown.

    Returns:
        A DataFrame of strings.
    """
    def cell(row) -> str:
        std = "" if pd.isna(row["std"]) else f" ± {row['std']:.{digits}f}"
        return f"{row['mean']:.{digits}f}{std}"

    shown = summary.assign(cell=summary.apply(cell, axis=1), percent=(100 * summary.fraction).round(1))
    table = shown.pivot(index="regime", columns=["domain", "percent"], values="cell")
    table = table.reindex([r for r in REGIMES if r in table.index]).sort_index(axis=1)
    table.columns.names = ["domain", "% real patients"]
    return table.fillna("")


def paired_difference(results: pd.DataFrame, *, regime: str, baseline: str, fraction: float, domain: str,
                      metric: str = "dice", confidence: float = 0.95) -> dict[str, Any]:
    """``regime`` minus ``baseline`` in mean ``metric``, paired by seed, with a t confidence interval.

    A seed fixes the real patients, so the two regimes of one seed saw the same real data and the
    per-seed differences are paired.

    Args:
        results: the table of :func:`run_study`.
        regime: e.g. ``"real+aug+synthetic"``.
        baseline: e.g. ``"real+aug"``.
        fraction: the real-data fraction (e.g. 0.05).
        domain: the domain scored.
        metric: ``"dice"`` or ``"hd95_mm"``.
        confidence: level of the interval.

    Returns:
        ``{"mean", "ci_low", "ci_high", "confidence", "n_seeds", "per_seed": {seed: difference}}``;
        the interval is NaN with fewer than two paired seeds.

    Raises:
        ValueError: no seed has both regimes at that fraction and domain.
    """
    from scipy import stats

    runs = run_means(results, metric=metric)
    runs = runs[(runs.domain == domain) & np.isclose(runs.fraction, fraction)]
    wide = runs.pivot(index="seed", columns="regime", values="mean")
    if regime not in wide or baseline not in wide or wide[[regime, baseline]].dropna().empty:
        raise ValueError(f"no seed has both {regime!r} and {baseline!r} at fraction {fraction:g} on {domain!r}")
    diff = (wide[regime] - wide[baseline]).dropna()
    n = len(diff)
    mean = float(diff.mean())
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n))
        low, high = mean - half, mean + half
    else:
        low = high = float("nan")
    return {"mean": mean, "ci_low": low, "ci_high": high, "confidence": confidence, "n_seeds": n,
            "per_seed": {int(s): float(d) for s, d in diff.items()}}


def low_data_differences(results: pd.DataFrame, *, fraction: float | None = None, regime: str = "real+aug+synthetic",
                         baseline: str = "real+aug", metric: str = "dice") -> dict[str, dict[str, Any]]:
    """:func:`paired_difference` for every domain where both regimes ran at ``fraction``.

    Args:
        results: the table of :func:`run_study`.
        fraction: the real-data fraction (default: the smallest in the table).
        regime: the regime with synthetic images.
        baseline: the regime it is compared with.
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        ``{domain: paired_difference(...)}``, domains in sorted order; domains where no seed has both
        regimes are left out.
    """
    fraction = float(results.fraction.min()) if fraction is None else float(fraction)
    out = {}
    for domain in sorted(results.domain.unique()):
        try:
            out[domain] = paired_difference(results, regime=regime, baseline=baseline, fraction=fraction,
                                            domain=domain, metric=metric)
        except ValueError:
            continue
    return out


def clinical_table(results: pd.DataFrame) -> pd.DataFrame:
    """LV end-diastolic / end-systolic volumes and ejection fraction per patient, predicted and true.

    Args:
        results: the table of :func:`run_study` (its ``volume_pred_ml`` / ``volume_true_ml`` of the LV).

    Returns:
        One row per run, domain, patient and view with both ED and ES scored: ``edv_pred``,
        ``esv_pred``, ``ef_pred`` (%), the same ``_true``, and ``ef_error`` (predicted minus true,
        percentage points).
    """
    lv = results[results.structure == "LV"].assign(view=lambda t: t.view.fillna(""))  # MRI volumes have no view
    keys = ["domain", "regime", "fraction", "seed", "patient_id", "view"]
    wide = lv.pivot_table(index=keys, columns="phase", values=["volume_pred_ml", "volume_true_ml"], aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    for kind in ("pred", "true"):
        out[f"edv_{kind}"] = wide[(f"volume_{kind}_ml", "ED")]
        out[f"esv_{kind}"] = wide[(f"volume_{kind}_ml", "ES")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"ef_{kind}"] = 100 * (out[f"edv_{kind}"] - out[f"esv_{kind}"]) / out[f"edv_{kind}"]
    out["ef_error"] = out.ef_pred - out.ef_true
    return out.dropna(subset=["edv_true", "esv_true"]).reset_index()


def describe_study(results: pd.DataFrame, *, low_fraction: float | None = None) -> list[str]:
    """What the numbers say, in sentences computed from the results (for the notebook's conclusion).

    Args:
        results: the table of :func:`run_study`.
        low_fraction: the low-data fraction for the augmented+synthetic vs augmented comparison
            (default: the smallest fraction in the table).

    Returns:
        Sentences: the ranking of regimes per domain and fraction, the effect of synthetic images
        on top of augmentation where both ran, and a warning when seeds are too few for an interval.
    """
    summary = summary_table(results)
    lines = []
    for (domain, fraction), rows in summary.groupby(["domain", "fraction"], sort=True):
        rows = rows.sort_values("mean", ascending=False)
        ranking = " > ".join(f"{r.regime} ({r.mean:.3f})" for r in rows.itertuples())
        lines.append(f"{domain}, {100 * fraction:g} % of the real patients: {ranking}.")
    low = float(summary.fraction.min()) if low_fraction is None else float(low_fraction)
    for domain, d in low_data_differences(results, fraction=low).items():
        if d["n_seeds"] < 2:
            lines.append(f"{domain}, {100 * low:g} %: real+aug+synthetic minus real+aug = {d['mean']:+.3f} Dice from one "
                         "seed; run more seeds for a confidence interval.")
            continue
        verdict = ("better" if d["ci_low"] > 0 else "worse" if d["ci_high"] < 0 else "not distinguishable from no change")
        lines.append(f"{domain}, {100 * low:g} %: adding synthetic images to augmented real data changes mean Dice by "
                     f"{d['mean']:+.3f} ({100 * d['confidence']:g} % CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}, "
                     f"{d['n_seeds']} seeds): {verdict}.")
    return lines


def disagreements(predictions: dict[str, np.ndarray], labels: np.ndarray, *, n: int = 4) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The slices on which the regimes' predictions differ most in Dice.

    Args:
        predictions: ``{regime: (N, H, W) predicted labels}`` on the same slices.
        labels: (N, H, W) ground truth.
        n: how many slices.

    Returns:
        ``(indices, dice)``: the ``n`` slice indices with the widest Dice range across regimes
        (widest first; background-only slices skipped) and ``{regime: (N,) slice Dice}``.
    """
    from .metrics import slice_dice

    dice = {name: slice_dice(pred, labels) for name, pred in predictions.items()}
    table = np.stack(list(dice.values()))
    spread = np.where(np.isnan(table).any(0), -np.inf, np.nanmax(table, 0) - np.nanmin(table, 0))
    order = np.argsort(-spread, kind="stable")
    return order[np.isfinite(spread[order])][:n], dice
