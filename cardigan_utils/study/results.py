"""The study's results table: the regimes, the key of a run, and reading and appending results atomically.

Every finished run appends its rows to one tidy CSV (regime, fraction, seed, domain, patient_id,
phase, view, structure, dice, hd95_mm, volumes), ``study/results.csv``; a shard of the study
writes ``study/results_shard<i>of<n>.csv`` instead (see :mod:`.shards`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..runs import study_dir, write_csv_atomic

REGIMES = ("real", "real+aug", "synthetic", "real+synthetic", "real+aug+synthetic")

RUN_KEYS = ["regime", "fraction", "seed"]


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
