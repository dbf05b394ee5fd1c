#!/usr/bin/env python
"""Train the SPADE GAN on a dataset's slice cache, measure it and draw notebook 03's figures; one JSON line.

    .venv/bin/python benchmarks/spade_acdc.py --dataset acdc --image-size 128 --max-epochs 20 --run-dir runs/spade_acdc

Reports, on the held-out TEST patients' label maps (never seen in training): the per-class
intensity distance between real and generated images (Wasserstein-1 on [0, 1] intensities),
next to the same distance between two halves of the real test patients as a yardstick, and the
training speed. Figures (real vs generated, histograms, samples over training) go to
``<run-dir>/03_spade_gan/figures``. Resumable: run it again to continue.
"""

from __future__ import annotations

import json


def main(argv=None) -> int:
    import numpy as np
    import torch

    from _common import dataset_parser, prepare, spade_arguments, spade_result, train_spade_of
    from cardigan_utils.images import load_spade

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/spade_acdc")
    spade_arguments(p, batch_size=8, amp="on")
    args = p.parse_args(argv)
    device, cache = prepare(args)
    hist, train_s = train_spade_of(args, cache, device)
    from cardigan_utils import viz
    from cardigan_utils.metrics import intensity_distances

    generator = load_spade(f"{args.run_dir}/spade.pt", device=device)
    test = cache.indices("test")
    labels = np.ascontiguousarray(cache.labels[test])
    real = np.ascontiguousarray(cache.images[test])
    torch.manual_seed(args.seed)
    fake = generator.render(torch.from_numpy(labels))  # style codes from the global generator, seeded above
    names = ["RV", "MYO", "LV"] if cache.manifest["modality"] == "mri" else ["LV", "MYO", "LA"]
    names = ["background", *names]
    dist = intensity_distances(real, fake, labels, names=names)
    # yardstick: real against real, two halves of the test patients
    patients = cache.slices["patient_id"].to_numpy()[test]
    half = np.isin(patients, sorted(set(patients))[::2])
    yard = intensity_distances(real[half], real[~half], labels[half], labels_b=labels[~half], names=names)

    fig_dir = "03_spade_gan"
    viz.save_figure(viz.real_vs_generated(real[:: max(1, len(real) // 6)][:6], fake[:: max(1, len(real) // 6)][:6],
                                          labels[:: max(1, len(real) // 6)][:6], modality=cache.manifest["modality"]),
                    args.run_dir, fig_dir, "real_vs_generated")
    viz.save_figure(viz.intensity_histograms(real, fake, labels, names=names), args.run_dir, fig_dir, "histograms")
    viz.save_figure(viz.sample_progress(f"{args.run_dir}/spade_samples"), args.run_dir, fig_dir, "samples_over_training")
    viz.save_figure(viz.loss_curves(hist, columns=["d", "g_gan", "fm", "kl"]), args.run_dir, fig_dir, "losses")
    result = {
        **spade_result("spade", args, device, hist, train_s),
        "iterations": int(hist.epoch.max()) * (len(cache.indices("train")) // args.batch_size),
        "img_per_s_train": float(hist.img_per_s.median()),
        "test_slices": int(len(test)),
        "w1_real_vs_generated": {k: round(v, 4) for k, v in dist.items()},
        "w1_real_vs_real": {k: round(v, 4) for k, v in yard.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
