"""Prepare a real dataset from its official download: unpack, verify, convert to the slice cache.

Used by ``data_scripts/prepare_acdc.py`` and ``prepare_camus.py``. Archives (.zip, .tar, .tar.gz)
are checked against a SHA-256 when one is given and never write outside their target folder.
Datasets are looked up in the registry (:mod:`cardigan_utils.data.registry`): any registered
dataset read from a folder can be prepared, and an unknown name is the registry's error.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ..runs import sha256sum, write_text_atomic
from .cache import build_cache, cache_dir
from .case import DataError
from .registry import DatasetSpec, LayoutReport, dataset_specs, get_dataset

__all__ = ["LayoutReport", "extract_archive", "find_dataset_root", "prepare_dataset", "sha256sum", "verify_dataset"]


def _inside(target: Path, name: str) -> bool:
    target = target.resolve()
    dest = (target / name).resolve()
    return dest == target or target in dest.parents


UNPACKED_MARK = ".cardigan-unpacked.json"
"""Written into a folder an archive was unpacked into: the archive's name, size and SHA-256."""


def extract_archive(archive: str | Path, target: str | Path, *, sha256: str | None = None) -> Path:
    """Unpack a .zip / .tar / .tar.gz / .tgz archive into ``target`` safely.

    Args:
        archive: the downloaded archive.
        target: folder to unpack into (created).
        sha256: expected SHA-256 of the archive; checked before anything is written.

    Returns:
        ``target``. The archive's SHA-256 is recorded there (:data:`UNPACKED_MARK`): unpacking the
        same archive into it again reuses what is there.

    Raises:
        DataError: checksum mismatch, unknown format, a member that would land outside ``target``
            (absolute path, ``..``, or a link pointing out), or ``target`` holding other files of
            the same names.
    """
    archive, target = Path(archive), Path(target).resolve()
    if not archive.is_file():
        raise DataError(f"{archive}: archive not found; give the path of the downloaded file")
    actual = sha256sum(archive)
    if sha256 and actual.lower() != sha256.lower():
        raise DataError(f"{archive}: SHA-256 {actual[:16]}... does not match the expected {sha256[:16]}...; download it again")
    marker = target / UNPACKED_MARK
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("sha256") == actual:
            return target  # this archive was unpacked here before: a second run reuses it
        raise DataError(f"{target} holds the files of another archive ({done.get('archive')}); "
                        "unpack this one into another folder (--unpack-to)")
    name = archive.name.lower()
    if not name.endswith((".zip", ".tar", ".tar.gz", ".tgz")):
        raise DataError(f"{archive}: unknown archive type; give a .zip, .tar, .tar.gz or .tgz (or the unpacked folder)")
    # Unpack next to the target and move into place at the end: a failed unpack leaves nothing.
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".partial-"))
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if not _inside(partial, member):
                        raise DataError(f"{archive}: member {member!r} would be written outside {target}; refusing to unpack it")
                zf.extractall(partial)
        else:
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for member in members:
                    try:  # the same rules extractall(filter="data") applies, checked before writing anything
                        tarfile.data_filter(member, str(partial))
                    except tarfile.FilterError as err:
                        raise DataError(f"{archive}: member {member.name!r} would be written outside {target} or is not a "
                                        f"plain file ({type(err).__name__}); refusing to unpack it") from None
                tf.extractall(partial, members=members, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        detail = " ".join(str(err).split())[:80]
        raise DataError(f"{archive}: cannot unpack it ({type(err).__name__}: {detail}); the download is damaged, get it again") from None
    except DataError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    target.mkdir(parents=True, exist_ok=True)
    clash = next((target / item.name for item in partial.iterdir() if (target / item.name).exists()), None)
    if clash is not None:  # checked before anything moves: a refused unpack leaves the folder as it was
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(f"{clash} already exists and was not unpacked from {archive.name}; unpack into an empty "
                        "folder (--unpack-to)")
    for item in partial.iterdir():
        item.rename(target / item.name)
    partial.rmdir()
    write_text_atomic(marker, json.dumps({"archive": archive.name, "bytes": archive.stat().st_size, "sha256": actual}))
    return target


def _folder_dataset(dataset: str, folder: str | Path) -> DatasetSpec:
    """The spec of ``dataset``, which must be one read from a folder."""
    spec = get_dataset(dataset)
    if not spec.needs_folder:
        real = tuple(s.name for s in dataset_specs() if s.needs_folder)
        raise DataError(f"{folder}: {dataset} is generated, it has no download to prepare; choose one of {real}")
    return spec


def find_dataset_root(folder: str | Path, dataset: str) -> Path:
    """The dataset root inside an unpacked download (which often adds a top-level folder).

    Args:
        folder: where the download was unpacked.
        dataset: a registered dataset read from a folder (``"acdc"``, ``"camus"``, ...).

    Returns:
        The first folder (breadth first, at most 3 levels) the reader recognises.

    Raises:
        ValueError: an unknown dataset (the message lists the registered ones).
        DataError: none found, or a generated dataset.
    """
    spec = _folder_dataset(dataset, folder)
    level = [Path(folder)]
    for _ in range(4):
        for candidate in level:
            try:
                if spec.list_patients(candidate):
                    return candidate
            except DataError:
                pass
        level = [d for c in level for d in sorted(c.iterdir()) if d.is_dir()]
    raise DataError(f"{folder}: no {dataset.upper()} layout found in it or 3 levels below; is this the right download?")


def verify_dataset(root: str | Path, dataset: str, *, split: str | None = None) -> LayoutReport:
    """Read every patient of a dataset folder, collecting problems instead of stopping.

    Args:
        root: the dataset root.
        dataset: a registered dataset (``"acdc"``, ``"camus"``, ...).
        split: official split to read, None for all.

    Returns:
        A :class:`LayoutReport` (:meth:`DatasetSpec.verify <cardigan_utils.data.registry.DatasetSpec.verify>`).

    Raises:
        ValueError: an unknown dataset (the message lists the registered ones).
        DataError: ``root`` is not in the dataset's layout (one line naming it).
    """
    return get_dataset(dataset).verify(root, split=split)


def prepare_dataset(
    source: str | Path,
    *,
    dataset: str,
    run_dir: str | Path,
    image_size: int,
    sha256: str | None = None,
    unpack_to: str | Path | None = None,
    split: str | None = None,
    seed: int = 0,
):
    """Unpack (if an archive), verify and convert an official download to the slice cache.

    Args:
        source: the archive or the unpacked folder.
        dataset: a registered dataset read from a folder (``"acdc"``, ``"camus"``, ...).
        run_dir: run directory that receives the cache.
        image_size: slice side.
        sha256: expected archive checksum.
        unpack_to: where to unpack an archive (default: beside it, without the extension).
        split: official split to read, None for all.
        seed: split seed.

    Returns:
        ``(report, cache)``; the cache holds the patients that read cleanly.

    Raises:
        ValueError: an unknown dataset, before anything is unpacked.
        DataError: a generated dataset, a damaged archive, no layout found, no patient readable.
    """
    spec = _folder_dataset(dataset, source)
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; give the downloaded archive or the unpacked folder")
    if source.is_file():
        stem = source.name.split(".")[0]
        source = extract_archive(source, unpack_to or source.parent / stem, sha256=sha256)
    root = find_dataset_root(source, spec.name)
    report = spec.verify(root, split=split)
    if not report.cases:
        raise DataError(f"{root}: no patient could be read:\n{report.summary()}")
    cache = build_cache(report.cases, cache_dir(run_dir, spec.name, image_size), image_size=image_size, seed=seed, overwrite=True)
    return report, cache
