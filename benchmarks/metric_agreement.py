#!/usr/bin/env python
"""Which fidelity metric ranks one GAN's snapshots as synthetic-only U-Nets on real patients do? One JSON line.

    .venv/bin/python benchmarks/metric_agreement.py --run-dir runs/metric_agreement
    .venv/bin/python benchmarks/metric_agreement.py --profile smoke --epochs 1 2 3 --seeds 0 --n-synthetic 200 \\
        --run-dir /tmp/agreement_smoke      # end to end in a few minutes (numbers meaningless)

Issue 22: FID / KID in the kit's features, per-tissue W1 and MS-SSIM, next to the downstream test
that matters most, a U-Net trained on synthetic images only and tested on real patients, so that
a user sees which metric agrees with it.

1. The slice cache (``--dataset``, default ``phantom-mri``; sizes of ``--profile``, default
   ``quick``; built as every training benchmark builds it, :func:`_common.prepare`: a phantom's
   patients cycle through all its scanners, where notebook 01 takes scanners A and B), the shape
   VAE (the profile's ``vae`` section) and ONE SPADE GAN (its ``spade``
   section), trained with ``resume=True`` up to each of ``--epochs`` in turn; after each stage
   ``spade.pt`` and ``spade.json`` are copied to ``snapshots/epoch_NNNN/``: the snapshots are
   one GAN's history. A rerun reuses the snapshots (and everything below) already made.
2. Per snapshot: a synthetic set of ``--n-synthetic`` pairs (:func:`cardigan_utils.synthetic.generate_dataset`,
   the profile's ``generate`` section: VAE shapes, filtered as notebook 04 does, rendered by the
   snapshot; the same ``--seed``, hence the same shapes, for every snapshot), its slice cache, and
   - ``fid``, ``kid``, ``ms_ssim``: :func:`cardigan_utils.synthetic.judge_synthetic` against the real
     TEST slices, in the features of the kit's U-Net (:func:`~cardigan_utils.synthetic.feature_network`,
     ``--feature-steps``); ``ms_ssim`` is the set's MS-SSIM diversity (lower: more varied) and
     ``ms_ssim_gap`` its distance to the real training slices' own diversity (the kit's MS-SSIM
     compares images within one set, not generated with real);
   - ``w1_<class>``: :func:`cardigan_utils.metrics.intensity_distances` of the synthetic set's
     pooled intensities against the real test slices', per class; ``w1_mean`` their mean;
   - ``dice``: the study's ``synthetic`` regime (:func:`cardigan_utils.study.run_study`, the
     profile's ``segment`` section, every real training patient's worth of synthetic slices),
     one U-Net per ``--seeds`` seed, mean foreground Dice on the real test patients, averaged
     over seeds (``dice_sd``: their standard deviation).
3. :func:`cardigan_utils.synthetic.metric_agreement`: per metric, the Spearman rank correlation of
   the snapshots' metric with their Dice, sign-corrected (+1: the metric orders the snapshots
   exactly as the downstream Dice does; FID, KID, W1 and the MS-SSIM gap are read as lower is better,
   ``ms_ssim`` as lower is better too: more diverse).

Written to ``<run-dir>/metric_agreement/``: ``snapshots.csv``, ``agreement.csv`` and
``figures/metrics_vs_dice.png``; both tables are printed as markdown, then one JSON line.
``yardstick`` in the JSON: the same measures of the real TRAINING slices against the real test
slices (what two sets of real patients score).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from _common import dataset_parser, prepare
from cardigan_utils import viz
from cardigan_utils.checkpoint import read_config
from cardigan_utils.cli import train_parameters
from cardigan_utils.config import PROFILES, profile_params, progress, progress_enabled
from cardigan_utils.data.cache import cache_spacing
from cardigan_utils.images import load_generator, train_spade
from cardigan_utils.labels import LABELS
from cardigan_utils.loop import last_path
from cardigan_utils.metrics import intensity_distances
from cardigan_utils.runs import (atomic_path, cache_dir, model_path, synthetic_cache_name, synthetic_dir,
                                 write_csv_atomic, write_text_atomic)
from cardigan_utils.shapes import load_vae, train_vae
from cardigan_utils.study import run_study, summary_table
from cardigan_utils.synthetic import (feature_network, generate_dataset, generation_parameters, judge_synthetic,
                                      metric_agreement, to_cache)

DEFAULT_EPOCHS = (2, 5, 10, 20)

FIXED_METRICS = {"fid": False, "kid": False, "ms_ssim": False, "ms_ssim_gap": False}
"""``{column: higher_is_better}`` of the snapshot table, in the order shown; ``w1_<class>`` and ``w1_mean`` follow."""

SEGMENT_SETTINGS = ("mix_ratio", "max_epochs", "batch_size", "steps_per_epoch", "channels")
"""The ``segment`` parameters of the profile that the synthetic-only U-Nets are trained with."""


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (index included), numbers to 4 significant digits.

    Args:
        table: the DataFrame.

    Returns:
        The table's text.
    """
    frame = table.reset_index()

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def metrics_vs_dice(table: pd.DataFrame, agreement: pd.DataFrame, *, downstream: str = "dice"):
    """One panel per metric: each snapshot's metric value against its downstream Dice, labelled by epoch.

    Args:
        table: the snapshot table (``epoch``, ``downstream``, the metrics; ``<downstream>_sd``: error bars).
        agreement: :func:`~cardigan_utils.synthetic.metric_agreement` of it (its index: the metrics shown).
        downstream: the downstream column.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    names = list(agreement.index)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    err = table[f"{downstream}_sd"] if f"{downstream}_sd" in table else None
    for ax, name in zip(axes.flat, names):
        ax.errorbar(table[name], table[downstream], yerr=err, fmt="o-", ms=4, capsize=2)
        for _, row in table.iterrows():
            ax.annotate(f"{int(row['epoch'])}", (row[name], row[downstream]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        value = agreement.loc[name, "agreement"]
        shown = "n/a" if np.isnan(value) else f"{value:+.2f}"
        ax.set_title(f"{name} ({agreement.loc[name, 'better']} better): {shown}", fontsize=9)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel(f"synthetic-only {downstream} (real test)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("one GAN's snapshots (labels and line: epoch order); title: agreement with the Dice ranking "
                 "(+1 = same order)", fontsize=9)
    fig.tight_layout()
    return fig


def w1_columns(distances: dict[str, float]) -> dict[str, float]:
    """``w1_<class>`` and ``w1_mean`` (over the classes) of :func:`~cardigan_utils.metrics.intensity_distances`.

    Args:
        distances: ``{class name: W1}``.

    Returns:
        The table columns.
    """
    return {**{f"w1_{k}": float(v) for k, v in distances.items()}, "w1_mean": float(np.nanmean(list(distances.values())))}


def parse(argv=None) -> argparse.Namespace:
    """The arguments, with the profile's values filled in where none was given.

    Args:
        argv: the command line (None: ``sys.argv``).

    Returns:
        The arguments, plus ``epochs`` sorted and unique, ``generate`` (the profile's ``generate``
        parameters, ``--n-synthetic`` on top), ``segment`` (its ``segment`` parameters, ``--seeds``
        on top) and ``feature_steps``, ``image_size``, ``n_patients`` resolved.
    """
    p = dataset_parser(__doc__.splitlines()[0], run_dir="runs/metric_agreement")
    p.set_defaults(dataset="phantom-mri", image_size=None)
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="sizes of the cache, VAE, GAN, synthetic set and U-Nets (smoke: a tiny end-to-end run)")
    p.add_argument("--epochs", type=int, nargs="+", default=list(DEFAULT_EPOCHS),
                   help="GAN epochs to keep a snapshot at (at least 3; one GAN trained on through them)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="U-Net seeds per snapshot (default: the profile's)")
    p.add_argument("--n-synthetic", type=int, default=None, help="pairs per snapshot's set (default: the profile's)")
    p.add_argument("--feature-steps", type=int, default=None,
                   help="training batches of the feature U-Net (default: the profile's)")
    args = p.parse_args(argv)
    args.epochs = sorted(set(args.epochs))
    if len(args.epochs) < 3 or args.epochs[0] < 1:
        p.error(f"--epochs needs at least 3 different epochs >= 1 (a rank agreement of fewer says nothing), "
                f"got {args.epochs}")
    common = profile_params(args.profile, image_size=args.image_size, n_patients=args.n_patients)
    args.image_size, args.n_patients = common["image_size"], common["n_patients"]
    args.generate = generation_parameters(args.profile, image_size=args.image_size,
                                          overrides={"n_synthetic": args.n_synthetic})
    args.segment = profile_params(args.profile, stage="segment", image_size=args.image_size, seeds=args.seeds)
    args.feature_steps = args.feature_steps or args.generate["feature_steps"]
    return args


def copy_snapshot(run_dir: Path, snapshot: Path) -> None:
    """Copy the run's ``spade.json`` and ``spade.pt`` into ``snapshot`` (the ``.pt`` last: it marks a finished copy).

    Args:
        run_dir: the run directory the GAN trains in.
        snapshot: the snapshot folder.
    """
    source = model_path(run_dir, "spade")
    for path in (source.with_suffix(".json"), source):
        with atomic_path(snapshot / path.name) as tmp:
            shutil.copyfile(path, tmp)


def train_snapshots(cache, *, run_dir: Path, epochs: list[int], profile: str, seed: int, device,
                    progress_bar: bool) -> dict[int, Path]:
    """Train one SPADE GAN up to each epoch in turn (resumed), keeping ``snapshots/epoch_NNNN/`` after each.

    Args:
        cache: the real slice cache.
        run_dir: the run directory (the GAN trains there, as notebook 03's does).
        epochs: sorted epochs to keep.
        profile: whose ``spade`` parameters.
        seed: the GAN's seed.
        device: the device.
        progress_bar: bars while training.

    Returns:
        ``{epoch: snapshot folder}``; snapshots already there are kept as they are.

    Raises:
        SystemExit: a snapshot is missing for an epoch the GAN has already passed.
    """
    snapshots = {epoch: run_dir / "snapshots" / f"epoch_{epoch:04d}" for epoch in epochs}
    for epoch, snapshot in snapshots.items():
        if (snapshot / "spade.pt").exists():
            continue
        last = last_path(run_dir, "spade")
        trained = int(read_config(last, kind="spade")["epoch"]) if last.exists() else 0
        if trained > epoch:
            raise SystemExit(f"the GAN in {run_dir} has trained {trained} epochs, past {epoch}, and keeps no snapshot "
                             f"of epoch {epoch}: use a new --run-dir (or epochs above {trained})")
        _log(f"SPADE GAN: epochs {trained} -> {epoch}")
        train_spade(cache, run_dir=run_dir, device=device, seed=seed, progress_bar=progress_bar, resume=True,
                    **{**train_parameters("spade", profile=profile), "max_epochs": epoch})
        copy_snapshot(run_dir, snapshot)
    return snapshots


def measure_snapshot(snapshot: Path, *, epoch: int, cache, vae, vae_path: Path, features, args,
                     device) -> tuple[dict, pd.DataFrame]:
    """A snapshot's synthetic set, its fidelity metrics against the real test slices and its synthetic-only Dice.

    Args:
        snapshot: the snapshot folder (``spade.pt``); the set, its cache and the U-Nets go there.
        epoch: the snapshot's GAN epoch.
        cache: the real slice cache.
        vae: the shape VAE.
        vae_path: its checkpoint (recorded in the set's manifest).
        features: the feature U-Net (:func:`~cardigan_utils.synthetic.feature_network`).
        args: :func:`parse`'s arguments.
        device: the device.

    Returns:
        ``(row, fidelity)``: the snapshot's row of the table, and the table of
        :func:`~cardigan_utils.synthetic.judge_synthetic` (its ``real train`` column: the yardstick).

    Raises:
        SystemExit: the snapshot was measured before with other settings.
    """
    gen, seg = args.generate, args.segment
    dataset, size, modality = args.dataset, int(args.image_size), cache.manifest["modality"]
    names = [LABELS[modality][k] for k in sorted(LABELS[modality])]
    seeds = [int(s) for s in seg["seeds"]]
    settings = {"profile": args.profile, "dataset": dataset, "image_size": size, "seed": args.seed,
                "generate": {k: gen[k] for k in ("n_synthetic", "shard_size", "filter_plausible", "style_extrapolation")},
                "segment": {k: list(seg[k]) if isinstance(seg[k], (list, tuple)) else seg[k] for k in SEGMENT_SETTINGS}}
    measured = snapshot / "measured_with.json"  # the set and U-Nets below were made with these settings
    if measured.exists() and json.loads(measured.read_text()) != settings:
        raise SystemExit(f"{snapshot} was measured with other settings than {json.dumps(settings)} (see {measured}): "
                         "use a new --run-dir (the snapshots' spade.pt and spade.json can be copied over)")
    write_text_atomic(measured, json.dumps(settings, indent=1))
    generator = load_generator(snapshot / "spade.pt", device=device)
    set_dir = generate_dataset(vae, generator, out_dir=synthetic_dir(snapshot, dataset, size), n=gen["n_synthetic"],
                               shard_size=gen["shard_size"], seed=args.seed, modality=modality,
                               spacing_mm=cache_spacing(cache), filter_plausible=gen["filter_plausible"],
                               batch_size=gen["render_batch_size"], progress_bar=progress_enabled(), overwrite=True,
                               style_extrapolation=gen["style_extrapolation"],
                               extra={"vae": str(vae_path), "spade": str(snapshot / "spade.pt"),
                                      "source_dataset": dataset, "gan_epoch": epoch})
    name = synthetic_cache_name(dataset)
    synthetic = to_cache(set_dir, cache_dir(snapshot, name, size), dataset=name, overwrite=True)
    images, labels = np.asarray(synthetic.images), np.asarray(synthetic.labels)
    fidelity, _ = judge_synthetic(images, cache, model=features, seed=args.seed)
    test = np.sort(cache.indices("test"))
    w1 = intensity_distances(np.asarray(cache.images[test]), images, np.asarray(cache.labels[test]), labels_b=labels,
                             names=names, seed=args.seed)
    results = run_study(cache, synthetic, run_dir=snapshot, domains={"in-domain": (cache, test)}, regimes=["synthetic"],
                        fractions=[1.0], seeds=seeds, mix_ratio=seg["mix_ratio"], max_epochs=seg["max_epochs"],
                        batch_size=seg["batch_size"], steps_per_epoch=seg["steps_per_epoch"],
                        channels=tuple(seg["channels"]), device=device, progress_bar=progress_enabled(), log=_log)
    dice = summary_table(results[results.seed.isin(seeds)]).query("domain == 'in-domain' and regime == 'synthetic'").iloc[0]
    synth, real = fidelity["synthetic"], fidelity["real train"]
    row = {"epoch": epoch, "dice": float(dice["mean"]), "dice_sd": float(dice["std"]), "n_seeds": int(dice["n_seeds"]),
           "fid": float(synth["FID"]), "kid": float(synth["KID"]), "ms_ssim": float(synth["MS-SSIM"]),
           "ms_ssim_gap": abs(float(synth["MS-SSIM"] - real["MS-SSIM"])), **w1_columns(w1)}
    return row, fidelity


def _rounded(record: dict) -> dict:
    return {k: (None if v != v else round(v, 5)) if isinstance(v, float) else v for k, v in record.items()}


def main(argv=None) -> dict:
    start = time.perf_counter()
    args = parse(argv)
    device, cache = prepare(args)
    run_dir = Path(args.run_dir)
    modality = cache.manifest["modality"]
    names = [LABELS[modality][k] for k in sorted(LABELS[modality])]

    vae_path = model_path(run_dir, "vae")
    if not (vae_path.exists() and "density" in read_config(vae_path, kind="vae")):  # finished: its prior fitted
        _log(f"shape VAE ({args.profile} profile) -> {vae_path}")
        train_vae(cache, run_dir=run_dir, device=device, seed=args.seed, progress_bar=progress_enabled(),
                  **train_parameters("vae", profile=args.profile))
    vae = load_vae(vae_path, device=device)
    snapshots = train_snapshots(cache, run_dir=run_dir, epochs=args.epochs, profile=args.profile, seed=args.seed,
                                device=device, progress_bar=progress_enabled())
    features = feature_network(run_dir, cache, steps=args.feature_steps, seed=args.seed, device=device,
                               progress_bar=progress_enabled())
    rows = []
    for epoch, snapshot in progress(snapshots.items(), desc="snapshots", total=len(snapshots)):
        row, fidelity = measure_snapshot(snapshot, epoch=epoch, cache=cache, vae=vae, vae_path=vae_path,
                                         features=features, args=args, device=device)
        rows.append(row)
    table = pd.DataFrame(rows)
    directions = {**FIXED_METRICS, **{f"w1_{n}": False for n in names}, "w1_mean": False}
    agreement = metric_agreement(table, downstream="dice", metrics=directions)

    test, train = np.sort(cache.indices("test")), np.sort(cache.indices("train"))
    w1_real = intensity_distances(np.asarray(cache.images[test]), np.asarray(cache.images[train]),
                                  np.asarray(cache.labels[test]), labels_b=np.asarray(cache.labels[train]), names=names,
                                  seed=args.seed)
    real = fidelity["real train"]  # the same two real sets for every snapshot
    yardstick = {"fid": float(real["FID"]), "kid": float(real["KID"]), "ms_ssim": float(real["MS-SSIM"]),
                 "ms_ssim_gap": 0.0, **w1_columns(w1_real)}
    out_dir = run_dir / "metric_agreement"
    write_csv_atomic(out_dir / "snapshots.csv", table)
    write_csv_atomic(out_dir / "agreement.csv", agreement.reset_index())
    figure = viz.save_figure(metrics_vs_dice(table, agreement), run_dir, "metric_agreement", "metrics_vs_dice")
    shown = pd.concat([table, pd.DataFrame([{"epoch": "real train (yardstick)", **yardstick}])], ignore_index=True)
    print("Per snapshot (metrics of its synthetic set against the real test slices; dice: synthetic-only U-Nets "
          "on the real test patients)\n")
    print(markdown(shown.set_index("epoch")))
    print("\nAgreement with the Dice ranking (Spearman, sign-corrected: +1 = same order as Dice, -1 = reversed)\n")
    print(markdown(agreement.sort_values("agreement", ascending=False, kind="stable")))
    print()
    result = {
        "benchmark": "metric_agreement", "dataset": args.dataset, "image_size": int(args.image_size),
        "profile": args.profile, "device": str(device), "threads": torch.get_num_threads(), "epochs": args.epochs,
        "seeds": [int(s) for s in args.segment["seeds"]], "n_synthetic": args.generate["n_synthetic"],
        "feature_steps": args.feature_steps, "feature_dim": int(fidelity.attrs["feature_dim"]),
        "test_slices": int(len(test)),
        "snapshots": [_rounded(r) for r in table.to_dict("records")],
        "agreement": {k: _rounded(v) for k, v in agreement.to_dict("index").items()},
        "yardstick": _rounded(yardstick), "figure": str(figure), "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
