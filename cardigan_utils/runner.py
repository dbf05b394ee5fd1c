"""Run the notebook sequence with papermill, and the ``cardigan`` command.

``cardigan run --profile quick --dataset phantom-mri --run-dir runs/demo`` executes every numbered
notebook of ``notebooks/`` in order into ``<run_dir>/notebooks/``, passing the parameters each one
declares in its ``parameters`` cell; it prints one line per notebook and, on failure, names the
notebook and cell that failed.

``cardigan study --run-dir runs/demo --shard 2/8`` runs notebook 05's study (or one shard of it,
one process per GPU or per Slurm array task) from a run directory notebooks 01-04 filled;
``cardigan study --run-dir runs/demo --merge`` joins the shards and prints the paper's table.

``cardigan train {vae,spade,segmenter} --run-dir runs/demo`` trains one model as its notebook
would; under ``torchrun --nproc_per_node N`` it trains on N processes (see ``cardigan_utils.distributed``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .checkpoint import write_text_atomic

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook of the sequence raised; the message names the notebook and the cell."""


def sequence(notebook_dir: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (``01_*.ipynb``, ``02_*.ipynb``, ...) in order.

    Args:
        notebook_dir: the folder of the teacher notebooks.

    Returns:
        Sorted notebook paths.
    """
    found = sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"{notebook_dir}: no numbered notebooks (01_*.ipynb ...)")
    return found


CHECK_MARK = "NBVAL_CHECK_OUTPUT"
"""Cells whose source holds this mark keep their outputs; nbval --nbval-lax compares them."""


def clean_notebook(path: str | Path, *, output: str | Path | None = None) -> bool:
    """Strip outputs, execution counts and run metadata, keeping the outputs of marked cells.

    Args:
        path: the notebook (an executed copy to take the marked outputs from, or the source).
        output: where to write the clean notebook (default: in place).

    Returns:
        True if the written notebook differs from what ``output`` held before.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.pop("id", None)
        if cell.cell_type != "code":
            continue
        if CHECK_MARK not in cell.source:
            cell.outputs = []
            cell.execution_count = None
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat_minor = 4
    target = Path(output or path)
    text = nbformat.writes(nb) + "\n"
    changed = not target.exists() or target.read_text() != text
    write_text_atomic(target, text)
    return changed


def declared_parameters(path: str | Path) -> set[str]:
    """Names assigned in a notebook's cell tagged ``parameters``.

    Args:
        path: the notebook.

    Returns:
        The parameter names.
    """
    import ast

    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    return set()


def run_sequence(
    run_dir: str | Path,
    *,
    profile: str = "quick",
    dataset: str = "phantom-mri",
    seed: int = 0,
    data_dir: str | None = None,
    only: Sequence[str] | None = None,
    parameters: dict[str, Any] | None = None,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    kernel_name: str = "python3",
    log=lambda line: print(line, flush=True),
) -> list[dict[str, Any]]:
    """Execute the notebook sequence into ``run_dir/notebooks``.

    Args:
        run_dir: the run directory (created); notebooks write their outputs there.
        profile: ``smoke``, ``quick``, ``lab`` or ``full`` (see ``config.PROFILES``).
        dataset: the dataset name.
        seed: the seed.
        data_dir: folder of a real dataset.
        only: run only notebooks whose name starts with one of these (``["01", "02"]``).
        parameters: more parameters; each notebook receives those it declares.
        notebook_dir: folder of the notebooks.
        kernel_name: Jupyter kernel.
        log: where progress lines go (printed by default).

    Returns:
        One record per notebook: name, seconds, output path.

    Raises:
        NotebookFailed: naming the notebook, the cell and the error.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(run_dir).resolve()
    out_dir = run_dir / "notebooks"
    # Notebooks run with notebooks/ as working directory: hand them absolute paths.
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    given = {"profile": profile, "dataset": dataset, "seed": seed, "run_dir": str(run_dir), "data_dir": data_dir, **(parameters or {})}
    notebooks = [p for p in sequence(notebook_dir) if not only or any(p.name.startswith(o) for o in only)]
    if not notebooks:
        raise FileNotFoundError(f"no notebook in {notebook_dir} matches {list(only or [])}")
    known = set().union(*(declared_parameters(p) for p in notebooks))
    unknown = sorted(set(parameters or {}) - known)
    if unknown:
        raise ValueError(f"no notebook of this run declares {unknown}; parameters they take: {sorted(known)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for i, path in enumerate(notebooks, 1):
        params = {k: v for k, v in given.items() if k in declared_parameters(path)}
        output = out_dir / path.name
        start = time.perf_counter()
        log(f"[{i}/{len(notebooks)}] {path.stem} ({profile}, {dataset}) ...")
        try:
            pm.execute_notebook(str(path), str(output), parameters=params, kernel_name=kernel_name,
                                cwd=str(path.parent), progress_bar=False)
        except PapermillExecutionError as err:
            first = next((line for line in err.source.splitlines() if line.strip()), "")[:60]
            raise NotebookFailed(
                f"{path.name} failed in cell [{err.exec_count}] ({first!r}) with {err.ename}: {err.evalue}; "
                f"the executed notebook with the traceback is {output}"
            ) from None
        except Exception as err:  # the kernel died (out of memory, killed) or could not start
            raise NotebookFailed(f"{path.name} failed: {type(err).__name__}: {' '.join(str(err).split())[:200]}; "
                                 f"the partly executed notebook is {output}") from None
        seconds = time.perf_counter() - start
        log(f"      done in {seconds:.0f} s -> {output}")
        done.append({"notebook": path.name, "seconds": round(seconds, 1), "output": str(output)})
    write_text_atomic(run_dir / "sequence.json", json.dumps(done, indent=1))
    return done


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    """The ``cardigan`` command-line parser.

    Returns:
        An argparse parser with the sub-commands.
    """
    from . import train_cli
    from .config import DATASETS, PROFILES
    from .study import REGIMES

    parser = argparse.ArgumentParser(prog="cardigan", description="CardiGAN kit: run the notebook sequence and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook sequence with papermill")
    run.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    run.add_argument("--dataset", choices=DATASETS, default="phantom-mri")
    run.add_argument("--run-dir", default="runs/demo")
    run.add_argument("--data-dir", default=None, help="folder of a real dataset (else CARDIGAN_ACDC_DIR / CARDIGAN_CAMUS_DIR)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 02")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="extra notebook parameter (JSON value), e.g. -p max_epochs 2")
    seg = sub.add_parser("segment", help="segment every image of a folder (ACDC / CAMUS layout) with a trained U-Net")
    seg.add_argument("--model", required=True, help="segmenter.pt written by train_segmenter")
    seg.add_argument("--input", required=True, help="folder of images (.nii.gz, .nii, .mhd), any size and spacing")
    seg.add_argument("--output", required=True, help="where <name>_gt.nii.gz predictions and volumes.csv go")
    seg.add_argument("--device", default=None)
    seg.add_argument("--overwrite", action="store_true", help="redo predictions already in --output")
    ev = sub.add_parser("evaluate", help="Dice and HD95 of predictions against ground truth files of the same name")
    ev.add_argument("--pred", required=True)
    ev.add_argument("--truth", required=True)
    ev.add_argument("--modality", choices=("mri", "echo"), default="mri")
    st = sub.add_parser("study", help="notebook 05's study from a run directory, whole or one shard; --merge joins the shards")
    train_cli.run_arguments(st)
    st.add_argument("--regimes", nargs="+", default=None, choices=REGIMES, metavar="REGIME",
                    help=f"some of {', '.join(REGIMES)} (default: all, or the real ones without notebook 04's set)")
    st.add_argument("--fractions", nargs="+", type=float, default=None, help="default: the profile's")
    st.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the profile's")
    st.add_argument("--ood-data-dir", default=None, help="another dataset in the ACDC layout to score on")
    which = st.add_mutually_exclusive_group()
    which.add_argument("--shard", default=None, metavar="I/N", help="train only shard I of N (from 0), e.g. 0/8")
    which.add_argument("--merge", action="store_true", help="join results.csv and the shard files; print the table")
    st.add_argument("--allow-missing", action="store_true", help="with --merge: merge even if a shard has not finished")
    train_cli.add_parser(sub)
    labp = sub.add_parser("lab", help="classroom labs: student copies of the notebooks")
    lab_sub = labp.add_subparsers(dest="lab_command", required=True)
    build = lab_sub.add_parser("build", help="write student notebooks (solutions stubbed, outputs cleared) and lab sheets")
    build.add_argument("--out", required=True, help="folder for the student notebooks and <notebook>.md lab sheets")
    build.add_argument("--notebooks", default=str(NOTEBOOK_DIR), help="the teacher notebooks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cardigan`` command.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    if args.command == "run":
        try:
            done = run_sequence(args.run_dir, profile=args.profile, dataset=args.dataset, seed=args.seed,
                                data_dir=args.data_dir, only=args.only, parameters={k: _value(v) for k, v in args.param})
        except (NotebookFailed, FileNotFoundError, ValueError) as err:
            print(f"cardigan: {err}", file=sys.stderr)
            return 1
        print(f"cardigan: {len(done)} notebook(s) in {sum(d['seconds'] for d in done):.0f} s; results in {Path(args.run_dir).resolve()}")
    elif args.command in ("segment", "evaluate"):
        from .segment import evaluate_folders, segment_folder

        try:
            if args.command == "segment":
                table = segment_folder(args.model, args.input, args.output, device=args.device, overwrite=args.overwrite)
                print(f"cardigan: {table.image.nunique()} image(s) segmented into {Path(args.output).resolve()} (volumes.csv)")
            else:
                table = evaluate_folders(args.pred, args.truth, modality=args.modality)
                means = table.groupby("structure")[["dice", "hd95_mm"]].mean().round(3)
                print(means.to_string())
                print(f"cardigan: {table.file.nunique()} file(s) scored; per file in {Path(args.pred).resolve() / 'evaluation.csv'}")
        except (FileNotFoundError, ValueError) as err:
            print(f"cardigan: {err}", file=sys.stderr)
            return 1
    elif args.command in ("train", "generate"):
        from . import train_cli

        return train_cli.main(args)
    elif args.command == "study":
        try:
            return _study(args)
        except (FileNotFoundError, ValueError) as err:
            print(f"cardigan: {err}", file=sys.stderr)
            return 1
    elif args.command == "lab":
        from .lab import build_lab

        try:
            written = build_lab(args.notebooks, args.out)
        except (FileNotFoundError, ValueError) as err:
            print(f"cardigan: {err}", file=sys.stderr)
            return 1
        notebooks = [p.name for p in written if p.suffix == ".ipynb"]
        print(f"cardigan: {len(notebooks)} student notebook(s) and lab sheet(s) in {Path(args.out).resolve()}: {', '.join(notebooks)}")
    return 0


def _study(args: argparse.Namespace) -> int:
    """``cardigan study``: train the runs (of a shard), or merge the shards and print the paper's table."""
    from . import config, study

    if args.merge:
        results = study.merge_shards(args.run_dir, allow_missing=args.allow_missing)
        print(study.paper_table(study.summary_table(results)).to_string())
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
                                seeds=args.seeds, ood_data_dir=args.ood_data_dir, progress=bars, log=log)
    results = study.run_study(**inputs, device=args.device, shard=shard, progress_bar=bars, log=log)
    written = "results.csv" if shard is None else f"results_shard{shard[0]}of{shard[1]}.csv"
    print(f"cardigan: {results.groupby(study.RUN_KEYS).ngroups} run(s) in "
          f"{Path(args.run_dir).resolve() / 'study' / written}" + ("; then `cardigan study --merge`" if shard else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
