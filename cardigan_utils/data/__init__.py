"""The data layer: the dataset registry, its readers, the built-in phantoms, slices and the cache.

Every dataset is declared by its reader module as a :class:`~cardigan_utils.data.registry.DatasetSpec`
(name, modality, the structures it labels, its label map, how to list, read and verify it) and found
by the registry (:mod:`cardigan_utils.data.registry`, which also says how to add a dataset).
Everything that takes a dataset name looks it up there: :func:`get_dataset`, :func:`dataset_names`,
:func:`dataset_dir`. Every reader returns :class:`~cardigan_utils.data.case.Case` records in the
kit's label convention (:mod:`cardigan_utils.labels`). :func:`load_cases` is the one entry point
the notebooks use.
"""

from __future__ import annotations

import os
import warnings
from typing import Sequence

from .cache import (
    SliceCache,
    SliceDataset,
    build_cache,
    cache_dir,
    cache_spacing,
    check_fully_labelled,
    load_cache,
    load_run_cache,
)
from ..labels import LABELS
from .case import Case, DataError
from .registry import (
    DatasetSpec,
    choose_patients,
    dataset_dir,
    dataset_names,
    dataset_specs,
    get_dataset,
    recognise_folder,
    reference_dataset,
)

__all__ = [
    "Case",
    "DataError",
    "DatasetSpec",
    "LABELS",
    "SliceCache",
    "SliceDataset",
    "build_cache",
    "choose_patients",
    "cache_dir",
    "check_fully_labelled",
    "dataset_dir",
    "dataset_names",
    "dataset_specs",
    "get_dataset",
    "load_cache",
    "load_run_cache",
    "cache_spacing",
    "load_cases",
    "prepare_cache",
    "reference_cases",
    "recognise_folder",
    "reference_dataset",
]


def load_cases(
    dataset: str,
    *,
    data_dir: str | os.PathLike | None = None,
    n_patients: int | None = None,
    seed: int = 0,
    split: str | None = None,
    vendors: Sequence[str] | None = None,
    first_index: int = 0,
    progress: bool = True,
) -> list[Case]:
    """Load a dataset as Cases.

    Args:
        dataset: a registered name (:func:`dataset_names`: ``"phantom-mri"``, ``"phantom-echo"``,
            ``"acdc"``, ``"camus"``, ...); an unknown one raises a ValueError listing them.
        data_dir: folder of a real dataset (else its environment variable, see README).
        n_patients: phantoms: how many to generate (required); real data: how many patients, a
            seeded selection spread over the groups (:func:`choose_patients`), None for all.
        seed: phantom seed; real data: which selection.
        split: real data: the official split to read (``"training"`` ...), None for all.
        vendors: phantoms: the simulated scanners the patients cycle through (None: all of them);
            keeping one out gives an unseen scanner to test on.
        first_index: phantoms: index of the first patient (patients ``first_index`` onwards, so a
            second call can draw patients disjoint from the first).
        progress: show a progress bar.

    Returns:
        A list of Cases.
    """
    spec = get_dataset(dataset)
    if not spec.needs_folder:
        if not n_patients:
            raise ValueError(f"{dataset}: generated datasets need n_patients (the profile gives one)")
        return spec.load(n_patients=n_patients, seed=seed, vendors=vendors, first_index=first_index)
    root = dataset_dir(dataset, data_dir)
    return spec.load(root, n_patients=n_patients, seed=seed, split=split, progress=progress)


def prepare_cache(
    dataset: str,
    *,
    run_dir: str | os.PathLike,
    image_size: int,
    data_dir: str | os.PathLike | None = None,
    n_patients: int | None = None,
    seed: int = 0,
    cases: list[Case] | None = None,
    name: str | None = None,
    progress: bool = True,
) -> SliceCache:
    """Build (or reuse, if its content is unchanged) the slice cache of ``dataset`` in ``run_dir``.

    Args:
        dataset: see :func:`load_cases`.
        run_dir: the run directory.
        image_size: slice side.
        data_dir: folder of a real dataset.
        n_patients: see :func:`load_cases`.
        seed: phantom seed, patient choice and split seed.
        cases: Cases already loaded (skips loading them again).
        name: the cache's name in ``run_dir/cache`` instead of ``dataset`` (for a second cache of
            the same dataset, e.g. an unseen scanner's patients).
        progress: show progress bars.

    Returns:
        The :class:`SliceCache`.
    """
    out = cache_dir(run_dir, name or dataset, image_size)
    if cases is None:
        cases = load_cases(dataset, data_dir=data_dir, n_patients=n_patients, seed=seed, progress=progress)
    return build_cache(cases, out, image_size=image_size, seed=seed, overwrite=True, progress=progress)


def reference_cases(modality: str, *, n_patients: int = 1, data_dir: str | os.PathLike | None = None) -> list[Case]:
    """A few real Cases to compare with, when the real dataset of ``modality`` can be read.

    The real dataset is the first registered one of that modality (:func:`dataset_names` order):
    ACDC for ``"mri"`` (CARDIGAN_ACDC_DIR), CAMUS for ``"echo"`` (CARDIGAN_CAMUS_DIR).

    Args:
        modality: ``"mri"`` or ``"echo"``.
        n_patients: how many patients.
        data_dir: the dataset's folder (else its environment variable).

    Returns:
        The Cases, or an empty list (with a warning if the folder is set but unreadable).
    """
    spec = reference_dataset(modality)
    if spec is None:
        return []
    try:
        return load_cases(spec.name, data_dir=data_dir, n_patients=n_patients, progress=False)
    except FileNotFoundError:
        return []
    except DataError as err:
        warnings.warn(f"no real {spec.name} reference: {err}", stacklevel=2)
        return []
