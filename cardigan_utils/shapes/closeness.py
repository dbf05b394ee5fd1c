"""How close generated shapes are to real ones: sizes, slice levels, variety and novelty.

Each measure compares generated label maps with the real TEST label maps, next to the same
measure between the real TRAINING and real TEST maps: the yardstick of how far two real sets of
other patients lie apart. A sampler is as close to real shapes as it can be when its distance to
the test set is no larger than the training set's.

- Sizes: per-structure area and the area ratios (MYO/LV and RV/LV for MRI, MYO/LV and LA/LV for
  echo), each distribution compared by the 1-D Wasserstein distance (pixels, or a ratio's units).
- Slice levels (MRI): the share of basal, mid and apical shapes
  (:func:`cardigan_utils.shapes.anatomy.slice_level`).
- Phase: one 2-D slice's phase cannot be told from its shape alone (ES shrinks the cavity and
  thickens the wall, but by less than slice levels and patients differ), so only the real side's
  ED and ES size distributions are reported (:func:`phase_measures`), to set the generated
  distribution (both phases pooled) against.
- Variety: :func:`cardigan_utils.metrics.diversity` of each set.
- Novelty: the Dice of each generated shape to its nearest training shape
  (:func:`nearest_dice`). A sampler that copies training shapes scores 1.0; real test patients
  give the yardstick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import wasserstein_distance

from ..labels import NUM_CLASSES, structure_names
from ..metrics import diversity
from . import anatomy

LEVELS = ("basal", "mid", "apical")
"""The slice levels, base to apex."""

COPY_DICE = 0.95
"""Nearest-training Dice at or above which a shape counts as a copy in :func:`closeness_report`."""


def shape_measures(labels: np.ndarray, *, modality: str = "mri") -> pd.DataFrame:
    """Per-map structure areas and area ratios.

    Args:
        labels: (N, H, W) integer label maps in the modality's convention.
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        One row per map: ``area_<S>`` (pixels) for each structure, then ``<S>/LV`` for each other
        structure (NaN for a map without an LV cavity).
    """
    names = structure_names(modality)
    flat = np.asarray(labels).reshape(len(labels), -1)
    areas = {name: (flat == k).sum(1) for k, name in enumerate(names, start=1)}
    table = pd.DataFrame({f"area_{name}": area for name, area in areas.items()})
    lv = areas["LV"].astype(float)
    for name in names:
        if name != "LV":
            table[f"{name}/LV"] = np.divide(areas[name], lv, out=np.full(len(lv), np.nan), where=lv > 0)
    return table


def _w1(a: pd.Series, b: pd.Series) -> float:
    a, b = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
    return float(wasserstein_distance(a, b)) if len(a) and len(b) else float("nan")


def measure_distances(generated: np.ndarray, real_test: np.ndarray, real_train: np.ndarray, *,
                      modality: str = "mri") -> pd.DataFrame:
    """Wasserstein-1 distances of the size distributions: generated vs test, train vs test.

    Args:
        generated: (N, H, W) generated label maps.
        real_test: (M, H, W) real test label maps.
        real_train: (K, H, W) real training label maps.
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        One row per measure (the columns of :func:`shape_measures`): ``measure``,
        ``w1_generated_test``, ``w1_train_test`` (the yardstick), ``w1_ratio`` (the first over the
        second: 1 is as close as another real set), and the mean of each set.
    """
    sets = {key: shape_measures(maps, modality=modality) for key, maps in
            (("generated", generated), ("test", real_test), ("train", real_train))}
    rows = []
    for measure in sets["test"].columns:
        gen, test, train = (sets[k][measure] for k in ("generated", "test", "train"))
        w_gen, w_train = _w1(gen, test), _w1(train, test)
        rows.append({"measure": measure, "w1_generated_test": w_gen, "w1_train_test": w_train,
                     "w1_ratio": w_gen / w_train if w_train > 0 else float("nan"),
                     "mean_generated": gen.mean(), "mean_test": test.mean(), "mean_train": train.mean()})
    return pd.DataFrame(rows)


def slice_level_shares(sets: dict[str, np.ndarray], *, modality: str = "mri") -> pd.DataFrame:
    """The share of basal, mid and apical shapes in each set.

    Args:
        sets: ``{set name: (N, H, W) label maps}``, e.g. generated, real test, real train.
        modality: passed to :func:`cardigan_utils.shapes.anatomy.slice_level`.

    Returns:
        Tidy: ``set``, ``level`` (basal, mid, apical), ``share`` (each set's shares sum to 1).
    """
    rows = []
    for name, maps in sets.items():
        levels = np.asarray(anatomy.slice_level(np.asarray(maps), modality=modality))
        for level in LEVELS:
            rows.append({"set": name, "level": level, "share": float(np.mean(levels == level)) if len(levels) else float("nan")})
    return pd.DataFrame(rows)


def phase_measures(labels: np.ndarray, phases, *, modality: str = "mri") -> pd.DataFrame:
    """Size distributions of a real set per phase (ED, ES), and how far ED lies from ES.

    Args:
        labels: (N, H, W) real label maps.
        phases: (N,) their phases (``"ED"``, ``"ES"``).
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        Tidy: ``measure``, ``phase``, ``n``, ``mean``, ``median``, ``q25``, ``q75``, and
        ``w1_ed_es`` (the Wasserstein distance between the measure's ED and ES distributions,
        the same on both of a measure's rows).
    """
    table = shape_measures(labels, modality=modality)
    phases = np.asarray(phases)
    rows = []
    for measure in table.columns:
        by_phase = {p: table.loc[phases == p, measure].dropna() for p in ("ED", "ES")}
        w1 = _w1(by_phase["ED"], by_phase["ES"])
        for phase, values in by_phase.items():
            q = values.quantile([0.25, 0.5, 0.75]) if len(values) else pd.Series([np.nan] * 3, index=[0.25, 0.5, 0.75])
            rows.append({"measure": measure, "phase": phase, "n": len(values), "mean": values.mean(), "median": q[0.5],
                         "q25": q[0.25], "q75": q[0.75], "w1_ed_es": w1})
    return pd.DataFrame(rows)


@torch.no_grad()
def nearest_dice(queries: np.ndarray, references: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query label map, the reference map it overlaps best, and that Dice.

    Dice of a pair: the mean over the foreground classes present in either map of the per-class
    Dice (1 for two maps without foreground). Computed as matrix products of one-hot maps, a
    block of queries against a block of references at a time.

    Args:
        queries: (N, H, W) integer label maps.
        references: (M, H, W) label maps of the same size (M >= 1).
        batch_size: queries (and references) per block.

    Returns:
        ``(dice, index)``: (N,) best Dice in [0, 1] and (N,) its index into ``references``.
    """
    queries, references = np.asarray(queries), np.asarray(references)
    if queries.shape[1:] != references.shape[1:] or len(references) == 0:
        raise ValueError(f"queries {queries.shape} and references {references.shape} must be (N, H, W) of one size, M >= 1")
    q_all = torch.from_numpy(queries.reshape(len(queries), -1))
    r_all = torch.from_numpy(references.reshape(len(references), -1))
    best = torch.full((len(queries),), -1.0)
    index = torch.zeros(len(queries), dtype=torch.long)
    for i in range(0, len(queries), batch_size):
        q = q_all[i : i + batch_size]
        q_hot = [(q == k).float() for k in range(1, NUM_CLASSES)]
        for j in range(0, len(references), batch_size):
            r = r_all[j : j + batch_size]
            total = torch.zeros(len(q), len(r))
            present = torch.zeros(len(q), len(r))
            for k, a in enumerate(q_hot, start=1):
                b = (r == k).float()
                sizes = a.sum(1)[:, None] + b.sum(1)[None]
                total += torch.where(sizes > 0, 2 * (a @ b.T) / sizes.clamp(min=1), 0.0)
                present += sizes > 0
            dice = torch.where(present > 0, total / present.clamp(min=1), 1.0)
            value, arg = dice.max(1)
            better = value > best[i : i + batch_size]
            best[i : i + batch_size] = torch.where(better, value, best[i : i + batch_size])
            index[i : i + batch_size] = torch.where(better, arg + j, index[i : i + batch_size])
    return best.numpy(), index.numpy()


def closeness_report(generated: np.ndarray, real_test: np.ndarray, real_train: np.ndarray, *, modality: str = "mri",
                     test_phases=None, slice_levels: bool = True, max_queries: int = 1000, n_pairs: int = 2000,
                     seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every closeness measure of generated shapes to real ones, as tables for notebook 02.

    Args:
        generated: (N, H, W) generated label maps.
        real_test: (M, H, W) real test label maps.
        real_train: (K, H, W) real training label maps (the VAE's training set).
        modality: ``"mri"`` or ``"echo"`` (slice levels for MRI only).
        test_phases: (M,) phases of ``real_test`` for the ED / ES table (None: no such table).
        slice_levels: report the slice-level shares (MRI only).
        max_queries: novelty on at most this many maps of each set (a seeded random subset).
        n_pairs: pairs for :func:`cardigan_utils.metrics.diversity`.
        seed: seed of the subsets and pairs.

    Returns:
        ``{"measures": measure_distances(...), "slice_levels": slice_level_shares(...) (MRI),
        "phases": phase_measures(...) (with test_phases), "summary": one row per set (generated,
        test, train): n, diversity, nearest_train_dice (mean), copy_share (nearest Dice >=
        COPY_DICE)}``; the training set has no novelty (NaN).
    """
    sets = {"generated": np.asarray(generated), "test": np.asarray(real_test), "train": np.asarray(real_train)}
    out = {"measures": measure_distances(sets["generated"], sets["test"], sets["train"], modality=modality)}
    if slice_levels and modality == "mri":
        out["slice_levels"] = slice_level_shares(sets, modality=modality)
    if test_phases is not None:
        out["phases"] = phase_measures(sets["test"], test_phases, modality=modality)
    rng = np.random.default_rng(seed)
    rows = []
    for name, maps in sets.items():
        row = {"set": name, "n": len(maps), "diversity": diversity(maps, n_pairs=n_pairs, seed=seed),
               "nearest_train_dice": float("nan"), "copy_share": float("nan")}
        if name != "train":
            pick = np.sort(rng.choice(len(maps), max_queries, replace=False)) if len(maps) > max_queries else slice(None)
            dice, _ = nearest_dice(maps[pick], sets["train"])
            row.update(nearest_train_dice=float(dice.mean()), copy_share=float(np.mean(dice >= COPY_DICE)))
        rows.append(row)
    out["summary"] = pd.DataFrame(rows)
    return out
