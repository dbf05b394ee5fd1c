#!/usr/bin/env python
"""The measures behind the anatomical criteria on real ground truth, their percentiles and pass rates; one JSON line.

    CARDIGAN_ACDC_DIR=../shared/data/ACDC/training CARDIGAN_CAMUS_DIR=../shared/data/CAMUS_224 \\
        .venv/bin/python benchmarks/anatomy_thresholds.py --run-dir runs/anatomy --image-size 64 128 256

MRI: every slice of the ACDC training folder (100 patients, ED + ES) as the shape VAE learns it:
the slice cache's labels (``prepare_cache("acdc", run_dir=..., image_size=...)``, built once per
size in ``--run-dir``). Echo: every CAMUS ground-truth map resized by ``case_slices`` and cleaned
by ``postprocess_masks`` (why: ``benchmarks/echo_plausibility.py``). For each size it reports the
pass rate of every check and of all together, the percentiles of every measure a bound applies to
(over the slices where its check applies, so by level for MRI), and, for MRI, how
:func:`~cardigan_utils.shapes.anatomy.slice_level` agrees with the cache's ``slice_pos`` thirds
(0 base .. 1 apex). The bounds of ``PLAUSIBILITY_DEFAULTS`` are set beyond these extremes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PERCENTILES = (0.1, 0.5, 1, 50, 99, 99.5, 99.9)
"""The tails each bound is set beyond."""

MRI_MEASURES = {  # measure -> levels where its check applies (None: every level)
    "convexity_defect_RV": None,
    "convexity_defect_MYO": None,
    "convexity_defect_LV": None,
    "circularity_MYO": None,
    "circularity_LV": None,
    "lv_background_fraction": ("basal",),
    "myo_lv_ratio": ("basal", "mid"),
    "rv_epi_ratio": ("basal", "mid"),
}
ECHO_MEASURES = ("myo_erosion_ratio", "lv_myo_width_ratio", "lv_background_frontier", "myo_la_frontier",
                 "myo_lv_ratio", "la_lv_ratio")


def percentiles(values: np.ndarray) -> dict:
    """min, :data:`PERCENTILES` and max of the finite values (empty dict when none).

    Args:
        values: 1-D array.

    Returns:
        ``{"min": ..., "p0.1": ..., ..., "max": ..., "n": ...}`` rounded to 4 decimals.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {}
    q = np.percentile(v, (0, *PERCENTILES, 100))
    return dict(zip(["min", *(f"p{p:g}" for p in PERCENTILES), "max"], np.round(q, 4).tolist())) | {"n": int(len(v))}


def pass_rates(report, checks) -> dict:
    """Share of rows passing each check and ``valid``, in %."""
    return {c: round(100 * float(report[c].mean()), 2) for c in (*checks, "valid")}


def mri_result(labels: np.ndarray, slice_pos: np.ndarray) -> dict:
    """Pass rates, measure percentiles by level and level agreement of one size's ACDC slices.

    Args:
        labels: uint8 (N, S, S) MRI label maps.
        slice_pos: (N,) position of each slice in its volume, 0 base .. 1 apex.

    Returns:
        A JSON-ready dict.
    """
    from cardigan_utils.shapes import PLAUSIBILITY_CHECKS, plausibility_report

    t0 = time.perf_counter()
    rep = plausibility_report(labels, modality="mri", details=True)
    check_s = time.perf_counter() - t0
    level = rep["level"].to_numpy()
    third = np.where(slice_pos < 1 / 3, "basal", np.where(slice_pos < 2 / 3, "mid", "apical"))
    table = {t: {lv: int(((third == t) & (level == lv)).sum()) for lv in ("basal", "mid", "apical")}
             for t in ("basal", "mid", "apical")}
    pct = {}
    for name, levels in MRI_MEASURES.items():
        where = np.ones(len(rep), bool) if levels is None else np.isin(level, levels)
        pct[name] = percentiles(rep[name].to_numpy()[where])
    return {"slices": int(len(labels)), "pass_rate": pass_rates(rep, PLAUSIBILITY_CHECKS["mri"]),
            "level_agreement_with_thirds": round(float((third == level).mean()), 4),
            "thirds_by_level": table, "percentiles": pct, "check_s": round(check_s, 2)}


def echo_result(maps: np.ndarray) -> dict:
    """Pass rates and measure percentiles of one size's cleaned CAMUS maps.

    Args:
        maps: uint8 (N, S, S) echo label maps.

    Returns:
        A JSON-ready dict.
    """
    from cardigan_utils.shapes import PLAUSIBILITY_CHECKS, plausibility_report

    rep = plausibility_report(maps, modality="echo", details=True)
    return {"maps": int(len(maps)), "pass_rate": pass_rates(rep, PLAUSIBILITY_CHECKS["echo"]),
            "percentiles": {m: percentiles(rep[m].to_numpy()) for m in ECHO_MEASURES}}


def main(argv=None) -> int:
    from cardigan_utils.data import load_cases, prepare_cache
    from cardigan_utils.shapes import postprocess_masks

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acdc-dir", default=os.environ.get("CARDIGAN_ACDC_DIR"))
    p.add_argument("--camus-dir", default=os.environ.get("CARDIGAN_CAMUS_DIR"))
    p.add_argument("--run-dir", default="runs/anatomy", help="where the ACDC slice caches are built (reused)")
    p.add_argument("--image-size", type=int, nargs="+", default=[64, 128, 256])
    args = p.parse_args(argv)
    if not args.acdc_dir and not args.camus_dir:
        p.error("set CARDIGAN_ACDC_DIR and/or CARDIGAN_CAMUS_DIR (or --acdc-dir / --camus-dir)")
    result = {"benchmark": "anatomy_thresholds", "mri": {}, "echo": {}}
    if args.acdc_dir:
        cases = load_cases("acdc", data_dir=args.acdc_dir, progress=False)
        for size in args.image_size:
            cache = prepare_cache("acdc", run_dir=args.run_dir, image_size=size, cases=cases, progress=False)
            result["mri"][str(size)] = mri_result(cache.labels, cache.slices["slice_pos"].to_numpy())
    if args.camus_dir:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from echo_plausibility import camus_label_cases, vae_label_maps

        cases = camus_label_cases(args.camus_dir)
        for size in args.image_size:
            maps = postprocess_masks(vae_label_maps(cases, size), modality="echo")
            result["echo"][str(size)] = echo_result(maps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
