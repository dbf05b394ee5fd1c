"""The ``cardigan`` command: the notebook sequence, the study, training and generation, segmenting
folders, and classroom copies.

- ``cardigan run --profile quick --dataset phantom-mri --run-dir runs/demo``: the notebook sequence
  (:func:`cardigan_utils.notebook.run_sequence`).
- ``cardigan study --run-dir runs/demo [--shard 2/8 | --merge]``: notebook 05's study, whole or one
  shard (one process per GPU or Slurm array task), and the merge of the shards.
- ``cardigan train {vae,spade,segmenter}`` and ``cardigan generate``: one stage as its notebook
  runs it, also under ``torchrun --nproc_per_node N`` (see :mod:`cardigan_utils.distributed`)::

      torchrun --nproc_per_node 4 -m cardigan_utils.cli train spade --run-dir runs/acdc --profile full --dataset acdc

  The parameters are the notebooks': the stage's defaults and the profile's values
  (:func:`cardigan_utils.config.profile_params`) with ``-p NAME VALUE`` on top. Checkpoints go
  where the notebooks put them (``<run_dir>/vae.pt``, ``<run_dir>/spade.pt``), so notebooks 02-04
  carry on from a model trained here; the U-Net goes to ``<run_dir>/segmenter/``.
- ``cardigan segment`` / ``cardigan evaluate``: a trained U-Net on a folder of volumes.
- ``cardigan lab build``: student copies of the notebooks and lab sheets.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import config, distributed, study
from .augment import augment_batch
from .config import PROFILES, check_parameters, profile_params, progress_enabled
from .data import dataset_names, get_dataset, load_run_cache
from .images import get_family
from .labels import structure_names
from .lab import build_lab
from .notebook import NOTEBOOK_DIR, NotebookFailed, run_sequence
from .runs import describe_os_error
from .segmentation import data_config, evaluate_folders, segment_folder, train_segmenter
from .shapes import train_vae
from .synthetic import generation_parameters, make_synthetic_set, read_manifest

TRAINERS = ("vae", "spade", "segmenter")
"""What ``cardigan train`` trains: the shape VAE, the SPADE generator, a U-Net (real+aug)."""

_STAGE = {"vae": "vae", "spade": "spade", "segmenter": "segment"}
_DATA_ARGUMENTS = {"cache", "sources", "val", "run_dir", "device", "seed", "progress_bar", "resume", "name", "data"}


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: JSON when it parses (``3``, ``true``, ``[0.1, 1.0]``), else the text.

    Args:
        text: the value as typed.

    Returns:
        The value.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _trainer(kind: str):
    return {"vae": train_vae, "spade": get_family("spade").train, "segmenter": train_segmenter}[kind]


def train_parameters(kind: str, *, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments a notebook would pass to the trainer, with ``overrides`` on top.

    Args:
        kind: ``"vae"``, ``"spade"`` or ``"segmenter"``.
        profile: a profile name.
        overrides: more keyword arguments of the trainer (``augment`` is a bool for the U-Net).

    Returns:
        The keyword arguments (without the data, ``run_dir``, ``device`` and ``seed``): every
        parameter of the trainer that its stage's defaults or the profile set.

    Raises:
        ValueError: an unknown trainer, or an override the trainer does not take.
    """
    if kind not in TRAINERS:
        raise ValueError(f"unknown trainer {kind!r}; choose one of {TRAINERS}")
    accepted = set(inspect.signature(_trainer(kind)).parameters) - _DATA_ARGUMENTS
    unknown = sorted(set(overrides or {}) - accepted)
    if unknown:
        raise ValueError(f"train {kind} takes no {unknown}; its parameters: {sorted(accepted)}")
    params = profile_params(profile, stage=_STAGE[kind])
    kw = {k: v for k, v in params.items() if k in accepted}
    kw.update(overrides or {})
    check_parameters(kw)
    if kind == "segmenter":
        kw["channels"] = tuple(kw["channels"])
    return kw


def run_training(kind: str, *, run_dir: str | Path, profile: str = "quick", dataset: str = "phantom-mri",
                 image_size: int | None = None, seed: int = 0, device: str | None = None,
                 overrides: dict[str, Any] | None = None):
    """Train one model on the slice cache of ``run_dir``, as its notebook would.

    Args:
        kind: ``"vae"``, ``"spade"`` or ``"segmenter"``.
        run_dir: the run directory (holds ``cache/`` from notebook 01).
        profile: the profile whose values are used.
        dataset: the dataset name of the cache.
        image_size: the cache's size (default: the profile's).
        seed: the seed.
        device: ``"cpu"``, ``"cuda"`` ... or None (under ``torchrun`` each process takes its GPU).
        overrides: trainer keyword arguments on top of the profile.

    Returns:
        The trainer's history.

    Raises:
        FileNotFoundError: the slice cache is missing (run notebook 01 first).
    """
    kw = train_parameters(kind, profile=profile, overrides=overrides)
    cache = load_run_cache(run_dir, dataset, profile_params(profile, image_size=image_size, seed=seed)["image_size"])
    trainer = _trainer(kind)
    common = {"run_dir": Path(run_dir), "device": device, "seed": seed, "progress_bar": progress_enabled()}
    if kind != "segmenter":
        return trainer(cache, **common, **kw)
    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = cache.indices(name)
        return cache.images[idx], cache.labels[idx]

    augment = functools.partial(augment_batch, modality=cache.manifest["modality"]) if kw.pop("augment") else None
    return trainer([split("train")], val=split("val"), augment=augment, data=data_config(cache),
                   **{**common, "run_dir": Path(run_dir) / "segmenter"}, **kw)


def run_arguments(p) -> None:
    """The arguments ``train``, ``generate`` and ``study`` share: where the run is and how it was made.

    Args:
        p: a sub-command's parser.
    """
    p.add_argument("--run-dir", required=True, help="run directory holding notebook 01's slice cache")
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--dataset", choices=dataset_names(), default="phantom-mri")
    p.add_argument("--image-size", type=int, default=None, help="slice side of the cache (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (under torchrun on CUDA: each process's own GPU)")


def _with_params(p, *, what: str):
    run_arguments(p)
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help=f"{what} (JSON value)")


def build_parser() -> argparse.ArgumentParser:
    """The ``cardigan`` command-line parser.

    Returns:
        An argparse parser with the sub-commands.
    """
    parser = argparse.ArgumentParser(prog="cardigan", description="CardiGAN kit: run the notebook sequence and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook sequence with papermill")
    run.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    run.add_argument("--dataset", choices=dataset_names(), default="phantom-mri")
    run.add_argument("--run-dir", default="runs/demo")
    run.add_argument("--data-dir", default=None, help="folder of a real dataset (else CARDIGAN_ACDC_DIR / CARDIGAN_CAMUS_DIR)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 02")
    run.add_argument("--cell-timeout", type=float, default=None, metavar="SECONDS",
                     help="how long one cell may run before the notebook is stopped (default: the profile's)")
    run.add_argument("--no-exercises", action="store_true",
                     help="leave the notebooks' exercises out (the study alone, as `make demo` runs it)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="extra notebook parameter (JSON value), e.g. -p max_epochs 2")
    seg = sub.add_parser("segment", help="segment every image of a folder (ACDC / CAMUS layout) with a trained U-Net")
    seg.add_argument("--model", required=True, help="segmenter.pt written by train_segmenter")
    seg.add_argument("--input", required=True, help="folder of images (.nii.gz, .nii, .mhd), any size and spacing")
    seg.add_argument("--output", required=True, help="where <name>_gt.nii.gz predictions and volumes.csv go")
    seg.add_argument("--dataset", default=None, type=_registered, metavar="NAME",
                     help="read --input with this registered dataset's reader (M&Ms 4-D cines, Sunnybrook DICOM...); "
                          "predictions go to <output>/<patient>/<case>_gt.nii.gz in the input's geometry")
    seg.add_argument("--device", default=None)
    seg.add_argument("--overwrite", action="store_true",
                     help="redo the predictions an earlier run wrote in --output (no other file there is ever replaced)")
    ev = sub.add_parser("evaluate", help="Dice and HD95 of predictions against ground truth files of the same name")
    ev.add_argument("--pred", required=True)
    ev.add_argument("--truth", required=True)
    ev.add_argument("--modality", choices=("mri", "echo"), default=None,
                    help="the structures' convention (default: the --truth folder's dataset, else mri)")
    ev.add_argument("--dataset", default=None, type=_registered, metavar="NAME",
                    help="read --truth with this dataset's reader: its labels converted, only the structures it "
                         "labels scored (predictions of `cardigan segment --dataset NAME`)")
    st = sub.add_parser("study", help="notebook 05's study from a run directory, whole or one shard; --merge joins the shards")
    run_arguments(st)
    st.add_argument("--regimes", nargs="+", default=None, choices=study.REGIMES, metavar="REGIME",
                    help=f"some of {', '.join(study.REGIMES)} (default: the profile's, those without synthetic "
                         "images if notebook 04 has not run)")
    st.add_argument("--fractions", nargs="+", type=float, default=None, help="default: the profile's")
    st.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the profile's")
    st.add_argument("--ood", action="append", default=[], metavar="NAME=DIR", type=_ood_dataset,
                    help="another registered dataset to score on, e.g. mnms=/data/MnM or sunnybrook=/data/SCD "
                         "(repeat it; NAME alone: its environment variable); one domain per vendor it names")
    which = st.add_mutually_exclusive_group()
    which.add_argument("--shard", default=None, metavar="I/N", help="train only shard I of N (from 0), e.g. 0/8")
    which.add_argument("--merge", action="store_true",
                       help="join results.csv and the shard files; print the tables and the generalisation verdict")
    st.add_argument("--allow-missing", action="store_true", help="with --merge: merge even if a shard has not finished")
    p = sub.add_parser("train", help="train the VAE, the GAN or the U-Net as the notebooks do (also under torchrun)")
    p.add_argument("model", choices=TRAINERS)
    _with_params(p, what="trainer keyword argument, e.g. -p max_epochs 5")
    g = sub.add_parser("generate", help="notebook 04's synthetic set from the run's VAE and GAN (also under torchrun)")
    _with_params(g, what="n_synthetic, shard_size, filter_plausible, render_batch_size or style_extrapolation, "
                                  "e.g. -p n_synthetic 20000")
    g.add_argument("--overwrite", action="store_true", help="replace a set made with other parameters or other models")
    labp = sub.add_parser("lab", help="classroom labs: student copies of the notebooks")
    lab_sub = labp.add_subparsers(dest="lab_command", required=True)
    build = lab_sub.add_parser("build", help="write student notebooks (solutions stubbed, outputs cleared) and lab sheets")
    build.add_argument("--out", required=True, help="folder for the student notebooks and <notebook>.md lab sheets")
    build.add_argument("--notebooks", default=str(NOTEBOOK_DIR), help="the teacher notebooks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cardigan`` command.

    What a user can get wrong (a bad value, a missing or damaged file, an output that would land on
    an input, a folder that cannot be written) ends in one line, ``cardigan: <what and what to
    do>``, and exit status 1; nothing is left half-written.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None):
            config.get_device(args.device)  # a device this machine lacks is refused before any work
    except ValueError as err:
        return _refuse(str(err))
    commands = {"run": _run, "segment": _segment, "evaluate": _evaluate, "train": _train_or_generate,
                "generate": _train_or_generate, "study": _study, "lab": _lab}
    try:
        return commands[args.command](args)
    except OSError as err:  # the kit's own FileNotFoundError / FileExistsError carry a message and no errno
        return _refuse(str(err) if err.errno is None else describe_os_error(err))
    except (ValueError, NotebookFailed) as err:
        return _refuse(str(err))


def _refuse(message: str) -> int:
    """Print one ``cardigan:`` line on stderr; the exit status 1."""
    print("cardigan: " + " ".join(message.split()), file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    done = run_sequence(args.run_dir, profile=args.profile, dataset=args.dataset, seed=args.seed,
                        data_dir=args.data_dir, only=args.only, parameters={k: parse_value(v) for k, v in args.param},
                        cell_timeout_s=args.cell_timeout, exercises=not args.no_exercises)
    print(f"cardigan: {len(done)} notebook(s) in {sum(d['seconds'] for d in done):.0f} s; results in "
          f"{Path(args.run_dir).resolve()}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    table = segment_folder(args.model, args.input, args.output, dataset=args.dataset, device=args.device,
                           overwrite=args.overwrite)
    print(f"cardigan: {table.image.nunique()} image(s) segmented into {Path(args.output).resolve()} (volumes.csv)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    table = evaluate_folders(args.pred, args.truth, modality=args.modality, dataset=args.dataset)
    # files whose spacing is a placeholder (a derived CAMUS copy) have HD95 in pixels only
    distances = [c for c in ("hd95_mm", "hd95_px") if table[c].notna().any()] or ["hd95_mm"]
    print(table.groupby("structure", sort=False)[["dice", *distances]].mean().round(3).to_string())
    # only a dataset's reader knows what its truth leaves unlabelled (Sunnybrook: the RV); files are scored whole
    skipped = [s for s in structure_names(get_dataset(args.dataset).modality)
               if s not in set(table.structure)] if args.dataset else []
    if skipped:
        print(f"cardigan: {', '.join(skipped)} not labelled in {args.truth}: not scored")
    if not table.spacing_known.all():
        print(f"cardigan: {int((~table.spacing_known).sum() // 3)} file(s) have the 1.0 mm placeholder spacing (a derived "
              "copy): HD95 in pixels (hd95_px), volumes unknown")
    print(f"cardigan: {table.file.nunique()} file(s) scored; per file in {Path(args.pred).resolve() / 'evaluation.csv'}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    written = build_lab(args.notebooks, args.out)
    notebooks = [p.name for p in written if p.suffix == ".ipynb"]
    print(f"cardigan: {len(notebooks)} student notebook(s) and lab sheet(s) in {Path(args.out).resolve()}: "
          f"{', '.join(notebooks)}")
    return 0


def _train_or_generate(args: argparse.Namespace) -> int:
    """``cardigan train`` and ``cardigan generate`` from parsed arguments; the exit status."""
    common = dict(run_dir=args.run_dir, profile=args.profile, dataset=args.dataset, image_size=args.image_size,
                  seed=args.seed, device=args.device)
    overrides = {k: parse_value(v) for k, v in args.param}
    ctx = distributed.context()
    try:
        if args.command == "generate":
            params = generation_parameters(args.profile, image_size=args.image_size, overrides=overrides)
            set_dir = make_synthetic_set(args.run_dir, dataset=args.dataset, params=params, seed=args.seed,
                                         device=args.device, overwrite=args.overwrite, progress_bar=progress_enabled())
            if ctx.is_main:
                manifest = read_manifest(set_dir)
                print(f"cardigan: {manifest['n']} pairs in {manifest['n_shards']} shard(s) by {ctx.world_size} "
                      f"process(es) in {Path(set_dir).resolve()}")
        else:
            history = run_training(args.model, **common, overrides=overrides)
            if ctx.is_main:
                where = Path(args.run_dir) / ("segmenter" if args.model == "segmenter" else "")
                print(f"cardigan: {args.model} trained to epoch {int(history.epoch.max()) if len(history) else 0} "
                      f"on {ctx.world_size} process(es); checkpoints in {where.resolve()}")
    finally:
        distributed.close(ctx)
    return 0


def _registered(name: str) -> str:
    """A registered dataset name (argparse type); an unknown one is an error listing the registered ones."""
    try:
        get_dataset(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


def _ood_dataset(text: str) -> tuple[str, str | None]:
    """``--ood NAME=DIR`` (or ``NAME``) as ``(name, folder or None)``; an unknown name lists the registered ones."""
    name, _, folder = text.partition("=")
    return _registered(name), folder or None


def _study(args: argparse.Namespace) -> int:
    """``cardigan study``: train the runs (of a shard), or merge the shards; the whole study's tables printed."""
    if args.merge:
        results = study.merge_shards(args.run_dir, allow_missing=args.allow_missing)
        _print_study(results)
        print(f"cardigan: {results.groupby(study.RUN_KEYS).ngroups} run(s) in "
              f"{Path(args.run_dir).resolve() / 'study' / 'results.csv'}")
        return 0
    shard = study.parse_shard(args.shard) if args.shard else None
    prefix = f"[shard {shard[0]}/{shard[1]}] " if shard else ""

    def log(line: str) -> None:
        print(prefix + line, flush=True)  # flushed: a batch job's log file shows each run as it ends

    # Batch jobs keep their logs to one line per run; CARDIGAN_PROGRESS=1 asks for the bars.
    bars = "CARDIGAN_PROGRESS" in os.environ and config.progress_enabled()
    config.set_seed(args.seed)
    inputs = study.study_inputs(args.run_dir, profile=args.profile, dataset=args.dataset, seed=args.seed,
                                image_size=args.image_size, regimes=args.regimes, fractions=args.fractions,
                                seeds=args.seeds, ood_datasets=dict(args.ood), progress=bars, log=log)
    results = study.run_study(**inputs, device=args.device, shard=shard, progress_bar=bars, log=log)
    if shard is None and not results.empty:
        _print_study(results)
    written = "results.csv" if shard is None else f"results_shard{shard[0]}of{shard[1]}.csv"
    print(f"cardigan: {results.groupby(study.RUN_KEYS).ngroups} run(s) in "
          f"{Path(args.run_dir).resolve() / 'study' / written}" + ("; then `cardigan study --merge`" if shard else ""))
    return 0


def _print_study(results) -> None:
    """The paper's table, the generalisation table and its verdict (what notebook 05 shows), on stdout."""
    print(study.paper_table(study.summary_table(results)).to_string())
    table = study.generalisation_table(results)
    shown = ["fraction", "regime", "domain", "mean", "drop", "relative_drop", "synthetic_gain", "gain_ci_low", "gain_ci_high"]
    print("\ngeneralisation: mean Dice per domain, drop from in-domain, gain of synthetic images (paired by seed)")
    print(table[shown].round(3).to_string(index=False))
    for line in study.generalisation_verdict(table):
        print("-", line)


if __name__ == "__main__":
    sys.exit(main())
