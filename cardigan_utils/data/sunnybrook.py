"""Reader (and writer) of the Sunnybrook Cardiac Data (the 2009 MICCAI LV segmentation challenge).

Short-axis cine MRI as DICOM series (one file per image, ``IM-<series>-<NNNN>.dcm``, the images
numbered over slices x phases, 20 phases per slice in the real data) and expert contours as text
files, one ``x y`` point per line in pixel coordinates. The layout this reader takes:

.. code-block:: text

    <root>/sunnybrook_series.csv                        the per-case table (below)
    <root>/<case>/contours-manual/IRCCI-expert/         one case's contours, e.g. <root>/SC-HF-I-01/...
        IM-0001-0048-icontour-manual.txt                endocardium drawn on DICOM image 48
        IM-0001-0048-ocontour-manual.txt                epicardium drawn on DICOM image 48
    <dicom_folder>/IM-<series>-0048.dcm                 image 48 of the case's short-axis series

The contour folders are those of the public releases (``SC-HF-I-01/contours-manual/IRCCI-expert/``
in ``Sunnybrook Cardiac MR Database ContoursPart{1,2,3}/...DataContours/`` of the 2009 download,
or in ``SCD_ManualContours/`` of the Cardiac Atlas re-release): point the reader at the folder that
holds the case folders. Papillary-muscle contours (``-p1contour-``, ``-p2contour-``) are ignored:
the cavity includes the papillary muscles, as in ACDC.

**The per-case table** (nothing public is standard here, so the kit defines it). In the public
releases the contour files say only the image number (their ``IM-0001-`` prefix does not name the
series), and a case's DICOM folder holds several series (localisers, long axis), so the table names
the short-axis series of each case. ``<root>/sunnybrook_series.csv``, a CSV file with a header line
and one row per case; other columns are ignored::

    case,dicom_folder,series
    SC-HF-I-01,../../challenge_training/SC-HF-I-1,0004
    SC-HF-I-02,../../challenge_training/SC-HF-I-2,0106

- ``case``: the name of the case's contour folder (the patient id);
- ``dicom_folder``: the folder of its DICOM files, relative to the table's folder or absolute;
- ``series``: the series number in the file names ``IM-<series>-NNNN.dcm`` (``0004`` or ``4``).

Contour file ``IM-xxxx-NNNN-{i,o}contour-manual.txt`` belongs to DICOM image ``NNNN`` of that series.

**How a case is read.** Every ``IM-<series>-*.dcm`` header is read (pydicom); images are grouped
into slices by their position along the slice normal (``ImagePositionPatient`` projected on the
normal of ``ImageOrientationPatient``; ``SliceLocation`` when those are absent), slices ordered
by ascending position, and the images of a slice ordered into phases by ``TriggerTime``, then
``InstanceNumber``. Each contour file is mapped to its image, hence to a (slice, phase). Exactly
two phases carry contours: the one with the larger endocardial area (summed over the slices
contoured at both, else averaged per contoured slice) is ED, the other ES (an area rule, not "the
earlier one": the real series start at ED, yet their ED contours are often drawn on the last phase
of the cycle). Contours are rasterised on the pixel grid (a pixel is inside when its centre is;
pixel ``(x, y)`` of a contour is column x, row y, centred on integer coordinates): LV cavity inside
the endocardium; myocardium inside the epicardium and outside the endocardium, only on slices with
both contours. There is no RV. Slices without contours stay in the volume (label 0) so that
predictions keep the input geometry; ``Case.labelled`` says where each structure is labelled.

Arrays are the kit's (X, Y, Z): X the image columns (the DICOM row direction), Y the rows, Z the
slices; the spacing is ``(PixelSpacing[1], PixelSpacing[0], distance between slice positions)``,
``SliceThickness`` when the series has one slice. ``meta["affine"]`` maps (X, Y, Z) indices to
RAS millimetres (the NIfTI convention; DICOM's LPS with x and y negated), or is the diagonal of the
spacing when the headers have no orientation or position. The module declares the ``sunnybrook``
dataset of the registry (``DATASETS``, at the bottom).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon
from scipy import ndimage as ndi

from ..config import progress as bar
from .case import Case, DataError
from .imageio import check_spacing
from .phantom import phantom_cases
from .registry import DatasetSpec, choose_patients, remap_labels

__all__ = [
    "CONTOUR_DIR",
    "GROUPS",
    "LABEL_MAP",
    "TABLE",
    "case_group",
    "contour_mask",
    "list_sunnybrook_patients",
    "load_sunnybrook",
    "read_contour",
    "read_series_table",
    "read_sunnybrook_patient",
    "write_sunnybrook_example",
]

TABLE = "sunnybrook_series.csv"
"""The per-case table, in the dataset root."""

TABLE_COLUMNS = ("case", "dicom_folder", "series")

CONTOUR_DIR = Path("contours-manual", "IRCCI-expert")
"""Where a case folder keeps its expert contours."""

GROUPS = ("HF-I", "HF-NI", "HYP", "N")
"""Heart failure with infarction, heart failure without infarction, LV hypertrophy, normal."""

LABEL_MAP = {0: 0, 1: 3, 2: 2}
"""The rasterised contours (1 inside the endocardium, 2 between epi- and endocardium) -> kit labels."""

_CASE_RE = re.compile(r"^SC-(HF-I|HF-NI|HYP|N)-\d+$")
_CONTOUR_RE = re.compile(r"^IM-\d+-(\d+)-([io])contour-manual\.txt$")
_DICOM_RE = re.compile(r"^IM-\d+-(\d+)\.dcm$")
_SAME_SLICE_MM = 0.01  # images this close along the normal are one slice
_FIX_HEADERS = "the DICOM PixelSpacing / ImagePositionPatient / SliceThickness is damaged; export the series again"


def case_group(case: str) -> str:
    """The pathology group in a case name: ``"SC-HF-NI-03"`` -> ``"HF-NI"``.

    Args:
        case: a case name.

    Returns:
        One of :data:`GROUPS`, or ``""`` when the name does not follow the ``SC-<group>-<n>`` pattern.
    """
    match = _CASE_RE.match(case)
    return match[1] if match else ""


def read_series_table(path: str | Path) -> dict[str, tuple[Path, str]]:
    """Read the per-case table (see the module docstring).

    Args:
        path: the CSV file.

    Returns:
        ``{case: (DICOM folder, series as 4 digits)}``, folders resolved against the table's folder.

    Raises:
        DataError: no file, no header with the three columns, a row without a folder or with a
            series that is not a number, a case listed twice (one line naming the file and row).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a spreadsheet's BOM
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; write the per-case table (columns {','.join(TABLE_COLUMNS)}, "
                        "see cardigan_utils.data.sunnybrook)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read it as a CSV table ({err}); write it again as plain text") from None
    missing = [c for c in TABLE_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; the first line must be the header "
                        f"'{','.join(TABLE_COLUMNS)}'")
    table: dict[str, tuple[Path, str]] = {}
    for line, row in enumerate(rows, 2):
        case, folder, series = ((row.get(c) or "").strip() for c in TABLE_COLUMNS)
        if not case or not folder or not series.isdigit():
            raise DataError(f"{path}, line {line}: each row needs a case, a DICOM folder and a series number "
                            f"(like SC-HF-I-01,challenge_training/SC-HF-I-1,0004), not {case!r},{folder!r},{series!r}")
        if case in table:
            raise DataError(f"{path}, line {line}: case {case} is listed twice; keep one row per case")
        table[case] = (path.parent / Path(folder).expanduser(), f"{int(series):04d}")
    return table


def list_sunnybrook_patients(root: str | Path, *, split: str | None = None) -> list[Path]:
    """The case folders of a Sunnybrook folder (those holding ``contours-manual/IRCCI-expert/``).

    Args:
        root: the folder holding the case folders and :data:`TABLE`.
        split: None (the reader takes no official split; list the cases you want in the table's folder).

    Returns:
        Sorted case folders.

    Raises:
        DataError: no such folder, no case folder in it, or no table beside them.
        ValueError: a split was asked for.
    """
    root = Path(root).expanduser()
    if split is not None:
        raise ValueError(f"sunnybrook has no split to choose here, pass split=None (not {split!r})")
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; point data_dir / CARDIGAN_SUNNYBROOK_DIR at the folder "
                        f"holding the Sunnybrook case folders and {TABLE}")
    cases = sorted(d for d in root.iterdir() if (d / CONTOUR_DIR).is_dir())
    if not cases:
        raise DataError(f"{root}: no Sunnybrook case folders (looked for <case>/{CONTOUR_DIR.as_posix()}/ in it); "
                        "point it at the folder holding the case folders (e.g. TrainingDataContours)")
    if not (root / TABLE).is_file():
        raise DataError(f"{root / TABLE}: file not found; write the per-case table (columns "
                        f"{','.join(TABLE_COLUMNS)}, see cardigan_utils.data.sunnybrook)")
    return cases


def read_contour(path: str | Path) -> np.ndarray:
    """Read one contour file: one ``x y`` point per line (blank lines skipped).

    Args:
        path: a ``...contour-manual.txt`` file.

    Returns:
        float array (N, 2): x (image column) and y (image row) in pixels.

    Raises:
        DataError: unreadable file, a line that is not two finite numbers (its number named), fewer
            than 3 points.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the contour file ({err}); restore it") from None
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            x, y = (float(v) for v in line.split())
        except ValueError:
            x = y = float("nan")
        if not (np.isfinite(x) and np.isfinite(y)):
            raise DataError(f"{path}, line {number}: {line.strip()[:40]!r} is not an 'x y' pair of numbers; "
                            "restore the original contour file")
        points.append((x, y))
    if len(points) < 3:
        raise DataError(f"{path}: {len(points)} point(s), a closed contour needs at least 3; restore the original "
                        "contour file")
    return np.array(points)


def contour_mask(points: np.ndarray, shape: tuple[int, int], *, source: str) -> np.ndarray:
    """The pixels inside a closed contour (a pixel is inside when its centre is).

    Args:
        points: (N, 2) x (column), y (row) in pixels, pixel centres at integer coordinates.
        shape: the image's (X, Y) = (columns, rows).
        source: the contour file, named in the message.

    Returns:
        bool array (X, Y).

    Raises:
        DataError: a point outside the image (beyond half a pixel from the border pixels' centres).
    """
    nx, ny = shape
    outside = (points[:, 0] < -0.5) | (points[:, 0] > nx - 0.5) | (points[:, 1] < -0.5) | (points[:, 1] > ny - 0.5)
    if outside.any():
        x, y = points[np.argmax(outside)]
        raise DataError(f"{source}: point ({x:g}, {y:g}) is outside the {nx} x {ny} image; the contour belongs to "
                        f"another image, check the case's series in {TABLE}")
    (x0, y0), (x1, y1) = np.ceil(points.min(axis=0)).astype(int), np.floor(points.max(axis=0)).astype(int)
    xs, ys = np.meshgrid(np.arange(max(x0, 0), min(x1, nx - 1) + 1), np.arange(max(y0, 0), min(y1, ny - 1) + 1),
                         indexing="ij")  # only the pixels of the contour's bounding box can be inside
    mask = np.zeros((nx, ny), bool)
    mask[xs, ys] = Polygon(points).contains_points(np.column_stack([xs.ravel(), ys.ravel()])).reshape(xs.shape)
    return mask


def _area(points: np.ndarray) -> float:
    """Area enclosed by a polygon (shoelace), in pixels."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# --------------------------------------------------------------------------------------------
# The DICOM series
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    """A case's short-axis series, sorted: ``files[slice][phase]``."""

    folder: Path
    series: str
    files: list[list[Path]]
    where: dict[int, tuple[int, int]]  # image number -> (slice, phase)
    shape: tuple[int, int]  # (X, Y) = (columns, rows)
    spacing: tuple[float, float, float]
    affine: np.ndarray
    vendor: str

    def dicom_path(self, number: int) -> Path:
        """Where image ``number`` would be."""
        return self.folder / f"IM-{self.series}-{number:04d}.dcm"


def _read_dicom(path: Path, *, pixels: bool = False):
    """A DICOM file's dataset (headers only unless ``pixels``), or DataError naming it."""
    import pydicom  # optional at discovery (see the registry)

    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: not a readable DICOM file ({err}); restore it from the download") from None


def _numbers(ds, tag: str, count: int, path: Path) -> np.ndarray | None:
    """A multi-valued numeric tag as floats (None when absent), or DataError."""
    if tag not in ds:
        return None
    try:
        values = np.array([float(v) for v in ds[tag].value], float)
    except (TypeError, ValueError):
        values = np.array([])
    if values.shape != (count,) or not np.isfinite(values).all():
        raise DataError(f"{path}: {tag} {ds[tag].value!r} is not {count} numbers; {_FIX_HEADERS}")
    return values


def _read_series(folder: Path, series: str, *, table: Path) -> _Series:
    """Read the headers of series ``series`` in ``folder`` and sort its images into slices and phases."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such DICOM folder (named in {table}); fix the case's dicom_folder or "
                        "restore the images")
    files = sorted(f for f in folder.glob(f"IM-{series}-*.dcm") if _DICOM_RE.match(f.name))
    if not files:
        raise DataError(f"{folder}: no IM-{series}-NNNN.dcm file (series {series}, named in {table}); fix the "
                        "case's series number in the table")
    heads = {f: _read_dicom(f) for f in files}
    first = heads[files[0]]
    if first.get("Rows") is None or first.get("Columns") is None:
        raise DataError(f"{files[0]}: no Rows / Columns, it is not an image; fix the case's series number in {table}")
    orientation = _numbers(first, "ImageOrientationPatient", 6, files[0])
    normal = None if orientation is None else np.cross(orientation[:3], orientation[3:])

    def position(f: Path) -> float:
        corner = _numbers(heads[f], "ImagePositionPatient", 3, f)
        if normal is not None and corner is not None:
            return float(normal @ corner)
        if "SliceLocation" in heads[f]:
            return float(heads[f].SliceLocation)
        raise DataError(f"{f}: no ImagePositionPatient or SliceLocation, so its slice is unknown; {_FIX_HEADERS}")

    along = {f: position(f) for f in files}  # mm along the slice normal
    slices: list[list[Path]] = []
    for f in sorted(files, key=along.get):
        if slices and along[f] - along[slices[-1][0]] < _SAME_SLICE_MM:
            slices[-1].append(f)
        else:
            slices.append([f])
    slices = [sorted(s, key=lambda f: (float(heads[f].get("TriggerTime") or 0.0),
                                       int(heads[f].get("InstanceNumber") or 0), f.name)) for s in slices]

    pixel = _numbers(first, "PixelSpacing", 2, files[0])
    if pixel is None:
        raise DataError(f"{files[0]}: no PixelSpacing; {_FIX_HEADERS}")
    if len(slices) > 1:
        step = float(np.median(np.diff([along[s[0]] for s in slices])))
    elif first.get("SliceThickness") is not None:
        step = float(first.SliceThickness)
    else:
        raise DataError(f"{files[0]}: one slice and no SliceThickness, so the slice size is unknown; {_FIX_HEADERS}")
    shape = (int(first.Columns), int(first.Rows))
    spacing = check_spacing((pixel[1], pixel[0], step), shape=(*shape, len(slices)), source=str(files[0]),
                            fix=_FIX_HEADERS)
    corner = _numbers(heads[slices[0][0]], "ImagePositionPatient", 3, slices[0][0])
    if normal is None or corner is None:
        affine = np.diag([*spacing, 1.0])
    else:
        lps = np.eye(4)
        lps[:3, :3] = np.column_stack([orientation[:3], orientation[3:], normal]) * spacing
        lps[:3, 3] = corner
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM's LPS -> RAS, as NIfTI affines are
    numbers = {f: int(_DICOM_RE.match(f.name)[1]) for f in files}
    return _Series(
        folder=folder,
        series=series,
        files=slices,
        where={numbers[f]: (z, p) for z, s in enumerate(slices) for p, f in enumerate(s)},
        shape=shape,
        spacing=spacing,
        affine=affine,
        vendor=str(first.get("Manufacturer") or ""),
    )


def _slice_image(series: _Series, z: int, phase: int) -> np.ndarray:
    """Slice ``z`` at ``phase`` as float32 (X, Y), rescaled to the stored values' meaning."""
    if phase >= len(series.files[z]):
        raise DataError(f"{series.folder}: slice {z + 1} has {len(series.files[z])} images, no phase {phase + 1}; "
                        "restore the missing DICOM files")
    path = series.files[z][phase]
    ds = _read_dicom(path, pixels=True)
    try:
        stored = np.asarray(ds.pixel_array, np.float64)
    except (AttributeError, ValueError, TypeError, RuntimeError) as err:
        raise DataError(f"{path}: cannot decode its pixel data ({err}); restore it from the download") from None
    if stored.shape != series.shape[::-1]:
        raise DataError(f"{path}: {stored.shape[1]} x {stored.shape[0]} pixels, the series has "
                        f"{series.shape[0]} x {series.shape[1]}; it is not an image of this series")
    values = stored * float(ds.get("RescaleSlope") or 1.0) + float(ds.get("RescaleIntercept") or 0.0)
    return values.T.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def _read_contours(folder: Path, series: _Series, *, table: Path) -> dict[str, dict[tuple[int, int], tuple[Path, np.ndarray]]]:
    """``{"i"|"o": {(slice, phase): (file, points)}}`` for the endo- and epicardial contours of a case."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such contour folder; restore the case's {CONTOUR_DIR.as_posix()}/")
    found: dict[str, dict[tuple[int, int], tuple[Path, np.ndarray]]] = {"i": {}, "o": {}}
    for path in sorted(folder.iterdir()):
        match = _CONTOUR_RE.match(path.name)
        if not match:
            continue
        number = int(match[1])
        if number not in series.where:
            raise DataError(f"{path}: its image {number} has no DICOM file {series.dicom_path(number)}; check the "
                            f"case's dicom_folder and series in {table}")
        found[match[2]][series.where[number]] = (path, read_contour(path))
    return found


def _ed_es(folder: Path, endo: dict[tuple[int, int], tuple[Path, np.ndarray]], phases: list[int]) -> tuple[int, int]:
    """The ED and ES phases among the two contoured ones: ED has the larger endocardial area."""
    if len(phases) != 2:
        found = f"phase(s) {', '.join(str(p + 1) for p in phases)} of the cycle" if phases else "no phase"
        raise DataError(f"{folder}: contours on {found}, expected two, ED and ES; restore the missing "
                        "IM-xxxx-NNNN-{i,o}contour-manual.txt files")
    area = {p: {z: _area(points) for (z, q), (_, points) in endo.items() if q == p} for p in phases}
    common = set(area[phases[0]]) & set(area[phases[1]])

    def size(p: int) -> float:
        if common:
            return sum(area[p][z] for z in common)
        return float(np.mean(list(area[p].values()))) if area[p] else 0.0

    first, second = phases
    return (first, second) if size(first) >= size(second) else (second, first)


def read_sunnybrook_patient(case_dir: str | Path) -> list[Case]:
    """Read one Sunnybrook case at ED and ES, its contours rasterised.

    Args:
        case_dir: a case folder (``<root>/SC-HF-I-01``); the table is ``<root>/sunnybrook_series.csv``.

    Returns:
        ``[ED case, ES case]``: image float32 (X, Y, Z), every slice of the series; label uint8
        (2 MYO, 3 LV; no RV); spacing from the DICOM headers; ``labelled`` True for LV on the slices
        with an endocardial contour and for MYO on those with both contours; ``meta`` with
        ``group``, ``frame`` (the phase, 1-based), ``n_frames``, ``series``, ``image_path`` (the
        series folder), ``affine`` and ``vendor`` (DICOM Manufacturer, or ``""``).

    Raises:
        DataError: the case not in the table; its DICOM folder or series missing or unreadable; a
            contour file malformed, outside its image or naming an image the series does not
            have; contours on other than two phases.
    """
    case_dir = Path(case_dir)
    table = case_dir.parent / TABLE
    entries = read_series_table(table)
    if case_dir.name not in entries:
        raise DataError(f"{table}: no row for case {case_dir.name}; add '{case_dir.name},<DICOM folder>,<series>'")
    folder, series_number = entries[case_dir.name]
    series = _read_series(folder, series_number, table=table)
    contour_dir = case_dir / CONTOUR_DIR
    contours = _read_contours(contour_dir, series, table=table)
    phases = sorted({p for kind in contours.values() for _, p in kind})
    ed, es = _ed_es(contour_dir, contours["i"], phases)
    n_slices = len(series.files)
    cases = []
    for name, phase in (("ED", ed), ("ES", es)):
        image = np.stack([_slice_image(series, z, phase) for z in range(n_slices)], axis=-1)
        drawn = np.zeros(image.shape, np.uint8)  # 1 inside the endocardium, 2 between the contours
        labelled = {"LV": np.zeros(n_slices, bool), "MYO": np.zeros(n_slices, bool)}
        for (z, p), (path, points) in sorted(contours["i"].items()):
            if p != phase:
                continue
            cavity = contour_mask(points, series.shape, source=str(path))
            drawn[..., z][cavity] = 1
            labelled["LV"][z] = True
            if (z, p) in contours["o"]:
                outer_path, outer = contours["o"][(z, p)]
                drawn[..., z][contour_mask(outer, series.shape, source=str(outer_path)) & ~cavity] = 2
                labelled["MYO"][z] = True
        cases.append(Case(
            image=image,
            label=remap_labels(drawn, LABEL_MAP, source=str(contour_dir)),
            spacing=series.spacing,
            patient_id=case_dir.name,
            phase=name,
            modality="mri",
            dataset="sunnybrook",
            meta={"group": case_group(case_dir.name), "frame": phase + 1, "n_frames": len(series.files[0]),
                  "series": series_number, "image_path": str(folder), "affine": series.affine.copy(),
                  "vendor": series.vendor},
            labelled=labelled,
        ))
    return cases


def load_sunnybrook(
    root: str | Path,
    *,
    n_patients: int | None = None,
    seed: int = 0,
    split: str | None = None,
    progress: bool = True,
) -> list[Case]:
    """A seeded selection of Sunnybrook cases, spread over the groups named in the case names.

    Args:
        root: see :func:`list_sunnybrook_patients`.
        n_patients: how many cases (None: all).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: None (see :func:`list_sunnybrook_patients`).
        progress: show a progress bar.

    Returns:
        The Cases of the chosen cases, ED then ES each, cases in name order.

    Raises:
        DataError: as :func:`list_sunnybrook_patients` and :func:`read_sunnybrook_patient`.
    """
    dirs = {d.name: d for d in list_sunnybrook_patients(root, split=split)}
    ids = choose_patients({name: case_group(name) for name in dirs}, n_patients, seed=seed)
    return [c for name in bar(ids, desc="Sunnybrook", enabled=progress) for c in read_sunnybrook_patient(dirs[name])]


# --------------------------------------------------------------------------------------------
# The example: MRI phantom patients written as Sunnybrook cases
# --------------------------------------------------------------------------------------------

_EXAMPLE_ES_WEIGHTS = (0.6, 1.0, 0.3, 0.0)
"""The example's phases, as ES weights of an ED/ES blend: ES is phase 2 and ED phase 4 (the end of
the cycle, as in many real cases), the other two are not contoured."""

_EXAMPLE_ROW = np.array([0.8, 0.6, 0.0])  # an oblique short-axis orientation (orthonormal pair)
_EXAMPLE_COL = np.array([-0.36, 0.48, 0.8])
_EXAMPLE_ORIGIN = np.array([-120.0, -90.0, 60.0])
_EXAMPLE_SLOPE, _EXAMPLE_INTERCEPT = 0.5, -10.0  # stored = (value - intercept) / slope


def _example_position(z: int, spacing: tuple[float, float, float]) -> np.ndarray:
    """ImagePositionPatient of the example's slice ``z``."""
    return _EXAMPLE_ORIGIN + z * spacing[2] * np.cross(_EXAMPLE_ROW, _EXAMPLE_COL)


def _write_example_dicom(path: Path, pixels: np.ndarray, *, case: Case, name: str, series: str, number: int,
                         z: int, trigger_ms: float) -> None:
    """One MR image file of the example (pixels (X, Y), integer-valued)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    def uid(*parts) -> str:
        return generate_uid(entropy_srcs=[name, *map(str, parts)])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = uid(series, number)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid(series)
    ds.Modality, ds.PatientID, ds.Manufacturer = "MR", name, str(case.meta.get("vendor", ""))
    ds.SeriesNumber, ds.InstanceNumber, ds.TriggerTime = int(series), number, round(trigger_ms, 2)
    sx, sy, sz = case.spacing
    ds.PixelSpacing = [round(sy, 6), round(sx, 6)]  # rows, then columns
    ds.SliceThickness = round(0.8 * sz, 3)  # thinner than the slice step, as with the real 8 mm slices and gaps
    ds.ImageOrientationPatient = [*_EXAMPLE_ROW.tolist(), *_EXAMPLE_COL.tolist()]
    ds.ImagePositionPatient = [round(v, 4) for v in _example_position(z, case.spacing).tolist()]
    ds.SliceLocation = round(float(z * sz), 4)
    ds.RescaleSlope, ds.RescaleIntercept = _EXAMPLE_SLOPE, _EXAMPLE_INTERCEPT
    ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    stored = np.round((pixels.T - _EXAMPLE_INTERCEPT) / _EXAMPLE_SLOPE)
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _trace(mask: np.ndarray) -> np.ndarray:
    """The outline of a 2-D mask (X, Y) as (N, 2) x, y points: its longest-enclosing closed contour."""
    import contourpy  # installed with matplotlib

    padded = np.pad(mask.astype(float), 1).T  # (Y, X): contourpy's x is the column
    lines = contourpy.contour_generator(z=padded, line_type="Separate").lines(0.5)
    return max(lines, key=_area)[:-1] - 1.0  # drop the repeated closing point, undo the padding


def _write_contour(path: Path, mask: np.ndarray) -> None:
    path.write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in _trace(mask)))


def _write_example_case(out: Path, ed: Case, es: Case, *, name: str, series: str, dicom_folder: Path) -> None:
    """One phantom patient as a Sunnybrook case: its series (with a stray one-image series) and its contours.

    Slice 1 (the base) has no contour, slice 2 an endocardial contour only, apical slices without a
    cavity an epicardial one only (the reader labels nothing there).
    """
    (out / dicom_folder).mkdir(parents=True, exist_ok=True)
    contours = out / name / CONTOUR_DIR
    contours.mkdir(parents=True, exist_ok=True)
    n_phases = len(_EXAMPLE_ES_WEIGHTS)
    for z in range(ed.image.shape[-1]):
        for p, w in enumerate(_EXAMPLE_ES_WEIGHTS):
            number = z * n_phases + p + 1
            pixels = np.round((1.0 - w) * ed.image[..., z] + w * es.image[..., z])
            _write_example_dicom(out / dicom_folder / f"IM-{series}-{number:04d}.dcm", pixels, case=ed, name=name,
                                 series=series, number=number, z=z, trigger_ms=800.0 * p / n_phases)
            if w not in (0.0, 1.0) or z == 0:
                continue
            label = (es if w == 1.0 else ed).label[..., z]
            if (label == 3).any():
                _write_contour(contours / f"IM-0001-{number:04d}-icontour-manual.txt", label == 3)
            if z != 1:
                _write_contour(contours / f"IM-0001-{number:04d}-ocontour-manual.txt",
                               ndi.binary_fill_holes((label == 2) | (label == 3)))
    # a localiser-like stray series in the same folder, which the table's series number leaves out
    _write_example_dicom(out / dicom_folder / "IM-0001-0001.dcm", ed.image[..., 0], case=ed, name=name,
                         series="0001", number=1, z=0, trigger_ms=0.0)


def write_sunnybrook_example(out_dir: str | Path, *, n_patients: int = 2, seed: int = 0,
                             layout: str | None = None) -> Path:
    """A small Sunnybrook folder: MRI phantom patients as DICOM series, contour files and the table.

    Case ``i`` is ``SC-<group>-0i`` (groups cycling through :data:`GROUPS`), its series
    ``IM-0{i}04-NNNN.dcm`` in ``challenge_training/SC-<group>-i/`` as in the 2009 release: every
    slice at 4 phases (ES at phase 2, ED at phase 4 of the cycle), oblique orientation, slice
    thickness 0.8 x the slice step, pixel values stored with a rescale slope and intercept,
    Manufacturer the phantom vendor. Contours are traced from the phantom labels.

    Args:
        out_dir: the dataset root to write.
        n_patients: how many cases.
        seed: phantom seed.
        layout: None (the one layout).

    Returns:
        ``out_dir``, ready for :func:`list_sunnybrook_patients`.

    Raises:
        ValueError: a layout was asked for.
    """
    if layout is not None:
        raise ValueError(f"sunnybrook has one layout, pass layout=None (not {layout!r})")
    out = Path(out_dir)
    cases = phantom_cases("phantom-mri", n_patients, seed=seed)
    rows = []
    for i, pid in enumerate(sorted({c.patient_id for c in cases}), 1):
        ed, es = (next(c for c in cases if c.patient_id == pid and c.phase == ph) for ph in ("ED", "ES"))
        group = GROUPS[(i - 1) % len(GROUPS)]
        name, series = f"SC-{group}-{i:02d}", f"{100 * i + 4:04d}"
        dicom_folder = Path("challenge_training", f"SC-{group}-{i}")
        _write_example_case(out, ed, es, name=name, series=series, dicom_folder=dicom_folder)
        rows.append((name, dicom_folder.as_posix(), series))
    with open(out / TABLE, "w", newline="") as f:
        csv.writer(f).writerows([TABLE_COLUMNS, *rows])
    return out


DATASETS = (
    DatasetSpec(
        name="sunnybrook",
        modality="mri",
        structures=("MYO", "LV"),
        label_map=LABEL_MAP,
        list_patients=list_sunnybrook_patients,
        read_patient=read_sunnybrook_patient,
        load=load_sunnybrook,
        write_example=write_sunnybrook_example,
        env_var="CARDIGAN_SUNNYBROOK_DIR",
        description="Sunnybrook Cardiac Data (2009 LV challenge): DICOM + expert contours; LV cavity and myocardium only",
    ),
)
"""The dataset this module reads (found by :mod:`cardigan_utils.data.registry`)."""
