"""Write datasets to disk in the official layouts (ACDC, CAMUS NIfTI, CAMUS legacy .mhd).

The built-in phantoms go through these writers so that the real readers are exercised on files
that look like the official downloads (``data_scripts/make_phantom.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from .case import Case

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

    Args:
        cases: the Cases (one modality).
        out_dir: the dataset root to create.
        layout: ``"acdc"``, ``"camus-nifti"`` or ``"camus-mhd"``.
        splits: ``{source patient_id: "train"|"val"|"test"}``; default: all training.
        overwrite: write into a folder that already holds files.

    Returns:
        ``out_dir``.
    """
    from .acdc import write_acdc_patient
    from .camus import write_camus_patient, write_camus_split

    out_dir = Path(out_dir)
    if not cases:
        raise ValueError("write_dataset got no cases")
    modality = cases[0].modality
    if layout not in LAYOUTS[modality]:
        raise ValueError(f"{modality} cases can be written as {LAYOUTS[modality]}, not {layout!r}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose another folder or pass overwrite=True")
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
        return out_dir
    for pid, group in patients.items():
        folder = out_dir / ("testing" if splits.get(pid) == "test" else "training")
        if layout == "acdc":
            write_acdc_patient(group, folder)
        else:
            write_camus_patient(group, folder, fmt="mhd")
    return out_dir
