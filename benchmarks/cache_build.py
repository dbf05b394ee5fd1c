#!/usr/bin/env python
"""Time loading a dataset into the slice cache; prints one JSON line.

    .venv/bin/python benchmarks/cache_build.py --dataset acdc --image-size 128      # all 100 ACDC patients
    .venv/bin/python benchmarks/cache_build.py --dataset phantom-mri --n-patients 40

The issue's target: all 100 ACDC training patients into the 128x128 cache in under a minute on
2 cores. For reference the same run also times the naive pipeline the kit replaced (resample
whole slices, then crop), so the gain of cropping first is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


def main(argv=None) -> int:
    import torch

    from cardigan_utils.data import build_cache, load_cases
    from cardigan_utils.data import slices as sl

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="acdc")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--n-patients", type=int, default=None)
    p.add_argument("--no-baseline", action="store_true", help="skip timing the whole-slice resampling baseline")
    args = p.parse_args(argv)
    n = args.n_patients or (40 if args.dataset.startswith("phantom") else None)

    t0 = time.perf_counter()
    cases = load_cases(args.dataset, data_dir=args.data_dir, n_patients=n, progress=False)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = build_cache(cases, os.path.join(tmp, "c"), image_size=args.image_size, progress=False)
    t2 = time.perf_counter()
    result = {
        "benchmark": "cache_build",
        "dataset": args.dataset,
        "image_size": args.image_size,
        "n_patients": int(cache.cases.patient_id.nunique()),
        "n_slices": len(cache),
        "read_s": round(t1 - t0, 2),
        "build_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if not args.no_baseline and cases[0].modality == "mri":
        # Baseline: resample whole slices at the source size, then crop (what the kit did first).
        t3 = time.perf_counter()
        for c in cases:
            img = sl.normalise_intensity(c.image).transpose(2, 1, 0)
            lab = c.label.transpose(2, 1, 0)
            target = sl.DEFAULT_FOV_MM["mri"] / args.image_size
            sl.resample_slices(img, lab, (c.spacing[1] / target, c.spacing[0] / target))
        result["baseline_build_s"] = round(time.perf_counter() - t3, 2)
        result["speedup_vs_baseline"] = round(result["baseline_build_s"] / max(result["build_s"], 1e-9), 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
