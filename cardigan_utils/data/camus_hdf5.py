"""cardiGAN's HDF5 copy of CAMUS: read it as Case records, and write Cases (or synthetic pairs) in it.

cardiGAN (Rançon, Vannier: SPADE on CAMUS echocardiography) keeps its data in one HDF5 file
(``camus05_256.hdf5``, read by its notebook and ``prepare_dataset.py``)::

    /<split>/<patient>/<view>/im    float, shape (2, H, W, 1), values in [0, 1]
    /<split>/<patient>/<view>/gt    integer, shape (2, H, W), labels 0..3

with ``<split>`` one of ``train``, ``valid``, ``test``, ``<view>`` ``2CH`` or ``4CH``, and the
first axis the instant: 0 = end-diastole (ED), 1 = end-systole (ES). The labels are the kit's echo
convention already (0 background, 1 LV cavity, 2 LV myocardium, 3 left atrium): no remapping.

Conventions of the kit's side:

- **Axes.** cardiGAN's arrays are images, ``(row, col)``; the kit's Cases are ``(X, Y, Z)`` and show
  a slice as ``volume[:, :, z].T`` (:mod:`cardigan_utils.data.slices`). So a Case holds
  ``im[t, :, :, 0].T[:, :, None]`` (float32 ``(W, H, 1)``) and the writer transposes back: a real
  file displays upright through the kit's slices, and a file written by the kit reads back into
  the same arrays.
- **Splits.** The file's ``train``, ``valid``, ``test`` are the kit's CAMUS split names
  ``training``, ``validation``, ``testing`` (:data:`SPLITS`, as :mod:`.camus` and its split files use
  them): ``split=`` arguments and ``meta["split"]`` take those.
- **Spacing.** The file holds none: Cases carry the placeholder ``(1.0, 1.0, 1.0)`` with
  ``spacing_known=False``, so areas, volumes and distances in mm are NaN, never wrong numbers.
- **Both instants.** A view is stored as its (ED, ES) pair, so the writer needs both phases of
  every view it writes and refuses a view with one phase only (give both, or leave the view out).

h5py is imported inside the functions that open a file, so that the registry's discovery (which
imports every reader module) stays cheap and never depends on it. The module declares the
``camus-hdf5`` dataset of the registry (``DATASETS``, at the bottom).
"""

from __future__ import annotations

import os
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ..labels import PHASES, structure_names
from ..runs import atomic_path
from .camus import SPLITS, VIEWS
from .case import Case, DataError, check_image, check_labels
from .phantom import phantom_cases
from .registry import IDENTITY_LABEL_MAP, DatasetSpec, choose_patients

FILE_SPLITS = {"training": "train", "validation": "valid", "testing": "test"}
"""The kit's split name -> the file's top-level group (cardiGAN's names)."""

FILE_SUFFIXES = (".hdf5", ".h5")
"""Endings of the file looked for in a folder given as the source."""

EXAMPLE_NAME = "camus.hdf5"
"""The file :func:`write_cardigan_example` writes into its folder."""

PLACEHOLDER_SPACING = (1.0, 1.0, 1.0)
"""The spacing of every Case read (the file holds none; ``spacing_known`` is False)."""


@dataclass(frozen=True)
class CardiganPatient:
    """One patient of a cardiGAN file: what :func:`list_cardigan_patients` lists and
    :func:`read_cardigan_patient` reads on its own.

    Attributes:
        file: the HDF5 file.
        split: the kit's split name (``"training"``, ``"validation"``, ``"testing"``).
        name: the patient id, the name of its group.
    """

    file: Path
    split: str
    name: str

    @property
    def group(self) -> str:
        """Its group in the file, e.g. ``/train/patient0001``."""
        return f"/{FILE_SPLITS[self.split]}/{self.name}"


class CardiganView(NamedTuple):
    """One view of one patient as the file stores it (what :func:`write_cardigan_views` writes).

    Attributes:
        split: the kit's split name (``"training"`` ...).
        patient_id: the patient's group name.
        view: ``"2CH"`` or ``"4CH"``.
        images: float (2, H, W) in [0, 1], ``(row, col)`` images at ED then ES.
        labels: integer (2, H, W), labels 0..3.
    """

    split: str
    patient_id: str
    view: str
    images: np.ndarray
    labels: np.ndarray


def _choice(values: str | Sequence[str], allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """``values`` as a tuple, each one of ``allowed`` (ValueError otherwise)."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if not values or not set(values) <= set(allowed):
        raise ValueError(f"{what} {values!r} must be among {allowed}")
    return values


# --------------------------------------------------------------------------------------------
# The file and its arrays
# --------------------------------------------------------------------------------------------


def cardigan_file(source: str | os.PathLike) -> Path:
    """The HDF5 file a source names: the file itself, or the one ``.hdf5``/``.h5`` file of a folder.

    Args:
        source: cardiGAN's file (e.g. ``camus05_256.hdf5``) or the folder that holds it.

    Returns:
        The file's path (not yet opened).

    Raises:
        DataError: the source does not exist, or the folder holds no such file or several.
    """
    source = Path(source).expanduser()
    if source.is_file():
        return source
    if not source.is_dir():
        raise DataError(f"{source}: no such file or folder; give cardiGAN's HDF5 file (camus05_256.hdf5) or its folder")
    found = sorted(p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(FILE_SUFFIXES))
    if not found:
        raise DataError(f"{source}: no {'/'.join(FILE_SUFFIXES)} file in this folder; give cardiGAN's HDF5 file "
                        "(camus05_256.hdf5) or the folder that holds it")
    if len(found) > 1:
        raise DataError(f"{source}: several HDF5 files ({', '.join(p.name for p in found[:4])}); give the file itself")
    return found[0]


@contextmanager
def _open(file: Path) -> Iterator[Any]:
    """``file`` opened read-only with h5py; a file that is not HDF5 is a DataError naming it."""
    import h5py

    try:
        handle = h5py.File(file, "r")
    except OSError as err:
        detail = " ".join(str(err).split())[:80]
        raise DataError(f"{file}: not a readable HDF5 file ({detail}); give cardiGAN's camus05_256.hdf5, "
                        "or copy it again if it is damaged") from None
    with handle:
        yield handle


def _member(f: Any, file: Path, path: str, *, kind: str, hint: str) -> Any:
    """The group or dataset at ``path``, or a DataError naming the group that lacks it."""
    import h5py

    parent, _, name = path.rpartition("/")
    wanted = h5py.Group if kind == "group" else h5py.Dataset
    item = f.get(path)
    if not isinstance(item, wanted):
        where = f"group {parent}" if parent else "the file"
        raise DataError(f"{file}: {where} has no {name!r} {kind}; {hint}")
    return item


def check_cardigan_view(im: np.ndarray, gt: np.ndarray, *, file: str | os.PathLike, group: str) -> None:
    """Raise DataError if one view's arrays break cardiGAN's layout.

    Args:
        im: the view's images, as stored: float (2, H, W, 1), values in [0, 1].
        gt: its labels, as stored: integer (2, H, W), values 0..3, neither instant empty.
        file: the HDF5 file, named in the message.
        group: the view's group (``/train/patient0001/2CH``), named in the message.

    Raises:
        DataError: wrong shapes (or H, W differing between ``im`` and ``gt``), images not numbers,
            non-finite or outside [0, 1], labels not integers, outside 0..3, or empty at an instant.
    """
    if im.ndim != 4 or im.shape[0] != 2 or im.shape[3] != 1 or 0 in im.shape:
        raise DataError(f"{file}: dataset {group}/im has shape {im.shape}, not (2, H, W, 1) (ED and ES, one channel); "
                        "write the file again in cardiGAN's layout")
    if gt.shape != im.shape[:3]:
        raise DataError(f"{file}: dataset {group}/gt has shape {gt.shape}, not {im.shape[:3]} as {group}/im "
                        "(2, H, W); the ground truth must belong to these images")
    check_image(im, source=f"{file}: dataset {group}/im", allow_constant=True)
    low, high = float(im.min()), float(im.max())
    if low < 0.0 or high > 1.0:
        raise DataError(f"{file}: dataset {group}/im has values in [{low:g}, {high:g}], outside [0, 1]; "
                        "cardiGAN's images are floats scaled to [0, 1]")
    whole = np.issubdtype(gt.dtype, np.integer) or (
        np.issubdtype(gt.dtype, np.floating) and bool(np.all(np.isfinite(gt) & (gt == np.round(gt)))))
    if not whole:  # whole-valued floats pass: only the values matter to cardiGAN's code
        raise DataError(f"{file}: dataset {group}/gt holds non-integer labels (type {gt.dtype}); the ground truth "
                        "must be class indices 0..3")
    for instant, phase in enumerate(PHASES):
        check_labels(gt[instant], source=f"{file}: dataset {group}/gt instant {instant} ({phase})")


def _read_view(f: Any, patient: CardiganPatient, view: str, phases: tuple[str, ...]) -> list[Case]:
    """The Cases of one view of one patient (its arrays checked first)."""
    group = f"{patient.group}/{view}"
    hint = "write the file again in cardiGAN's layout (or restrict views=)"
    _member(f, patient.file, group, kind="group", hint=hint)
    im = np.asarray(_member(f, patient.file, f"{group}/im", kind="dataset", hint=hint)[()])
    gt = np.asarray(_member(f, patient.file, f"{group}/gt", kind="dataset", hint=hint)[()])
    check_cardigan_view(im, gt, file=patient.file, group=group)
    meta = {"split": patient.split, "image_path": str(patient.file), "hdf5_group": group}
    return [
        Case(image=np.ascontiguousarray(im[PHASES.index(phase), :, :, 0].T, dtype=np.float32)[:, :, None],
             label=np.ascontiguousarray(gt[PHASES.index(phase)].T).astype(np.uint8)[:, :, None],
             spacing=PLACEHOLDER_SPACING, patient_id=patient.name, phase=phase, modality="echo", view=view,
             dataset="camus-hdf5", meta={**meta, "instant": PHASES.index(phase)}, spacing_known=False)
        for phase in phases
    ]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _patients(f: Any, file: Path, split: str | None) -> list[CardiganPatient]:
    """The patients of an open file (of one split, or of every split group present), sorted by id."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} not in {SPLITS} (the file's /train, /valid, /test)")
    present = [s for s in SPLITS if FILE_SPLITS[s] in f]
    if split is not None:
        groups = "/" + ", /".join(FILE_SPLITS[s] for s in present) if present else "none of them"
        _member(f, file, f"/{FILE_SPLITS[split]}", kind="group",
                hint=f"it holds {groups}; read another split, or split=None for all")
        present = [split]
    elif not present:
        raise DataError(f"{file}: none of the groups /train, /valid, /test found (it holds {sorted(f)[:4]}); "
                        "is this cardiGAN's HDF5 file?")
    patients: dict[str, CardiganPatient] = {}
    for name in present:
        split_group = _member(f, file, f"/{FILE_SPLITS[name]}", kind="group", hint="write the file again in cardiGAN's layout")
        for pid in split_group.keys():
            patient = CardiganPatient(file=file, split=name, name=pid)
            _member(f, file, patient.group, kind="group", hint="every member of a split is a patient group")
            if pid in patients:
                raise DataError(f"{file}: patient {pid} is in both {patients[pid].group} and {patient.group}, so its "
                                "cases would clash; read one split at a time (split=...)")
            patients[pid] = patient
    return [patients[p] for p in sorted(patients)]


def list_cardigan_patients(source: str | os.PathLike, *, split: str | None = None) -> list[CardiganPatient]:
    """The patients of cardiGAN's HDF5 file.

    Args:
        source: the file, or the folder holding it (:func:`cardigan_file`).
        split: ``None`` (every split group present), ``"training"``, ``"validation"`` or ``"testing"``
            (the groups ``/train``, ``/valid``, ``/test``).

    Returns:
        :class:`CardiganPatient` records, sorted by id; ``.name`` is the patient id.

    Raises:
        DataError: no such file, not HDF5, the split's group missing (none of them with
            ``split=None``), a member of a split that is no group, one patient in two splits.
    """
    file = cardigan_file(source)
    with _open(file) as f:
        return _patients(f, file, split)


def read_cardigan_patient(patient: CardiganPatient, *, views: Sequence[str] = VIEWS,
                          phases: Sequence[str] = PHASES) -> list[Case]:
    """Read one patient of cardiGAN's file.

    Args:
        patient: one of :func:`list_cardigan_patients`.
        views: any of ``"2CH"``, ``"4CH"``.
        phases: any of ``"ED"`` (instant 0), ``"ES"`` (instant 1).

    Returns:
        One Case per (view, phase), in that order: image float32 ``(W, H, 1)`` in [0, 1] (the
        file's ``(H, W)`` image transposed, see the module docstring), label uint8, placeholder
        spacing with ``spacing_known=False``, ``modality="echo"``, ``dataset="camus-hdf5"``, and
        ``meta`` holding ``split``, ``image_path`` (the file), ``hdf5_group`` and ``instant``.

    Raises:
        DataError: everything :func:`check_cardigan_view` raises, and a missing view group or
            ``im``/``gt`` dataset (the message names the group).
    """
    views, phases = _choice(views, VIEWS, "views"), _choice(phases, PHASES, "phases")
    with _open(patient.file) as f:
        _member(f, patient.file, patient.group, kind="group", hint="list the patients of this file again")
        return [case for view in views for case in _read_view(f, patient, view, phases)]


def read_cardigan_hdf5(path: str | os.PathLike, *, split: str | None = None, patients: Iterable[str] | None = None,
                       views: Sequence[str] = VIEWS, phases: Sequence[str] = PHASES) -> list[Case]:
    """Read cardiGAN's HDF5 file (or a selection of it) into Case records.

    Args:
        path: the file, or the folder holding it (:func:`cardigan_file`).
        split: ``None`` (all), ``"training"``, ``"validation"`` or ``"testing"``.
        patients: keep only these patient ids; ``None`` keeps all.
        views: any of ``"2CH"``, ``"4CH"``.
        phases: any of ``"ED"``, ``"ES"``.

    Returns:
        The Cases, patient by patient (sorted), as :func:`read_cardigan_patient` returns them.

    Raises:
        DataError: what :func:`list_cardigan_patients` and :func:`read_cardigan_patient` raise, and
            ``patients`` naming ids not in the selection.
    """
    views, phases = _choice(views, VIEWS, "views"), _choice(phases, PHASES, "phases")
    file = cardigan_file(path)
    with _open(file) as f:
        selected = _patients(f, file, split)
        if patients is not None:
            wanted = [patients] if isinstance(patients, str) else list(patients)
            unknown = sorted(set(wanted) - {p.name for p in selected})
            if unknown:
                raise DataError(f"{file}: patient(s) {unknown[:5]} not found{f' in split {split!r}' if split else ''}; "
                                f"ids look like {selected[0].name if selected else 'patient0001'}")
            selected = [p for p in selected if p.name in set(wanted)]
        return [case for patient in selected for view in views for case in _read_view(f, patient, view, phases)]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_cardigan_views(path: str | os.PathLike, views: Iterable[CardiganView], *, overwrite: bool = False,
                         attrs: dict[str, Any] | None = None) -> Path:
    """Write views into one HDF5 file in cardiGAN's layout, atomically, one view at a time.

    The file is written under a temporary name and moved into place at the end
    (:func:`~cardigan_utils.runs.atomic_path`): a failure or a refused view leaves no file (and an
    existing one as it was). ``views`` may be a generator: only one view is in memory at a time.

    Args:
        path: the file to write.
        views: :class:`CardiganView` records; each is checked (:func:`check_cardigan_view`) and
            stored as ``im`` float32 (2, H, W, 1) and ``gt`` uint8 (2, H, W), gzip-compressed.
        overwrite: replace an existing file.
        attrs: notes stored as attributes of the file's root (cardiGAN's code ignores them).

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        DataError: a view given twice, an unknown split or view, a patient id that cannot be a
            group name, or arrays :func:`check_cardigan_view` refuses.
    """
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another file or pass overwrite=True")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(attrs or {})
        for item in views:
            if item.split not in SPLITS or item.view not in VIEWS:
                raise DataError(f"{path}: split {item.split!r} / view {item.view!r} of {item.patient_id} must be among "
                                f"{SPLITS} / {VIEWS}")
            if not item.patient_id or "/" in item.patient_id or item.patient_id in (".", ".."):
                raise DataError(f"{path}: patient id {item.patient_id!r} cannot be an HDF5 group name; give ids like "
                                "'patient0001'")
            group = f"/{FILE_SPLITS[item.split]}/{item.patient_id}/{item.view}"
            if group in f:
                raise DataError(f"{path}: group {group} is given twice; give each patient's view once")
            im = np.asarray(item.images, dtype=np.float32)[..., None]
            gt = np.asarray(item.labels)
            check_cardigan_view(im, gt, file=path, group=group)
            view = f.create_group(group)
            for name, data in (("im", im), ("gt", gt.astype(np.uint8))):
                view.create_dataset(name, data=data, chunks=(1, *data.shape[1:]), compression="gzip")
    return path


def _unit_range(pair: np.ndarray) -> np.ndarray:
    """A view's (ED, ES) images in [0, 1]: unchanged when already there, else min-max scaled together."""
    low, high = float(pair.min()), float(pair.max())
    if 0.0 <= low and high <= 1.0:
        return pair.astype(np.float32)
    return ((pair - low) / (high - low) if high > low else np.zeros_like(pair)).astype(np.float32)


def _views_of(cases: Sequence[Case], *, path: Path, splits: dict[str, str]) -> Iterator[CardiganView]:
    """Cases grouped into (ED, ES) views, checked (see :func:`write_cardigan_hdf5`)."""
    grouped: dict[tuple[str, str], dict[str, Case]] = defaultdict(dict)
    for case in cases:
        if case.modality != "echo" or case.view not in VIEWS:
            raise DataError(f"{path}: {case.key} is modality={case.modality!r} view={case.view!r}; cardiGAN's file holds "
                            f"echo views {VIEWS}")
        if case.image.ndim != 3 or case.image.shape[2] != 1:
            raise DataError(f"{path}: {case.key} has image shape {case.image.shape}, not a 2-D (X, Y, 1) echo frame")
        if case.phase in grouped[case.patient_id, case.view]:
            raise DataError(f"{path}: {case.key} is given twice; give one Case per (patient, view, phase)")
        grouped[case.patient_id, case.view][case.phase] = case
    for (pid, view), by_phase in sorted(grouped.items()):
        missing = [p for p in PHASES if p not in by_phase]
        if missing:
            raise DataError(f"{path}: {pid} {view} has no {missing[0]} Case; cardiGAN's file stores ED and ES together "
                            "as (2, H, W), so give both phases of the view or leave the view out")
        ed, es = (by_phase[p] for p in PHASES)
        if ed.image.shape != es.image.shape:
            raise DataError(f"{path}: {pid} {view} has ED shape {ed.image.shape} and ES shape {es.image.shape}; "
                            "cardiGAN's file stores both instants on one grid, resample one of them")
        check_image(np.stack([ed.image, es.image]), source=f"{path}: {pid} {view}", allow_constant=True)
        images = _unit_range(np.stack([ed.image[:, :, 0].T, es.image[:, :, 0].T]))
        labels = np.stack([ed.label[:, :, 0].T, es.label[:, :, 0].T])
        yield CardiganView(split=splits[pid], patient_id=pid, view=view, images=images, labels=labels)


def write_cardigan_hdf5(cases: Sequence[Case], path: str | os.PathLike, *, splits: dict[str, str] | None = None,
                        overwrite: bool = False) -> Path:
    """Write echo Cases as cardiGAN's HDF5 file (``/<split>/<patient>/<view>/im|gt``), atomically.

    Every view written needs its ED and its ES Case (the file stores them as one (2, H, W) pair):
    a view with one phase only is refused, naming it; leave such views out. Images are stored
    ``(row, col)`` (each Case's ``image[:, :, 0].T``, so the kit's reader gives the same arrays back)
    as float32 in [0, 1]: a view whose images already lie in [0, 1] is written unchanged, any other
    is min-max scaled, ED and ES together (so their relative brightness stays). Spacing and meta
    are not stored (the layout has no place for them).

    Args:
        cases: echo Cases (``view`` 2CH or 4CH), e.g. from :func:`read_cardigan_hdf5`,
            :func:`~cardigan_utils.data.camus.read_camus` or the echo phantom.
        path: the file to write.
        splits: ``{patient_id: "training" | "validation" | "testing"}``; a patient not in it takes
            its Cases' ``meta["split"]``, else ``"training"``.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        DataError: no cases, non-echo Cases, a view without both phases, a Case given twice, ED and
            ES of different shapes, a patient whose Cases name different splits, non-finite images,
            labels outside 0..3 or empty (nothing is written).
    """
    path = Path(path)
    cases = list(cases)
    if not cases:
        raise DataError(f"{path}: no cases to write; give echo Cases with both phases of each view")
    chosen: dict[str, str] = {}
    for case in cases:
        split = (splits or {}).get(case.patient_id) or case.meta.get("split") or "training"
        if chosen.setdefault(case.patient_id, split) != split:
            raise DataError(f"{path}: the Cases of {case.patient_id} name the splits {chosen[case.patient_id]!r} and "
                            f"{split!r}; give its split with splits={{...}}")
    return write_cardigan_views(path, _views_of(cases, path=path, splits=chosen), overwrite=overwrite)


# --------------------------------------------------------------------------------------------
# The registry's view of the file
# --------------------------------------------------------------------------------------------


def load_cardigan_hdf5(root: str | os.PathLike, *, n_patients: int | None = None, seed: int = 0,
                       split: str | None = None, progress: bool = True) -> list[Case]:
    """A seeded selection of cardiGAN's file.

    Args:
        root: the file, or the folder holding it.
        n_patients: how many patients (None: all).
        seed: which selection (:func:`~cardigan_utils.data.registry.choose_patients`).
        split: ``None`` (all), ``"training"``, ``"validation"`` or ``"testing"``.
        progress: accepted for the registry's ``load`` signature; the file is read without a bar.

    Returns:
        The Cases of the chosen patients, as :func:`read_cardigan_hdf5` returns them.
    """
    ids = choose_patients({p.name: "" for p in list_cardigan_patients(root, split=split)}, n_patients, seed=seed)
    return read_cardigan_hdf5(root, split=split, patients=ids)


def write_cardigan_example(out_dir: str | os.PathLike, *, n_patients: int = 2, seed: int = 0,
                           layout: str | None = None) -> Path:
    """A small cardiGAN file: echo phantom patients (``patient0001`` ...), all in ``/train``.

    Args:
        out_dir: the folder to write ``camus.hdf5`` (:data:`EXAMPLE_NAME`) into.
        n_patients: how many patients.
        seed: phantom seed.
        layout: None (the dataset has one layout).

    Returns:
        ``out_dir``, ready for :func:`list_cardigan_patients`.
    """
    if layout is not None:
        raise ValueError(f"camus-hdf5 has one layout; got layout={layout!r}")
    cases = phantom_cases("phantom-echo", n_patients, seed=seed)
    ids = {pid: f"patient{i:04d}" for i, pid in enumerate(sorted({c.patient_id for c in cases}), 1)}
    write_cardigan_hdf5([replace(c, patient_id=ids[c.patient_id]) for c in cases], Path(out_dir) / EXAMPLE_NAME)
    return Path(out_dir)


DATASETS = (
    DatasetSpec(
        name="camus-hdf5",
        modality="echo",
        structures=tuple(structure_names("echo")),
        label_map=IDENTITY_LABEL_MAP,
        list_patients=list_cardigan_patients,
        read_patient=read_cardigan_patient,
        load=load_cardigan_hdf5,
        write_example=write_cardigan_example,
        env_var="CARDIGAN_CAMUS_HDF5",
        splits=SPLITS,
        description="cardiGAN's HDF5 copy of CAMUS (camus05_256.hdf5): /split/patient/view/im|gt, no spacing",
    ),
)
"""The dataset this module reads (found by :mod:`cardigan_utils.data.registry`)."""
