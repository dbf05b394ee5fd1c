"""The run directory: where each stage puts its files, and how every file is written atomically.

``runs/<name>/`` holds everything one study produces; later notebooks and commands read what
earlier ones wrote, so the path rules live here, once:

- ``cache/<dataset>_<size>/``: slice caches (notebook 01; synthetic caches from notebook 04)
- ``vae.pt``, ``spade.pt``: the shape VAE and the image generator (notebooks 02, 03)
- ``synthetic/<dataset>_<size>/``: the synthetic set in shards (notebook 04)
- ``study/``: the study's results and one folder per run's U-Net (notebook 05)
- ``<notebook>/metrics.json`` and ``<notebook>/figures/<name>.png``: what each notebook measured

Atomic writes: a file is written under a temporary name of its own (unique to the process and
the call, so concurrent runs never collide) in its own folder and moved into place with
``os.replace``, so an interrupted run never leaves a half-written file under the real name.

Outputs never land on inputs (:func:`check_apart`), and a command overwrites only the files it
wrote itself: each output folder keeps a record of them (:class:`OutputRecord`). A derived file
records what it was made from (:func:`state_fingerprint` of the models), so that replaced models
never pass an old result off as theirs.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NoReturn

import numpy as np
import pandas as pd
import torch

TMP_MARK = ".tmp"
"""What every temporary name holds (a leftover of an interrupted write is recognised by it)."""

_FORMAT_ENDINGS = (".nii.gz", ".nii", ".npz", ".mhd")
"""Endings a writer picks its format by: the temporary name keeps them (``a.tmp.nii.gz``)."""


# --------------------------------------------------------------------------------------------
# Atomic writes


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name to write a file under before it is moved into place.

    Args:
        path: the final file.

    Returns:
        ``a/b.tmp-<token>.nii.gz`` for ``a/b.nii.gz`` (also ``.nii``, ``.npz``, ``.mhd``: the
        writers pick the format by the ending), ``a/b.json.tmp-<token>`` for anything else; same
        folder. The token holds the process id and random digits: two runs writing the same file
        at once never share a temporary file.
    """
    path = Path(path)
    mark = f"{TMP_MARK}-{os.getpid()}-{secrets.token_hex(3)}"
    for ending in _FORMAT_ENDINGS:
        if path.name.endswith(ending):
            return path.with_name(path.name[: -len(ending)] + mark + ending)
    return path.with_name(path.name + mark)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Write a file atomically: yields the temporary path to write; moves it into place on success.

    Args:
        path: the final file (its folder is created).

    Yields:
        The temporary path (see :func:`temporary_path`). If the block raises, or the move into
        place fails (a full or read-only disk), the temporary file is removed and ``path`` is left
        as it was; a failed write is reported as an ``OSError`` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise_naming(err, path=path, temporary=tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise_naming(err, path=path, temporary=tmp)


def raise_naming(err: OSError, *, path: str | os.PathLike, temporary: str | os.PathLike) -> NoReturn:
    """Raise the error of a failed write naming the file or folder being written, not its temporary copy.

    A full disk fails inside ``write()``, which names no file; ``os.replace`` names the temporary
    file, which is gone by the time anybody reads the message. Such errors are raised again naming
    ``path`` (or, for a file inside a temporary folder, its place inside ``path``). An error about
    another file (an input read meanwhile) or without an errno (the kit's own messages) is raised
    as it is.

    Args:
        err: the error caught.
        path: the file or folder being written.
        temporary: its temporary file or folder (see :func:`temporary_path`).

    Raises:
        OSError: always.
    """
    named = os.fspath(err.filename) if isinstance(err.filename, (str, os.PathLike)) else None
    temporary = Path(temporary)
    if err.errno is None:
        raise err
    if named is None or Path(named) == temporary:
        where = Path(path)
    elif temporary in Path(named).parents:
        where = Path(path) / Path(named).relative_to(temporary)
    else:
        raise err
    raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(where)) from err


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically.

    Args:
        path: destination (its folder is created).
        text: the content.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv_atomic(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a table as CSV (no index) atomically.

    Args:
        path: destination.
        table: the table.

    Returns:
        ``path``.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Path rules


def cache_dir(run_dir: str | os.PathLike, dataset: str, image_size: int) -> Path:
    """Where the slice cache of ``dataset`` at ``image_size`` lives inside ``run_dir``.

    Args:
        run_dir: the run directory.
        dataset: dataset name (``"synthetic-<dataset>"`` for notebook 04's set).
        image_size: slice side.

    Returns:
        ``run_dir/cache/<dataset>_<image_size>``.
    """
    return Path(run_dir) / "cache" / f"{dataset}_{image_size}"


def synthetic_cache_name(dataset: str) -> str:
    """The cache name of the synthetic set learnt from ``dataset`` (notebook 04 writes it, 05 reads it).

    Args:
        dataset: the real dataset's name.

    Returns:
        ``"synthetic-<dataset>"``.
    """
    return f"synthetic-{dataset}"


def synthetic_dir(run_dir: str | os.PathLike, dataset: str, image_size: int) -> Path:
    """Where the synthetic set (shards) learnt from ``dataset`` lives.

    Args:
        run_dir: the run directory.
        dataset: the real dataset's name.
        image_size: image side.

    Returns:
        ``run_dir/synthetic/<dataset>_<image_size>``.
    """
    return Path(run_dir) / "synthetic" / f"{dataset}_{image_size}"


def model_path(run_dir: str | os.PathLike, stage: str) -> Path:
    """The checkpoint a stage's notebook writes and later stages load.

    Args:
        run_dir: the run directory.
        stage: ``"vae"`` (notebook 02) or ``"spade"`` (notebook 03's generator).

    Returns:
        ``run_dir/<stage>.pt``.
    """
    if stage not in ("vae", "spade"):
        raise ValueError(f"stage must be 'vae' or 'spade', not {stage!r}")
    return Path(run_dir) / f"{stage}.pt"


def study_dir(run_dir: str | os.PathLike) -> Path:
    """The study's folder: ``results.csv``, shard files and one folder per run.

    Args:
        run_dir: the run directory.

    Returns:
        ``run_dir/study``.
    """
    return Path(run_dir) / "study"


def figure_path(run_dir: str | os.PathLike, notebook: str, name: str) -> Path:
    """Where a notebook's figure goes.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        name: file stem.

    Returns:
        ``run_dir/<notebook>/figures/<name>.png``.
    """
    return Path(run_dir) / notebook / "figures" / f"{name}.png"


def metrics_path(run_dir: str | os.PathLike, notebook: str) -> Path:
    """Where a notebook's measures go.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem.

    Returns:
        ``run_dir/<notebook>/metrics.json``.
    """
    return Path(run_dir) / notebook / "metrics.json"


def _strict_json(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict_json(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def write_metrics(run_dir: str | os.PathLike, notebook: str, metrics: dict[str, Any]) -> Path:
    """Write ``run_dir/<notebook>/metrics.json`` (atomically).

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        metrics: JSON-ready values; NaN and infinities are written as null (strict JSON).

    Returns:
        The file written.
    """
    text = json.dumps(_strict_json(metrics), indent=1, allow_nan=False)
    return write_text_atomic(metrics_path(run_dir, notebook), text)


def read_metrics(run_dir: str | os.PathLike, notebook: str) -> dict[str, Any]:
    """Read what :func:`write_metrics` wrote.

    Args:
        run_dir: the run directory.
        notebook: the notebook's stem.

    Returns:
        The metrics dict.

    Raises:
        FileNotFoundError: naming the notebook to run first.
    """
    path = metrics_path(run_dir, notebook)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run notebooks/{notebook}.ipynb first")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# Outputs apart from inputs; overwriting only what the kit wrote


def sha256sum(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file.

    Args:
        path: the file.
        chunk: read size in bytes.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_apart(output: str | os.PathLike, inputs: dict[str, str | os.PathLike], *, output_name: str) -> None:
    """Refuse an output folder that is, holds or lies inside one of the inputs.

    Args:
        output: the folder a command writes into.
        inputs: ``{option name: folder or file}`` the command reads (e.g. ``{"--input": ...}``).
        output_name: how the user named the output (``"--output"``).

    Raises:
        ValueError: naming both paths: outputs would land among (or replace) the inputs.
    """
    out = Path(output).expanduser().resolve()
    for name, given in inputs.items():
        inp = Path(given).expanduser().resolve()
        if out == inp or inp in out.parents or out in inp.parents:
            where = "is" if out == inp else ("lies inside" if inp in out.parents else "holds")
            raise ValueError(f"{output_name} {output} {where} {name} {given}: the outputs would land among the "
                             f"inputs; give {output_name} a separate folder")


def check_output_dir(folder: str | os.PathLike, *, option: str) -> Path:
    """Make sure an output folder can be created and written to, before any work starts.

    Args:
        folder: the output folder (created with its parents when missing).
        option: how the user named it (``"--output"``), for the message.

    Returns:
        The folder.

    Raises:
        NotADirectoryError: it (or a parent) is a file.
        PermissionError: it cannot be written to.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{option} names a file, not a folder", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"{option} cannot be written to", str(folder))
    return folder


def describe_os_error(err: OSError) -> str:
    """One line for a failed file operation: the path, what went wrong, what to do.

    Args:
        err: the error (``PermissionError``, a full disk, a file where a folder should be ...).

    Returns:
        E.g. ``"/runs/x: Read-only file system; choose a folder you can write to"``.
    """
    hints = {
        errno.EACCES: "choose a folder you can write to",
        errno.EPERM: "choose a folder you can write to",
        errno.EROFS: "choose a folder you can write to",
        errno.ENOSPC: "free some space or choose another disk",
        errno.EDQUOT: "free some space or choose another disk",
        errno.ENOTDIR: "a file stands where a folder is needed; give another path",
        errno.EISDIR: "a folder stands where a file is needed; give another path",
        errno.ENOENT: "check the path",
    }
    where = err.filename if err.filename is not None else "a file"
    what = err.strerror or type(err).__name__
    hint = hints.get(err.errno)
    return f"{where}: {what}" + (f"; {hint}" if hint else "")


RECORD_NAME = ".cardigan-written.json"
"""The file in an output folder that lists what the kit's commands wrote there."""


class OutputRecord:
    """The files a command wrote into an output folder: the kit overwrites those and no others.

    A prediction, student notebook or phantom file already in the folder that the record does
    not list belongs to someone else (ground truth, a teacher's notebook, a real patient): it is
    never replaced, nor taken for a result of the kit. The record keeps each file's SHA-256 as
    written, so a file a person replaced or edited since (a reviewer's ``evaluation.csv``, a lab
    sheet rewritten by hand) is theirs again. The record is ``<folder>/.cardigan-written.json``,
    read and updated under a lock on the folder so that concurrent runs keep every entry and never
    see a file of the kit's that the record does not list yet.

    Args:
        folder: the output folder.
        command: what writes there (``"cardigan segment"``), named in messages.
    """

    def __init__(self, folder: str | os.PathLike, *, command: str) -> None:
        self.folder, self.command = Path(folder), command
        self.path = self.folder / RECORD_NAME

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            files = json.loads(self.path.read_text())["files"]
            return {key: entry if isinstance(entry, dict) else {"command": str(entry)} for key, entry in files.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError(f"{self.path}: damaged record of the files the kit wrote; delete it only if every "
                             f"file in {self.folder} may be replaced") from None

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether the kit wrote this file, as it is now (so it may replace it).

        Args:
            path: a file inside the folder.

        Returns:
            True when the record lists it with its current content.
        """
        return self._owned(Path(path), self._read())

    def check_replaceable(self, path: str | os.PathLike) -> None:
        """Refuse to replace (or reuse) an existing file the kit did not write.

        Args:
            path: the file about to be written.

        Raises:
            FileExistsError: it exists and the record does not list it (or lists other content).
        """
        self._check(Path(path), self._read())

    def add(self, *paths: str | os.PathLike) -> None:
        """Record files just written (and moved into place).

        Args:
            *paths: files inside the folder.
        """
        entries = {self._key(p): self._entry(p) for p in paths}
        with self._locked() as files:
            files.update(entries)

    def forget(self, *paths: str | os.PathLike) -> None:
        """Take files off the record (the kit deleted them).

        Args:
            *paths: files inside the folder.
        """
        with self._locked() as files:
            for p in paths:
                files.pop(self._key(p), None)

    @contextmanager
    def writing(self, path: str | os.PathLike) -> Iterator[Path]:
        """Write one file of the folder atomically, refusing one the kit did not write, and record it.

        The block writes a temporary file (as :func:`atomic_path`); under the folder's lock, the
        file in place is checked again, the new one recorded and moved into place, so that a
        concurrent run never finds a file of the kit's that the record does not list.

        Args:
            path: the file (inside the folder).

        Yields:
            The temporary path to write.

        Raises:
            FileExistsError: the file exists and the kit did not write it (nothing is written).
            OSError: the write or the move failed (naming ``path``); the temporary file is removed.
        """
        path = Path(path)
        self.check_replaceable(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(path)
        try:
            yield tmp
            entry = self._entry(tmp)
            with self._locked() as files:
                self._check(path, files)
                os.replace(tmp, path)
                files[self._key(path)] = entry
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise_naming(err, path=path, temporary=tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, str]]]:
        """The listed files, under the folder's lock; written back atomically when the block ends."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.folder, os.O_RDONLY)  # a lock on the folder itself: no lock file left behind
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            files = self._read()
            yield files
            write_text_atomic(self.path, json.dumps({"files": dict(sorted(files.items()))}, indent=1))
        finally:
            os.close(lock)  # closing releases the lock

    def _check(self, path: Path, files: dict[str, dict[str, str]]) -> None:
        if path.exists() and not self._owned(path, files):
            raise FileExistsError(f"{path} exists and was not written by {self.command} (or was changed since); it "
                                  "is left alone (move it, or give another output folder)")

    def _owned(self, path: Path, files: dict[str, dict[str, str]]) -> bool:
        entry = files.get(self._key(path))
        if entry is None:
            return False
        return "sha256" not in entry or (path.is_file() and sha256sum(path) == entry["sha256"])

    def _entry(self, written: Path) -> dict[str, str]:
        return {"command": self.command, "sha256": sha256sum(written)}

    def _key(self, path: str | os.PathLike) -> str:
        return Path(path).resolve().relative_to(self.folder.resolve()).as_posix()


# --------------------------------------------------------------------------------------------
# What a derived file was made from


def state_fingerprint(model: Any) -> str:
    """A SHA-256 of a model's weights: what a derived file (a synthetic set) records it was made from.

    Computed from the loaded model, so that the same checkpoint gives the same fingerprint on any
    device and in any process, and retrained or replaced weights give another one.

    Args:
        model: anything with a ``state_dict()`` of tensors (a ``torch.nn.Module``, a generator of
            the image contract), or such a state dict itself.

    Returns:
        64 hexadecimal digits, over every entry's name, dtype, shape and bytes, in name order.

    Raises:
        TypeError: no state dict to read.
    """
    state = model.state_dict() if hasattr(model, "state_dict") else model
    if not isinstance(state, dict):
        raise TypeError(f"state_fingerprint needs a model with a state_dict() or a state dict, not {type(model).__name__}")
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        value = value.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
