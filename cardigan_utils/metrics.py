"""Measures: dataset statistics (notebook 01); segmentation and plausibility metrics join later."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data.case import LABELS


def dataset_metrics(cache) -> dict[str, Any]:
    """Summary statistics of a slice cache, written to notebook 01's ``metrics.json``.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.

    Returns:
        A JSON-ready dict: counts per split, pixel share and mean normalised intensity per class,
        mean ED / ES LV cavity volume (ml; area in cm² for echo) and the share of cases whose LV
        is larger at ED than at ES.
    """
    m = cache.manifest
    names = LABELS[m["modality"]]
    labels = np.asarray(cache.labels)
    images = np.asarray(cache.images)
    counts = np.bincount(labels.ravel(), minlength=4).astype(float)
    intensity = {names[k]: float(images[labels == k].mean()) if counts[k] else None for k in names}
    cases = cache.cases
    scale = 10.0 if m["modality"] == "echo" else 1.0  # echo: 1 mm slab ml -> cm²
    wide = cases.pivot_table(index=["patient_id", "view"], columns="phase", values="volume_LV_ml").dropna()
    return {
        "dataset": m["dataset"],
        "modality": m["modality"],
        "image_size": m["image_size"],
        "n_patients": int(cases["patient_id"].nunique()),
        "n_cases": int(len(cases)),
        "n_slices": m["n_slices"],
        "patients": m["patients"],
        "slices": m["slices"],
        "class_fraction": {names[k]: float(counts[k] / counts.sum()) for k in names},
        "class_intensity": intensity,
        "lv_ed_mean": float(wide["ED"].mean() * scale) if len(wide) else None,
        "lv_es_mean": float(wide["ES"].mean() * scale) if len(wide) else None,
        "lv_ed_gt_es_fraction": float((wide["ED"] > wide["ES"]).mean()) if len(wide) else None,
        "cache_build_seconds": m.get("build_seconds"),
    }


def write_metrics(run_dir: str | os.PathLike, notebook: str, metrics: dict[str, Any]) -> Path:
    """Write ``run_dir/<notebook>/metrics.json`` (atomically).

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        metrics: JSON-ready values.

    Returns:
        The file written.
    """
    path = Path(run_dir) / notebook / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1))
    os.replace(tmp, path)
    return path


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
    path = Path(run_dir) / notebook / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run notebooks/{notebook}.ipynb first")
    return json.loads(path.read_text())
