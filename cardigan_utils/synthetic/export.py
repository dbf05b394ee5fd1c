"""Exports of a finished synthetic set: a slice cache (read like real data by notebook 05), an
nnU-Net v2 raw dataset, an ACDC-like NIfTI layout, and cardiGAN's HDF5 layout (echo)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..config import progress
from ..data.acdc import write_acdc_patient
from ..data.camus import VIEWS
from ..data.camus_hdf5 import CardiganView, write_cardigan_views
from ..data.case import Case
from ..data.cache import SliceCache, load_cache
from ..data.export import (NNUNET_SYNTHETIC_PREFIX, finish_nnunet_dataset, nnunet_dataset_dir, start_nnunet_dataset,
                            write_nnunet_cases, write_nnunet_patients)
from ..labels import LABELS, PHASES
from ..runs import raise_naming
from .generate import iter_shards, read_manifest


def header_spacing(info: dict) -> float:
    """The pixel size written into exported headers: the set's, or the 1.0 mm placeholder when unknown.

    Args:
        info: the set's manifest (:func:`~cardigan_utils.synthetic.generate.read_manifest`).

    Returns:
        ``info["spacing_mm"]``, or 1.0 where it is None (as the derived copy it learnt from).
    """
    return 1.0 if info["spacing_mm"] is None else float(info["spacing_mm"])


def to_cache(set_dir: str | Path, cache_out: str | Path, *, dataset: str = "synthetic", overwrite: bool = False):
    """Write a finished synthetic set as a slice cache, so that it is read like real data.

    Every pair is a training slice of its own pseudo-patient (``synth000000`` ...), split
    ``"train"``; phase and slice position are unknown (empty). The arrays are filled shard by
    shard through memory maps, under a temporary name renamed at the end.

    Args:
        set_dir: the synthetic set.
        cache_out: the cache folder to create.
        dataset: the name stored in the cache manifest.
        overwrite: replace an existing cache there.

    Returns:
        The loaded :class:`~cardigan_utils.data.cache.SliceCache`.
    """
    set_dir, cache_out = Path(set_dir), Path(cache_out)
    info = read_manifest(set_dir)
    if cache_out.exists():
        if not overwrite:
            raise FileExistsError(f"{cache_out} exists; choose another folder or pass overwrite=True")
    n, size, modality = info["n"], info["image_size"], info["modality"]
    cache_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_out.parent, prefix=cache_out.name + ".partial-"))
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.float32, shape=(n, size, size))
        labels = np.lib.format.open_memmap(tmp / "labels.npy", mode="w+", dtype=np.uint8, shape=(n, size, size))
        names = LABELS[modality]
        rows, i = [], 0
        for im, lab in iter_shards(set_dir):
            images[i : i + len(im)], labels[i : i + len(im)] = im, lab
            pixels = np.stack([(lab == c).reshape(len(lab), -1).sum(1) for c in (1, 2, 3)], axis=1)
            spacing = float("nan") if info["spacing_mm"] is None else info["spacing_mm"]  # null: the source's is unknown
            for j in range(len(im)):
                rows.append({"patient_id": f"synth{i + j:06d}", "phase": "", "view": "", "slice_index": 0, "slice_pos": "",
                             "split": "train", "group": "synthetic", "vendor": "", "spacing_mm": spacing,
                             "spacing_known": info["spacing_mm"] is not None,
                             **{f"pixels_{names[c]}": int(pixels[j, c - 1]) for c in (1, 2, 3)},
                             **{f"area_{names[c]}": float(pixels[j, c - 1]) * spacing ** 2 for c in (1, 2, 3)}})
            i += len(im)
        images.flush(), labels.flush()
        del images, labels
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "slices.csv", index=False)
        table[["patient_id", "phase", "view", "split", "group", "vendor"]].to_csv(tmp / "cases.csv", index=False)
        manifest = {"dataset": dataset, "modality": modality, "image_size": size, "synthetic": True,
                    "source": str(set_dir), "generation": info, "labels": {str(k): v for k, v in names.items()},
                    "n_slices": n, "n_cases": n, "patients": {"train": n, "val": 0, "test": 0},
                    "slices": {"train": n, "val": 0, "test": 0}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if cache_out.exists():
            shutil.rmtree(cache_out)
        tmp.rename(cache_out)
    except OSError as err:  # a full disk: no half-written cache left beside the real one
        shutil.rmtree(tmp, ignore_errors=True)
        raise_naming(err, path=cache_out, temporary=tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_cache(cache_out)


def to_nnunet(set_dir: str | Path, root: str | Path, *, dataset_id: int, name: str, real: SliceCache | None = None,
              overwrite: bool = False, progress_bar: bool = True) -> Path:
    """Write a finished synthetic set as an nnU-Net v2 raw dataset (``DatasetNNN_Name``), resumably.

    Synthetic pairs are cases ``synth_NNNNNN``. With ``real``, the training patients of a slice
    cache go in beside them as ``{patient}_{NNNNNN}`` (:func:`~cardigan_utils.data.export.write_nnunet_patients`),
    so that :func:`~cardigan_utils.data.export.nnunet_case_patients` reads each case's patient back
    for :func:`~cardigan_utils.data.export.write_nnunet_splits` (folds by patient, synthetic cases
    never validated on).

    Args:
        set_dir: the synthetic set.
        root: the ``nnUNet_raw`` folder.
        dataset_id: nnU-Net dataset id (1-999).
        name: dataset name.
        real: a slice cache of the same modality whose training patients join the dataset.
        overwrite: rewrite a finished dataset of that id and name.
        progress_bar: a bar over the shards.

    Returns:
        The dataset folder.

    Raises:
        ValueError: ``real`` holds another modality, or a patient named like the synthetic cases.
        FileExistsError: the dataset is finished and ``overwrite`` is False.
    """
    info = read_manifest(set_dir)
    modality = info["modality"]
    if real is not None:
        if real.manifest["modality"] != modality:
            raise ValueError(f"{real.path}: a {real.manifest['modality']} cache cannot join the {modality} "
                             f"set {set_dir}")
        if (real.slices["patient_id"].astype(str) == NNUNET_SYNTHETIC_PREFIX).any():
            raise ValueError(f"{real.path}: a patient is named {NNUNET_SYNTHETIC_PREFIX!r}, "
                             "the prefix of the synthetic cases")
    out = start_nnunet_dataset(nnunet_dataset_dir(root, dataset_id=dataset_id, name=name), overwrite=overwrite)
    start = 0
    for im, lab in progress(iter_shards(set_dir), total=info["n_shards"], desc="nnU-Net", enabled=progress_bar):
        # cases already on disk (an interrupted export) are kept, not written again
        write_nnunet_cases(out, im, lab, start_index=start, spacing=(header_spacing(info),) * 2,
                           case_prefix=NNUNET_SYNTHETIC_PREFIX)
        start += len(im)
    description = f"CardiGAN synthetic set, {info['n']} pairs, seed {info['seed']}"
    if real is not None:
        case_patients = write_nnunet_patients(out, real)
        description += (f"; {len(case_patients)} real slices of {len(set(case_patients.values()))} training patients "
                        f"of {real.manifest.get('dataset', 'a slice cache')} (case ids {{patient}}_NNNNNN)")
    finish_nnunet_dataset(out, label_names={v: k for k, v in LABELS[modality].items()},
                          channel_name="MRI" if modality == "mri" else "US", extra={"description": description})
    return out


def to_acdc_layout(set_dir: str | Path, out_dir: str | Path, *, slices_per_patient: int = 10,
                   slice_thickness_mm: float = 10.0, overwrite: bool = False) -> Path:
    """Write a finished synthetic set in an ACDC-like NIfTI layout (``training/patientXXXX/``).

    Each pseudo-patient stacks ``slices_per_patient`` pairs as one ED volume with its ``_gt`` and an
    ``Info.cfg`` (group ``SYN``; there is no ES frame). The slices of a pseudo-patient are
    independent shapes, not one heart from base to apex: the layout is for tools that read ACDC
    folders, not for volumes. Patients are ``patient001`` ...; past 999 the numbers grow a digit,
    which the official pattern (and the kit's ACDC reader) does not know.

    Args:
        set_dir: the synthetic set (MRI).
        out_dir: the dataset root to create.
        slices_per_patient: pairs per pseudo-patient.
        slice_thickness_mm: z spacing written to the headers.
        overwrite: write into a folder that already holds files.

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    info = read_manifest(set_dir)
    if info["modality"] != "mri":
        raise ValueError("the ACDC layout holds MRI; write echo sets as nnU-Net datasets or a cache")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; choose another folder or pass overwrite=True")

    # written under a temporary name and renamed at the end: a folder either holds the whole set or
    # is absent (a failure removes the ``.partial-`` folder; a killed run leaves it to the next run)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(out_dir.name + ".partial-*"):
        shutil.rmtree(stale)
    final_dir, out_dir = out_dir, Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".partial-"))
    try:
        spacing = (header_spacing(info), header_spacing(info), float(slice_thickness_mm))
        buf_im, buf_lab, patient = [], [], 0

        def flush(images, labels, patient):
            case = Case(image=np.stack(images, axis=-1), label=np.stack(labels, axis=-1), spacing=spacing,
                        patient_id=f"patient{patient + 1:03d}", phase="ED", modality="mri", dataset="synthetic",
                        meta={"group": "SYN"})
            write_acdc_patient([case], out_dir / "training")

        for im, lab in iter_shards(set_dir):
            for a, b in zip(im, lab):
                buf_im.append(a.T)  # (x, y) as the readers give NIfTI arrays; the cache stores (row, col)
                buf_lab.append(b.T)
                if len(buf_im) == slices_per_patient:
                    flush(buf_im, buf_lab, patient)
                    buf_im, buf_lab, patient = [], [], patient + 1
        if buf_im:
            flush(buf_im, buf_lab, patient)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        out_dir.rename(final_dir)
    except OSError as err:  # a full disk: the partial folder goes, the message names the dataset's file
        shutil.rmtree(out_dir, ignore_errors=True)
        raise_naming(err, path=final_dir, temporary=out_dir)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return final_dir


def _pseudo_patients(set_dir: Path) -> Iterator[CardiganView]:
    """The pairs of a set as cardiGAN views: four consecutive pairs fill one pseudo-patient's slots."""
    slots = [(view, phase) for view in VIEWS for phase in PHASES]
    buffer: list[tuple[np.ndarray, np.ndarray]] = []
    patient = 0

    def patient_views(pairs: list[tuple[np.ndarray, np.ndarray]], index: int) -> Iterator[CardiganView]:
        pairs = [pairs[i % len(pairs)] for i in range(len(slots))]  # the last patient repeats its own pairs
        for view in VIEWS:
            images, labels = zip(*(pair for pair, (v, _) in zip(pairs, slots) if v == view))
            yield CardiganView(split="training", patient_id=f"synth{index:06d}", view=view,
                               images=np.stack(images), labels=np.stack(labels))

    for im, lab in iter_shards(set_dir):
        for pair in zip(im, lab):
            buffer.append(pair)
            if len(buffer) == len(slots):
                yield from patient_views(buffer, patient)
                buffer, patient = [], patient + 1
    if buffer:
        yield from patient_views(buffer, patient)


def to_cardigan_hdf5(set_dir: str | Path, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a finished synthetic echo set as cardiGAN's HDF5 file, so that cardiGAN's code reads it as it reads CAMUS.

    cardiGAN reads ``f[split][patient][view]['im'|'gt']`` with both views per patient and both
    instants (ED, ES) per view. A synthetic pair has neither a view nor a phase, so the pairs fill
    those slots in order: pairs ``4k .. 4k + 3`` become pseudo-patient ``synth{k:06d}``'s
    2CH ED, 2CH ES, 4CH ED, 4CH ES. Every pair is written once, none duplicated, and every patient
    is complete, as cardiGAN's code expects; when the count is not a multiple of four, the last
    pseudo-patient repeats its own pairs to fill its slots. Views and instants are slots, not
    anatomy (the file's root attributes say so). Everything goes in ``/train``. Written shard by
    shard (one view in memory at a time) and atomically (:func:`~cardigan_utils.data.camus_hdf5.write_cardigan_views`).

    Args:
        set_dir: the synthetic set (echo).
        path: the HDF5 file to write.
        overwrite: replace an existing file.

    Returns:
        ``path``; :func:`~cardigan_utils.data.camus_hdf5.read_cardigan_hdf5` reads it back.

    Raises:
        ValueError: an MRI set (the layout holds echo).
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        DataError: a pair the layout refuses (an empty label map: its reader would refuse the
            file), naming the pseudo-patient's group; no file is left.
    """
    set_dir = Path(set_dir)
    info = read_manifest(set_dir)
    if info["modality"] != "echo":
        raise ValueError("cardiGAN's HDF5 layout holds echo; write MRI sets with to_acdc_layout, to_nnunet or to_cache")
    notes = {"source": "CardiGAN kit synthetic set", "set_dir": str(set_dir), "pairs": int(info["n"]),
             "seed": int(info["seed"]), "spacing_mm": float(info["spacing_mm"]),
             "slots": "pairs 4k..4k+3 are synth{k:06d}'s 2CH ED, 2CH ES, 4CH ED, 4CH ES: views and instants are "
                      "slots, not anatomy; the last pseudo-patient repeats its own pairs when n is not a multiple of 4"}
    return write_cardigan_views(path, _pseudo_patients(set_dir), overwrite=overwrite, attrs=notes)
