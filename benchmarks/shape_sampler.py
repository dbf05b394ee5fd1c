#!/usr/bin/env python
"""The shape sampler of a trained VAE: validity, warping, speed and closeness to real shapes; one JSON line.

    .venv/bin/python benchmarks/shape_sampler.py --vae runs/vae_acdc/vae.pt

Reports (issue 21): the share of anatomically valid shapes among draws from the fitted Gaussian
and from the kernel density (before any filter), the stats of ``sample_valid_shapes`` with warping
(valid after warping, draws per accepted shape) and the time it takes for ``--n`` valid shapes,
and the closeness of those shapes to the real TEST slices of the VAE's cache (area and area-ratio
W1 distances against the real-train yardstick, slice-level shares, diversity, novelty). A
checkpoint from before the kernel density (or ``--bandwidth`` given) gets its density fitted here
on the cache's training codes (not saved); ``--bandwidth valid`` refits it and narrows it by the
rule ``train_vae`` applies (:func:`~cardigan_utils.shapes.calibrate_bandwidth`, ``--target``).
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> int:
    import numpy as np
    import torch

    from cardigan_utils.checkpoint import read_config
    from cardigan_utils.config import get_device
    from cardigan_utils.data import load_cache
    from cardigan_utils.shapes import (anatomy, calibrate_bandwidth, closeness_report, encode_cache, load_vae, plausibility_report,
                                      sample_valid_shapes)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vae", default="runs/vae_acdc/vae.pt")
    p.add_argument("--cache", default=None, help="slice cache of real shapes (default: the one the VAE trained on)")
    p.add_argument("--n", type=int, default=10_000, help="valid shapes to draw")
    p.add_argument("--n-check", type=int, default=3000, help="draws per prior for the valid fractions")
    p.add_argument("--bandwidth", default=None, help="refit the KDE: scott, silverman, cv, valid (cv, then "
                   "narrowed to the widest width with --target valid draws) or a number")
    p.add_argument("--target", type=float, default=0.95, help="valid share of --bandwidth valid")
    p.add_argument("--steps", type=int, default=5, help="bisection steps of the warping")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--autocast", action="store_true", help="decode under bf16 autocast")
    p.add_argument("--max-queries", type=int, default=1000, help="shapes scored for novelty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    device = get_device(args.device)
    model = load_vae(args.vae, device=device)
    config = read_config(args.vae, kind="vae")
    cache = load_cache(args.cache or config["data"]["cache"])
    modality = cache.manifest["modality"]
    train = np.asarray(cache.labels[cache.indices("train")])
    test_idx = cache.indices("test")
    test = np.asarray(cache.labels[test_idx])
    refit = not model.has_density or args.bandwidth is not None
    if refit:
        bandwidth = args.bandwidth or "cv"
        bandwidth = float(bandwidth) if bandwidth[0].isdigit() else bandwidth
        model.fit_density(torch.from_numpy(encode_cache(model, cache, split="train").mu),
                          bandwidth="cv" if bandwidth == "valid" else bandwidth)
    calibration = None
    if args.bandwidth == "valid":
        t0 = time.perf_counter()
        calibration = calibrate_bandwidth(model, modality=modality, target=args.target, seed=args.seed,
                                          batch_size=args.batch_size, autocast=args.autocast)
        calibration = {**calibration.as_config(), "seconds": round(time.perf_counter() - t0, 2)}

    def valid_fraction(prior: str) -> float:
        gen = torch.Generator(device=device).manual_seed(args.seed)
        maps = model.decode_labels(model.sample_codes(args.n_check, generator=gen, prior=prior), batch_size=args.batch_size,
                                   autocast=args.autocast)
        return round(float(plausibility_report(maps.cpu().numpy(), modality=modality)["valid"].mean()), 4)

    result = {
        "benchmark": "shape_sampler",
        "vae": args.vae,
        "dataset": cache.manifest["dataset"],
        "image_size": model.config["image_size"],
        "device": str(device),
        "threads": torch.get_num_threads(),
        "autocast": args.autocast,
        "density_refit": refit,
        "kde_codes": len(model.density_codes),
        "kde_bandwidth": round(float(model.density_bandwidth), 4),
        "calibration": calibration,
        "n_check": args.n_check,
        "valid_fraction_standard": valid_fraction("standard"),
        "valid_fraction_gaussian": valid_fraction("fitted"),
        "valid_fraction_kde": valid_fraction("kde"),
        "real_test_valid_fraction": round(float(plausibility_report(test, modality=modality)["valid"].mean()), 4),
    }
    sample_valid_shapes(model, 64, modality=modality, seed=args.seed, batch_size=args.batch_size, autocast=args.autocast)  # warm-up
    for warp in (True, False):
        t0 = time.perf_counter()
        labels, stats = sample_valid_shapes(model, args.n, modality=modality, seed=args.seed, warp=warp, steps=args.steps,
                                            batch_size=args.batch_size, autocast=args.autocast)
        seconds = time.perf_counter() - t0
        key = "warp" if warp else "reject"
        result[f"{key}_seconds_for_n"] = round(seconds, 2)
        result.update({f"{key}_{k}": (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items() if k != "seconds"})
        if warp:
            generated = labels
    result["n"] = args.n
    levels = hasattr(anatomy, "slice_level")
    phases = cache.slices["phase"].to_numpy()[test_idx] if "phase" in cache.slices else None
    report = closeness_report(generated, test, train, modality=modality, test_phases=phases, slice_levels=levels,
                              max_queries=args.max_queries, seed=args.seed)
    for row in report["measures"].itertuples():
        result[f"w1_{row.measure}_generated_test"] = round(row.w1_generated_test, 4)
        result[f"w1_{row.measure}_train_test"] = round(row.w1_train_test, 4)
    if "slice_levels" in report:
        for row in report["slice_levels"].itertuples():
            result[f"share_{row.level}_{row.set}"] = round(row.share, 4)
    else:
        result["slice_levels"] = "anatomy.slice_level is not in this branch yet"
    for row in report["summary"].itertuples():
        result[f"diversity_{row.set}"] = round(row.diversity, 4)
        if row.set != "train":
            result[f"nearest_train_dice_{row.set}"] = round(row.nearest_train_dice, 4)
            result[f"copy_share_{row.set}"] = round(row.copy_share, 4)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
