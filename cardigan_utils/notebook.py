"""The notebook sequence: find the numbered notebooks, run them with papermill (with or without
their exercises), clean them.

``cardigan run`` (:mod:`cardigan_utils.cli`) calls :func:`run_sequence`: every numbered notebook
of ``notebooks/`` in order into ``<run_dir>/notebooks/``, each given the parameters it declares in
its ``parameters`` cell; one line per notebook and, on failure, the notebook and cell that failed.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import nbformat
import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError
from papermill.exceptions import PapermillExecutionError

from .config import check_parameters, profile_params
from .runs import write_text_atomic

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook of the sequence raised; the message names the notebook and the cell."""


class LocalKernelManager(AsyncKernelManager):
    """A kernel that talks over local IPC sockets in a private folder instead of TCP ports.

    Asynchronous, as nbclient expects: with a blocking manager its cell timeout never fires.

    Over TCP every kernel logs "Kernel is running over TCP without encryption", which a newcomer
    reads as a fault in each notebook of ``cardigan run``; IPC sockets are files that only this
    user can reach, so there is nothing to warn about. The socket folder is absolute (the kernel
    runs in ``notebooks/``, this process anywhere) and private to the kernel (concurrent runs never
    share one), and removed when the kernel ends.
    """

    def __init__(self, **kwargs: Any) -> None:
        socket_dir = tempfile.mkdtemp(prefix="cardigan-kernel-")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(socket_dir, "kernel"))
        super().__init__(**kwargs)
        self.socket_dir = socket_dir

    async def cleanup_resources(self, restart: bool = False) -> None:
        """Remove the kernel's files, and its socket folder once it is shut down for good.

        Args:
            restart: the kernel is restarting (its folder stays).
        """
        await super().cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


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


EXERCISE_TAG = "exercise"
"""Markdown cells with this tag state an exercise; its solution and check cells carry nbgrader
metadata (the whole structure: :mod:`cardigan_utils.lab`)."""


def cell_tags(cell) -> list[str]:
    """A cell's tags (empty when it has none).

    Args:
        cell: a notebook cell.

    Returns:
        The tags.
    """
    return list(cell.get("metadata", {}).get("tags", []))


def nbgrader_metadata(cell) -> dict[str, Any]:
    """A cell's nbgrader metadata (empty when it has none).

    Args:
        cell: a notebook cell.

    Returns:
        Its ``metadata["nbgrader"]``.
    """
    return cell.get("metadata", {}).get("nbgrader", {})


def without_exercises(nb, *, note: str):
    """A copy of a teacher notebook without its exercises (``nb`` is left as it is).

    Every exercise cell goes: the statements (Markdown tagged ``exercise``) and every cell nbgrader
    knows (solutions, checks, the students' answer cells). The first of them becomes one Markdown
    cell holding ``note``, so a reader of the executed copy sees where the exercises were.

    Args:
        nb: a teacher notebook.
        note: Markdown that stands where the exercises were.

    Returns:
        The notebook without its exercises (a copy of ``nb`` when it has none).
    """
    out = copy.deepcopy(nb)
    kept, noted = [], False
    for cell in out.cells:
        if (cell.cell_type == "markdown" and EXERCISE_TAG in cell_tags(cell)) or nbgrader_metadata(cell):
            if not noted:
                kept.append(nbformat.v4.new_markdown_cell(note))
                noted = True
            continue
        kept.append(cell)
    out.cells = kept
    return out


SKIPPED_EXERCISES = ("*This run left the exercises out (`cardigan run --no-exercises`, as `make demo` runs it); "
                     "the notebook in `notebooks/` has them.*")
"""What stands where the exercises were in a notebook executed without them."""

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
    cell_timeout_s: float | None = None,
    exercises: bool = True,
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
        cell_timeout_s: how long one cell may run before the notebook is stopped and reported
            (default: the profile's ``cell_timeout_s``).
        exercises: run the notebooks' exercises too; False leaves them out of the executed copies
            (:func:`without_exercises`): the study alone, as ``make demo`` runs it.
        log: where progress lines go (printed by default).

    Returns:
        One record per notebook: name, seconds, output path, whether its exercises ran.

    Raises:
        NotebookFailed: naming the notebook, the cell and the error (or the cell timeout it ran past).
        ValueError: a parameter of the wrong type or out of range (before any notebook runs).
    """
    check_parameters({"seed": seed, **(parameters or {})})  # a bad value stops here, before any notebook runs
    if cell_timeout_s is None:
        cell_timeout_s = profile_params(profile)["cell_timeout_s"]
    check_parameters({"cell_timeout_s": cell_timeout_s})
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
        log(f"[{i}/{len(notebooks)}] {path.stem} ({profile}, {dataset}{'' if exercises else ', no exercises'}) ...")
        source = path
        if not exercises:
            source = output  # papermill reads it whole before writing the executed copy over it
            nbformat.write(without_exercises(nbformat.read(str(path), as_version=4), note=SKIPPED_EXERCISES), str(source))
        try:
            pm.execute_notebook(str(source), str(output), parameters=params, kernel_name=kernel_name,
                                cwd=str(path.parent), progress_bar=False, kernel_manager_class=LocalKernelManager,
                                execution_timeout=cell_timeout_s)
        except PapermillExecutionError as err:
            first = next((line for line in err.source.splitlines() if line.strip()), "")[:60]
            raise NotebookFailed(
                f"{path.name} failed in cell [{err.exec_count}] ({first!r}) with {err.ename}: {err.evalue}; "
                f"the executed notebook with the traceback is {output}"
            ) from None
        except CellTimeoutError as err:
            raise NotebookFailed(
                f"{path.name}: cell {_timed_out_cell(output, err)} ran past the cell timeout of {cell_timeout_s:g} s and "
                f"was stopped (a stuck kernel, or a profile too large for this machine: --cell-timeout sets it); "
                f"the partly executed notebook is {output}") from None
        except Exception as err:  # the kernel died (out of memory, killed) or could not start
            raise NotebookFailed(f"{path.name} failed: {type(err).__name__}: {' '.join(str(err).split())[:200]}; "
                                 f"the partly executed notebook is {output}") from None
        seconds = time.perf_counter() - start
        log(f"      done in {seconds:.0f} s -> {output}")
        done.append({"notebook": path.name, "seconds": round(seconds, 1), "output": str(output), "exercises": exercises})
    write_text_atomic(run_dir / "sequence.json", json.dumps(done, indent=1))
    return done


def _timed_out_cell(executed: Path, err: CellTimeoutError) -> str:
    """``[n] ('first line')`` of the cell a timeout stopped, found by the preview nbclient gives."""
    preview = str(err).split("-------------------\n")
    source = preview[1].strip() if len(preview) > 1 else ""
    first = next((line for line in source.splitlines() if line.strip()), "")[:60]
    count = None
    if executed.exists() and source:
        cells = nbformat.read(str(executed), as_version=4).cells
        count = next((c.get("execution_count") for c in cells if c.cell_type == "code" and c.source.strip() == source), None)
    return f"[{count if count is not None else '?'}] ({first!r})"
