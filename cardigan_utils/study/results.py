"""The study's results table: the regimes, the key of a run, and reading and appending results atomically.

Every finished run appends its rows to one tidy CSV (regime, fraction, seed, domain, patient_id,
phase, view, structure, dice, hd95_mm, volumes), ``study/results.csv``; a shard of the study
writes ``study/results_shard<i>of<n>.csv`` instead (see :mod:`.shards`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import pandas as pd

from ..config import ALL_REGIMES
from ..runs import study_dir, write_csv_atomic

REGIMES = ALL_REGIMES
"""Every regime, in the order of tables and plots: the paper's five, then the two with
domain-randomising augmentation (issue 23). Each profile says which ones its study runs
(``config.PROFILES[...]["segment"]["regimes"]``)."""

RUN_KEYS = ["regime", "fraction", "seed"]

AUGMENTATIONS = {"aug": "classical", "strong-aug": "strong"}
"""The augmentation a regime names (a ``+``-separated part) -> which one it is."""


class Regime(NamedTuple):
    """What a regime trains on: real slices or not, which augmentation (None, ``"classical"``,
    ``"strong"``), synthetic slices or not."""

    real: bool
    augmentation: str | None
    synthetic: bool


def regime_parts(regime: str) -> Regime:
    """Read a regime's name: its ``+``-separated parts, each compared whole (``strong-aug`` is not ``aug``).

    Args:
        regime: one of :data:`REGIMES`, e.g. ``"real+strong-aug+synthetic"``.

    Returns:
        ``Regime(real, augmentation, synthetic)``, e.g. ``Regime(True, "strong", True)``.

    Raises:
        ValueError: a regime not in :data:`REGIMES`.
    """
    check_regimes([regime])
    parts = regime.split("+")
    augmentation = [AUGMENTATIONS[part] for part in parts if part in AUGMENTATIONS]
    return Regime(real="real" in parts, augmentation=augmentation[0] if augmentation else None,
                  synthetic="synthetic" in parts)


def synthetic_baseline(regime: str) -> str | None:
    """The regime that differs from ``regime`` only by lacking its synthetic images (its pair for the gain of the GAN).

    Args:
        regime: one of :data:`REGIMES`.

    Returns:
        E.g. ``"real+strong-aug"`` for ``"real+strong-aug+synthetic"``; None for a regime without
        synthetic images or without real ones (``"synthetic"``: nothing to add them to).
    """
    parts = regime_parts(regime)
    if not (parts.real and parts.synthetic):
        return None
    return next(r for r in REGIMES if regime_parts(r) == parts._replace(synthetic=False))


def check_regimes(regimes: Sequence[str]) -> None:
    """Refuse regimes the study does not know.

    Args:
        regimes: regime names.

    Raises:
        ValueError: naming the unknown ones and the known ones.
    """
    unknown = sorted(set(regimes) - set(REGIMES))
    if unknown:
        raise ValueError(f"unknown regime(s) {unknown}; the regimes are {REGIMES}")


def results_path(run_dir: str | Path, shard: tuple[int, int] | None = None, *, suffix: str = "csv") -> Path:
    """The study's results file, or a shard's file (``.csv``, or the ``.done`` mark of a finished shard).

    Args:
        run_dir: the run directory.
        shard: ``(i, n)`` for shard ``i`` of ``n``; None for the whole study's ``results.csv``.
        suffix: ``"csv"`` or ``"done"`` (shards only).

    Returns:
        ``run_dir/study/results.csv`` or ``run_dir/study/results_shard<i>of<n>.<suffix>``.
    """
    if shard is None:
        return study_dir(run_dir) / "results.csv"
    return study_dir(run_dir) / f"results_shard{shard[0]}of{shard[1]}.{suffix}"


def read_results(results_csv: str | Path) -> pd.DataFrame:
    """Read a results file.

    Args:
        results_csv: the file.

    Returns:
        The table; only empty cells are missing values (a domain or patient named "NA" stays a name).
    """
    return pd.read_csv(results_csv, keep_default_na=False, na_values=[""])


def done_runs(results_csv: str | Path) -> set[tuple[str, float, int]]:
    """The runs a results file already holds.

    Args:
        results_csv: the file (absent: none).

    Returns:
        ``{(regime, fraction, seed), ...}``.
    """
    if not Path(results_csv).exists():
        return set()
    done = pd.read_csv(results_csv, usecols=RUN_KEYS).drop_duplicates()
    return {(r.regime, float(r.fraction), int(r.seed)) for r in done.itertuples()}


def append_results(results_csv: str | Path, rows: pd.DataFrame) -> None:
    """Append a run's rows to a results file, atomically (the file is rewritten whole).

    Args:
        results_csv: the file (created when absent).
        rows: the rows.
    """
    results_csv = Path(results_csv)
    write_csv_atomic(results_csv, pd.concat([read_results(results_csv), rows]) if results_csv.exists() else rows)
