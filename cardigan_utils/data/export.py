"""Write datasets to disk in the official layouts (ACDC, CAMUS NIfTI, CAMUS legacy .mhd, nnU-Net v2).

The built-in phantoms go through these writers so that the real readers are exercised on files
that look like the official downloads (``data_scripts/make_phantom.py``). Labelled 2-D slices
(e.g. generated pairs) can be written as an nnU-Net v2 raw dataset and checked against its
documented format (:func:`write_nnunet_dataset`, :func:`check_nnunet_dataset`), with a cross-validation
split that keeps each patient in one fold and synthetic cases out of validation (:func:`write_nnunet_splits`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..runs import (TMP_MARK, OutputRecord, atomic_path, check_output_dir, raise_naming, temporary_path,
                    write_text_atomic)
from .acdc import write_acdc_patient
from .cache import SliceCache, check_fully_labelled
from .camus import write_camus_patient, write_camus_split
from .case import Case, DataError
from .imageio import load_nifti, save_nifti

LAYOUTS = {"mri": ("acdc",), "echo": ("camus-nifti", "camus-mhd")}
"""Layouts each modality can be written in."""


def official_ids(patient_ids: Sequence[str], *, layout: str) -> dict[str, str]:
    """Official-looking names for patients, numbered from 1 in sorted order.

    The readers only recognise ``patientXXX`` (ACDC) and ``patientXXXX`` (CAMUS) folders.

    Args:
        patient_ids: the source ids (e.g. ``phantom000``).
        layout: ``"acdc"``, ``"camus-nifti"`` or ``"camus-mhd"``.

    Returns:
        ``{source id: official id}``.
    """
    digits = 3 if layout == "acdc" else 4
    return {pid: f"patient{i:0{digits}d}" for i, pid in enumerate(sorted(set(patient_ids)), 1)}


def _by_patient(cases: Sequence[Case], names: dict[str, str]) -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for c in cases:
        renamed = dataclasses.replace(c, patient_id=names[c.patient_id], meta={**c.meta, "source_id": c.patient_id})
        out.setdefault(renamed.patient_id, []).append(renamed)
    return out


def write_dataset(
    cases: Sequence[Case],
    out_dir: str | Path,
    *,
    layout: str,
    splits: dict[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write Cases as an official-looking dataset folder.

    ``acdc``: ``out_dir/training/patientXXX/`` (or ``testing/`` for patients whose split is test).
    ``camus-nifti``: ``out_dir/database_nifti/patientXXXX/`` + ``out_dir/database_split/``.
    ``camus-mhd``: ``out_dir/training/patientXXXX/`` (``testing/`` for test patients; ground truth
    is written there too, unlike the public release, so the reader can be checked on it).
    Patients are renamed to the official pattern (:func:`official_ids`).

    The folder keeps a record of the files written (:class:`~cardigan_utils.runs.OutputRecord`):
    ``overwrite`` replaces those (and deletes those of an earlier call that this one does not
    write again), never a file the kit did not write, such as a real patient's. The dataset is
    written into a temporary folder inside ``out_dir`` first and moved into place file by file once
    every file is known to be replaceable, so a refusal or a failure leaves the folder as it was.

    Args:
        cases: the Cases (one modality).
        out_dir: the dataset root to create.
        layout: ``"acdc"``, ``"camus-nifti"`` or ``"camus-mhd"``.
        splits: ``{source patient_id: "train"|"val"|"test"}``; default: all training.
        overwrite: write into a folder that already holds a dataset written by the kit.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: no cases, or a layout the modality cannot be written in.
        FileExistsError: ``out_dir`` holds files and ``overwrite`` is False, or it holds files the
            kit did not write (a real dataset).
        OSError: ``out_dir`` is a file or cannot be written (naming it).
    """
    out_dir = Path(out_dir)
    if not cases:
        raise ValueError("write_dataset got no cases")
    modality = cases[0].modality
    if layout not in LAYOUTS[modality]:
        raise ValueError(f"{modality} cases can be written as {LAYOUTS[modality]}, not {layout!r}")
    record = OutputRecord(out_dir, command="the kit's dataset writer (make_phantom.py)")
    present = _dataset_files(out_dir, record=record)
    if present and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose another folder or pass overwrite=True "
                              "(make_phantom.py --overwrite) to replace a dataset the kit wrote there")
    if present and not record.path.exists():
        raise FileExistsError(f"{out_dir} holds files the kit did not write (e.g. {present[0]}), a real dataset perhaps: "
                              "they are never overwritten; choose another folder")
    check_output_dir(out_dir, option="out_dir")
    staging = temporary_path(out_dir / ".staging")
    try:
        _write_layout(cases, staging, layout=layout, splits=splits)
        written = sorted(p for p in staging.rglob("*") if p.is_file())
        targets = [out_dir / p.relative_to(staging) for p in written]
        for target in targets:  # every file checked before the first is moved
            record.check_replaceable(target)
        # an earlier call's files that this one does not write again (more patients, another layout)
        stale = [p for p in sorted(set(present) - set(targets)) if record.owns(p)]
        for source, target in zip(written, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        record.add(*targets)
        for path in stale:
            path.unlink(missing_ok=True)
            _remove_empty_folders(path.parent, up_to=out_dir)
        record.forget(*stale)
    except OSError as err:
        raise_naming(err, path=out_dir, temporary=staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _dataset_files(out_dir: Path, *, record: OutputRecord) -> list[Path]:
    """The files under ``out_dir`` but the record and temporary leftovers; [] when it does not exist."""
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and p != record.path
                  and not any(TMP_MARK in part for part in p.relative_to(out_dir).parts))


def _remove_empty_folders(folder: Path, *, up_to: Path) -> None:
    """Remove ``folder`` and its parents below ``up_to`` while they are empty (a deleted patient's folder)."""
    while folder != up_to and up_to in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _write_layout(cases: Sequence[Case], out_dir: Path, *, layout: str, splits: dict[str, str] | None) -> None:
    """Write the dataset's files under ``out_dir`` (see :func:`write_dataset`)."""
    names = official_ids([c.patient_id for c in cases], layout=layout)
    splits = {names[p]: s for p, s in (splits or {}).items() if p in names}
    patients = _by_patient(cases, names)
    if layout == "camus-nifti":
        for group in patients.values():
            write_camus_patient(group, out_dir / "database_nifti", fmt="nifti")
        names = {"train": "training", "val": "validation", "test": "testing"}
        by_split: dict[str, list[str]] = {name: [] for name in names.values()}
        for pid in patients:
            by_split[names[splits.get(pid, "train")]].append(pid)
        write_camus_split(out_dir, by_split)
        return
    for pid, group in patients.items():
        folder = out_dir / ("testing" if splits.get(pid) == "test" else "training")
        if layout == "acdc":
            write_acdc_patient(group, folder)
        else:
            write_camus_patient(group, folder, fmt="mhd")


# --- nnU-Net v2 raw dataset -------------------------------------------------------------------
#
# Written from nnU-Net v2's documentation/dataset_format.md (MIC-DKFZ/nnUNet): a dataset is the
# folder ``DatasetXXX_Name`` (three-digit id) holding ``dataset.json``, ``imagesTr/`` with one file
# per input channel, ``{CASE}_{XXXX}{file_ending}`` (4-digit channel index), and ``labelsTr/`` with
# one segmentation per case, ``{CASE}{file_ending}``. ``dataset.json`` needs ``channel_names``
# ({"0": "MRI"}), ``labels`` (name -> int, background 0, consecutive), ``numTraining`` and
# ``file_ending``. Images and segmentation of a case must share their geometry (shape, spacing).

NNUNET_FILE_ENDING = ".nii.gz"
"""The file ending written and declared in ``dataset.json``."""

NNUNET_SLICE_SPACING = 999.0
"""Spacing (mm) written for the singleton third axis of a 2-D slice stored as NIfTI.

v2's dataset_format.md ("How to use 2D data with nnU-Net") only says 2-D is native and points to
the PNG example Dataset120_RoadSegmentation; the pseudo-3-D NIfTI rule comes from v1's
documentation/dataset_conversion.md ("How to use 2D data with nnU-Net"): save with nibabel as
``(y, x, 1)`` and "set the spacing of the first axis (the one with shape 1) to a value larger than
the others". v2 still relies on it: ``BaseReaderWriter.read_images`` asks for spacing 999 on the
singleton axis of 2-D data, and ``ExperimentPlanner.determine_transpose`` takes the axis of largest
spacing as the out-of-plane one. A spacing of 1.0 there would, for in-plane spacing above 1 mm,
make nnU-Net slice across an in-plane axis and plan 3-D configurations on one-voxel-thick data.
"""

NNUNET_SYNTHETIC_PREFIX = "synth"
"""Case-id prefix of synthetic slices (``synth_NNNNNN``); a real slice's prefix is its patient id."""

REQUIRED_DATASET_JSON_KEYS = {"channel_names": dict, "labels": dict, "numTraining": int, "file_ending": str}
"""The keys nnU-Net v2 requires in ``dataset.json`` (``verify_dataset_integrity``) and their types."""

_DATASET_DIR_RE = re.compile(r"^Dataset(\d{3})_([A-Za-z0-9_-]+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def nnunet_dataset_dir(root: str | Path, *, dataset_id: int, name: str) -> Path:
    """The folder of an nnU-Net v2 raw dataset: ``root / "DatasetXXX_Name"``.

    Args:
        root: the ``nnUNet_raw`` folder (or any parent folder).
        dataset_id: 1..999, written with three digits.
        name: letters, digits, ``_`` and ``-`` only.

    Returns:
        ``root / f"Dataset{dataset_id:03d}_{name}"``.

    Raises:
        ValueError: the id is not an int in 1..999 or the name has other characters.
    """
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise ValueError(f"nnU-Net dataset_id must be an integer in 1..999, got {dataset_id!r}")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"nnU-Net dataset name must be letters, digits, '_' or '-' only, got {name!r}")
    return Path(root) / f"Dataset{dataset_id:03d}_{name}"


def _save_slice_atomic(path: Path, data: np.ndarray, spacing: tuple[float, float]) -> None:
    """Write one 2-D slice as an ``(H, W, 1)`` NIfTI through a temporary name and ``os.replace``."""
    # imageio.save_nifti writes the diagonal affine diag(sx, sy, sz, 1) that the kit's ACDC and CAMUS
    # writers use too (axes aligned with the world axes, voxel sizes on the diagonal); sz is the large
    # out-of-plane spacing nnU-Net expects for 2-D data (see NNUNET_SLICE_SPACING).
    with atomic_path(path) as tmp:
        save_nifti(tmp, data[:, :, None], (float(spacing[0]), float(spacing[1]), NNUNET_SLICE_SPACING))


def _check_slices(images: np.ndarray, labels: np.ndarray, spacing: tuple[float, float]) -> None:
    """Raise ValueError for arrays or a spacing that cannot be written as nnU-Net cases."""
    if images.ndim != 3 or labels.shape != images.shape:
        raise ValueError(f"images and labels must both be (N, H, W); got {images.shape} and {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"label values must be in 0..255 (stored as uint8), got {labels.min()}..{labels.max()}")
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise ValueError("images must be real-valued and finite (nnU-Net rejects NaN)")
    if len(spacing) != 2 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be two positive in-plane voxel sizes in mm, got {spacing!r}")


def write_nnunet_cases(
    dataset_dir: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    start_index: int,
    spacing: tuple[float, float],
    case_prefix: str = NNUNET_SYNTHETIC_PREFIX,
    overwrite: bool = False,
) -> list[str]:
    """Write 2-D slices as single-channel nnU-Net v2 training cases (resumable).

    Case ``i`` is ``f"{case_prefix}_{start_index + i:06d}"``: ``imagesTr/{case}_0000.nii.gz`` (float32)
    and ``labelsTr/{case}.nii.gz`` (uint8), both of shape ``(H, W, 1)`` with spacing
    ``(spacing[0], spacing[1], NNUNET_SLICE_SPACING)``. Each file goes through a temporary name in
    its folder and ``os.replace``; the label is written last, so an existing label means the case is
    complete. Complete cases are skipped unless ``overwrite``, so an interrupted export can be resumed
    by calling this again with the same data.

    Args:
        dataset_dir: the ``DatasetXXX_Name`` folder (see :func:`nnunet_dataset_dir`); created if needed.
        images: (N, H, W) real-valued array.
        labels: (N, H, W) integer array with values in 0..255.
        start_index: number of the first case.
        spacing: in-plane voxel sizes in mm of axes 0 and 1 (rows, cols).
        case_prefix: letters, digits, ``_`` and ``-`` only.
        overwrite: rewrite complete cases too.

    Returns:
        The ids of the N cases, written now or already complete.

    Raises:
        ValueError: bad shapes, label values, spacing, start index or prefix.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    _check_slices(images, labels, spacing)
    if isinstance(start_index, bool) or not isinstance(start_index, (int, np.integer)) or start_index < 0:
        raise ValueError(f"start_index must be a non-negative integer, got {start_index!r}")
    if not isinstance(case_prefix, str) or not _NAME_RE.fullmatch(case_prefix):
        raise ValueError(f"case_prefix must be letters, digits, '_' or '-' only, got {case_prefix!r}")
    dataset_dir = Path(dataset_dir)
    image_dir, label_dir = dataset_dir / "imagesTr", dataset_dir / "labelsTr"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(len(images)):
        case = f"{case_prefix}_{int(start_index) + i:06d}"
        ids.append(case)
        image_path = image_dir / f"{case}_0000{NNUNET_FILE_ENDING}"
        label_path = label_dir / f"{case}{NNUNET_FILE_ENDING}"
        if not overwrite and image_path.is_file() and label_path.is_file():
            continue
        label_path.unlink(missing_ok=True)  # an image rewritten under an old label would look complete
        _save_slice_atomic(image_path, images[i].astype(np.float32), spacing)
        _save_slice_atomic(label_path, labels[i].astype(np.uint8), spacing)
    return ids


def _check_label_names(label_names: dict) -> list[str]:
    """Problems with a ``labels`` mapping: int values, background 0, consecutive, no repeats."""
    problems = []
    values = []
    for key, value in label_names.items():
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"labels: {key!r} maps to {value!r}, not an integer (region lists are not supported here)")
        else:
            values.append(value)
    if len(set(values)) != len(values):
        problems.append(f"labels: a value is used twice in {sorted(values)}")
    if values and 0 not in values:
        problems.append("labels: no label has value 0 (the background must be 0)")
    if values and sorted(set(values)) != list(range(max(values) + 1)):
        problems.append(f"labels: values {sorted(set(values))} are not consecutive integers 0, 1, 2, ...")
    if not label_names:
        problems.append("labels: empty")
    return problems


def finish_nnunet_dataset(
    dataset_dir: str | Path,
    *,
    label_names: dict[str, int],
    channel_name: str = "MRI",
    extra: dict | None = None,
) -> Path:
    """Clean up after :func:`write_nnunet_cases` and write ``dataset.json``.

    Removes temporary files left by an interruption and orphan images (an image whose label was
    never written), counts the complete cases and writes ``dataset.json`` atomically.

    Args:
        dataset_dir: the ``DatasetXXX_Name`` folder.
        label_names: ``{name: value}``, background 0, consecutive integers, e.g.
            ``{"background": 0, "RV": 1, "MYO": 2, "LV": 3}``.
        channel_name: name of the single input channel; nnU-Net picks the normalisation from it
            ("CT" gets a global one, anything else per-image z-scoring).
        extra: more keys for ``dataset.json`` (e.g. ``"description"``); cannot replace the required ones.

    Returns:
        The path of ``dataset.json``.

    Raises:
        ValueError: bad ``label_names`` or ``extra``, no complete case, or a label without its image.
    """
    dataset_dir = Path(dataset_dir)
    problems = _check_label_names(dict(label_names))
    if problems:
        raise ValueError("; ".join(problems))
    clash = sorted(set(extra or {}) & set(REQUIRED_DATASET_JSON_KEYS))
    if clash:
        raise ValueError(f"extra cannot set the required dataset.json keys {clash}")
    image_dir, label_dir = dataset_dir / "imagesTr", dataset_dir / "labelsTr"
    for folder in (dataset_dir, image_dir, label_dir):
        for stray in folder.glob(f"*{TMP_MARK}*"):
            if stray.is_file():
                stray.unlink()
    labelled = {p.name[: -len(NNUNET_FILE_ENDING)] for p in label_dir.glob(f"*{NNUNET_FILE_ENDING}")}
    for image in image_dir.glob(f"*_0000{NNUNET_FILE_ENDING}"):
        if image.name[: -len("_0000" + NNUNET_FILE_ENDING)] not in labelled:
            image.unlink()
    imaged = {p.name[: -len("_0000" + NNUNET_FILE_ENDING)] for p in image_dir.glob(f"*_0000{NNUNET_FILE_ENDING}")}
    lonely = sorted(labelled - imaged)
    if lonely:
        raise ValueError(
            f"{label_dir}: {len(lonely)} label(s) without their image, e.g. {lonely[0]}{NNUNET_FILE_ENDING}; "
            "delete them or write those cases again with overwrite=True"
        )
    if not labelled:
        raise ValueError(f"{dataset_dir}: no complete case; write cases with write_nnunet_cases first")
    content = {
        "channel_names": {"0": channel_name},
        "labels": dict(sorted(label_names.items(), key=lambda item: item[1])),
        "numTraining": len(labelled),
        "file_ending": NNUNET_FILE_ENDING,
        **(extra or {}),
    }
    return write_text_atomic(dataset_dir / "dataset.json", json.dumps(content, indent=1))


def start_nnunet_dataset(dataset_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Make ready to write an nnU-Net dataset folder: refuse or clear a finished one, keep an unfinished one.

    Args:
        dataset_dir: the ``DatasetNNN_Name`` folder.
        overwrite: delete a finished dataset there (``imagesTr``, ``labelsTr``, ``dataset.json``;
            other files are left alone).

    Returns:
        ``dataset_dir`` (created).

    Raises:
        FileExistsError: it holds a finished dataset (a ``dataset.json``) and ``overwrite`` is False.
    """
    dataset_dir = Path(dataset_dir)
    if (dataset_dir / "dataset.json").exists():
        if not overwrite:
            raise FileExistsError(
                f"{dataset_dir} already holds an nnU-Net dataset; choose another id or name, or pass overwrite=True"
            )
        for sub in ("imagesTr", "labelsTr"):
            shutil.rmtree(dataset_dir / sub, ignore_errors=True)
        (dataset_dir / "dataset.json").unlink()
    dataset_dir.mkdir(parents=True, exist_ok=True)
    return dataset_dir


def write_nnunet_dataset(
    root: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    dataset_id: int,
    name: str,
    spacing: tuple[float, float],
    label_names: dict[str, int],
    channel_name: str = "MRI",
    case_prefix: str = NNUNET_SYNTHETIC_PREFIX,
    overwrite: bool = False,
) -> Path:
    """Write 2-D slices as a complete nnU-Net v2 raw dataset ``root/DatasetXXX_Name``.

    A folder without ``dataset.json`` (an interrupted earlier call) is resumed: complete cases are
    kept. With ``overwrite``, an existing ``imagesTr``, ``labelsTr`` and ``dataset.json`` are deleted
    first (other files in the folder are left alone).

    Args:
        root: the ``nnUNet_raw`` folder.
        images: (N, H, W) real-valued array.
        labels: (N, H, W) integer array with values in 0..255.
        dataset_id: 1..999.
        name: the dataset name (letters, digits, ``_``, ``-``).
        spacing: in-plane voxel sizes in mm of axes 0 and 1.
        label_names: ``{name: value}``, background 0, consecutive integers.
        channel_name: name of the single input channel.
        case_prefix: case ids are ``f"{case_prefix}_{i:06d}"``.
        overwrite: replace a finished dataset of the same id and name.

    Returns:
        The dataset folder.

    Raises:
        FileExistsError: the dataset already exists (has a ``dataset.json``) and ``overwrite`` is False.
        ValueError: bad arguments (see :func:`write_nnunet_cases` and :func:`finish_nnunet_dataset`).
    """
    dataset_dir = nnunet_dataset_dir(root, dataset_id=dataset_id, name=name)
    problems = _check_label_names(dict(label_names))
    if problems:
        raise ValueError("; ".join(problems))
    start_nnunet_dataset(dataset_dir, overwrite=overwrite)
    write_nnunet_cases(dataset_dir, images, labels, start_index=0, spacing=spacing, case_prefix=case_prefix,
                       overwrite=overwrite)
    finish_nnunet_dataset(dataset_dir, label_names=label_names, channel_name=channel_name)
    return dataset_dir


def _read_dataset_json(dataset_dir: Path, problems: list[str]) -> dict:
    """``dataset.json`` as a dict ({} when missing or unreadable), its problems appended."""
    path = dataset_dir / "dataset.json"
    if not path.is_file():
        problems.append(f"{path}: dataset.json missing")
        return {}
    try:
        content = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        problems.append(f"{path}: dataset.json is not valid JSON ({err})")
        return {}
    if not isinstance(content, dict):
        problems.append(f"{path}: dataset.json is not a JSON object")
        return {}
    for key, kind in REQUIRED_DATASET_JSON_KEYS.items():
        if key not in content:
            problems.append(f"dataset.json: missing required key {key!r}")
        elif isinstance(content[key], bool) or not isinstance(content[key], kind):
            problems.append(f"dataset.json: {key!r} must be of type {kind.__name__}, got {type(content[key]).__name__}")
    return content


def check_nnunet_dataset(dataset_dir: str | Path) -> list[str]:
    """Check a folder against nnU-Net v2's documented raw dataset format (documentation/dataset_format.md).

    Checks the folder name (``DatasetXXX_Name``); ``dataset.json`` and its required keys and types;
    ``labels`` (integers, background 0, consecutive); ``channel_names`` keys ``"0".."C-1"``;
    ``file_ending``; every ``imagesTr`` file is ``{CASE}_{XXXX}{file_ending}`` with a declared channel
    and every ``labelsTr`` file ``{CASE}{file_ending}``; every case has all C channels and a label and
    vice versa; ``numTraining`` equals the number of cases; per case, images and label have the same
    shape, affine and spacing; images are finite; label values are declared in ``labels``; a 2-D slice
    stored as 3-D has its largest spacing on the singleton axis. Files are read with nibabel.

    Args:
        dataset_dir: the ``DatasetXXX_Name`` folder.

    Returns:
        Human-readable problems; an empty list means the dataset is valid.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        return [f"{dataset_dir}: not a folder"]
    problems: list[str] = []
    match = _DATASET_DIR_RE.fullmatch(dataset_dir.name)
    if not match or match.group(1) == "000":
        problems.append(f"folder name {dataset_dir.name!r} does not match DatasetXXX_Name (id 001..999, "
                        "name of letters, digits, '_', '-')")
    content = _read_dataset_json(dataset_dir, problems)

    file_ending = content.get("file_ending")
    if isinstance(file_ending, str) and file_ending not in (".nii.gz", ".nii"):
        problems.append(f"dataset.json: file_ending {file_ending!r} cannot be checked here "
                        "(NIfTI '.nii.gz' or '.nii' only)")
        return problems
    if not isinstance(file_ending, str):
        file_ending = NNUNET_FILE_ENDING
    declared: set[int] | None = None
    if isinstance(content.get("labels"), dict):
        label_problems = _check_label_names(content["labels"])
        problems += label_problems
        if not label_problems:
            declared = set(content["labels"].values())
    n_channels: int | None = None
    channels = content.get("channel_names")
    if isinstance(channels, dict):
        if sorted(channels) != [str(c) for c in range(len(channels))] or not channels:
            problems.append(f"channel_names: keys {sorted(channels)} are not '0', '1', ... (one per channel)")
        elif not all(isinstance(v, str) for v in channels.values()):
            problems.append("channel_names: every channel name must be a string")
        else:
            n_channels = len(channels)

    image_dir, label_dir = dataset_dir / "imagesTr", dataset_dir / "labelsTr"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            problems.append(f"{folder.name}/ missing")
    if problems and not (image_dir.is_dir() and label_dir.is_dir()):
        return problems

    image_re = re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")
    case_images: dict[str, dict[int, Path]] = {}
    for path in sorted(image_dir.iterdir()):
        found = image_re.fullmatch(path.name)
        if not found or not path.is_file():
            problems.append(f"imagesTr/{path.name}: not named {{CASE}}_{{XXXX}}{file_ending}")
            continue
        case, channel = found.group(1), int(found.group(2))
        if n_channels is not None and channel >= n_channels:
            problems.append(f"imagesTr/{path.name}: channel {channel:04d} is not declared in channel_names "
                            f"(channels 0000..{n_channels - 1:04d})")
        case_images.setdefault(case, {})[channel] = path
    case_labels: dict[str, Path] = {}
    for path in sorted(label_dir.iterdir()):
        if not path.is_file() or not path.name.endswith(file_ending) or path.name == file_ending:
            problems.append(f"labelsTr/{path.name}: not named {{CASE}}{file_ending}")
            continue
        case_labels[path.name[: -len(file_ending)]] = path

    cases = sorted(set(case_images) | set(case_labels))
    if isinstance(content.get("numTraining"), int) and content["numTraining"] != len(cases):
        problems.append(f"dataset.json: numTraining is {content['numTraining']} but {len(cases)} cases were found")
    expected_channels = range(n_channels if n_channels is not None else
                              max((max(c) + 1 for c in case_images.values()), default=0))
    for case in cases:
        files = case_images.get(case, {})
        if case not in case_labels:
            problems.append(f"case {case}: no label file labelsTr/{case}{file_ending}")
        if not files:
            problems.append(f"case {case}: label without any image in imagesTr/")
            continue
        missing = [f"{c:04d}" for c in expected_channels if c not in files]
        if missing:
            problems.append(f"case {case}: missing image channel(s) {', '.join(missing)}")
        loaded = {}
        for path in list(files.values()) + ([case_labels[case]] if case in case_labels else []):
            try:
                loaded[path] = load_nifti(path)
            except DataError as err:
                problems.append(str(err))
        if not loaded:
            continue
        ref_path, (ref_data, ref_affine, ref_zooms) = next(iter(loaded.items()))
        for path, (data, affine, zooms) in loaded.items():
            rel = f"{path.parent.name}/{path.name}"
            ref_rel = f"{ref_path.parent.name}/{ref_path.name}"
            if path.parent == image_dir and not np.isfinite(np.asarray(data, dtype=np.float64)).all():
                problems.append(f"{rel}: image has NaN or infinite values")
            if data.shape != ref_data.shape:
                problems.append(f"case {case}: shape {data.shape} of {rel} differs from {ref_data.shape} of {ref_rel}")
                continue
            if not np.allclose(affine, ref_affine):
                problems.append(f"case {case}: affine (spacing/orientation) of {rel} differs from {ref_rel}")
            elif not np.allclose(zooms, ref_zooms):
                problems.append(f"case {case}: spacing {zooms} of {rel} differs from {ref_zooms} of {ref_rel}")
            if data.ndim == 3 and list(data.shape).count(1) == 1:
                axis = list(data.shape).index(1)
                in_plane = [z for k, z in enumerate(zooms[:3]) if k != axis]
                if zooms[axis] <= max(in_plane):
                    problems.append(f"{rel}: 2-D slice whose singleton axis has spacing {zooms[axis]:g}, not larger "
                                    f"than the in-plane {max(in_plane):g}; nnU-Net would slice along the wrong axis")
            if path.parent == label_dir and declared is not None:
                undeclared = sorted(set(np.unique(data).tolist()) - declared)
                if undeclared:
                    problems.append(f"{rel}: label value(s) {undeclared} not declared in dataset.json labels")
    return problems


# --- patients and cross-validation folds --------------------------------------------------------
#
# nnU-Net v2 trains fold k on ``splits_final.json`` of ``nnUNet_preprocessed/DatasetXXX_Name/`` when
# that file exists (nnUNetTrainer.do_split; it writes its own 5-fold split by case only when it does
# not): a list of folds, each {"train": [case ids], "val": [case ids]}. Its own split knows nothing of
# patients, so two slices of one patient can land in training and validation of the same fold, and
# synthetic cases would be validated on. Case ids written by write_nnunet_cases are
# ``{prefix}_{NNNNNN}``: a real patient's slices take the patient id as prefix, so the id carries it.

_CASE_ID_RE = re.compile(r"^(.+)_(\d{6})$")


def write_nnunet_patients(
    dataset_dir: str | Path,
    cache: SliceCache,
    *,
    splits: Sequence[str] = ("train",),
    overwrite: bool = False,
) -> dict[str, str]:
    """Write a slice cache's patients as nnU-Net v2 cases whose ids carry the patient (resumable).

    Slice ``k`` (in cache order) of patient ``P`` becomes case ``f"{P}_{k:06d}"``, written by
    :func:`write_nnunet_cases` with the slice's own spacing (the 1.0 mm placeholder where the cache
    does not know it, as in the synthetic exports). Finish the dataset with :func:`finish_nnunet_dataset`.

    Args:
        dataset_dir: the ``DatasetXXX_Name`` folder.
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.
        splits: the cache splits whose patients are written (default: the training patients; the
            test patients stay held out, and nnU-Net's folds take the place of ``"val"``).
        overwrite: rewrite complete cases too.

    Returns:
        ``{case id: patient id}`` of the cases written (or already complete), for :func:`write_nnunet_splits`.

    Raises:
        ValueError: an unknown split, no slice in ``splits``, a patient id that cannot be a case
            prefix (letters, digits, ``_`` and ``-`` only), or a cache whose truth leaves structures
            unlabelled (:func:`~cardigan_utils.data.cache.check_fully_labelled`).
    """
    check_fully_labelled(cache)  # nnU-Net would learn an unlabelled structure (Sunnybrook's RV) as background
    table = cache.slices
    bad = sorted(set(splits) - {"train", "val", "test"})
    if bad:
        raise ValueError(f"{cache.path}: unknown split(s) {bad}; the cache has 'train', 'val' and 'test'")
    rows = np.flatnonzero(table["split"].isin(list(splits)).to_numpy())
    if not len(rows):
        raise ValueError(f"{cache.path}: no slice in the split(s) {list(splits)}")
    spacing = table["spacing_mm"].to_numpy(dtype=np.float64)
    if "spacing_known" in table:
        spacing = np.where(table["spacing_known"].astype(bool).to_numpy(), spacing, np.nan)
    patients = table["patient_id"].astype(str).to_numpy()
    case_patients: dict[str, str] = {}
    for patient in sorted(set(patients[rows])):
        if not _NAME_RE.fullmatch(patient):
            raise ValueError(f"{cache.path}: patient id {patient!r} cannot prefix nnU-Net case ids "
                             "(letters, digits, '_' and '-' only)")
        for k, row in enumerate(rows[patients[rows] == patient]):
            size = float(spacing[row]) if np.isfinite(spacing[row]) and spacing[row] > 0 else 1.0
            (case,) = write_nnunet_cases(dataset_dir, cache.images[row : row + 1], cache.labels[row : row + 1],
                                         start_index=k, spacing=(size, size), case_prefix=patient, overwrite=overwrite)
            case_patients[case] = patient
    return case_patients


def nnunet_case_patients(
    dataset_dir: str | Path, *, synthetic_prefix: str = NNUNET_SYNTHETIC_PREFIX
) -> tuple[dict[str, str], list[str]]:
    """Each case's patient, read from the case ids of a dataset the kit wrote.

    Ids are ``{prefix}_{NNNNNN}``; the prefix is the patient (:func:`write_nnunet_patients`), or marks
    a synthetic case when it is ``synthetic_prefix`` (the synthetic exports' ``synth_NNNNNN``).

    Args:
        dataset_dir: the ``DatasetXXX_Name`` folder.
        synthetic_prefix: the prefix of synthetic cases.

    Returns:
        ``({real case id: patient id}, [synthetic case ids])``, sorted.

    Raises:
        ValueError: a case id without the ``_NNNNNN`` suffix (not written by the kit), or no case.
    """
    case_patients: dict[str, str] = {}
    synthetic: list[str] = []
    for case in _dataset_cases(Path(dataset_dir)):
        found = _CASE_ID_RE.fullmatch(case)
        if not found:
            raise ValueError(f"{Path(dataset_dir) / 'labelsTr'}: case id {case!r} is not {{patient}}_{{NNNNNN}}, "
                             "so its patient is unknown; pass case_patients to write_nnunet_splits yourself")
        if found.group(1) == synthetic_prefix:
            synthetic.append(case)
        else:
            case_patients[case] = found.group(1)
    return case_patients, synthetic


def _dataset_cases(dataset_dir: Path) -> list[str]:
    """The case ids of a finished dataset (its labels), sorted; ValueError when it is not one."""
    if not (dataset_dir / "dataset.json").is_file():
        raise ValueError(f"{dataset_dir}: no dataset.json, not a finished nnU-Net dataset; write it first")
    file_ending = json.loads((dataset_dir / "dataset.json").read_text()).get("file_ending", NNUNET_FILE_ENDING)
    cases = sorted(p.name[: -len(file_ending)] for p in (dataset_dir / "labelsTr").glob(f"*{file_ending}"))
    if not cases:
        raise ValueError(f"{dataset_dir / 'labelsTr'}: no case")
    return cases


def nnunet_splits(
    case_patients: Mapping[str, str],
    *,
    synthetic: Iterable[str] = (),
    n_folds: int = 5,
    seed: int = 0,
) -> list[dict[str, list[str]]]:
    """Cross-validation folds by patient, synthetic cases always in training.

    The real patients are shuffled (seeded) and dealt to the folds in turn, so fold sizes differ by
    at most one patient. Fold ``k`` validates on every case of its patients and trains on all other
    cases: the other folds' real cases and every synthetic case.

    Args:
        case_patients: ``{real case id: patient id}``.
        synthetic: ids of the synthetic cases (never validated on).
        n_folds: number of folds, 2 .. the number of patients.
        seed: shuffling seed.

    Returns:
        ``[{"train": [...], "val": [...]}, ...]``, ``n_folds`` folds, ids sorted: the layout of
        nnU-Net's ``splits_final.json``.

    Raises:
        ValueError: ``n_folds`` not an integer in 2 .. number of patients, or a case both real and synthetic.
    """
    synthetic = sorted(set(synthetic))
    both = sorted(set(synthetic) & set(case_patients))
    if both:
        raise ValueError(f"case {both[0]!r} is both a real patient's case and synthetic")
    patients = sorted(set(case_patients.values()))
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not 2 <= n_folds <= len(patients):
        raise ValueError(f"n_folds must be an integer from 2 to the number of real patients ({len(patients)}), "
                         f"got {n_folds!r}")
    order = np.random.default_rng(seed).permutation(len(patients))
    fold_of = {patients[j]: i % n_folds for i, j in enumerate(order)}
    real = sorted(case_patients)
    return [{"train": sorted([c for c in real if fold_of[case_patients[c]] != k] + synthetic),
             "val": [c for c in real if fold_of[case_patients[c]] == k]} for k in range(int(n_folds))]


def write_nnunet_splits(
    dataset_dir: str | Path,
    preprocessed_root: str | Path,
    *,
    case_patients: Mapping[str, str],
    synthetic: Iterable[str] = (),
    n_folds: int = 5,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write nnU-Net's ``splits_final.json``: no patient split across folds, synthetic cases never validated on.

    The file goes to ``preprocessed_root / "DatasetXXX_Name" / "splits_final.json"``, where
    ``preprocessed_root`` is nnU-Net's ``nnUNet_preprocessed`` folder; the trainer reads it there
    (``nnUNetTrainer.do_split``) and uses fold ``k`` for ``nnUNetv2_train ... k``. It may be written
    before or after ``nnUNetv2_plan_and_preprocess``, which leaves it alone. Every case of the
    dataset must be either a real case with its patient or synthetic (:func:`nnunet_case_patients`
    reads both from the ids the kit writes). Folds as :func:`nnunet_splits`.

    Args:
        dataset_dir: the raw ``DatasetXXX_Name`` folder (finished: with ``dataset.json``).
        preprocessed_root: the ``nnUNet_preprocessed`` folder.
        case_patients: ``{real case id: patient id}``.
        synthetic: ids of the synthetic cases.
        n_folds: number of folds, 2 .. the number of real patients.
        seed: shuffling seed.
        overwrite: replace a different ``splits_final.json`` (nnU-Net's own, or one trained on already).

    Returns:
        The path of ``splits_final.json``.

    Raises:
        ValueError: a case id not in the dataset, a case of the dataset with neither a patient nor the
            synthetic mark, a bad ``n_folds`` or folder name (each naming the dataset).
        FileExistsError: a different ``splits_final.json`` is there and ``overwrite`` is False.
    """
    dataset_dir = Path(dataset_dir)
    if not _DATASET_DIR_RE.fullmatch(dataset_dir.name):
        raise ValueError(f"{dataset_dir}: folder name does not match DatasetXXX_Name")
    cases = _dataset_cases(dataset_dir)
    synthetic = set(synthetic)
    unknown = sorted((set(case_patients) | synthetic) - set(cases))
    if unknown:
        raise ValueError(f"{dataset_dir}: case {unknown[0]!r} is not in the dataset "
                         f"({len(unknown)} unknown case id(s); the dataset has {len(cases)} cases)")
    unassigned = sorted(set(cases) - set(case_patients) - synthetic)
    if unassigned:
        raise ValueError(f"{dataset_dir}: case {unassigned[0]!r} has no patient and is not marked synthetic "
                         f"({len(unassigned)} such case(s)); give every case to case_patients or synthetic")
    try:
        folds = nnunet_splits(case_patients, synthetic=synthetic, n_folds=n_folds, seed=seed)
    except ValueError as err:
        raise ValueError(f"{dataset_dir}: {err}") from None
    path = Path(preprocessed_root) / dataset_dir.name / "splits_final.json"
    text = json.dumps(folds, indent=1)
    if path.exists() and not overwrite and path.read_text() != text:
        raise FileExistsError(f"{path} holds other folds (nnU-Net's own, or ones trained on); "
                              "pass overwrite=True to replace it")
    return write_text_atomic(path, text)
