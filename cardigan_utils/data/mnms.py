"""M&Ms-1 and M&Ms-2: read (and write) the two multi-vendor, multi-centre cine-MRI downloads as Case records.

M&Ms-1 (Campello et al., IEEE TMI 2021; 375 patients, vendors A Siemens, B Philips, C GE,
D Canon)::

    <root>/211230_M&Ms_Dataset_information_diagnosis_opendataset.csv   (the information CSV)
    <root>/Training/Labeled/<code>/<code>_sa.nii.gz       4-D cine (X, Y, Z, T)
                                   <code>_sa_gt.nii.gz    4-D, labels at the ED and ES frames only
    <root>/Training/Unlabeled/<code>/<code>_sa.nii.gz     no ground truth: skipped with a warning
    <root>/Validation/<code>/...   <root>/Testing/<code>/...   (like Training/Labeled)

The information CSV is any ``*.csv`` at the root whose header has ``External code`` (its name
changes between releases); one row per patient: ``External code`` (the folder name),
``VendorName``, ``Vendor`` (A-D), ``Centre``, ``ED``, ``ES`` (0-based frame indices into the 4-D
files) and, in the 211230 release, ``Pathology``, ``Age``, ``Sex``, ``Height``, ``Weight``.
Official splits: ``training`` (Training/Labeled and Training/Unlabeled), ``validation``,
``testing``.

M&Ms-2 (Martín-Isla et al., IEEE JBHI 2023; 360 subjects)::

    <root>/dataset_information.csv          SUBJECT_CODE, DISEASE, VENDOR, SCANNER, FIELD
    <root>/dataset/<NNN>/<NNN>_SA_ED.nii.gz  <NNN>_SA_ED_gt.nii.gz   3-D short axis, ED
                         <NNN>_SA_ES.nii.gz  <NNN>_SA_ES_gt.nii.gz   ... ES
                         <NNN>_SA_CINE.nii.gz, <NNN>_LA_*.nii.gz      (not read)

``SUBJECT_CODE`` may be written without the folder's leading zeros (``1`` for ``001``). The
released set documents no official split.

Both store 1 LV cavity, 2 LV myocardium, 3 RV; the readers convert them to the kit's MRI
convention (1 RV, 2 MYO, 3 LV) with :data:`LABEL_MAP`. Every structure is labelled on every slice
(``Case.labelled`` stays None). The module declares the ``mnms`` and ``mnms2`` datasets of the
registry (``DATASETS``, at the bottom).
"""

from __future__ import annotations

import csv
import io
import string
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..config import progress as bar
from ..labels import PHASES, structure_names
from .case import Case, DataError, check_labels
from .imageio import ImageFile, read_image, save_nifti
from .phantom import phantom_cases
from .registry import DatasetSpec, choose_patients, remap_labels

LABEL_MAP = {0: 0, 1: 3, 2: 2, 3: 1}
"""M&Ms file label -> kit label: 1 LV cavity -> 3, 2 myocardium -> 2, 3 RV -> 1."""

SPLITS = ("training", "validation", "testing")
"""The official M&Ms-1 subsets."""

SPLIT_FOLDERS = {"training": ("Training/Labeled", "Training/Unlabeled"), "validation": ("Validation",),
                 "testing": ("Testing",)}
"""The folders of each M&Ms-1 split, relative to the dataset root."""

MNMS_CSV = "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv"
"""The name of the M&Ms-1 information CSV in the 211230 release (the reader takes any name)."""

MNMS_COLUMNS = ("External code", "Vendor", "ED", "ES")
"""The M&Ms-1 CSV columns the reader needs; VendorName, Centre, Pathology and the rest are optional."""

MNMS2_CSV = "dataset_information.csv"
MNMS2_COLUMNS = ("SUBJECT_CODE", "DISEASE", "VENDOR", "SCANNER", "FIELD")

_SA, _SA_GT = "_sa.nii.gz", "_sa_gt.nii.gz"
_OPTIONAL = ("Age", "Sex", "Height", "Weight")
"""Optional M&Ms-1 columns copied into ``meta`` (lower-case keys)."""


# --------------------------------------------------------------------------------------------
# Shared: patient folders, the information CSV, one image with its ground truth
# --------------------------------------------------------------------------------------------


def _patient_dirs(folder: Path, suffix: str) -> list[Path]:
    """The sub-folders ``d`` of ``folder`` holding ``d/<d.name><suffix>``, sorted."""
    if not folder.is_dir():
        return []
    return sorted(d for d in folder.iterdir() if d.is_dir() and (d / f"{d.name}{suffix}").is_file())


def _key(code: str) -> str:
    """A patient code as the CSV rows are keyed: stripped, and ``"001"`` and ``"1"`` alike."""
    code = code.strip()
    return str(int(code)) if code.isdigit() else code


def _number(text: str) -> float | str:
    """``"1.5"`` -> 1.5; anything else stays the text."""
    try:
        return float(text)
    except ValueError:
        return text


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file ([] when it cannot be read)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except OSError:
        return []


def _find_csv(folders: Iterable[Path], column: str) -> Path | None:
    """The first ``*.csv`` in ``folders`` (in order) whose header has ``column``."""
    for folder in folders:
        if folder.is_dir():
            found = next((p for p in sorted(folder.glob("*.csv")) if column in _csv_header(p)), None)
            if found:
                return found
    return None


def _read_info(path: Path, required: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The rows of an information CSV keyed by :func:`_key` of its first required column."""
    try:  # free-text columns may hold Latin-1 accents: replaced, the columns read are ASCII
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror}); copy the CSV from the download again") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(h or "").strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: no column(s) {missing} (the header has {header[:8]}); restore the information CSV "
                        "of the download")
    rows: dict[str, dict[str, str]] = {}
    for raw in reader:
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        key = _key(row[required[0]])
        if not key:
            continue
        if key in rows:
            raise DataError(f"{path}, line {reader.line_num}: {required[0]} {row[required[0]]!r} appears twice; "
                            "keep one row per patient")
        rows[key] = row
    return rows


def _info_row(path: Path, code: str, required: tuple[str, ...]) -> dict[str, str]:
    """The row of one patient, or DataError naming the CSV and the patient."""
    row = _read_info(path, required).get(_key(code))
    if row is None:
        raise DataError(f"{path}: no row for patient {code} (column {required[0]!r}); the CSV does not belong to "
                        "these images, use the one of the same download")
    return row


def _check_grid(image: ImageFile, gt: ImageFile) -> None:
    """Refuse a ground truth whose shape, affine or voxel size is not its image's."""
    if gt.data.shape != image.data.shape:
        raise DataError(f"{gt.path}: shape {gt.data.shape} differs from its image {image.path.name} {image.data.shape}; "
                        "pair each image with its own _gt file")
    if not np.allclose(image.affine, gt.affine, atol=1e-3) or not np.allclose(image.spacing, gt.spacing, rtol=1e-4):
        raise DataError(f"{gt.path}: affine or voxel size {tuple(round(z, 4) for z in gt.spacing)} differs from its image "
                        f"{image.path.name}'s {tuple(round(z, 4) for z in image.spacing)}; the ground truth is not aligned")


def _case(image: np.ndarray, gt: np.ndarray, *, source: str, like: ImageFile, patient_id: str, phase: str,
          dataset: str, meta: dict) -> Case:
    """One Case from a 3-D image and its ground truth in the M&Ms labels (checked: known values, not empty)."""
    label = remap_labels(np.rint(gt).astype(np.int64), LABEL_MAP, source=source)
    check_labels(label, source=source)
    return Case(image=np.asarray(image, dtype=np.float32), label=label, spacing=tuple(like.spacing[:3]),
                patient_id=patient_id, phase=phase, modality="mri", dataset=dataset,
                meta={**meta, "image_path": str(like.path), "affine": np.array(like.affine, dtype=np.float64)})


def _load(dirs: list[Path], groups: dict[str, str], read: Callable[[Path], list[Case]], *, n_patients: int | None,
          seed: int, desc: str, progress: bool) -> list[Case]:
    """Read a seeded selection of ``dirs`` spread over ``groups`` (``{folder name: group}``)."""
    chosen = set(choose_patients(groups, n_patients, seed=seed))
    return [c for d in bar([d for d in dirs if d.name in chosen], desc=desc, enabled=progress) for c in read(d)]


def _write_csv(path: Path, rows: list[dict], *, index_column: bool) -> None:
    """An information CSV; with ``index_column`` a leading unnamed 0, 1, ... column, as pandas writes it."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(([""] if index_column else []) + list(rows[0]))
        for i, row in enumerate(rows):
            writer.writerow(([i] if index_column else []) + list(row.values()))


def _to_file_labels(label: np.ndarray) -> np.ndarray:
    """Kit labels back to the M&Ms values (the writers' inverse of :data:`LABEL_MAP`)."""
    lut = np.zeros(max(LABEL_MAP.values()) + 1, dtype=np.uint8)
    for file_value, kit_value in LABEL_MAP.items():
        lut[kit_value] = file_value
    return lut[label]


def _phantom_patients(n_patients: int, seed: int) -> list[dict[str, Case]]:
    """MRI phantom patients, each ``{"ED": case, "ES": case}``."""
    cases = phantom_cases("phantom-mri", n_patients, seed=seed)
    ids = sorted({c.patient_id for c in cases})
    return [{c.phase: c for c in cases if c.patient_id == pid} for pid in ids]


# --------------------------------------------------------------------------------------------
# M&Ms-1
# --------------------------------------------------------------------------------------------


def _mnms_folders(root: Path, split: str | None) -> list[Path]:
    """The folders of patient folders to list: ``root`` itself when it is a split folder, else the splits under it."""
    if root.name == "Training" or _patient_dirs(root, _SA):
        own = "training" if root.name in ("Training", "Labeled", "Unlabeled") else root.name.lower()
        if split not in (None, own):
            raise DataError(f"{root}: asked for the {split!r} split but this folder is {root.name!r}; point at the "
                            "M&Ms root holding Training/, Validation/ and Testing/")
        return [root / "Labeled", root / "Unlabeled"] if root.name == "Training" else [root]
    return [root / rel for s in ([split] if split else SPLITS) for rel in SPLIT_FOLDERS[s]]


def _mnms_csv(folder: Path, levels: int) -> Path:
    """The information CSV in ``folder`` or up to ``levels`` folders above it, or DataError."""
    above = [folder, *folder.parents][: levels + 1]
    found = _find_csv(above, "External code")
    if found is None:
        raise DataError(f"{folder}: no M&Ms information CSV (a .csv whose header has 'External code') in it or the "
                        f"{levels} folders above; put the CSV of the download (e.g. {MNMS_CSV}) at the dataset root")
    return found


def list_mnms_patients(root: str | Path, *, split: str | None = None) -> list[Path]:
    """The patient folders under an M&Ms-1 download (labelled and unlabelled).

    Args:
        root: the dataset root (holding Training/, Validation/, Testing/ and the information CSV),
            or one split folder (``Training``, ``Training/Labeled``, ``Validation``, ...).
        split: ``"training"``, ``"validation"``, ``"testing"`` or None for all.

    Returns:
        Sorted patient folders, split by split; Training/Unlabeled ones included (their reading
        is skipped with a warning).

    Raises:
        ValueError: an unknown split.
        DataError: no such folder, no patient folder, a split that is not this folder's, or no
            information CSV in it or above it.
    """
    root = Path(root).expanduser()
    if split not in (None, *SPLITS):
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; point data_dir / CARDIGAN_MNMS_DIR at the M&Ms download")
    folders = _mnms_folders(root, split)
    found = [p for folder in folders for p in _patient_dirs(folder, _SA)]
    if not found:
        looked = ", ".join(str(f.relative_to(root)) + "/" for f in folders if f != root) or "it"
        raise DataError(f"{root}: no M&Ms patient folders (looked for <code>/<code>{_SA} in it and in {looked}); point "
                        "it at the unpacked M&Ms download")
    _mnms_csv(root, levels=2)
    return found


def read_mnms_patient(patient_dir: str | Path, *, phases: tuple[str, ...] = PHASES) -> list[Case]:
    """Read the ED and ES frames of one M&Ms-1 patient, the frames named by the information CSV.

    Args:
        patient_dir: a ``<code>`` folder (its name is the patient id and the files' prefix).
        phases: which of ``("ED", "ES")`` to read.

    Returns:
        One Case per phase: image float32 (X, Y, Z) of that frame of the 4-D cine, label uint8 in
        the kit's convention, spacing from the header; ``meta`` holds ``vendor`` (A-D),
        ``vendor_name``, ``centre``, ``group`` (Pathology, "" when the CSV has none), ``frame``
        (0-based), ``age``/``sex``/``height``/``weight`` when present, ``image_path``,
        ``label_path``, ``info_path`` and ``affine`` (the 4x4 affine of the spatial axes).
        An empty list, with a warning, for a patient without ground truth (Training/Unlabeled).

    Raises:
        DataError: a missing image, no information CSV or no row for the patient, an ED/ES
            index that is not a frame of the cine, files that are not 4-D or do not match, label
            values other than 0-3, a frame whose ground truth is empty, or anything
            :func:`~cardigan_utils.data.imageio.read_image` refuses.
    """
    patient_dir = Path(patient_dir)
    code = patient_dir.name
    img_path, gt_path = patient_dir / f"{code}{_SA}", patient_dir / f"{code}{_SA_GT}"
    if not img_path.is_file():
        raise DataError(f"{img_path}: file not found; an M&Ms patient folder holds <code>{_SA}, extract it again")
    if not gt_path.is_file():
        warnings.warn(f"M&Ms: skipped {code}, images without ground truth (no {gt_path.name}; Training/Unlabeled has "
                      "none)", stacklevel=2)
        return []
    csv_path = _mnms_csv(patient_dir.parent, levels=2)
    row = _info_row(csv_path, code, MNMS_COLUMNS)
    image = read_image(img_path, ndims=(4,))
    gt = read_image(gt_path, ndims=(4,), labels=True)
    _check_grid(image, gt)
    n_frames = image.data.shape[3]
    meta = {
        "vendor": row["Vendor"], "vendor_name": row.get("VendorName", ""), "centre": row.get("Centre", ""),
        "group": row.get("Pathology", ""), "label_path": str(gt_path), "info_path": str(csv_path),
        **{k.lower(): _number(row[k]) for k in _OPTIONAL if row.get(k)},
    }
    cases = []
    for phase in phases:
        frame = _number(row[phase])
        if not isinstance(frame, float) or not frame.is_integer() or not 0 <= frame < n_frames:
            raise DataError(f"{csv_path}: {phase} = {row[phase]!r} for {code} is not a frame of {img_path.name} (0 to "
                            f"{n_frames - 1}); restore the CSV row of this patient from the download")
        frame = int(frame)
        cases.append(_case(image.data[..., frame], gt.data[..., frame], source=f"{gt_path} (frame {frame})", like=image,
                           patient_id=code, phase=phase, dataset="mnms", meta={**meta, "frame": frame}))
    return cases


def load_mnms(root: str | Path, *, n_patients: int | None = None, seed: int = 0, split: str | None = None,
              progress: bool = True) -> list[Case]:
    """A seeded selection of the labelled M&Ms-1 patients, spread over the vendors.

    Args:
        root: see :func:`list_mnms_patients`.
        n_patients: how many patients (None: all labelled ones).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: ``"training"``, ``"validation"``, ``"testing"`` or None for all.
        progress: show a progress bar.

    Returns:
        The Cases of the chosen patients, as :func:`read_mnms_patient` returns them.

    Raises:
        DataError: see :func:`list_mnms_patients` and :func:`read_mnms_patient`.
    """
    dirs = [d for d in list_mnms_patients(root, split=split) if (d / f"{d.name}{_SA_GT}").is_file()]
    rows = _read_info(_mnms_csv(Path(root).expanduser(), levels=2), MNMS_COLUMNS)
    groups = {d.name: rows.get(_key(d.name), {}).get("Vendor", "") for d in dirs}
    return _load(dirs, groups, read_mnms_patient, n_patients=n_patients, seed=seed, desc="M&Ms", progress=progress)


def _example_code(seed: int, index: int) -> str:
    """A six-character M&Ms-like code (letter, digit, ...), unique per index below 1000."""
    letters = np.random.default_rng([seed, index]).choice(list(string.ascii_uppercase), 3)
    return "".join(f"{letter}{digit}" for letter, digit in zip(letters, f"{index:03d}"))


def _cine(ed: np.ndarray, es: np.ndarray, ed_frame: int, es_frame: int, n_frames: int) -> np.ndarray:
    """A 4-D cine through ``ed`` at ``ed_frame`` and ``es`` at ``es_frame``: contraction, then relaxation, cyclically."""
    systole = (es_frame - ed_frame) % n_frames
    frames = []
    for t in range(n_frames):
        since_ed = (t - ed_frame) % n_frames
        w = since_ed / systole if since_ed <= systole else 1.0 - (since_ed - systole) / (n_frames - systole)
        frames.append(np.rint((1.0 - w) * ed + w * es))
    return np.stack(frames, axis=-1)


def write_mnms_example(out_dir: str | Path, *, n_patients: int = 2, seed: int = 0, layout: str | None = None,
                       n_unlabelled: int = 0) -> Path:
    """A small M&Ms-1 download: MRI phantom patients as 4-D cines with the information CSV.

    Patient ``i`` gets ``_example_code(seed, i)``, a 10-frame cine (int16) with its ED phantom frame
    at index ``i % 3`` and its ES one at ``7 + i % 2`` (the frames between blend the two), and a
    4-D ``_sa_gt`` holding the phantom labels in the M&Ms values at those two frames only; its CSV
    row gives the phantom vendor as the Vendor letter, a VendorName and a Centre.

    Args:
        out_dir: the dataset root to write.
        n_patients: how many labelled patients (Training/Labeled).
        seed: phantom seed.
        layout: ``"mnms"`` or None (the only layout).
        n_unlabelled: how many more patients in Training/Unlabeled (a cine, no ``_sa_gt``).

    Returns:
        ``out_dir``, ready for :func:`list_mnms_patients`.

    Raises:
        ValueError: another layout.
    """
    if layout not in (None, "mnms"):
        raise ValueError(f"M&Ms has one layout, 'mnms', not {layout!r}")
    out_dir = Path(out_dir)
    vendor_names = {"A": "Siemens", "B": "Philips", "C": "GE", "D": "Canon"}
    centres = {"A": "1", "B": "2", "C": "4", "D": "5"}
    rows = []
    for i, patient in enumerate(_phantom_patients(n_patients + n_unlabelled, seed)):
        ed, es = patient["ED"], patient["ES"]
        code, ed_frame, es_frame, n_frames = _example_code(seed, i), i % 3, 7 + i % 2, 10
        folder = out_dir / ("Training/Labeled" if i < n_patients else "Training/Unlabeled") / code
        spacing = (*ed.spacing, 1.0)
        save_nifti(folder / f"{code}{_SA}", _cine(ed.image, es.image, ed_frame, es_frame, n_frames).astype(np.int16),
                   spacing)
        if i < n_patients:
            gt = np.zeros(ed.label.shape + (n_frames,), dtype=np.uint8)
            gt[..., ed_frame], gt[..., es_frame] = _to_file_labels(ed.label), _to_file_labels(es.label)
            save_nifti(folder / f"{code}{_SA_GT}", gt, spacing)
        vendor = ed.meta["vendor"]
        rows.append({"External code": code, "VendorName": vendor_names[vendor], "Vendor": vendor,
                     "Centre": centres[vendor], "ED": ed_frame, "ES": es_frame, "Age": 50 + i, "Pathology": ed.meta["group"],
                     "Sex": "MF"[i % 2], "Height": 170.0, "Weight": 70.0})
    _write_csv(out_dir / MNMS_CSV, rows, index_column=True)
    return out_dir


# --------------------------------------------------------------------------------------------
# M&Ms-2
# --------------------------------------------------------------------------------------------


def _mnms2_folder(root: Path) -> Path:
    """The folder of subject folders: ``root/dataset`` when there is one, else ``root``."""
    return root / "dataset" if (root / "dataset").is_dir() else root


def _mnms2_csv(folder: Path) -> Path:
    """The information CSV in the subjects' folder or next to it, or DataError."""
    found = _find_csv([folder, folder.parent], "SUBJECT_CODE")
    if found is None:
        raise DataError(f"{folder}: no M&Ms-2 information CSV (a .csv whose header has 'SUBJECT_CODE') in it or next "
                        f"to it; put the {MNMS2_CSV} of the download beside the dataset/ folder")
    return found


def list_mnms2_patients(root: str | Path, *, split: str | None = None) -> list[Path]:
    """The subject folders of an M&Ms-2 download.

    Args:
        root: the folder holding ``dataset/`` and ``dataset_information.csv``, or ``dataset/`` itself.
        split: None (the released M&Ms-2 set documents no official split).

    Returns:
        Sorted subject folders (``001``, ``002``, ...).

    Raises:
        ValueError: a split other than None.
        DataError: no such folder, no subject folder, or no information CSV.
    """
    if split is not None:
        raise ValueError(f"M&Ms-2 has no official split; pass split=None, not {split!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; point data_dir / CARDIGAN_MNMS2_DIR at the M&Ms-2 download")
    folder = _mnms2_folder(root)
    found = _patient_dirs(folder, "_SA_ED.nii.gz")
    if not found:
        raise DataError(f"{root}: no M&Ms-2 subject folders (looked for NNN/NNN_SA_ED.nii.gz in it and in dataset/); "
                        "point it at the unpacked M&Ms-2 download")
    _mnms2_csv(folder)
    return found


def read_mnms2_patient(patient_dir: str | Path, *, phases: tuple[str, ...] = PHASES) -> list[Case]:
    """Read the short-axis ED and ES volumes of one M&Ms-2 subject (the long axis and cines are not read).

    Args:
        patient_dir: a ``NNN`` folder (its name is the patient id and the files' prefix).
        phases: which of ``("ED", "ES")`` to read.

    Returns:
        One Case per phase: image float32 (X, Y, Z), label uint8 in the kit's convention, spacing
        from the header; ``meta`` holds ``vendor``, ``scanner``, ``field`` (tesla), ``group``
        (DISEASE), ``image_path``, ``label_path``, ``info_path`` and ``affine`` (4x4).

    Raises:
        DataError: no information CSV or no row for the subject, a missing or unreadable file,
            image and ground truth that do not match, label values other than 0-3, an empty
            ground truth.
    """
    patient_dir = Path(patient_dir)
    code = patient_dir.name
    csv_path = _mnms2_csv(patient_dir.parent)
    row = _info_row(csv_path, code, MNMS2_COLUMNS)
    meta = {"vendor": row["VENDOR"], "scanner": row["SCANNER"], "field": _number(row["FIELD"]), "group": row["DISEASE"],
            "info_path": str(csv_path)}
    cases = []
    for phase in phases:
        img_path, gt_path = (patient_dir / f"{code}_SA_{phase}{gt}.nii.gz" for gt in ("", "_gt"))
        image = read_image(img_path, ndims=(3,))
        gt = read_image(gt_path, ndims=(3,), labels=True)
        _check_grid(image, gt)
        cases.append(_case(image.data, gt.data, source=str(gt_path), like=image, patient_id=code, phase=phase,
                           dataset="mnms2", meta={**meta, "label_path": str(gt_path)}))
    return cases


def load_mnms2(root: str | Path, *, n_patients: int | None = None, seed: int = 0, split: str | None = None,
               progress: bool = True) -> list[Case]:
    """A seeded selection of M&Ms-2 subjects, spread over the vendors.

    Args:
        root: see :func:`list_mnms2_patients`.
        n_patients: how many subjects (None: all).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: None (no official split).
        progress: show a progress bar.

    Returns:
        The Cases of the chosen subjects, as :func:`read_mnms2_patient` returns them.

    Raises:
        ValueError: a split other than None.
        DataError: see :func:`list_mnms2_patients` and :func:`read_mnms2_patient`.
    """
    dirs = list_mnms2_patients(root, split=split)
    rows = _read_info(_mnms2_csv(dirs[0].parent), MNMS2_COLUMNS)
    groups = {d.name: rows.get(_key(d.name), {}).get("VENDOR", "") for d in dirs}
    return _load(dirs, groups, read_mnms2_patient, n_patients=n_patients, seed=seed, desc="M&Ms-2", progress=progress)


def write_mnms2_example(out_dir: str | Path, *, n_patients: int = 2, seed: int = 0, layout: str | None = None) -> Path:
    """A small M&Ms-2 download: MRI phantom subjects ``001``, ``002``, ... in ``out_dir/dataset/``.

    Each subject gets its short-axis ED and ES volumes (int16) with ``_gt`` files in the M&Ms
    label values, and a one-slice long-axis ED pair (``_LA_ED``) that the reader must ignore;
    ``dataset_information.csv`` lists them with SUBJECT_CODE written without leading zeros, as
    the download does.

    Args:
        out_dir: the dataset root to write.
        n_patients: how many subjects.
        seed: phantom seed.
        layout: ``"mnms2"`` or None (the only layout).

    Returns:
        ``out_dir``, ready for :func:`list_mnms2_patients`.

    Raises:
        ValueError: another layout.
    """
    if layout not in (None, "mnms2"):
        raise ValueError(f"M&Ms-2 has one layout, 'mnms2', not {layout!r}")
    out_dir = Path(out_dir)
    scanners = {"A": ("SIEMENS", "Avanto", 1.5), "B": ("Philips Medical Systems", "Achieva", 1.5),
                "C": ("GE MEDICAL SYSTEMS", "Signa Explorer", 3.0)}
    rows = []
    for i, patient in enumerate(_phantom_patients(n_patients, seed), 1):
        code = f"{i:03d}"
        folder = out_dir / "dataset" / code
        for phase, case in patient.items():
            save_nifti(folder / f"{code}_SA_{phase}.nii.gz", case.image.astype(np.int16), case.spacing)
            save_nifti(folder / f"{code}_SA_{phase}_gt.nii.gz", _to_file_labels(case.label), case.spacing)
        middle = patient["ED"].image.shape[2] // 2
        save_nifti(folder / f"{code}_LA_ED.nii.gz", patient["ED"].image[:, :, middle:middle + 1].astype(np.int16),
                   patient["ED"].spacing)
        save_nifti(folder / f"{code}_LA_ED_gt.nii.gz", _to_file_labels(patient["ED"].label[:, :, middle:middle + 1]),
                   patient["ED"].spacing)
        vendor, scanner, field = scanners[patient["ED"].meta["vendor"]]
        rows.append({"SUBJECT_CODE": i, "DISEASE": patient["ED"].meta["group"], "VENDOR": vendor, "SCANNER": scanner,
                     "FIELD": field})
    _write_csv(out_dir / MNMS2_CSV, rows, index_column=False)
    return out_dir


DATASETS = (
    DatasetSpec(
        name="mnms",
        modality="mri",
        structures=tuple(structure_names("mri")),
        label_map=LABEL_MAP,
        list_patients=list_mnms_patients,
        read_patient=read_mnms_patient,
        load=load_mnms,
        write_example=write_mnms_example,
        env_var="CARDIGAN_MNMS_DIR",
        splits=SPLITS,
        layouts=("mnms",),
        description="M&Ms-1 official download (375 patients, 4 vendors, 4-D NIfTI cines + information CSV)",
    ),
    DatasetSpec(
        name="mnms2",
        modality="mri",
        structures=tuple(structure_names("mri")),
        label_map=LABEL_MAP,
        list_patients=list_mnms2_patients,
        read_patient=read_mnms2_patient,
        load=load_mnms2,
        write_example=write_mnms2_example,
        env_var="CARDIGAN_MNMS2_DIR",
        layouts=("mnms2",),
        description="M&Ms-2 official download (360 subjects, short and long axis NIfTI + information CSV)",
    ),
)
"""The datasets this module reads (found by :mod:`cardigan_utils.data.registry`)."""
