"""The data layer: readers of the official layouts, the built-in phantoms, slices and the cache.

Every reader returns :class:`~cardigan_utils.data.case.Case` records in the kit's label
convention (see ``case.py``). :func:`load_cases` is the one entry point the notebooks use.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..config import DATASETS, dataset_dir
from .cache import SliceCache, SliceDataset, build_cache, cache_dir, load_cache, load_run_cache
from .case import LABELS, Case, DataError

__all__ = [
    "Case",
    "DataError",
    "LABELS",
    "SliceCache",
    "SliceDataset",
    "build_cache",
    "choose_patients",
    "cache_dir",
    "load_cache",
    "load_run_cache",
    "load_cases",
    "prepare_cache",
    "reference_cases",
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
        dataset: ``"phantom-mri"``, ``"phantom-echo"``, ``"acdc"`` or ``"camus"``.
        data_dir: folder of a real dataset (else its environment variable, see README).
        n_patients: phantoms: how many to generate (required); real data: keep the first n.
        seed: phantom seed.
        split: real data: the official split to read (``"training"`` ...), None for all.
        vendors: phantoms: the simulated scanners the patients cycle through (None: all of them);
            keeping one out gives an unseen scanner to test on.
        first_index: phantoms: index of the first patient (patients ``first_index`` onwards, so a
            second call can draw patients disjoint from the first).
        progress: show a progress bar.

    Returns:
        A list of Cases.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if dataset.startswith("phantom"):
        from .phantom import phantom_cases

        if not n_patients:
            raise ValueError("phantom datasets need n_patients (the profile gives one)")
        return phantom_cases(dataset, n_patients, seed=seed, vendors=vendors, first_index=first_index)
    root = dataset_dir(dataset, data_dir)
    if dataset == "acdc":
        from .acdc import list_acdc_patients, read_acdc, read_cfg

        dirs = list_acdc_patients(root, split=split)
        groups = {d.name: str(read_cfg(d / "Info.cfg").get("Group", "")) if (d / "Info.cfg").exists() else "" for d in dirs}
        ids = choose_patients(groups, n_patients, seed=seed)
        return read_acdc(root, split=split, patients=ids, progress=progress)
    from .camus import list_camus_patients, read_camus

    ids = choose_patients({p.name: "" for p in list_camus_patients(root, split=split)}, n_patients, seed=seed)
    # the legacy public testing set has no ground truth: skip those images (read_camus warns)
    return read_camus(root, split=split, patients=ids, require_labels=False)


def choose_patients(groups: dict[str, str], n: int | None, *, seed: int = 0) -> list[str]:
    """A seeded subset of ``n`` patients, spread evenly over the groups, in sorted order.

    Real datasets are often ordered by pathology (ACDC numbers its groups in blocks of 20), so
    "the first n" would be one group only.

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
    from .cache import split_patients

    # split_patients deals strata out evenly: its "test" share of size n is a stratified sample.
    share = split_patients(ids, val_fraction=0.0, test_fraction=n / len(ids), seed=seed, strata=groups)
    return sorted(p for p, s in share.items() if s == "test")


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

    Args:
        modality: ``"mri"`` (ACDC, from CARDIGAN_ACDC_DIR) or ``"echo"`` (CAMUS, CARDIGAN_CAMUS_DIR).
        n_patients: how many patients.
        data_dir: the dataset's folder (else its environment variable).

    Returns:
        The Cases, or an empty list (with a warning if the folder is set but unreadable).
    """
    import warnings

    dataset = {"mri": "acdc", "echo": "camus"}[modality]
    try:
        return load_cases(dataset, data_dir=data_dir, n_patients=n_patients, progress=False)
    except FileNotFoundError:
        return []
    except DataError as err:
        warnings.warn(f"no real {dataset} reference: {err}", stacklevel=2)
        return []
