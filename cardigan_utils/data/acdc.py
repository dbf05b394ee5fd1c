"""Reader (and writer) of the official ACDC layout.

``<root>/{training,testing}/patientXXX/Info.cfg`` (ED, ES, Group, Height, Weight, NbFrame) and
``patientXXX_frameYY.nii.gz`` + ``patientXXX_frameYY_gt.nii.gz`` for the ED and ES frames.
Labels are already the kit's MRI convention: 0 background, 1 RV, 2 MYO, 3 LV (identity label
map). The module declares the ``acdc`` dataset of the registry (``DATASETS``, at the bottom).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import progress as bar
from ..labels import PHASES, structure_names
from .case import Case, DataError, check_labels
from .imageio import read_cfg, read_image, save_nifti
from .phantom import phantom_cases
from .registry import IDENTITY_LABEL_MAP, DatasetSpec, choose_patients

SPLITS = ("training", "testing")
"""The official subsets, one folder each."""

INFO_KEYS = ("ED", "ES", "Group", "Height", "NbFrame", "Weight")


def _find_patients(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("patient[0-9][0-9][0-9]") if p.is_dir())


def list_acdc_patients(root: str | Path, *, split: str | None = None) -> list[Path]:
    """The patient folders under an ACDC download.

    Args:
        root: the folder holding ``training/`` and/or ``testing/``, or one of those folders.
        split: ``"training"``, ``"testing"`` or None for both (when ``root`` holds them).

    Returns:
        Sorted patient folders.

    Raises:
        DataError: no patient folder found (names what was looked for).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; point data_dir / CARDIGAN_ACDC_DIR at the ACDC download")
    if split not in (None, *SPLITS):
        raise ValueError(f"split must be 'training', 'testing' or None, not {split!r}")
    direct = _find_patients(root)
    if direct:
        if split not in (None, root.name):
            raise DataError(f"{root}: asked for the {split!r} split but this folder is {root.name!r}; "
                            "point at the folder holding training/ and testing/")
        return direct
    splits = [split] if split else list(SPLITS)
    found = [p for s in splits for p in _find_patients(root / s)]
    if not found:
        raise DataError(
            f"{root}: no ACDC patient folders (looked for patientXXX/ in it and in "
            f"{', '.join(s + '/' for s in splits)}); point it at the unpacked ACDC download"
        )
    return found


def _frame_path(patient_dir: Path, frame: int, gt: bool) -> Path:
    return patient_dir / f"{patient_dir.name}_frame{frame:02d}{'_gt' if gt else ''}.nii.gz"


def read_acdc_patient(patient_dir: str | Path, *, phases: tuple[str, ...] = PHASES) -> list[Case]:
    """Read the ED and ES frames of one ACDC patient with their ground truth.

    Args:
        patient_dir: a ``patientXXX`` folder.
        phases: which of ``("ED", "ES")`` to read.

    Returns:
        One Case per phase: image float32 (X, Y, Z), label uint8, spacing from the header (mm).

    Raises:
        DataError: missing Info.cfg or frame, unreadable file, a frame that is not 3-D, too large, with an
            implausible voxel size or NaN values (:func:`~cardigan_utils.data.imageio.read_image`),
            image/label mismatch, bad labels.
    """
    patient_dir = Path(patient_dir)
    info = read_cfg(
        patient_dir / "Info.cfg", missing_hint="every ACDC patient folder has one, extract the patient folder again"
    )
    cases = []
    for phase in phases:
        if phase not in info:
            raise DataError(f"{patient_dir / 'Info.cfg'}: no '{phase}:' line; restore the original file")
        frame = info[phase]
        if not isinstance(frame, int) or frame < 1:
            raise DataError(f"{patient_dir / 'Info.cfg'}: '{phase}: {frame}' is not a frame number (1, 2, ...); restore the original file")
        img_path, gt_path = _frame_path(patient_dir, frame, False), _frame_path(patient_dir, frame, True)
        # One checked reader (dimensions, size and voxel size from the header, then finite values;
        # the ground truth integer-valued): a damaged file is refused in one line naming it.
        image = read_image(img_path, ndims=(3,))
        gt = read_image(gt_path, ndims=(3,), labels=True)
        zooms, gt_zooms = image.spacing, gt.spacing
        if image.data.shape != gt.data.shape:
            raise DataError(f"{gt_path}: shape {gt.data.shape} differs from its image {image.data.shape}; pair each frame with its own _gt")
        # ACDC's affines carry no voxel size (it is only in the header zooms): compare both.
        if not np.allclose(image.affine, gt.affine, atol=1e-3) or not np.allclose(zooms, gt_zooms, rtol=1e-4):
            raise DataError(f"{gt_path}: affine or voxel size {tuple(round(z, 4) for z in gt_zooms)} differs from its image's "
                            f"{tuple(round(z, 4) for z in zooms)}; the ground truth is not aligned with {img_path.name}")
        label = np.round(gt.data).astype(np.int64)
        check_labels(label, source=str(gt_path))
        cases.append(
            Case(
                image=np.asarray(image.data, dtype=np.float32),
                label=label.astype(np.uint8),
                spacing=tuple(zooms),
                patient_id=patient_dir.name,
                phase=phase,
                modality="mri",
                dataset="acdc",
                meta={**{k: info[k] for k in INFO_KEYS if k in info}, "frame": frame, "image_path": str(img_path)},
            )
        )
    return cases


def read_acdc(
    root: str | Path,
    *,
    split: str | None = None,
    patients: list[str] | None = None,
    phases: tuple[str, ...] = PHASES,
    progress: bool = True,
) -> list[Case]:
    """Read an ACDC download (or a subset of it).

    Args:
        root: see :func:`list_acdc_patients`.
        split: ``"training"``, ``"testing"`` or None for both.
        patients: keep only these ids (``["patient001", ...]``); unknown ids raise.
        phases: which phases to read.
        progress: show a progress bar.

    Returns:
        A list of Cases, patients in order, ED before ES.
    """
    dirs = list_acdc_patients(root, split=split)
    if patients is not None:
        by_name = {d.name: d for d in dirs}
        missing = [p for p in patients if p not in by_name]
        if missing:
            raise DataError(f"{root}: patients {missing[:5]} not found; available e.g. {sorted(by_name)[:3]}")
        dirs = [by_name[p] for p in patients]
    return [c for d in bar(dirs, desc="ACDC", enabled=progress) for c in read_acdc_patient(d, phases=phases)]


def write_acdc_patient(cases: list[Case], out_dir: str | Path, *, nb_frames: int | None = None) -> Path:
    """Write the ED/ES Cases of one patient in the ACDC layout (Info.cfg + frames + _gt).

    Used to put the built-in phantom on disk so that the ACDC reader runs on realistic files.

    Args:
        cases: MRI Cases of one patient (one per phase).
        out_dir: the split folder (``.../training``); ``patient_id/`` is created in it.
        nb_frames: NbFrame for Info.cfg (default: ES frame + 8).

    Returns:
        The patient folder.
    """
    if not cases or len({c.patient_id for c in cases}) != 1:
        raise ValueError("write_acdc_patient needs the Cases of exactly one patient")
    pid = cases[0].patient_id
    patient_dir = Path(out_dir) / pid
    patient_dir.mkdir(parents=True, exist_ok=True)
    frames = {"ED": 1, "ES": 10}
    for c in cases:
        frames[c.phase] = int(c.meta.get("frame", frames[c.phase]))
        save_nifti(_frame_path(patient_dir, frames[c.phase], False), c.image.astype(np.float32), c.spacing)
        save_nifti(_frame_path(patient_dir, frames[c.phase], True), c.label.astype(np.uint8), c.spacing)
    meta = cases[0].meta
    info = {
        "ED": frames["ED"],
        "ES": frames["ES"],
        "Group": meta.get("group", meta.get("Group", "NOR")),
        "Height": float(meta.get("height", meta.get("Height", 170.0))),
        "NbFrame": nb_frames or frames["ES"] + 8,
        "Weight": float(meta.get("weight", meta.get("Weight", 70.0))),
    }
    (patient_dir / "Info.cfg").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
    return patient_dir


def load_acdc(
    root: str | Path,
    *,
    n_patients: int | None = None,
    seed: int = 0,
    split: str | None = None,
    progress: bool = True,
) -> list[Case]:
    """A seeded selection of an ACDC download, spread over the pathology groups of Info.cfg.

    Args:
        root: see :func:`list_acdc_patients`.
        n_patients: how many patients (None: all).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: ``"training"``, ``"testing"`` or None for both.
        progress: show a progress bar.

    Returns:
        The Cases of the chosen patients, as :func:`read_acdc` returns them.
    """
    dirs = list_acdc_patients(root, split=split)
    groups = {d.name: str(read_cfg(d / "Info.cfg").get("Group", "")) if (d / "Info.cfg").exists() else "" for d in dirs}
    ids = choose_patients(groups, n_patients, seed=seed)
    return read_acdc(root, split=split, patients=ids, progress=progress)


def write_acdc_example(out_dir: str | Path, *, n_patients: int = 2, seed: int = 0, layout: str | None = None) -> Path:
    """A small ACDC download: MRI phantom patients written as ``out_dir/training/patientXXX/``.

    Args:
        out_dir: the dataset root to write.
        n_patients: how many patients.
        seed: phantom seed.
        layout: ``"acdc"`` or None (the only layout).

    Returns:
        ``out_dir``, ready for :func:`list_acdc_patients`.
    """
    if layout not in (None, "acdc"):
        raise ValueError(f"ACDC has one layout, 'acdc', not {layout!r}")
    cases = phantom_cases("phantom-mri", n_patients, seed=seed)
    for i, pid in enumerate(sorted({c.patient_id for c in cases}), 1):
        group = [dataclasses.replace(c, patient_id=f"patient{i:03d}") for c in cases if c.patient_id == pid]
        write_acdc_patient(group, Path(out_dir) / "training")
    return Path(out_dir)


DATASETS = (
    DatasetSpec(
        name="acdc",
        modality="mri",
        structures=tuple(structure_names("mri")),
        label_map=IDENTITY_LABEL_MAP,
        list_patients=list_acdc_patients,
        read_patient=read_acdc_patient,
        load=load_acdc,
        write_example=write_acdc_example,
        env_var="CARDIGAN_ACDC_DIR",
        splits=SPLITS,
        layouts=("acdc",),
        order=2,
        description="official download (100 training + 50 test patients, NIfTI, Info.cfg)",
    ),
)
"""The dataset this module reads (found by :mod:`cardigan_utils.data.registry`)."""
