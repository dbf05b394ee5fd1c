"""CAMUS echocardiography: read (and write) the two official layouts as Case records.

CAMUS (Leclerc et al., IEEE TMI 2019) holds apical 2-chamber and 4-chamber views of 500 patients
at end-diastole (ED) and end-systole (ES), with expert ground truth. It comes in two layouts:

NIfTI re-release (humanheart-project)::

    <root>/database_nifti/patient0001/patient0001_2CH_ED.nii.gz
                                      patient0001_2CH_ED_gt.nii.gz
                                      patient0001_2CH_ES.nii.gz, ..._ES_gt.nii.gz, 4CH likewise
                                      patient0001_2CH_half_sequence[_gt].nii.gz   (not read)
                                      Info_2CH.cfg, Info_4CH.cfg
    <root>/database_split/subgroup_training.txt     (400 patients, one name a line)
                          subgroup_validation.txt   (50)
                          subgroup_testing.txt      (50)

Legacy release (.mhd header + .raw data)::

    <root>/training/patient0001/patient0001_2CH_ED.mhd + .raw, ..._2CH_ED_gt.mhd + .raw, ...
                                Info_2CH.cfg, Info_4CH.cfg
    <root>/testing/patient0001/...   (the public testing set has no ``_gt`` files)

``Info_<view>.cfg`` holds ``Key: value`` lines (``ED: 1``, ``ES: 14``, ``NbFrame: 14``, ``Sex: F``,
``Age: 64``, ``ImageQuality: Good``, ``EF: 57.3``, ``FrameRate: 50`` in the NIfTI release).

Labels are already the kit's echo convention (0 background, 1 LV cavity, 2 LV myocardium,
3 left atrium): no remapping. Images become float32 ``(X, Y, 1)``, labels uint8, spacing
``(sx, sy, 1.0)`` mm, so ``Case.volume_ml`` gives an area in mm^2 / 1000.

Derived copies (e.g. ``CAMUS_224``: every frame resized to 224x224, no ``Info_<view>.cfg``, headers
holding the 1.0 mm placeholder) read too, NIfTI layout only: ED/ES come from the file names, the
Info keys are absent from ``meta``, and a placeholder spacing (:func:`is_placeholder_spacing`)
makes ``Case.spacing_known`` False, so nothing downstream reports millimetres or millilitres for
them. One warning per read says so (never one per file).

Images without ground truth (the legacy public testing set): ``require_labels=True`` (the
default) raises a DataError naming the missing ``_gt`` file; ``require_labels=False`` skips those
images with one warning (a Case always carries a label).

The module declares the ``camus`` dataset of the registry (``DATASETS``, at the bottom): its
``load`` and ``read_patient`` skip images without ground truth, as the legacy testing set has none.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import ndimage

from ..labels import PHASES, structure_names
from .case import Case, DataError, check_labels
from .imageio import is_placeholder_spacing, read_cfg, read_image, save_mhd, save_nifti
from .phantom import phantom_cases
from .registry import IDENTITY_LABEL_MAP, DatasetSpec, choose_patients

VIEWS = ("2CH", "4CH")
"""The two apical views of CAMUS."""

SPLITS = ("training", "validation", "testing")
"""Official subsets: database_split/subgroup_<split>.txt (NIfTI), folder names (legacy)."""

NIFTI_DIR = "database_nifti"
SPLIT_DIR = "database_split"
LEGACY_DIRS = ("training", "testing")

FORMATS = ("nifti", "mhd")

_INFO_ORDER = ("ED", "ES", "NbFrame", "Sex", "Age", "ImageQuality", "EF", "FrameRate")
"""Key order of the official Info_<view>.cfg files; other keys follow."""

_RESERVED_META = frozenset({"image_path", "label_path", "info_path", "format", "split"})
"""Meta keys the reader adds; the writer does not put them in Info_<view>.cfg."""

_LAYOUTS_HELP = (
    f"looked for the NIfTI release (<root>/{NIFTI_DIR}/patientXXXX/, or a {NIFTI_DIR} folder itself) "
    "and the legacy .mhd release (<root>/training/patientXXXX/, <root>/testing/patientXXXX/)"
)


# --------------------------------------------------------------------------------------------
# Info_<view>.cfg
# --------------------------------------------------------------------------------------------


def read_camus_info(path: str | Path) -> dict[str, Any]:
    """Parse one ``Info_2CH.cfg`` / ``Info_4CH.cfg`` file (see :func:`imageio.read_cfg`).

    Args:
        path: the cfg file.

    Returns:
        ``{key: value}`` in file order, values typed (``ED: 1`` -> 1, ``EF: 57.3`` -> 57.3).
    """
    return read_cfg(
        path,
        missing_hint="every CAMUS patient folder holds Info_2CH.cfg and Info_4CH.cfg, "
        "extract the patient folder again (or restrict views=)",
    )


def write_camus_info(path: str | Path, info: dict[str, Any]) -> None:
    """Write an ``Info_<view>.cfg`` file in the official ``Key: value`` style.

    Args:
        path: destination file.
        info: keys and scalar values; the official keys come first in their usual order.

    Returns:
        None; the file is written (floats with ``repr`` so they read back exactly).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for k in _INFO_ORDER if k in info] + [k for k in info if k not in _INFO_ORDER]
    lines = []
    for key in keys:
        value = info[key]
        text = repr(value) if isinstance(value, float) else str(value)
        lines.append(f"{key}: {text}")
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# One patient
# --------------------------------------------------------------------------------------------


def _check_choice(values: Sequence[str], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} {bad or values!r} not in {allowed}")
    return values


def _detect_format(patient_dir: Path) -> str:
    names = [p.name for p in patient_dir.iterdir() if p.is_file()]
    if any(n.endswith((".nii.gz", ".nii")) for n in names):
        return "nifti"
    if any(n.endswith(".mhd") for n in names):
        return "mhd"
    raise DataError(
        f"{patient_dir}: no .nii.gz or .mhd image in this folder; a CAMUS patient folder holds "
        "patientXXXX_2CH_ED.nii.gz (NIfTI release) or patientXXXX_2CH_ED.mhd (legacy release)"
    )


def _image_path(patient_dir: Path, stem: str, fmt: str) -> Path:
    if fmt == "mhd":
        return patient_dir / f"{stem}.mhd"
    gz = patient_dir / f"{stem}.nii.gz"
    plain = patient_dir / f"{stem}.nii"
    return plain if plain.is_file() and not gz.is_file() else gz


def _load(path: Path, *, labels: bool) -> tuple[np.ndarray, tuple[float, float], np.ndarray | None]:
    """Return (array (X, Y, 1), in-plane spacing, affine or None) of a NIfTI or .mhd frame.

    :func:`~cardigan_utils.data.imageio.read_image` checks the header (dimensions, size, voxel
    size; for .mhd the size of the .raw) before reading, then the values.
    """
    image = read_image(path, ndims=(2, 3), labels=labels)
    data = image.data
    if data.ndim == 2:
        data = data[:, :, None]
    if data.shape[2] != 1:
        raise DataError(
            f"{path}: expected a 2-D image, got shape {data.shape}; give an ED/ES frame file, "
            "not a (half_)sequence"
        )
    return data, (image.spacing[0], image.spacing[1]), image.affine


def _to_label(data: np.ndarray, path: Path) -> np.ndarray:
    """Integer-valued (checked by the reader) label values in the echo convention, as uint8."""
    label = np.round(data).astype(np.int64)
    check_labels(label, source=str(path))
    return label.astype(np.uint8)


def _read_patient(
    patient_dir: Path, views: tuple[str, ...], phases: tuple[str, ...], require_labels: bool
) -> tuple[list[Case], list[Path]]:
    """Read one patient folder; return the cases and the gt files found missing (skipped)."""
    if not patient_dir.is_dir():
        raise DataError(f"{patient_dir}: patient folder not found; check the path (e.g. <root>/{NIFTI_DIR}/patient0001)")
    fmt = _detect_format(patient_dir)
    pid = patient_dir.name
    cases: list[Case] = []
    skipped: list[Path] = []
    for view in views:
        info_path = patient_dir / f"Info_{view}.cfg"
        # a derived copy without Info files: ED/ES come from the file names, the rest is unknown
        info = read_camus_info(info_path) if info_path.is_file() or fmt == "mhd" else {}
        for phase in phases:
            stem = f"{pid}_{view}_{phase}"
            img_path = _image_path(patient_dir, stem, fmt)
            gt_path = _image_path(patient_dir, f"{stem}_gt", fmt)
            if not img_path.is_file():
                raise DataError(
                    f"{img_path}: image file not found; the {fmt} release names it {img_path.name}, "
                    "extract the patient folder again (or restrict views=/phases=)"
                )
            if not gt_path.is_file():
                if require_labels:
                    raise DataError(
                        f"{gt_path}: ground-truth file not found; extract the patient folder again, or pass "
                        "require_labels=False to skip images without ground truth (the legacy public testing set has none)"
                    )
                skipped.append(gt_path)
                continue
            image, spacing, affine = _load(img_path, labels=False)
            label, gt_spacing, gt_affine = _load(gt_path, labels=True)
            if image.shape != label.shape:
                raise DataError(
                    f"{gt_path}: label shape {label.shape[:2]} != image shape {image.shape[:2]} of {img_path.name}; "
                    "the ground truth must belong to this image, extract the patient folder again"
                )
            same = np.allclose(spacing, gt_spacing, rtol=1e-4, atol=1e-6)
            if same and affine is not None and gt_affine is not None:
                same = np.allclose(affine, gt_affine, rtol=1e-4, atol=1e-5)
            if not same:
                raise DataError(
                    f"{gt_path}: voxel spacing/affine {tuple(round(s, 5) for s in gt_spacing)} differs from the image "
                    f"{img_path.name} {tuple(round(s, 5) for s in spacing)}; the ground truth must share the image grid, "
                    "extract the patient folder again"
                )
            meta: dict[str, Any] = dict(info)
            meta.update(image_path=str(img_path), label_path=str(gt_path), format=fmt)
            if info:
                meta["info_path"] = str(info_path)
            cases.append(
                Case(
                    image=image.astype(np.float32),
                    label=_to_label(label, gt_path),
                    spacing=(spacing[0], spacing[1], 1.0),
                    patient_id=pid,
                    phase=phase,
                    modality="echo",
                    view=view,
                    dataset="camus",
                    meta=meta,
                    spacing_known=not is_placeholder_spacing(spacing),
                )
            )
    return cases, skipped


def _warn_read(cases: Sequence[Case], skipped: list[Path]) -> None:
    """One warning per read (never per file) about what a derived copy lacks, and the skipped images."""
    if skipped:
        warnings.warn(
            f"CAMUS: skipped {len(skipped)} image(s) without ground truth (require_labels=False), "
            f"e.g. {skipped[0]}",
            stacklevel=3,
        )
    no_info = sorted({c.patient_id for c in cases if "info_path" not in c.meta and c.meta.get("format") == "nifti"})
    unknown = sorted({c.patient_id for c in cases if not c.spacing_known})
    if no_info or unknown:
        parts = []
        if no_info:
            parts.append(f"{len(no_info)} patient folder(s) have no Info_2CH.cfg / Info_4CH.cfg (e.g. {no_info[0]}): "
                         "ED/ES come from the file names; frame numbers, EF and image quality are unknown")
        if unknown:
            parts.append(f"{len(unknown)} patient(s) have the 1.0 mm placeholder spacing in their headers (e.g. "
                         f"{unknown[0]}): the true pixel size is unknown, so HD95, areas, volumes and EF are reported "
                         "as unknown (NaN) or in pixels, never in mm; Dice is unaffected")
        warnings.warn(f"CAMUS, a derived copy: {'; '.join(parts)}", UserWarning, stacklevel=3)


def read_camus_patient(
    patient_dir: str | Path,
    *,
    views: Sequence[str] = VIEWS,
    phases: Sequence[str] = PHASES,
    require_labels: bool = True,
) -> list[Case]:
    """Read one CAMUS patient folder, NIfTI or legacy .mhd (detected from the files present).

    Args:
        patient_dir: e.g. ``<root>/database_nifti/patient0001`` or ``<root>/training/patient0001``;
            its name is the ``patient_id`` and the prefix of its files.
        views: any of ``"2CH"``, ``"4CH"``.
        phases: any of ``"ED"``, ``"ES"``.
        require_labels: ``True`` raises when a ``_gt`` file is missing; ``False`` skips that image
            (with a warning), since a Case always has a label.

    Returns:
        One Case per (view, phase), in that order: image float32 ``(X, Y, 1)``, label uint8 in
        the echo convention, spacing ``(sx, sy, 1.0)`` from the header, ``modality="echo"``,
        ``dataset="camus"``, and ``meta`` = the view's Info cfg (typed values: ``ED``, ``ES``,
        ``NbFrame``, ``Sex``, ``Age``, ``ImageQuality``, ``EF``, ...) plus ``image_path``,
        ``label_path``, ``info_path`` (absent when a NIfTI copy has no Info file) and ``format``
        (``"nifti"`` or ``"mhd"``); ``spacing_known`` is False for the 1.0 mm placeholder. When a
        folder holds both formats the NIfTI files are read.

    Raises:
        DataError: missing folder, image or gt file; missing cfg (legacy .mhd release); malformed cfg; corrupt or truncated
            file; image/label shape or spacing mismatch; label values outside {0, 1, 2, 3}; empty mask.
    """
    views = _check_choice(views, VIEWS, "views")
    phases = _check_choice(phases, PHASES, "phases")
    cases, skipped = _read_patient(Path(patient_dir), views, phases, require_labels)
    _warn_read(cases, skipped)
    return cases


# --------------------------------------------------------------------------------------------
# A whole release
# --------------------------------------------------------------------------------------------


@dataclass
class _Layout:
    kind: str  # "nifti" or "mhd"
    root: Path
    groups: dict[str | None, Path]  # NIfTI: {None: database_nifti}; legacy: {"training": ..., "testing": ...}
    split_dir: Path | None = None


def _patient_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("patient"))


def _find_layout(root: str | Path) -> _Layout:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found; give the folder that holds {NIFTI_DIR}/ (or training/, testing/)")
    if _patient_dirs(root / NIFTI_DIR):
        return _Layout("nifti", root, {None: root / NIFTI_DIR}, root / SPLIT_DIR)
    legacy = {name: root / name for name in LEGACY_DIRS if _patient_dirs(root / name)}
    if legacy:
        return _Layout("mhd", root, legacy)
    direct = _patient_dirs(root)
    if direct:
        try:
            fmt = _detect_format(direct[0])
        except DataError:
            fmt = "nifti" if root.name == NIFTI_DIR else ""
        if fmt == "nifti":
            return _Layout("nifti", root, {None: root}, root.parent / SPLIT_DIR)
        if fmt == "mhd":
            return _Layout("mhd", root, {root.name if root.name in LEGACY_DIRS else None: root})
    raise DataError(f"{root}: no CAMUS patient folders found; {_LAYOUTS_HELP}; point root at the folder holding them")


def _read_split_file(layout: _Layout, split: str) -> list[str]:
    assert layout.split_dir is not None
    path = layout.split_dir / f"subgroup_{split}.txt"
    if not path.is_file():
        raise DataError(
            f"{path}: split file not found; the NIfTI release ships {SPLIT_DIR}/ beside {NIFTI_DIR}/: copy it there, "
            "write one with write_camus_split, or pass split=None"
        )
    names = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return list(dict.fromkeys(names))


def _select(layout: _Layout, split: str | None) -> list[tuple[Path, str | None]]:
    """(patient folder, split name or None), sorted."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} not in {SPLITS}")
    if layout.kind == "nifti":
        folder = layout.groups[None]
        dirs = _patient_dirs(folder)
        if split is None:
            membership: dict[str, str] = {}
            for name in SPLITS:
                path = layout.split_dir / f"subgroup_{name}.txt" if layout.split_dir else None
                if path is not None and path.is_file():
                    membership.update({n: name for n in _read_split_file(layout, name)})
            return [(d, membership.get(d.name)) for d in dirs]
        wanted = _read_split_file(layout, split)
        present = {d.name: d for d in dirs}
        missing = [n for n in wanted if n not in present]
        if missing:
            raise DataError(
                f"{layout.split_dir / f'subgroup_{split}.txt'}: lists {len(missing)} patient(s) absent from {folder} "
                f"(e.g. {missing[0]}); extract the full release or fix the split file"
            )
        return [(present[n], split) for n in sorted(wanted)]
    # legacy: the subset is the folder name
    if split is None:
        pairs = [(d, name) for name, folder in sorted(layout.groups.items(), key=lambda kv: str(kv[0]))
                 for d in _patient_dirs(folder)]
        names = [d.name for d, _ in pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DataError(
                f"{layout.root}: patient id(s) {twice[:3]} exist in both training/ and testing/, so their cases "
                "would clash; read one subset at a time with split='training' or split='testing'"
            )
        return pairs
    if split == "validation":
        raise DataError(
            f"{layout.root}: the legacy .mhd release has no validation subset (only training/ and testing/); "
            "use split='training' or 'testing', or the NIfTI release and its database_split"
        )
    if split not in layout.groups:
        raise DataError(
            f"{layout.root / split}: no patient folders there; the legacy release keeps that subset in "
            f"<root>/{split}/patientXXXX/, point root at the folder holding training/ and testing/"
        )
    return [(d, split) for d in _patient_dirs(layout.groups[split])]


def list_camus_patients(root: str | Path, *, split: str | None = None) -> list[Path]:
    """List the patient folders of a CAMUS release.

    Args:
        root: the folder holding ``database_nifti/`` (NIfTI release), the ``database_nifti``
            folder itself (``database_split/`` is then looked for beside it), or the folder holding
            ``training/`` and ``testing/`` (legacy release).
        split: ``None`` for all patients, or ``"training"``, ``"validation"``, ``"testing"``:
            from ``database_split/subgroup_<split>.txt`` (NIfTI) or the folder name (legacy,
            which has no validation subset).

    Returns:
        The patient folders, sorted by name (training before testing for a legacy root).

    Raises:
        DataError: no patients in either layout, split file missing or naming absent patients,
            or the split does not exist in this release.
    """
    return [d for d, _ in _select(_find_layout(root), split)]


def read_camus(
    root: str | Path,
    *,
    split: str | None = None,
    patients: Iterable[str] | None = None,
    views: Sequence[str] = VIEWS,
    phases: Sequence[str] = PHASES,
    require_labels: bool = True,
) -> list[Case]:
    """Read a CAMUS release (NIfTI or legacy .mhd) into Case records.

    Args:
        root: see :func:`list_camus_patients`.
        split: ``None`` (all), ``"training"``, ``"validation"`` or ``"testing"``.
        patients: keep only these patient ids (e.g. ``["patient0001"]``); ``None`` keeps all.
        views: any of ``"2CH"``, ``"4CH"``.
        phases: any of ``"ED"``, ``"ES"``.
        require_labels: ``True`` raises a DataError naming the first missing ``_gt`` file (the
            legacy public testing set has none); ``False`` skips such images with one warning.

    Returns:
        The cases, patient by patient (sorted), each as :func:`read_camus_patient` returns them;
        ``meta["split"]`` is set when known (split files or legacy folder name).

    Raises:
        DataError: everything :func:`list_camus_patients` and :func:`read_camus_patient` raise,
            and ``patients`` naming ids not in the selection.
    """
    views = _check_choice(views, VIEWS, "views")
    phases = _check_choice(phases, PHASES, "phases")
    layout = _find_layout(root)
    selected = _select(layout, split)
    if patients is not None:
        wanted = [patients] if isinstance(patients, str) else list(patients)
        names = {d.name for d, _ in selected}
        unknown = [p for p in wanted if p not in names]
        if unknown:
            where = f"split {split!r} of {root}" if split else str(root)
            raise DataError(
                f"{where}: patient(s) {unknown[:5]} not found; ids look like "
                f"{selected[0][0].name if selected else 'patient0001'}, check the patients= list"
            )
        keep = set(wanted)
        selected = [(d, s) for d, s in selected if d.name in keep]
    cases: list[Case] = []
    skipped: list[Path] = []
    for folder, subset in selected:
        got, miss = _read_patient(folder, views, phases, require_labels)
        for case in got:
            if subset is not None:
                case.meta["split"] = subset
        cases.extend(got)
        skipped.extend(miss)
    _warn_read(cases, skipped)
    return cases


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _info_for_view(view_cases: list[Case]) -> dict[str, Any]:
    """ED / ES / NbFrame and the scalar meta of the view's cases (ED's first)."""
    info: dict[str, Any] = {}
    for case in sorted(view_cases, key=lambda c: PHASES.index(c.phase)):
        for key, value in case.meta.items():
            if key in _RESERVED_META or key in info or not isinstance(key, str):
                continue
            if not key or ":" in key or any(ch.isspace() for ch in key):
                continue
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                continue
            if isinstance(value, str) and ("\n" in value or "\r" in value):
                continue
            info[key] = value
    nb = info.get("NbFrame")
    if not isinstance(nb, int) or nb < 1:
        nb = max([2] + [v for v in (info.get("ED"), info.get("ES")) if isinstance(v, int)])
    info.setdefault("ED", 1)
    info.setdefault("ES", nb)
    info["NbFrame"] = nb
    return info


def write_camus_patient(cases: Sequence[Case], out_dir: str | Path, *, fmt: str = "nifti", info: bool = True) -> Path:
    """Write one patient's echo Cases in the official CAMUS file naming.

    Args:
        cases: Cases of one patient (``modality="echo"``, ``view`` 2CH/4CH, at most one per
            (view, phase)), e.g. from the echo phantom or :func:`read_camus`.
        out_dir: the folder that holds the patient folders: ``<root>/database_nifti`` (NIfTI
            layout) or ``<root>/training`` / ``<root>/testing`` (legacy layout). The patient
            folder ``out_dir/<patient_id>/`` is created.
        fmt: ``"nifti"`` (2-D ``.nii.gz`` files, as the re-release) or ``"mhd"`` (``.mhd`` + ``.raw``
            with a singleton z axis, as the legacy release).
        info: write the ``Info_<view>.cfg`` files; False writes a derived copy's folder (NIfTI only).

    Returns:
        The patient folder. It holds ``<id>_<view>_<phase>[_gt]`` images (image float32, gt uint8,
        spacing ``(sx, sy)``) and one ``Info_<view>.cfg`` per view written: ``ED``, ``ES``,
        ``NbFrame`` (from meta, default 1 / NbFrame / 2) then every other scalar meta entry.

    Raises:
        DataError: cases not echo, of several patients, without a view, duplicated, not 2-D, or
            with labels outside {0, 1, 2, 3} or empty.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r} not in {FORMATS}")
    if not info and fmt != "nifti":
        raise ValueError("the legacy .mhd release always has Info files: write a copy without them with fmt='nifti'")
    cases = list(cases)
    if not cases:
        raise DataError(f"{out_dir}: no cases to write; give the Cases of one patient")
    ids = {c.patient_id for c in cases}
    if len(ids) != 1:
        raise DataError(f"{out_dir}: cases of several patients {sorted(ids)}; call write_camus_patient once per patient")
    pid = ids.pop()
    if not pid or "/" in pid or "\\" in pid or pid in (".", ".."):
        raise DataError(f"patient id {pid!r} cannot be a folder name; give ids like 'patient0001'")
    seen: set[tuple[str, str]] = set()
    for case in cases:
        if case.modality != "echo" or case.view not in VIEWS:
            raise DataError(
                f"{case.key}: CAMUS holds echo 2CH/4CH views, got modality={case.modality!r} view={case.view!r}; "
                "write MRI cases with the ACDC writer"
            )
        if (case.view, case.phase) in seen:
            raise DataError(f"{case.key}: given twice; give one Case per (view, phase)")
        seen.add((case.view, case.phase))
        if case.image.ndim not in (2, 3) or (case.image.ndim == 3 and case.image.shape[2] != 1):
            raise DataError(f"{case.key}: image shape {case.image.shape} is not 2-D (X, Y) or (X, Y, 1)")
        check_labels(case.label, source=case.key)

    patient_dir = Path(out_dir) / pid
    patient_dir.mkdir(parents=True, exist_ok=True)
    ext = ".nii.gz" if fmt == "nifti" else ".mhd"
    for case in cases:
        stem = patient_dir / f"{pid}_{case.view}_{case.phase}"
        image = np.asarray(case.image, dtype=np.float32).reshape(case.image.shape[:2])
        label = np.asarray(case.label).reshape(case.label.shape[:2]).astype(np.uint8)
        spacing = (float(case.spacing[0]), float(case.spacing[1]))
        if fmt == "nifti":
            save_nifti(f"{stem}{ext}", image, spacing)
            save_nifti(f"{stem}_gt{ext}", label, spacing)
        else:
            save_mhd(f"{stem}{ext}", image[:, :, None], spacing + (1.0,))
            save_mhd(f"{stem}_gt{ext}", label[:, :, None], spacing + (1.0,))
    for view in VIEWS if info else ():
        view_cases = [c for c in cases if c.view == view]
        if view_cases:
            write_camus_info(patient_dir / f"Info_{view}.cfg", _info_for_view(view_cases))
    return patient_dir


def write_camus_split(root: str | Path, splits: dict[str, Sequence[str]]) -> Path:
    """Write ``database_split/subgroup_<split>.txt`` files of the NIfTI release.

    Args:
        root: the folder holding ``database_nifti/`` (the split folder goes beside it), or the
            ``database_nifti`` folder itself (then ``database_split`` is written next to it).
        splits: ``{"training": [...], "validation": [...], "testing": [...]}``, patient ids; any
            subset of the three keys.

    Returns:
        The ``database_split`` folder.
    """
    bad = [k for k in splits if k not in SPLITS]
    if bad:
        raise ValueError(f"split names {bad} not in {SPLITS}")
    root = Path(root)
    split_dir = (root.parent if root.name == NIFTI_DIR else root) / SPLIT_DIR
    split_dir.mkdir(parents=True, exist_ok=True)
    for name, ids in splits.items():
        ids = [ids] if isinstance(ids, str) else list(ids)
        (split_dir / f"subgroup_{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return split_dir


# --------------------------------------------------------------------------------------------
# The registry's view of CAMUS
# --------------------------------------------------------------------------------------------


def load_camus(
    root: str | Path,
    *,
    n_patients: int | None = None,
    seed: int = 0,
    split: str | None = None,
    progress: bool = True,
) -> list[Case]:
    """A seeded selection of a CAMUS release, skipping images without ground truth (with a warning).

    Args:
        root: see :func:`list_camus_patients`.
        n_patients: how many patients (None: all).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: ``None`` (all), ``"training"``, ``"validation"`` or ``"testing"``.
        progress: accepted for the registry's ``load`` signature; CAMUS is read without a bar.

    Returns:
        The Cases of the chosen patients, as :func:`read_camus` returns them.
    """
    ids = choose_patients({p.name: "" for p in list_camus_patients(root, split=split)}, n_patients, seed=seed)
    # the legacy public testing set has no ground truth: skip those images (read_camus warns)
    return read_camus(root, split=split, patients=ids, require_labels=False)


CAMUS_LAYOUTS = ("camus-nifti", "camus-mhd", "camus-copy")
"""The layouts :func:`write_camus_example` writes (the official two named as in :data:`cardigan_utils.data.export.LAYOUTS`)."""

COPY_SIZE = 224
"""Side of the frames of the derived copy :func:`write_camus_example` writes (as ``CAMUS_224``)."""


def as_derived_copy(case: Case, *, size: int = COPY_SIZE) -> Case:
    """A Case as a third-party copy holds it: resized to ``size`` x ``size``, spacing lost, Info keys gone.

    As ``CAMUS_224`` was made: linear resize of image and labels (labels then rounded), image
    min-max scaled to 0..255, the header's 1.0 mm placeholder spacing.

    Args:
        case: a 2-D echo Case.
        size: side of the copy's frames.

    Returns:
        A new Case with ``spacing=(1.0, 1.0, 1.0)``, ``spacing_known=False`` and no meta.
    """
    image = case.image[:, :, 0].astype(np.float32)
    zoom = (size / image.shape[0], size / image.shape[1])
    image = ndimage.zoom(image, zoom, order=1, grid_mode=True, mode="nearest")
    label = np.clip(np.round(ndimage.zoom(case.label[:, :, 0].astype(np.float32), zoom, order=1, grid_mode=True,
                                          mode="nearest")), 0, 3).astype(np.uint8)
    low, high = float(image.min()), float(image.max())
    image = np.round((image - low) / max(high - low, 1e-6) * 255.0).astype(np.float32)
    return replace(case, image=image[:, :, None], label=label[:, :, None], spacing=(1.0, 1.0, 1.0), meta={},
                   spacing_known=False)


def write_camus_example(out_dir: str | Path, *, n_patients: int = 2, seed: int = 0, layout: str | None = None) -> Path:
    """A small CAMUS release: echo phantom patients written in one of the official layouts.

    Args:
        out_dir: the dataset root to write.
        n_patients: how many patients.
        seed: phantom seed.
        layout: ``"camus-nifti"`` (``database_nifti/`` + ``database_split/``, all training; the
            default), ``"camus-mhd"`` (legacy ``training/`` of .mhd + .raw files) or
            ``"camus-copy"`` (a derived copy like ``CAMUS_224``: the NIfTI layout without Info
            files, frames resized to 224x224 with the 1.0 mm placeholder spacing, see
            :func:`as_derived_copy`).

    Returns:
        ``out_dir``, ready for :func:`list_camus_patients`.
    """
    layout = layout or CAMUS_LAYOUTS[0]
    if layout not in CAMUS_LAYOUTS:
        raise ValueError(f"CAMUS layout {layout!r} not in {CAMUS_LAYOUTS}")
    out_dir = Path(out_dir)
    nifti = layout != "camus-mhd"
    copy = layout == "camus-copy"
    cases = phantom_cases("phantom-echo", n_patients, seed=seed)
    ids = []
    for i, pid in enumerate(sorted({c.patient_id for c in cases}), 1):
        ids.append(f"patient{i:04d}")
        group = [replace(as_derived_copy(c) if copy else c, patient_id=ids[-1]) for c in cases if c.patient_id == pid]
        write_camus_patient(group, out_dir / (NIFTI_DIR if nifti else "training"), fmt="nifti" if nifti else "mhd",
                            info=not copy)
    if nifti:
        write_camus_split(out_dir, {"training": ids})
    return out_dir


DATASETS = (
    DatasetSpec(
        name="camus",
        modality="echo",
        structures=tuple(structure_names("echo")),
        label_map=IDENTITY_LABEL_MAP,
        list_patients=list_camus_patients,
        read_patient=partial(read_camus_patient, require_labels=False),
        load=load_camus,
        write_example=write_camus_example,
        env_var="CARDIGAN_CAMUS_DIR",
        splits=SPLITS,
        layouts=CAMUS_LAYOUTS,
        order=3,
        description="official download (500 patients; NIfTI re-release and legacy .mhd/.raw) or a derived copy without Info files",
    ),
)
"""The dataset this module reads (found by :mod:`cardigan_utils.data.registry`)."""
