"""The slice cache: every 2-D slice of a dataset at one size, on disk, split by patient.

``<run_dir>/cache/<dataset>_<size>/`` holds

- ``images.npy`` float32 (N, S, S) in [0, 1] and ``labels.npy`` uint8 (N, S, S),
- ``slices.csv``: one row per slice (patient_id, phase, view, slice_index, slice_pos, split, ...,
  and ``labelled_<structure>``: whether its truth labels that structure, see ``Case.labelled``),
- ``cases.csv``: one row per Case with structure volumes (ml) at the source resolution (NaN for a
  structure its dataset does not label),
- ``manifest.json``: what was built and how (dataset, size, fov, split fractions, seed, counts).

The folder is written under a temporary name and renamed at the end, so a cache either exists
whole or not at all. Later notebooks load it in seconds with :func:`load_cache`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..config import progress as bar
from ..labels import LABELS
from ..runs import cache_dir
from .case import Case, check_image
from .imageio import check_spacing
from .slices import DEFAULT_FOV_MM, case_slices

SPLITS = ("train", "val", "test")

PIPELINE_VERSION = 4
"""Bump when slicing or normalisation changes: caches of another version are rebuilt."""


def case_group(case: Case) -> str:
    """The patient group of a Case: ACDC's ``Group`` (Info.cfg) or the phantom's ``group``; "" if none."""
    return str(case.meta.get("Group", case.meta.get("group", "")))


def fingerprint(cases: list[Case]) -> str:
    """A content hash of Cases (keys, pixels, labels, spacing, vendor/group), order-independent.

    Args:
        cases: the Cases.

    Returns:
        A hex digest; equal digests mean the same data.
    """
    h = hashlib.blake2b(digest_size=16)
    for c in sorted(cases, key=lambda c: c.key):
        h.update(c.key.encode())
        h.update(np.ascontiguousarray(c.image, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(c.label, dtype=np.uint8).tobytes())
        h.update(repr((tuple(float(v) for v in c.spacing), c.meta.get("vendor"), case_group(c))).encode())
        if not c.spacing_known:
            h.update(b"spacing unknown")
        if c.labelled is not None:
            h.update(repr(sorted((k, v.tobytes()) for k, v in c.labelled.items())).encode())
    return h.hexdigest()


def split_patients(
    patients: list[str],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    strata: dict[str, str] | None = None,
) -> dict[str, str]:
    """Assign each patient to train / val / test, never splitting a patient.

    Patients are shuffled with ``seed`` within each stratum (e.g. ACDC pathology group, phantom
    vendor), then dealt out so every stratum is represented in each split in proportion.

    Args:
        patients: patient ids.
        val_fraction: share of patients for validation.
        test_fraction: share of patients held out for testing.
        seed: shuffling seed.
        strata: optional ``{patient_id: stratum}``.

    Returns:
        ``{patient_id: split}``.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be >= 0 and leave patients for training")
    rng = np.random.default_rng(seed)
    strata = strata or {}
    groups: dict[str, list[str]] = {}
    for p in sorted(set(patients)):
        groups.setdefault(str(strata.get(p, "")), []).append(p)
    # One ordering of all patients, stratum by stratum interleaved, so that taking the first
    # n_test for test and the next n_val for validation draws from every stratum.
    ordered: list[tuple[float, str]] = []
    for members in groups.values():
        members = list(rng.permutation(members))
        ordered += [((i + rng.random()) / len(members), p) for i, p in enumerate(members)]
    ordered.sort()
    n = len(ordered)
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    if n >= 3:
        n_test = max(n_test, 1) if test_fraction > 0 else 0
        n_val = max(n_val, 1) if val_fraction > 0 else 0
    out = {}
    for i, (_, p) in enumerate(ordered):
        out[p] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


@dataclass
class SliceCache:
    """A loaded slice cache.

    Attributes:
        images: float32 (N, S, S), memory-mapped.
        labels: uint8 (N, S, S), memory-mapped.
        slices: one row per slice.
        cases: one row per Case (volumes in ml).
        manifest: how it was built.
        path: its folder.
    """

    images: np.ndarray
    labels: np.ndarray
    slices: pd.DataFrame
    cases: pd.DataFrame
    manifest: dict[str, Any]
    path: Path

    def __len__(self) -> int:
        return len(self.slices)

    def indices(self, split: str | None = None, **where: Any) -> np.ndarray:
        """Row indices of the slices in ``split`` (all if None) matching ``where`` columns.

        Args:
            split: ``"train"``, ``"val"``, ``"test"`` or None.
            **where: column=value filters, e.g. ``phase="ED"``.

        Returns:
            int array of row indices.
        """
        mask = np.ones(len(self.slices), bool)
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
            mask &= (self.slices["split"] == split).to_numpy()
        for column, value in where.items():
            mask &= (self.slices[column] == value).to_numpy()
        return np.flatnonzero(mask)


def cache_spacing(cache: "SliceCache") -> float | None:
    """The cache's typical in-plane pixel size in mm: the median over its slices, None when unknown.

    Args:
        cache: a slice cache.

    Returns:
        The median ``spacing_mm`` of the slices whose source spacing is known; None when no
        slice's is (a derived CAMUS copy with the 1.0 mm placeholder in its headers).
    """
    table = cache.slices
    known = table["spacing_known"].astype(bool) if "spacing_known" in table else np.ones(len(table), bool)
    values = table.loc[known, "spacing_mm"].dropna()
    return float(values.median()) if len(values) else None


def check_fully_labelled(cache) -> None:
    """Refuse to train on a cache whose truth leaves structures unlabelled (they would be learnt as background).

    The shape VAE would learn hearts without an RV, the GAN would paint it as background, the
    U-Net would be taught to miss it: a dataset that labels only some structures (Sunnybrook) is
    for testing. :func:`load_run_cache` (the training cache of notebooks 02-05) and the study call it.

    Args:
        cache: the training cache.

    Raises:
        ValueError: naming the dataset, what it does not label and what to do instead.
    """
    rows = np.concatenate([cache.indices("train"), cache.indices("val")])
    columns = [c for c in cache.slices.columns if c.startswith("labelled_")]
    missing = [c.removeprefix("labelled_") for c in columns if not cache.slices[c].iloc[rows].astype(bool).all()]
    if missing:
        raise ValueError(f"{cache.manifest['dataset']} does not label {', '.join(missing)} on every slice: a U-Net "
                         "trained on it would learn them as background; train on a fully labelled dataset and score "
                         f"{cache.manifest['dataset']} as an out-of-domain set (ood_datasets)")


def load_run_cache(run_dir: str | Path, dataset: str, image_size: int) -> "SliceCache":
    """The slice cache notebook 01 wrote into ``run_dir``, for the notebooks and commands that follow it.

    Args:
        run_dir: the run directory.
        dataset: dataset name.
        image_size: slice side.

    Returns:
        The cache.

    Raises:
        FileNotFoundError: no finished cache of ``dataset`` at that size; the message names the
            sizes the run directory does hold and how to build the missing one.
        ValueError: its truth leaves structures unlabelled (:func:`check_fully_labelled`).
    """
    path = cache_dir(run_dir, dataset, image_size)
    if not (path / "manifest.json").exists():
        built = sorted(p.name for p in path.parent.glob(f"{dataset}_*") if (p / "manifest.json").exists())
        hint = f"; {path.parent} holds {', '.join(built)}: give the image size or profile that built it" if built else ""
        raise FileNotFoundError(f"no slice cache of {dataset} at {image_size} px in {path.parent}: run notebook 01 "
                                f"first (notebooks/01_datasets.ipynb, or `cardigan run --only 01`){hint}")
    cache = load_cache(path)
    check_fully_labelled(cache)
    return cache


def build_cache(
    cases: Iterable[Case],
    out_dir: str | Path,
    *,
    image_size: int,
    fov_mm: float | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> SliceCache:
    """Slice, normalise and split ``cases`` and write them as a slice cache.

    If ``out_dir`` already holds a cache of the same data (content :func:`fingerprint`), parameters
    and pipeline version, it is loaded instead; any other cache there raises unless ``overwrite``.
    A folder that is not a slice cache is never replaced. The new cache is written under a
    temporary name and swapped in at the end.

    Args:
        cases: Cases of one dataset (all of one modality).
        out_dir: cache folder (see :func:`cache_dir`).
        image_size: slice side (64, 128, 256).
        fov_mm: square field of view in mm (MRI); None uses the modality default.
        val_fraction: share of patients for validation.
        test_fraction: share of patients held out for testing.
        seed: split seed.
        overwrite: replace a cache built from other data or parameters.
        progress: show a progress bar.

    Returns:
        The loaded :class:`SliceCache`.

    Raises:
        DataError: a Case whose image has NaN or infinite values or is constant, or whose spacing
            is not a plausible size in mm (the patient named); nothing is written.
        FileExistsError: ``out_dir`` holds something else (see above).
    """
    out_dir = Path(out_dir)
    cases = list(cases)
    if not cases:
        raise ValueError("build_cache got no cases")
    modalities = {c.modality for c in cases}
    if len(modalities) != 1:
        raise ValueError(f"a cache holds one modality, got {sorted(modalities)}")
    modality = modalities.pop()
    for case in cases:  # the readers refuse such files; Cases built in Python are checked here
        check_image(case.image, source=f"patient {case.patient_id} ({case.key})")
        check_spacing(case.spacing, shape=case.image.shape, source=f"patient {case.patient_id} ({case.key})",
                      fix="give the Case its true spacing in mm")
    fov = fov_mm if fov_mm is not None else DEFAULT_FOV_MM[modality]
    params = {
        "dataset": cases[0].dataset,
        "modality": modality,
        "image_size": int(image_size),
        "fov_mm": fov,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "fingerprint": fingerprint(cases),
        "pipeline_version": PIPELINE_VERSION,
    }
    if _holds(out_dir, params):
        return load_cache(out_dir)
    if (out_dir / "manifest.json").exists():
        if not overwrite:
            raise FileExistsError(f"{out_dir} holds a cache built from other data or parameters; pass overwrite=True to rebuild it")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and is not a slice cache; choose another folder")

    start = time.perf_counter()
    strata = {c.patient_id: case_group(c) or str(c.meta.get("vendor", "")) for c in cases}
    split_of = split_patients(list(strata), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, strata=strata)
    images, labels, rows, case_rows = [], [], [], []
    names = LABELS[modality]
    for case in bar(cases, desc=f"cache {params['dataset']} {image_size}px", enabled=progress):
        s = case_slices(case, image_size=image_size, fov_mm=fov)
        n_z = case.image.shape[2]
        labelled = {names[k]: case.labelled_slices(names[k]) for k in (1, 2, 3)}
        images.append(s.images)
        labels.append(s.labels)
        for i, z in enumerate(s.slice_index):
            rows.append(
                {
                    "patient_id": case.patient_id,
                    "phase": case.phase,
                    "view": case.view or "",
                    "slice_index": int(z),
                    # 0 at the first slice of the volume (ACDC: base), 1 at the last (apex)
                    "slice_pos": float(z / (n_z - 1)) if n_z > 1 else 0.5,
                    "split": split_of[case.patient_id],
                    "group": case_group(case),
                    "vendor": str(case.meta.get("vendor", "")),
                    # a placeholder spacing (derived CAMUS copy): mm figures unknown, pixel counts kept
                    "spacing_mm": s.spacing[0] if case.spacing_known else float("nan"),
                    "spacing_known": case.spacing_known,
                    **{f"pixels_{names[k]}": int((s.labels[i] == k).sum()) for k in (1, 2, 3)},
                    **{f"area_{names[k]}": float((s.labels[i] == k).sum()) * s.spacing[0] * s.spacing[1]
                       if case.spacing_known else float("nan") for k in (1, 2, 3)},
                    # where the truth does not label a structure (Sunnybrook: no RV), it is not scored
                    **{f"labelled_{names[k]}": bool(labelled[names[k]][z]) for k in (1, 2, 3)},
                }
            )
        case_rows.append(
            {
                "patient_id": case.patient_id,
                "phase": case.phase,
                "view": case.view or "",
                "split": split_of[case.patient_id],
                "group": case_group(case),
                "vendor": str(case.meta.get("vendor", "")),
                "n_slices": n_z,
                "spacing_x": case.spacing[0] if case.spacing_known else float("nan"),
                "spacing_y": case.spacing[1] if case.spacing_known else float("nan"),
                "spacing_z": case.spacing[2],
                "spacing_known": case.spacing_known,
                **{f"volume_{names[k]}_ml": case.volume_ml(k) if labelled[names[k]].any() else float("nan")
                   for k in (1, 2, 3)},
                **{f"voxels_{names[k]}": int((case.label == k).sum()) for k in (1, 2, 3)},
                **{f"labelled_{names[k]}": bool(labelled[names[k]].any()) for k in (1, 2, 3)},
            }
        )

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".partial-"))
    np.save(tmp / "images.npy", np.concatenate(images).astype(np.float32))
    np.save(tmp / "labels.npy", np.concatenate(labels).astype(np.uint8))
    pd.DataFrame(rows).to_csv(tmp / "slices.csv", index=False)
    pd.DataFrame(case_rows).to_csv(tmp / "cases.csv", index=False)
    counts = pd.DataFrame(rows).groupby("split")["patient_id"].agg(["nunique", "size"])
    manifest = {
        **params,
        "labels": {str(k): v for k, v in names.items()},
        "n_slices": len(rows),
        "n_cases": len(cases),
        "patients": {s: int(counts.loc[s, "nunique"]) if s in counts.index else 0 for s in SPLITS},
        "slices": {s: int(counts.loc[s, "size"]) if s in counts.index else 0 for s in SPLITS},
        "build_seconds": round(time.perf_counter() - start, 2),
        "kit_version": __version__,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    # Processes that start together (the shards of a study) build the same cache at the same time:
    # the first one in keeps its cache, the others drop theirs instead of swapping it from under it.
    if _holds(out_dir, params):
        shutil.rmtree(tmp)
        return load_cache(out_dir)
    old_dir = None
    if out_dir.exists():
        old_dir = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".old-"))
        out_dir.rename(old_dir / "cache")
    try:
        tmp.rename(out_dir)
    except OSError:
        if not _holds(out_dir, params):
            raise
        shutil.rmtree(tmp)
    if old_dir is not None:
        shutil.rmtree(old_dir)
    return load_cache(out_dir)


def _holds(out_dir: Path, params: dict[str, Any]) -> bool:
    """Whether ``out_dir`` holds a finished cache built with ``params``."""
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.exists():
        return False
    old = json.loads(manifest_path.read_text())
    return {k: old.get(k) for k in params} == params


def load_cache(path: str | Path) -> SliceCache:
    """Open a slice cache written by :func:`build_cache` (arrays are memory-mapped).

    Args:
        path: the cache folder.

    Returns:
        A :class:`SliceCache`.

    Raises:
        FileNotFoundError: no complete cache there (says which notebook builds it).
    """
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise FileNotFoundError(f"{path}: no slice cache here; run notebooks/01_datasets.ipynb (or `cardigan run`) first")
    return SliceCache(
        images=np.load(path / "images.npy", mmap_mode="r"),
        labels=np.load(path / "labels.npy", mmap_mode="r"),
        slices=_read_table(path / "slices.csv"),
        cases=_read_table(path / "cases.csv"),
        manifest=json.loads((path / "manifest.json").read_text()),
        path=path,
    )


_MEASURES = ("spacing_mm", "spacing_x", "spacing_y", "area_", "volume_")
"""Columns whose empty cells are NaN (a spacing unknown); elsewhere "" is a value (no view, no vendor)."""


def _read_table(path: Path) -> pd.DataFrame:
    """A cache's CSV table: empty strings kept as such, but as NaN in the measure columns."""
    table = pd.read_csv(path, keep_default_na=False)
    for column in table.columns:
        if column.startswith(_MEASURES) and not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = pd.to_numeric(table[column].replace("", np.nan))
    return table


class SliceDataset:
    """A torch-style Dataset over one split of a :class:`SliceCache`.

    Items are dicts: ``image`` float32 tensor (1, S, S), ``label`` int64 tensor (S, S), ``index``.

    Args:
        cache: the loaded cache.
        split: ``"train"``, ``"val"``, ``"test"`` or None for all slices.
        indices: explicit row indices instead of ``split``.
    """

    def __init__(self, cache: SliceCache, *, split: str | None = "train", indices: np.ndarray | None = None) -> None:
        self.cache = cache
        self.indices = np.asarray(indices) if indices is not None else cache.indices(split)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.indices[i])
        return {
            "image": torch.from_numpy(np.array(self.cache.images[j], np.float32))[None],
            "label": torch.from_numpy(np.array(self.cache.labels[j], np.int64)),
            "index": j,
        }
