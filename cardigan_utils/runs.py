"""The run directory: where each stage puts its files, and how every file is written atomically.

``runs/<name>/`` holds everything one study produces; later notebooks and commands read what
earlier ones wrote, so the path rules live here, once:

- ``cache/<dataset>_<size>/``: slice caches (notebook 01; synthetic caches from notebook 04)
- ``vae.pt``, ``spade.pt``: the shape VAE and the image generator (notebooks 02, 03)
- ``synthetic/<dataset>_<size>/``: the synthetic set in shards (notebook 04)
- ``study/``: the study's results and one folder per run's U-Net (notebook 05)
- ``<notebook>/metrics.json`` and ``<notebook>/figures/<name>.png``: what each notebook measured

Atomic writes: a file is written under a temporary name in its own folder and moved into place
with ``os.replace``, so an interrupted run never leaves a half-written file under the real name.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

TMP_MARK = ".tmp"
"""What every temporary name holds (a leftover of an interrupted write is recognised by it)."""

_FORMAT_ENDINGS = (".nii.gz", ".nii", ".npz", ".mhd")
"""Endings a writer picks its format by: the temporary name keeps them (``a.tmp.nii.gz``)."""


# --------------------------------------------------------------------------------------------
# Atomic writes


def temporary_path(path: str | os.PathLike) -> Path:
    """The temporary name a file is written under before it is moved into place.

    Args:
        path: the final file.

    Returns:
        ``a/b.tmp.nii.gz`` for ``a/b.nii.gz`` (also ``.nii``, ``.npz``, ``.mhd``: the writers pick
        the format by the ending), ``a/b.json.tmp`` for anything else; same folder.
    """
    path = Path(path)
    for ending in _FORMAT_ENDINGS:
        if path.name.endswith(ending):
            return path.with_name(path.name[: -len(ending)] + TMP_MARK + ending)
    return path.with_name(path.name + TMP_MARK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write a file atomically: yields the temporary path to write; moves it into place on success.

    Args:
        path: the final file (its folder is created).

    Yields:
        The temporary path (see :func:`temporary_path`). If the block raises, the temporary file
        is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically.

    Args:
        path: destination (its folder is created).
        text: the content.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv_atomic(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table as CSV (no index) atomically.

    Args:
        path: destination.
        table: the table.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Path rules


def cache_dir(run_dir: str | os.PathLike, dataset: str, image_size: int) -> Path:
    """Where the slice cache of ``dataset`` at ``image_size`` lives inside ``run_dir``.

    Args:
        run_dir: the run directory.
        dataset: dataset name (``"synthetic-<dataset>"`` for notebook 04's set).
        image_size: slice side.

    Returns:
        ``run_dir/cache/<dataset>_<image_size>``.
    """
    return Path(run_dir) / "cache" / f"{dataset}_{image_size}"


def synthetic_cache_name(dataset: str) -> str:
    """The cache name of the synthetic set learnt from ``dataset`` (notebook 04 writes it, 05 reads it).

    Args:
        dataset: the real dataset's name.

    Returns:
        ``"synthetic-<dataset>"``.
    """
    return f"synthetic-{dataset}"


def synthetic_dir(run_dir: str | os.PathLike, dataset: str, image_size: int) -> Path:
    """Where the synthetic set (shards) learnt from ``dataset`` lives.

    Args:
        run_dir: the run directory.
        dataset: the real dataset's name.
        image_size: image side.

    Returns:
        ``run_dir/synthetic/<dataset>_<image_size>``.
    """
    return Path(run_dir) / "synthetic" / f"{dataset}_{image_size}"


def model_path(run_dir: str | os.PathLike, stage: str) -> Path:
    """The checkpoint a stage's notebook writes and later stages load.

    Args:
        run_dir: the run directory.
        stage: ``"vae"`` (notebook 02) or ``"spade"`` (notebook 03's generator).

    Returns:
        ``run_dir/<stage>.pt``.
    """
    if stage not in ("vae", "spade"):
        raise ValueError(f"stage must be 'vae' or 'spade', not {stage!r}")
    return Path(run_dir) / f"{stage}.pt"


def study_dir(run_dir: str | os.PathLike) -> Path:
    """The study's folder: ``results.csv``, shard files and one folder per run.

    Args:
        run_dir: the run directory.

    Returns:
        ``run_dir/study``.
    """
    return Path(run_dir) / "study"


def figure_path(run_dir: str | os.PathLike, notebook: str, name: str) -> Path:
    """Where a notebook's figure goes.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        name: file stem.

    Returns:
        ``run_dir/<notebook>/figures/<name>.png``.
    """
    return Path(run_dir) / notebook / "figures" / f"{name}.png"


def metrics_path(run_dir: str | os.PathLike, notebook: str) -> Path:
    """Where a notebook's measures go.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem.

    Returns:
        ``run_dir/<notebook>/metrics.json``.
    """
    return Path(run_dir) / notebook / "metrics.json"


def _strict_json(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict_json(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def write_metrics(run_dir: str | os.PathLike, notebook: str, metrics: dict[str, Any]) -> Path:
    """Write ``run_dir/<notebook>/metrics.json`` (atomically).

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        metrics: JSON-ready values; NaN and infinities are written as null (strict JSON).

    Returns:
        The file written.
    """
    text = json.dumps(_strict_json(metrics), indent=1, allow_nan=False)
    return write_text_atomic(metrics_path(run_dir, notebook), text)


def read_metrics(run_dir: str | os.PathLike, notebook: str) -> dict[str, Any]:
    """Read what :func:`write_metrics` wrote.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem.

    Returns:
        The metrics dict.

    Raises:
        FileNotFoundError: naming the notebook to run first.
    """
    path = metrics_path(run_dir, notebook)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run notebooks/{notebook}.ipynb first")
    return json.loads(path.read_text())
