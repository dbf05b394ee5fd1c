"""Dataset statistics of a slice cache (notebook 01): counts, class shares and intensities, ED/ES sizes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import LABELS


def ed_es_table(cache, *, structure: str = "LV"):
    """ED and ES size of one structure per patient (and view), from a cache's ``cases`` table.

    MRI: volumes in ml. Echo (2-D views): areas in cm² (the cache stores a 1 mm slab's ml). A
    source whose spacing is unknown (a derived CAMUS copy): pixels of the source frames.

    Args:
        cache: a slice cache.
        structure: structure name (``"LV"``, ``"RV"``, ``"MYO"``, ``"LA"``).

    Returns:
        ``(table with ED and ES columns, unit)``; patients missing a phase are left out.
    """
    echo = cache.manifest["modality"] == "echo"
    cases = cache.cases.copy()
    if "spacing_known" in cases and not cases["spacing_known"].all():
        col, unit = f"voxels_{structure}", "source pixels"
    else:
        col, unit = f"volume_{structure}_ml", ("cm²" if echo else "ml")
        if echo:
            cases[col] = cases[col] * 10.0
    wide = cases.pivot_table(index=["patient_id", "view"], columns="phase", values=col).dropna()
    return wide, unit


def dataset_metrics(cache) -> dict[str, Any]:
    """Summary statistics of a slice cache, written to notebook 01's ``metrics.json``.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.

    Returns:
        A JSON-ready dict: counts per split, pixel share and mean normalised intensity per class,
        mean ED / ES LV cavity volume (ml; area in cm² for echo, in source pixels where the
        spacing is unknown; ``lv_unit`` says which) and the share of cases whose LV is larger at
        ED than at ES.
    """
    m = cache.manifest
    names = LABELS[m["modality"]]
    labels = np.asarray(cache.labels)
    images = np.asarray(cache.images)
    counts = np.bincount(labels.ravel(), minlength=4).astype(float)
    intensity = {names[k]: float(images[labels == k].mean()) if counts[k] else None for k in names}
    cases = cache.cases
    wide, unit = ed_es_table(cache)
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
        "lv_ed_mean": float(wide["ED"].mean()) if len(wide) else None,
        "lv_es_mean": float(wide["ES"].mean()) if len(wide) else None,
        "lv_ed_gt_es_fraction": float((wide["ED"] > wide["ES"]).mean()) if len(wide) else None,
        "lv_unit": unit,
        "cache_build_seconds": m.get("build_seconds"),
    }
