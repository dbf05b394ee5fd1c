"""The study split over processes (one per GPU, or a Slurm job array), and the merge of their results.

Shard ``i`` of ``n`` (:func:`shard_runs`) writes ``study/results_shard<i>of<n>.csv`` and, once all
its runs are done, ``study/results_shard<i>of<n>.done``; :func:`merge_shards` folds the shard files
into ``study/results.csv`` and refuses to do so while a shard is missing or unfinished.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..runs import study_dir, write_csv_atomic
from .results import REGIMES, RUN_KEYS, check_regimes, read_results, results_path

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
    check_regimes([regime for regime, _, _ in unique])
    ordered = sorted(unique, key=lambda run: (REGIMES.index(run[0]), run[1], run[2]))
    return ordered[shard::n_shards]


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
    folder = study_dir(run_dir)
    results_csv = results_path(run_dir)
    found: dict[tuple[int, int], set[str]] = {}
    for path in folder.glob("results_shard*of*.*"):
        match = _SHARD_FILE.fullmatch(path.name)
        if match:
            found.setdefault((int(match[1]), int(match[2])), set()).add(match[3])
    problems = [] if allow_missing else _unfinished_shards(found)
    if problems:
        raise ValueError(f"cannot merge the study in {folder}, a merge now would give a partial table: "
                         + "; ".join(problems)
                         + " (allow_missing=True, `cardigan study --merge --allow-missing`, merges what is there)")
    files = [results_csv] + [results_path(run_dir, shard) for shard in sorted(found)]
    tables = [read_results(path) for path in files if path.exists()]
    if not tables:
        raise FileNotFoundError(f"{folder}: no study results to merge; run `cardigan study` (or notebook 05) first")
    table = pd.concat(tables, ignore_index=True)
    row_keys = [c for c in RUN_KEYS + ["domain", "patient_id", "phase", "view", "structure"] if c in table]
    table = table.drop_duplicates(subset=row_keys)
    order = np.lexsort((table.seed.to_numpy(), table.fraction.to_numpy(), table.regime.map(REGIMES.index).to_numpy()))
    write_csv_atomic(results_csv, table.iloc[order])
    for shard, kinds in found.items():
        for kind in kinds:
            results_path(run_dir, shard, suffix=kind).unlink(missing_ok=True)
    return read_results(results_csv)
