#!/usr/bin/env python
"""Train the shape VAE on a dataset's slice cache and measure what issue 4 asks; one JSON line.

    .venv/bin/python benchmarks/vae_acdc.py --dataset acdc --image-size 128 --max-epochs 100 --run-dir runs/vae_acdc

Reports: reconstruction Dice per class on the held-out TEST patients (never seen in training or
model selection), the anatomical validity of N random samples (fitted prior; the standard normal
and post-processing separately; the real training slices under the same checks as a yardstick),
and the time to sample N shapes on this machine. Resumable: run it again to continue.
"""

from __future__ import annotations

import json
import time


def main(argv=None) -> int:
    import numpy as np
    import torch

    from _common import dataset_parser, prepare
    from cardigan_utils.shapes import (evaluate_vae, load_vae, plausibility_report, plausibility_summary,
                                       postprocess_masks, train_vae)

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/vae_acdc")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta", type=float, default=1e-3)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--n-samples", type=int, default=10_000)
    args = p.parse_args(argv)
    device, cache = prepare(args)
    t0 = time.perf_counter()
    hist = train_vae(cache, run_dir=args.run_dir, latent_dim=args.latent_dim, max_epochs=args.max_epochs,
                     batch_size=args.batch_size, lr=args.lr, beta=args.beta, device=device, seed=args.seed)
    train_s = time.perf_counter() - t0
    model = load_vae(f"{args.run_dir}/vae.pt", device=device)
    test = torch.from_numpy(np.ascontiguousarray(cache.labels[cache.indices("test")]))
    names = ["RV", "MYO", "LV"] if cache.manifest["modality"] == "mri" else ["LV", "MYO", "LA"]
    scores = evaluate_vae(model, test, beta=args.beta, names=names)

    gen = torch.Generator(device=device).manual_seed(args.seed)
    model.sample(64, generator=gen)  # warm-up
    t1 = time.perf_counter()
    samples = model.sample(args.n_samples, generator=gen).cpu().numpy()
    sample_s = time.perf_counter() - t1
    result = {
        "benchmark": "vae",
        "dataset": args.dataset,
        "image_size": args.image_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": int(hist.epoch.max()),
        "best_epoch": json.loads(open(f"{args.run_dir}/vae.json").read())["epoch"],
        "train_s_this_call": round(train_s, 1),
        "test_patients": cache.manifest["patients"]["test"],
        "test_slices": int(len(test)),
        **{k.replace("val_", "test_"): round(v, 4) for k, v in scores.items()},
        "n_samples": args.n_samples,
        "sample_s": round(sample_s, 2),
    }
    modality = cache.manifest["modality"]

    def valid(masks, **kw):
        return round(plausibility_summary(plausibility_report(masks, modality=modality, **kw))["valid_fraction"], 4)

    real = np.asarray(cache.labels[cache.indices("train")])
    result.update({
        "valid_fraction": valid(samples),
        "valid_fraction_myo_required": valid(samples, require=("MYO",)),
        "valid_fraction_postprocessed": valid(postprocess_masks(samples, modality=modality)),
        "valid_fraction_standard_prior": valid(model.sample(args.n_samples, generator=gen, prior="standard").cpu().numpy()),
        "real_train_valid_fraction": valid(real),
        "real_train_valid_fraction_myo_required": valid(real, require=("MYO",)),
    })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
