"""The dataset registry: what each dataset's reader declares, found by discovery, looked up by name.

Every dataset the kit reads (the built-in phantoms, ACDC, CAMUS, ...) is described by one
:class:`DatasetSpec`, declared by its reader module. Everything that takes a dataset name
(:func:`cardigan_utils.data.load_cases`, :func:`~cardigan_utils.data.prepare.verify_dataset`, ...)
looks it up with :func:`get_dataset`: an unknown name is an error that lists the registered ones,
never a silent fall-through to another reader.

How to add a dataset (one new module plus its tests, nothing else to edit):

1. Write ``cardigan_utils/data/<reader>.py`` with the functions a :class:`DatasetSpec` needs
   (their signatures are in its docstring): list the patients of a folder, read one patient into
   :class:`~cardigan_utils.data.case.Case` records in the kit's label convention (convert the file
   labels with :func:`remap_labels` and the dataset's label map), read a seeded selection of
   patients (:func:`choose_patients` picks one spread over the groups), and write a small example
   folder in the dataset's layout (the phantom of the same modality, written as that dataset
   stores it) for the tests. Raise :class:`~cardigan_utils.data.case.DataError` with one line
   naming the file or folder and the fix. Import optional dependencies (h5py, pydicom) inside the
   functions that need them, so that discovery never fails for want of them.
2. At the bottom of the module declare ``DATASETS = (DatasetSpec(name=..., ...),)``. The registry
   imports every module of ``cardigan_utils.data`` once, on the first lookup, and collects their
   ``DATASETS`` tuples; two specs with the same name are an error naming both modules.
3. Add ``tests/test_<reader>.py`` for what is special to the format. The reader contract test of
   ``tests/test_registry.py`` runs on every registered dataset, so it checks the new one unchanged.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from ..config import progress as bar
from ..labels import LABELS, NUM_CLASSES, structure_names
from .cache import split_patients
from .case import Case, DataError, check_image

__all__ = [
    "IDENTITY_LABEL_MAP",
    "DatasetSpec",
    "LayoutReport",
    "choose_patients",
    "dataset_dir",
    "dataset_names",
    "dataset_specs",
    "discover_datasets",
    "get_dataset",
    "recognise_folder",
    "reference_dataset",
    "remap_labels",
]

IDENTITY_LABEL_MAP: Mapping[int, int] = MappingProxyType({k: k for k in range(NUM_CLASSES)})
"""The label map of a dataset whose files already hold the kit's convention (ACDC, CAMUS, phantoms)."""

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class LayoutReport:
    """What :meth:`DatasetSpec.verify` found.

    Attributes:
        cases: the Cases that read cleanly.
        problems: ``(patient, message)`` for every patient that did not.
        skipped_unlabelled: patients with images but no ground truth, skipped by the reader.
    """

    cases: list[Case] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    skipped_unlabelled: int = 0

    def summary(self) -> str:
        """A few lines for a person: counts, then one line per problem."""
        patients = len({c.patient_id for c in self.cases})
        lines = [f"{patients} patients read ({len(self.cases)} cases), {len(self.problems)} with problems"]
        if self.skipped_unlabelled:
            lines.append(f"  ({self.skipped_unlabelled} patients with images but no ground truth skipped, "
                         "e.g. the legacy CAMUS testing set)")
        lines += [f"  {p}: {m}" for p, m in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True, eq=False)
class DatasetSpec:
    """What a reader declares about its dataset, and the functions that read it.

    A *source* is what the functions read: the dataset's folder (or file) for a real dataset; for
    a generated one (``needs_folder=False``, the phantoms) whatever its ``write_example`` returns.
    A *patient* is one item of ``list_patients``: a folder, or any object whose ``name`` is the
    patient id, that ``read_patient`` reads on its own.

    Args:
        name: the name users pass (``"acdc"``); lowercase letters, digits and ``-``.
        modality: ``"mri"`` or ``"echo"``: which label convention its Cases use.
        structures: the structures it labels, by their names in the modality's convention
            (:data:`cardigan_utils.labels.LABELS`), e.g. ``("RV", "MYO", "LV")``; Sunnybrook would
            declare ``("MYO", "LV")``. Only these are scored.
        label_map: file label value -> kit label value (:data:`IDENTITY_LABEL_MAP` when the files
            hold the kit's convention; M&Ms' 1 LV, 2 MYO, 3 RV is ``{0: 0, 1: 3, 2: 2, 3: 1}``).
            Background maps to 0 and the values are exactly 0 and the declared structures.
        list_patients: ``(source, *, split=None) -> list`` of patients, sorted; raises DataError
            (one line naming the folder) when the source is not this dataset's layout.
        read_patient: ``(patient) -> list[Case]`` in the kit's convention, ``modality`` and
            ``dataset`` set to this spec's; raises DataError naming the file and the fix.
        load: what :func:`~cardigan_utils.data.load_cases` calls. Real datasets:
            ``(root, *, n_patients, seed, split, progress) -> list[Case]`` (a seeded selection of
            ``n_patients``, None for all); generated ones:
            ``(*, n_patients, seed, vendors, first_index) -> list[Case]``.
        write_example: ``(out_dir, *, n_patients=2, seed=0, layout=None) -> source``: a small
            example of the dataset in its layout, for the tests (a generated dataset writes nothing
            and returns its source).
        env_var: the environment variable that points at its folder (None when it needs none).
        needs_folder: False for generated datasets (they take ``n_patients`` instead of a folder).
        splits: its official splits (``split=`` values), empty when it has none.
        layouts: the on-disk layouts ``write_example(layout=...)`` writes, first the default;
            empty when it has one (or none).
        order: where it comes in :func:`dataset_names` (lower first; ties in discovery order).
            The built-in datasets take 0 to 3, so a new one keeps the default and comes after them;
            :func:`~cardigan_utils.data.reference_cases` takes the first real one of a modality.
        description: where it comes from, in a few words.
    """

    name: str
    modality: str
    structures: tuple[str, ...]
    label_map: Mapping[int, int]
    list_patients: Callable[..., list]
    read_patient: Callable[..., list[Case]]
    load: Callable[..., list[Case]]
    write_example: Callable[..., Any]
    env_var: str | None = None
    needs_folder: bool = True
    splits: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()
    order: int = 100
    description: str = ""

    def __post_init__(self) -> None:
        def bad(what: str) -> ValueError:
            return ValueError(f"dataset spec {self.name!r}: {what}")

        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise bad("name must be lowercase letters, digits and '-', starting with a letter")
        if self.modality not in LABELS:
            raise bad(f"modality must be one of {tuple(LABELS)}, not {self.modality!r}")
        structures = (self.structures,) if isinstance(self.structures, str) else tuple(self.structures)
        known = structure_names(self.modality)
        unknown = [s for s in structures if s not in known]
        if not structures or unknown or len(set(structures)) != len(structures):
            raise bad(f"structures {structures!r} must be distinct names among the {self.modality} structures {known}")
        object.__setattr__(self, "structures", structures)
        label_map = dict(self.label_map)
        if not all(isinstance(k, int) and isinstance(v, int) for k, v in label_map.items()):
            raise bad(f"label_map {label_map} must map integer file labels to integer kit labels")
        if label_map.get(0) != 0 or set(label_map.values()) != {0, *self.label_values}:
            raise bad(f"label_map {label_map} must send 0 to 0 and the other file labels onto exactly the kit "
                      f"labels of its structures {dict(zip(structures, self.label_values))}")
        object.__setattr__(self, "label_map", MappingProxyType(label_map))
        for what in ("list_patients", "read_patient", "load", "write_example"):
            if not callable(getattr(self, what)):
                raise bad(f"{what} must be a function")
        if self.needs_folder and not self.env_var:
            raise bad("a dataset read from a folder needs env_var, the variable that points at its folder")
        if not self.needs_folder and self.env_var:
            raise bad("a generated dataset (needs_folder=False) has no folder, so no env_var")
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "layouts", tuple(self.layouts))

    @property
    def label_values(self) -> tuple[int, ...]:
        """The kit label values of its structures, ascending (e.g. ``(1, 2, 3)``)."""
        by_name = {n: v for v, n in LABELS[self.modality].items()}
        return tuple(sorted(by_name[s] for s in self.structures))

    def check_case(self, case: Case) -> None:
        """Raise DataError if a Case read by this dataset breaks what the spec declares.

        Args:
            case: a Case its ``read_patient`` returned.

        Raises:
            DataError: another modality or dataset name, label values outside 0 and the
                declared structures (the reader forgot its label map), or an image with NaN or
                infinite values or one value everywhere (nothing to learn from).
        """
        check_image(case.image, source=str(case.meta.get("image_path") or case.key))
        if case.modality != self.modality or case.dataset != self.name:
            raise DataError(f"{case.key}: read as modality={case.modality!r} dataset={case.dataset!r}, but {self.name} "
                            f"declares modality={self.modality!r}; the reader must set both")
        extra = sorted(set(np.unique(case.label).tolist()) - {0, *self.label_values})
        if extra:
            raise DataError(f"{case.key}: label values {extra} are not among the structures {self.name} declares "
                            f"{dict(zip(self.structures, self.label_values))}; convert the labels with its label_map")
        for value, name in LABELS[self.modality].items():
            if value == 0:
                continue
            present = case.label.reshape(-1, case.label.shape[-1]).__eq__(value).any(axis=0)
            stray = np.flatnonzero(present & ~case.labelled_slices(name))
            if len(stray):
                raise DataError(f"{case.key}: {name} is drawn on slice(s) {stray[:5].tolist()} that the Case says are "
                                f"not labelled for {name}; the reader's labelled-slice masks are wrong")

    def verify(self, root: Any, *, split: str | None = None, progress: bool = True) -> LayoutReport:
        """Read every patient of a source, collecting problems instead of stopping.

        Args:
            root: the dataset's folder (a generated dataset: its source).
            split: official split to read, None for all.
            progress: show a progress bar.

        Returns:
            A :class:`LayoutReport`; ``skipped_unlabelled`` counts the reader's warnings about images
            "without ground truth".

        Raises:
            DataError: the folder is not this dataset's layout (one line naming it).
        """
        patients = self.list_patients(root, split=split)
        report = LayoutReport()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for patient in bar(patients, desc=f"verify {self.name}", enabled=progress):
                try:
                    cases = self.read_patient(patient)
                    for case in cases:
                        self.check_case(case)
                except DataError as err:
                    report.problems.append((patient.name, str(err)))
                    continue
                report.cases += cases
        report.skipped_unlabelled = sum("without ground truth" in str(w.message) for w in caught)
        return report


def remap_labels(label: np.ndarray, label_map: Mapping[int, int], *, source: str) -> np.ndarray:
    """A file's label map in the kit's convention.

    Args:
        label: integer label array as stored in the file.
        label_map: file value -> kit value (a spec's ``label_map``).
        source: the file it came from, named in the message.

    Returns:
        A uint8 array of the same shape.

    Raises:
        DataError: values the map does not know.
    """
    label = np.asarray(label)
    values = np.unique(label)
    unknown = [v.item() for v in values if v.item() not in label_map]
    if unknown:
        raise DataError(f"{source}: label values {unknown} are not in the dataset's label map {dict(label_map)}; "
                        "is this a ground-truth file of this dataset?")
    lut = np.zeros(int(values.max(initial=0)) + 1, dtype=np.uint8)
    for k, v in label_map.items():
        if 0 <= k < len(lut):
            lut[k] = v
    return lut[label.astype(np.int64)]


def choose_patients(groups: dict[str, str], n: int | None, *, seed: int = 0) -> list[str]:
    """A seeded subset of ``n`` patients, spread evenly over the groups, in sorted order.

    Real datasets are often ordered by pathology (ACDC numbers its groups in blocks of 20), so
    "the first n" would be one group only. Readers' ``load`` functions use it.

    Args:
        groups: ``{patient_id: group}``.
        n: how many (None or >= all: every patient).
        seed: which subset.

    Returns:
        Sorted patient ids.
    """
    ids = sorted(groups)
    if n is None or n >= len(ids):
        return ids
    # split_patients deals strata out evenly: its "test" share of size n is a stratified sample.
    share = split_patients(ids, val_fraction=0.0, test_fraction=n / len(ids), seed=seed, strata=groups)
    return sorted(p for p, s in share.items() if s == "test")


def discover_datasets(package: str = __package__) -> dict[str, DatasetSpec]:
    """Import every module of a package and collect the specs of their ``DATASETS`` tuples.

    Uncached; :func:`get_dataset` and the others use the result for ``cardigan_utils.data``, built
    once on the first lookup.

    Args:
        package: the package whose modules declare datasets.

    Returns:
        ``{name: spec}`` ordered by ``spec.order``, then module name, then position in its tuple.

    Raises:
        TypeError: a module's ``DATASETS`` is not a tuple of DatasetSpec.
        ValueError: two specs with the same name (both modules named).
    """
    found: list[DatasetSpec] = []
    where: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(importlib.import_module(package).__path__), key=lambda m: m.name):
        module_name = f"{package}.{info.name}"
        declared = getattr(importlib.import_module(module_name), "DATASETS", None)
        if declared is None:
            continue
        if not isinstance(declared, tuple) or not all(isinstance(s, DatasetSpec) for s in declared):
            raise TypeError(f"{module_name}.DATASETS must be a tuple of DatasetSpec, got {declared!r:.80}")
        for spec in declared:
            if spec.name in where:
                raise ValueError(f"dataset {spec.name!r} is declared twice, in {where[spec.name]} and {module_name}; "
                                 "rename one of them")
            where[spec.name] = module_name
            found.append(spec)
    return {s.name: s for s in sorted(found, key=lambda s: s.order)}


@lru_cache(maxsize=None)
def _registry() -> dict[str, DatasetSpec]:
    """The datasets of ``cardigan_utils.data``, discovered on the first lookup and kept."""
    return discover_datasets()


def dataset_specs() -> tuple[DatasetSpec, ...]:
    """Every registered dataset, in :func:`dataset_names` order.

    Returns:
        The specs.
    """
    return tuple(_registry().values())


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names: ``phantom-mri``, ``phantom-echo``, ``acdc``, ``camus``, then the others.

    Returns:
        The names, in a stable order.
    """
    return tuple(_registry())


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a registered dataset.

    Args:
        name: e.g. ``"acdc"``.

    Returns:
        Its :class:`DatasetSpec`.

    Raises:
        ValueError: an unknown name (the message lists the registered ones).
    """
    specs = _registry()
    if name not in specs:
        raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(specs)}")
    return specs[name]


def reference_dataset(modality: str) -> DatasetSpec | None:
    """The first registered real dataset of a modality (ACDC for MRI, CAMUS for echo).

    Args:
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        Its spec, or None when no real dataset of that modality is registered.

    Raises:
        ValueError: an unknown modality.
    """
    if modality not in LABELS:
        raise ValueError(f"modality must be one of {tuple(LABELS)}, not {modality!r}")
    return next((s for s in dataset_specs() if s.needs_folder and s.modality == modality), None)


def recognise_folder(folder: str | os.PathLike) -> DatasetSpec | None:
    """The registered real dataset whose layout a folder is in: its root, a split folder or one patient's folder.

    A dataset recognises the folder when its ``list_patients`` finds patients there (or finds the
    folder itself among the patients of the folder above) and its ``read_patient`` reads the first
    of them: listing alone is not enough, since a CAMUS listing also takes ACDC's ``patientXXX``
    folders for its own.

    Args:
        folder: a folder of images (what ``cardigan segment --input`` is given).

    Returns:
        The spec of the one dataset that reads it, or None when none does, or when datasets of
        different modalities both do (the folder says nothing certain).
    """
    folder = Path(folder).expanduser()
    found: list[DatasetSpec] = []
    for spec in dataset_specs():
        if not spec.needs_folder:
            continue
        patients = _patients_at(spec, folder)
        if not patients:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. CAMUS images without ground truth
                spec.read_patient(patients[0])
        except (DataError, ValueError, OSError):
            continue
        found.append(spec)
    return found[0] if found and len({s.modality for s in found}) == 1 else None


def _patients_at(spec: DatasetSpec, folder: Path) -> list:
    """The patients of ``spec`` in ``folder`` ([folder] when it is one of them; [] when it holds none)."""
    try:
        return list(spec.list_patients(folder))
    except (DataError, ValueError, OSError):
        pass
    try:
        above = spec.list_patients(folder.parent)
    except (DataError, ValueError, OSError):
        return []
    here = folder.resolve()
    return [p for p in above if isinstance(p, Path) and p.resolve() == here]


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Where a real dataset lives: ``data_dir`` if given, else its environment variable.

    Args:
        name: a registered dataset (generated ones need no folder and give None).
        data_dir: an explicit folder, wins over the environment.

    Returns:
        The folder, or None for generated datasets.

    Raises:
        ValueError: an unknown name.
        FileNotFoundError: a real dataset with neither ``data_dir`` nor its variable set.
    """
    spec = get_dataset(name)
    if not spec.needs_folder:
        return None
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(spec.env_var):
        return Path(os.environ[spec.env_var]).expanduser()
    raise FileNotFoundError(
        f"dataset {name!r} needs its folder: pass data_dir=... or set {spec.env_var} "
        "(see README: 'Using the official downloads')"
    )
