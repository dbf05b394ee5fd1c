#!/usr/bin/env python
"""Time every notebook at the `lab` profile against the classroom budget; prints one JSON line.

    CARDIGAN_PROGRESS=0 .venv/bin/python benchmarks/lab_profile.py --run-dir runs/lab_bench
    CARDIGAN_PROGRESS=0 .venv/bin/python benchmarks/lab_profile.py --run-dir runs/lab_bench_fp32 --no-bf16

A lab slot gives each notebook 10 minutes of computation on a 2-core laptop CPU. The teacher
notebooks run as committed, so the exercises' own training (notebook 02's second VAE, notebook
03's GAN without feature matching) is counted. ``--no-bf16`` turns bf16 autocast off
(``CARDIGAN_BF16=0``) to time a laptop whose CPU has no native bf16, where the kit runs in float32.
Each notebook's visible result is read back from its ``metrics.json``. There is no library
baseline to compare with here: the budget is the yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def visible_result(run_dir: Path, notebook: str) -> dict:
    """The figures a student sees at the end of a notebook, from its ``metrics.json``.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"02_shape_vae"``.

    Returns:
        A few headline numbers (empty when the notebook wrote no metrics).
    """
    from cardigan_utils.runs import read_metrics

    try:
        m = read_metrics(run_dir, notebook)
    except FileNotFoundError:
        return {}
    keys = {
        "01_datasets": ("n_patients", "n_slices"),
        "02_shape_vae": ("recon_dice_val_mean", "valid_fraction"),
        "03_spade_gan": ("w1_foreground_mean", "img_per_s"),
        "04_generate": ("n_synthetic", "plausible_fraction_of_drawn"),
        "05_segmentation": ("mean_dice", "low_data_synthetic_minus_aug"),
    }.get(notebook, ())
    return {k: m[k] for k in keys if k in m}


def main(argv=None) -> dict:
    from cardigan_utils.config import PROFILES
    from cardigan_utils.notebook import run_sequence

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="lab", choices=sorted(PROFILES))
    p.add_argument("--dataset", default="phantom-mri")
    p.add_argument("--run-dir", default="runs/lab_bench")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 01 02")
    p.add_argument("--budget-s", type=float, default=600.0, help="seconds allowed per notebook")
    p.add_argument("--no-bf16", action="store_true", help="bf16 autocast off (a CPU without native bf16)")
    args = p.parse_args(argv)

    if args.no_bf16:
        os.environ["CARDIGAN_BF16"] = "0"  # inherited by the notebooks' kernels
    import torch

    from cardigan_utils.config import get_device, use_bf16

    run_dir = Path(args.run_dir).resolve()
    t0 = time.perf_counter()
    done = run_sequence(run_dir, profile=args.profile, dataset=args.dataset, seed=args.seed, only=args.only, log=lambda line: None)
    notebooks = {Path(d["notebook"]).stem: {"seconds": d["seconds"], "fits": d["seconds"] <= args.budget_s,
                                            "result": visible_result(run_dir, Path(d["notebook"]).stem)} for d in done}
    result = {
        "profile": args.profile, "dataset": args.dataset, "budget_s": args.budget_s,
        "all_fit": all(n["fits"] for n in notebooks.values()),
        "total_s": round(time.perf_counter() - t0, 1), "notebooks": notebooks,
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "bf16": use_bf16(get_device(None)),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    raise SystemExit(0 if main()["all_fit"] else 1)
