#!/usr/bin/env python
"""The segmentation study on a dataset with a trained VAE and SPADE: synthetic set, regimes, low-data verdict; one JSON line.

    .venv/bin/python benchmarks/vae_acdc.py --dataset acdc --image-size 128 --max-epochs 60 --run-dir runs/study_acdc
    .venv/bin/python benchmarks/spade_acdc.py ...   # or pass --spade to a SPADE checkpoint of the same cache
    .venv/bin/python benchmarks/study_acdc.py --dataset acdc --image-size 128 --run-dir runs/study_acdc \
        --spade runs/spade_acdc/spade.pt --regimes real+aug real+aug+synthetic --fractions 0.05 --seeds 0 1 2 3 4

1. Draws ``--n-synthetic`` plausible shapes from the VAE (``<run-dir>/vae.pt``) and renders them
   with SPADE (``--spade``, default ``<run-dir>/spade.pt``), as notebook 04 does.
2. Runs :func:`cardigan_utils.study.run_study` (notebook 05's runner) for the regimes, fractions and
   seeds given, every run the same number of steps, scored on the TEST patients and on phantom-mri
   patients of every scanner (out-of-domain).
3. Prints the paper-style table and ``real+aug+synthetic`` minus ``real+aug`` at the smallest
   fraction, paired by seed, with a 95 % t interval.

Resumable: the synthetic set and every finished run are kept; run it again to continue.
"""

from __future__ import annotations

import json
import time


def main(argv=None) -> int:
    from _common import dataset_parser, prepare
    from cardigan_utils import study
    from cardigan_utils.data import cache_dir
    from cardigan_utils.images import load_spade
    from cardigan_utils.shapes import load_vae
    from cardigan_utils.synthetic import generate_dataset, to_cache

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/study_acdc")
    p.add_argument("--vae", default=None, help="VAE checkpoint (default: <run-dir>/vae.pt)")
    p.add_argument("--spade", default=None, help="SPADE checkpoint (default: <run-dir>/spade.pt)")
    p.add_argument("--n-synthetic", type=int, default=2000)
    p.add_argument("--regimes", nargs="+", default=list(study.REGIMES), choices=study.REGIMES)
    p.add_argument("--fractions", nargs="+", type=float, default=[0.05])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--mix-ratio", type=float, default=1.0)
    p.add_argument("--max-epochs", type=int, default=10)
    p.add_argument("--steps-per-epoch", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-ood-patients", type=int, default=10)
    args = p.parse_args(argv)
    device, cache = prepare(args)
    modality = cache.manifest["modality"]

    t0 = time.perf_counter()
    vae = load_vae(args.vae or f"{args.run_dir}/vae.pt", device=device)
    generator = load_spade(args.spade or f"{args.run_dir}/spade.pt", device=device)
    set_dir = f"{args.run_dir}/synthetic/{args.dataset}_{args.image_size}"
    generate_dataset(vae, generator, out_dir=set_dir, n=args.n_synthetic, shard_size=500, seed=args.seed,
                     modality=modality, spacing_mm=float(cache.slices.spacing_mm.median()), filter_plausible=True,
                     progress_bar=False)
    synthetic = to_cache(set_dir, cache_dir(args.run_dir, f"synthetic-{args.dataset}", args.image_size),
                         dataset=f"synthetic-{args.dataset}", overwrite=True)
    generate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    domains = study.study_domains(cache, run_dir=args.run_dir, n_patients=args.n_ood_patients, seed=args.seed,
                                  progress=False)
    results = study.run_study(cache, synthetic, run_dir=args.run_dir, domains=domains, regimes=args.regimes,
                              fractions=args.fractions, seeds=args.seeds, mix_ratio=args.mix_ratio,
                              max_epochs=args.max_epochs, steps_per_epoch=args.steps_per_epoch,
                              batch_size=args.batch_size, device=device, progress_bar=False)
    results = results[results.regime.isin(args.regimes) & results.fraction.isin(args.fractions)
                      & results.seed.isin(args.seeds)]
    study_s = time.perf_counter() - t0
    print(study.paper_table(study.summary_table(results)).to_string())
    for line in study.describe_study(results):
        print("-", line)
    differences = study.low_data_differences(results, fraction=min(args.fractions))
    summary = study.summary_table(results)
    print(json.dumps({
        "dataset": args.dataset, "image_size": args.image_size, "device": str(device),
        "n_synthetic": int(len(synthetic)), "generate_s": round(generate_s, 1), "study_s": round(study_s, 1),
        "steps_per_run": args.max_epochs * args.steps_per_epoch, "batch_size": args.batch_size,
        "mean_dice": {f"{r.domain}|{r.fraction:g}|{r.regime}": [round(float(r.mean), 4), None if r.std != r.std else round(float(r.std), 4)]
                      for r in summary.itertuples()},
        "synthetic_minus_aug": differences,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
