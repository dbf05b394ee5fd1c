#!/usr/bin/env python
"""The echo anatomy checks on real CAMUS ground truth, at the VAE's image sizes; one JSON line.

    CARDIGAN_CAMUS_DIR=../shared/data/CAMUS_224 .venv/bin/python benchmarks/echo_plausibility.py --image-size 64 128 256

Reads every ground-truth label map of a CAMUS folder (NIfTI layout: ``database_nifti/patientXXXX/
patientXXXX_{2CH,4CH}_{ED,ES}_gt.nii.gz``; the images and the ``Info_*.cfg`` files are not needed),
turns each into the square map the shape VAE is trained on (:func:`cardigan_utils.data.slices.case_slices`:
the whole sector resized to ``image_size``, one-hot linear resampling + argmax, rows = Y) and runs
``plausibility_report(maps, modality="echo", details=True)``, on the maps as they are (``raw``) and
after ``postprocess_masks`` (``cleaned``: the copy's labels were interpolated and rounded, which
leaves one-pixel seams of the label in between where labels 0|2, 0|3 and 1|3 meet, and argmax
resampling leaves specks where three labels meet; neither is anatomy). Reports, per size and
version: the pass rate of each check and of all of them together, and the percentiles of every
measure a bound applies to (where its check applies). Issue 19 derived
``PLAUSIBILITY_DEFAULTS["echo"]`` from the cleaned maps' numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

PERCENTILES = (0.1, 0.5, 1, 99, 99.5, 99.9)
"""The tails each bound is set beyond."""

VIEWS, PHASES = ("2CH", "4CH"), ("ED", "ES")


def camus_label_cases(data_dir: str | Path, *, split: str | None = None) -> list:
    """The ground-truth label maps of a CAMUS NIfTI folder as echo Cases (image = the label as float).

    Reads the ``_gt`` files with nibabel only: no images, no ``Info_*.cfg`` (derived copies such as
    CAMUS_224 have none).

    Args:
        data_dir: the folder that holds ``database_nifti/`` (and ``database_split/`` for ``split``).
        split: ``"training"`` or ``"validation"`` (patients listed in
            ``database_split/subgroup_<split>.txt``); None for every patient folder.

    Returns:
        One :class:`~cardigan_utils.data.case.Case` per patient, view and phase, in patient order.
    """
    import nibabel as nib

    from cardigan_utils.data.case import Case

    root = Path(data_dir)
    if split is None:
        patients = sorted(p.name for p in (root / "database_nifti").iterdir() if p.is_dir())
    else:
        patients = (root / "database_split" / f"subgroup_{split}.txt").read_text().split()
    cases = []
    for pid in patients:
        for view in VIEWS:
            for phase in PHASES:
                path = root / "database_nifti" / pid / f"{pid}_{view}_{phase}_gt.nii.gz"
                label = np.asarray(nib.load(path).dataobj).round().astype(np.uint8)
                label = label.reshape(*label.shape[:2], 1)
                cases.append(Case(image=label.astype(np.float32), label=label, spacing=(1.0, 1.0, 1.0),
                                  patient_id=pid, phase=phase, modality="echo", view=view, dataset="camus"))
    return cases


def vae_label_maps(cases: list, image_size: int) -> np.ndarray:
    """The label maps the shape VAE sees: each echo Case through ``case_slices`` at ``image_size``.

    Args:
        cases: echo Cases (one 2-D frame each).
        image_size: side of the square maps.

    Returns:
        uint8 (N, image_size, image_size), one map per case, in order.
    """
    from cardigan_utils.data.slices import case_slices

    return np.concatenate([case_slices(c, image_size=image_size).labels for c in cases])


def measures(report) -> dict:
    """Each measure behind a bound, over the maps where its check applies (as in ``_check_chunk``).

    Args:
        report: ``plausibility_report(..., modality="echo", details=True)``.

    Returns:
        ``{name: 1-D array}``: the areas of the present structures (``min_component_px``), the two
        ratios, ``lv_background_fraction`` (LV and MYO present).
    """
    from cardigan_utils.shapes.anatomy import PLAUSIBILITY_DEFAULTS

    min_px = PLAUSIBILITY_DEFAULTS["echo"]["min_component_px"]
    present = {s: report[f"area_{s}"].to_numpy() >= min_px for s in ("LV", "MYO", "LA")}
    out = {f"area_{s}": report[f"area_{s}"].to_numpy()[p] for s, p in present.items()}
    out["myo_lv_ratio"] = report["myo_lv_ratio"].to_numpy()[present["LV"] & present["MYO"]]
    out["la_lv_ratio"] = report["la_lv_ratio"].to_numpy()[present["LV"] & present["LA"]]
    out["lv_background_fraction"] = report["lv_background_fraction"].to_numpy()[present["LV"] & present["MYO"]]
    return out


def size_result(maps: np.ndarray) -> dict:
    """Pass rates and measure percentiles of one size's maps.

    Args:
        maps: uint8 (N, S, S) echo label maps.

    Returns:
        A JSON-ready dict: ``maps``, ``pass_rate`` ({check: share passing, ``valid`` = all checks}),
        ``percentiles`` ({measure: {min, the :data:`PERCENTILES`, max}}), ``check_s``.
    """
    from cardigan_utils.shapes import PLAUSIBILITY_CHECKS, plausibility_report

    t0 = time.perf_counter()
    report = plausibility_report(maps, modality="echo", details=True)
    check_s = time.perf_counter() - t0
    rates = {c: round(float(report[c].mean()), 5) for c in (*PLAUSIBILITY_CHECKS["echo"], "valid")}
    pct = {}
    for name, values in measures(report).items():
        if len(values):
            q = np.percentile(values, (0, *PERCENTILES, 100))
            pct[name] = dict(zip(["min", *(f"p{p:g}" for p in PERCENTILES), "max"], np.round(q, 4).tolist()))
    return {"maps": int(len(maps)), "pass_rate": rates, "percentiles": pct, "check_s": round(check_s, 2)}


def main(argv=None) -> int:
    from cardigan_utils.shapes import postprocess_masks

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("CARDIGAN_CAMUS_DIR"),
                   help="CAMUS folder with database_nifti/ (default: $CARDIGAN_CAMUS_DIR)")
    p.add_argument("--image-size", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--split", choices=("training", "validation"), default=None,
                   help="only the patients of database_split/subgroup_<split>.txt (default: every patient)")
    args = p.parse_args(argv)
    if not args.data_dir:
        p.error("give --data-dir or set CARDIGAN_CAMUS_DIR to a CAMUS folder (e.g. ../shared/data/CAMUS_224)")
    t0 = time.perf_counter()
    cases = camus_label_cases(args.data_dir, split=args.split)
    result = {"benchmark": "echo_plausibility", "data_dir": str(args.data_dir), "split": args.split,
              "patients": len({c.patient_id for c in cases}), "read_s": round(time.perf_counter() - t0, 2),
              "sizes": {}}
    for size in args.image_size:
        t1 = time.perf_counter()
        maps = vae_label_maps(cases, size)
        resize_s = round(time.perf_counter() - t1, 2)
        result["sizes"][str(size)] = {"resize_s": resize_s, "raw": size_result(maps),
                                      "cleaned": size_result(postprocess_masks(maps, modality="echo"))}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
