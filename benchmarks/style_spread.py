#!/usr/bin/env python
"""Do generated images vary as much as real ones? Style priors against the real test patients; one JSON line.

    .venv/bin/python benchmarks/style_spread.py --dataset phantom-mri --n-patients 40 --image-size 64 \\
        --run-dir runs/style_phantom64
    CARDIGAN_ACDC_DIR=../shared/data/ACDC/training .venv/bin/python benchmarks/style_spread.py \\
        --dataset acdc --image-size 128 --run-dir runs/style_acdc128

Trains the SPADE GAN (quick profile widths, 20 epochs; resumable, and a finished run is only
given its style density), then renders the held-out TEST patients' label maps once each with
style codes from every prior and compares the images with the real test images:

- ``spread``: per class, the spread (std across images) of the per-image mean intensity, noise
  and bias field (:func:`cardigan_utils.metrics.appearance_table`), generated / real; issue 22's
  target is a per-class ratio of the means' spreads in [0.75, 1.25];
- ``w1``: the per-tissue Wasserstein-1 distance of the pooled intensities
  (:func:`cardigan_utils.metrics.intensity_distances`).

``ratio_vs_train`` compares the same generated images with the real TRAINING images instead: the
spread the density learnt from (the test split holds few patients, so its own spread is noisy;
``real_test_vs_train_ratio`` and ``real_halves_ratio`` say how noisy).

Priors: ``standard`` (N(0, I)), ``kde`` (the checkpoint's density, as ``train_spade`` fitted it),
``fitted`` (its Gaussian), ``kde_h<width>`` (the density refitted with another kernel width, for
``--bandwidths``) and ``encoded`` (each test image's own style code: the most the generator can
do with the right code). ``real_halves`` is the yardstick: half the real test patients against the
other half. Tables and a figure go to ``<run-dir>/style_spread/``.

``fidelity``: FID, KID and MS-SSIM diversity of the ``kde`` images against the real test images
in the features of the kit's own U-Net (:func:`cardigan_utils.synthetic.judge_synthetic`), next to
the real training images' values; ``--features-dir`` shares that U-Net between runs so that two
GANs (e.g. ``--modulation-kernel 3 --no-block-modulation``, the paper's modulation, against the
kit's) are judged in the same features.

``extrapolation``: the spread ratios of the ``kde`` styles moved ``--extrapolations`` times farther
from the centre of the real styles (issue 23: appearances beyond the training scanner's).
"""

from __future__ import annotations

import json
from pathlib import Path


def main(argv=None) -> dict:
    import numpy as np
    import torch

    from _common import dataset_parser, prepare, spade_arguments, spade_result, train_spade_of
    from cardigan_utils import viz
    from cardigan_utils.images import load_spade
    from cardigan_utils.labels import LABELS
    from cardigan_utils.metrics import appearance_table, intensity_distances, spread_comparison
    from cardigan_utils.networks.density import CodeDensity
    from cardigan_utils.synthetic import extrapolation_spread, feature_network, judge_synthetic

    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/style_spread")
    spade_arguments(p, batch_size=16, amp="auto")
    p.add_argument("--bandwidths", nargs="*", default=["scott", "0.25", "0.5"],
                   help="other kernel widths to refit the density with (cv, scott, silverman or numbers)")
    p.add_argument("--features-dir", default=None, help="where the feature U-Net is kept (default: --run-dir)")
    p.add_argument("--feature-steps", type=int, default=None, help="training batches of the feature U-Net (default: the kit's)")
    p.add_argument("--extrapolations", type=float, nargs="*", default=[1.0, 1.5, 2.0, 3.0],
                   help="style extrapolation factors to render the test label maps with (issue 23)")
    args = p.parse_args(argv)
    device, cache = prepare(args)
    hist, train_s = train_spade_of(args, cache, device)
    generator = load_spade(f"{args.run_dir}/spade.pt", device=device)
    modality = cache.manifest["modality"]
    names = [LABELS[modality][k] for k in sorted(LABELS[modality])]
    test = np.sort(cache.indices("test"))
    labels, real = np.array(cache.labels[test]), np.array(cache.images[test])
    real_table = appearance_table(real, labels, names=names)
    train = np.sort(cache.indices("train"))
    train_table = appearance_table(np.array(cache.images[train]), np.array(cache.labels[train]), names=names)

    def widths():
        for width in args.bandwidths:
            try:
                yield float(width)
            except ValueError:
                yield width

    train_codes = generator.density.codes.clone()
    styles = {prior: generator.sample_styles(len(test), seed=args.seed, prior=prior)
              for prior in ("standard", "kde", "fitted")}
    for width in widths():
        density = CodeDensity(dim=generator.style_dim)
        h = density.fit(train_codes, bandwidth=width, seed=args.seed)
        styles[f"kde_h{h:.3g}"] = density.sample(len(test), generator=torch.Generator().manual_seed(args.seed))
    styles["encoded"] = generator.encode_styles(real)

    def rounded(values, digits):
        return {k: round(float(v), digits) for k, v in dict(values).items()}

    out_dir = Path(args.run_dir) / "style_spread"
    out_dir.mkdir(parents=True, exist_ok=True)
    priors, tables = {}, {}
    for prior, z in styles.items():
        fake = generator.render(labels, styles=z)
        tables[prior] = appearance_table(fake, labels, names=names)
        comparison = spread_comparison(real_table, tables[prior])
        comparison.round(5).to_csv(out_dir / f"spread_{prior}.csv")
        priors[prior] = {
            "ratio": rounded(comparison["ratio"], 3),
            "ratio_vs_train": rounded(spread_comparison(train_table, tables[prior])["ratio"], 3),
            "generated_spread": rounded(comparison["generated_spread"], 4),
            "generated_median": rounded(comparison["generated_median"], 4),
            "w1": rounded(intensity_distances(real, fake, labels, names=names), 4),
            "means_within_25pct": {n: bool(0.75 <= comparison.loc[f"mean_{n}", "ratio"] <= 1.25) for n in names},
        }
    patients = cache.slices["patient_id"].to_numpy()[test]
    half = np.isin(patients, sorted(set(patients))[::2])
    yard = spread_comparison(appearance_table(real[half], labels[half], names=names),
                             appearance_table(real[~half], labels[~half], names=names))
    steps = {"steps": args.feature_steps} if args.feature_steps else {}
    model = feature_network(args.features_dir or args.run_dir, cache, seed=args.seed, device=device, **steps)
    fidelity, _ = judge_synthetic(generator.render(labels, styles=styles["kde"]), cache, model=model, seed=args.seed)
    widened, _ = extrapolation_spread(generator, labels, real_table=real_table, names=names, seed=args.seed,
                                      factors=args.extrapolations)
    shown = {"real": real_table, "N(0, I) styles": tables["standard"], "density styles": tables["kde"],
             "encoded styles": tables["encoded"]}
    viz.save_figure(viz.appearance_spread(shown, names=names), args.run_dir, "style_spread", "per_image_means")
    result = {
        **spade_result("style_spread", args, device, hist, train_s),
        "style_density": generator.config.get("style_density"),
        "test_slices": int(len(test)),
        "real_spread": rounded(spread_comparison(real_table, real_table)["real_spread"], 4),
        "real_median": rounded(real_table.median(), 4),
        "real_halves_ratio": rounded(yard["ratio"], 3),
        "real_train_spread": rounded(spread_comparison(train_table, train_table)["real_spread"], 4),
        "real_test_vs_train_ratio": rounded(spread_comparison(train_table, real_table)["ratio"], 3),
        "w1_real_vs_real": rounded(intensity_distances(real[half], real[~half], labels[half], labels_b=labels[~half],
                                                       names=names), 4),
        "priors": priors,
        "fidelity": {k: rounded(v, 4) for k, v in fidelity.to_dict().items()},
        "feature_dim": fidelity.attrs["feature_dim"],
        "extrapolation": {f"{factor:g}": rounded(row, 3) for factor, row in widened.iterrows()},
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
