"""Segment whole volumes of any size and spacing with a trained 2-D U-Net, in their own geometry.

The model was trained on slices cut by :func:`~cardigan_utils.data.slices.case_slices`: MRI
slices resampled to ``fov_mm / image_size`` mm per pixel and cropped around the heart; echo
images resized whole. A new volume goes the same way (intensity normalisation, transpose, crop,
resample), is predicted slice by slice, and the labels go back the exact inverse way (resample
to the crop, paste into the slice, transpose), so that the prediction overlays the input voxel
for voxel. Without labels the heart's position is unknown: a first pass on the image centre finds
it, and each further pass is centred on what the one before found, until the centre settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..config import progress
from ..data.case import check_image, check_labels
from ..data.imageio import read_image, save_like
from ..data.slices import DEFAULT_FOV_MM, crop_or_pad, fov_window, normalise_intensity, resample_slices
from ..labels import LABELS
from ..metrics import volume_scores
from ..runs import atomic_path, write_csv_atomic
from .train import load_segmenter, predict


@dataclass
class Geometry:
    """Where the model's square slices sit in a volume's (Z, rows, cols) slices.

    Attributes:
        shape: (Z, rows, cols) of the source slices.
        center: (row, col) of the crop centre in source pixels (None: the whole image, echo).
        window: (rows, cols) of the crop at source resolution.
        resampled: (rows, cols) of the crop after resampling.
        image_size: side of the model's slices.
    """

    shape: tuple[int, int, int]
    center: tuple[float, float] | None
    window: tuple[int, int]
    resampled: tuple[int, int]
    image_size: int


def to_model_space(image: np.ndarray, spacing: tuple[float, float, float], *, image_size: int,
                   fov_mm: float | None, center: tuple[float, float] | None = None,
                   label: np.ndarray | None = None, source: str = "the image"
                   ) -> tuple[np.ndarray, np.ndarray | None, Geometry]:
    """Cut an (X, Y, Z) volume into the model's (Z, S, S) slices, as the slice cache does.

    Args:
        image: (X, Y, Z) volume.
        spacing: (sx, sy, sz) in mm.
        image_size: the model's slice side.
        fov_mm: square field of view in mm (MRI), or None to resize whole slices (echo).
        center: (row, col) crop centre in source pixels; None: the slice centre.
        label: an (X, Y, Z) label volume cut the same way (for tests and evaluation), or None.
        source: the file, named in errors.

    Returns:
        ``(images, labels_or_None, geometry)``.

    Raises:
        DataError: a voxel size so small that the field of view would not fit in memory.
    """
    img = np.transpose(normalise_intensity(image), (2, 1, 0))
    lab = np.transpose(label, (2, 1, 0)).astype(np.uint8) if label is not None else np.zeros(img.shape, np.uint8)
    sx, sy = spacing[0], spacing[1]
    z, rows, cols = img.shape
    if fov_mm is None:
        zoom = (image_size / rows, image_size / cols)
        out_img, out_lab = resample_slices(img, lab, zoom)
        geometry = Geometry((z, rows, cols), None, (rows, cols), (image_size, image_size), image_size)
        return out_img, (out_lab if label is not None else None), geometry
    target = fov_mm / image_size
    center = center if center is not None else (rows / 2, cols / 2)
    window = fov_window((sx, sy), fov_mm, n_slices=z, source=source)
    win_img, win_lab = resample_slices(crop_or_pad(img, center, window), crop_or_pad(lab, center, window),
                                       (sy / target, sx / target))
    resampled = (win_img.shape[1], win_img.shape[2])
    mid = (resampled[0] / 2, resampled[1] / 2)
    geometry = Geometry((z, rows, cols), (float(center[0]), float(center[1])), window, resampled, image_size)
    out_lab = crop_or_pad(win_lab, mid, image_size) if label is not None else None
    return crop_or_pad(win_img, mid, image_size), out_lab, geometry


def _paste(small: np.ndarray, size: tuple[int, int], center: tuple[float, float]) -> np.ndarray:
    """Inverse of ``crop_or_pad(big, center, small_size)``: put ``small`` back into a zero (N, *size) array."""
    n, h, w = small.shape
    out = np.zeros((n, *size), small.dtype)
    r0 = int(round(center[0])) - h // 2
    c0 = int(round(center[1])) - w // 2
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, size[0]), min(c0 + w, size[1])
    if sr1 > sr0 and sc1 > sc0:
        out[:, sr0:sr1, sc0:sc1] = small[:, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0]
    return out


def from_model_space(pred: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Put (Z, S, S) predicted labels back into the source volume's (X, Y, Z) geometry.

    Args:
        pred: (Z, S, S) label maps in model space.
        geometry: from :func:`to_model_space`.

    Returns:
        (X, Y, Z) uint8 label volume; background outside the field of view.
    """
    z, rows, cols = geometry.shape
    if geometry.center is None:
        _, out = resample_slices(np.zeros(pred.shape, np.float32), pred, (rows / pred.shape[1], cols / pred.shape[2]))
    else:
        mid = (geometry.resampled[0] / 2, geometry.resampled[1] / 2)
        canvas = _paste(pred.astype(np.uint8), geometry.resampled, mid)
        zoom = (geometry.window[0] / geometry.resampled[0], geometry.window[1] / geometry.resampled[1])
        _, window = resample_slices(np.zeros(canvas.shape, np.float32), canvas, zoom)
        out = _paste(window, (rows, cols), geometry.center)
    return np.transpose(out, (2, 1, 0)).astype(np.uint8)


def segment_volume(model, image: np.ndarray, spacing: tuple[float, float, float], *, modality: str = "mri",
                   image_size: int = 128, fov_mm: float | None = None, passes: int = 8,
                   source: str = "the image") -> np.ndarray:
    """Segment an (X, Y, Z) volume of any in-plane size and spacing, returned in its own geometry.

    Args:
        model: a trained segmentation network (logits out).
        image: (X, Y, Z) volume (Z = 1 for a 2-D echo image).
        spacing: (sx, sy, sz) in mm.
        modality: ``"mri"`` or ``"echo"``.
        image_size: the model's slice side (its training cache's).
        fov_mm: the training cache's field of view (default: the modality's).
        passes: MRI: at most this many crop passes, each centred on the heart found by the one
            before, until the centre moves less than a pixel (1: the image centre only). The
            network learnt hearts at the centre of its crops: off-centre, it misses parts of the
            RV, which pulls the next centre towards the LV. On ACDC test patients the RV Dice of
            badly placed first crops rose from 0.05-0.18 to 0.60-0.92 within five passes.
        source: the file, named in errors.

    Returns:
        (X, Y, Z) uint8 label volume.

    Raises:
        DataError: an image with NaN or infinite values, or constant: it would be segmented as
            background everywhere (a label map that looks like a result and is none); a voxel
            size so small that the field of view would not fit in memory.
    """
    check_image(image, source=source)
    fov = fov_mm if fov_mm is not None else DEFAULT_FOV_MM[modality]
    center = None
    for _ in range(max(1, passes) if fov is not None else 1):
        slices, _, geometry = to_model_space(image, spacing, image_size=image_size, fov_mm=fov, center=center,
                                             source=source)
        labels = from_model_space(predict(model, slices), geometry)
        found = np.argwhere(np.transpose(labels, (2, 1, 0)) > 0)
        if len(found) == 0:
            break
        new_center = tuple(found[:, 1:].mean(axis=0))
        converged = center is not None and np.hypot(new_center[0] - center[0], new_center[1] - center[1]) < 1.0
        center = new_center
        if converged:
            break
    return labels


IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mhd")
SKIP_MARKERS = ("_gt", "_4d", "sequence")
"""Files that are not single frames to segment: ground truth, ACDC 4-D cines, CAMUS half sequences."""


def _stem(path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_images(input_dir) -> list:
    """The single-frame images under a folder in the ACDC or CAMUS layout (NIfTI or .mhd).

    Args:
        input_dir: e.g. ACDC's ``testing/`` or a CAMUS ``database_nifti/``.

    Returns:
        Sorted paths, ground truth, 4-D cines and sequences left out.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    found = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(IMAGE_SUFFIXES)
             and not any(m in _stem(p).lower() for m in SKIP_MARKERS)]
    return sorted(found)


def _read(path, *, labels: bool = False):
    """(array (X, Y, Z), spacing, writer) of a NIfTI or .mhd image; the writer saves labels in its geometry.

    The data layer's checked reader refuses, in one line naming the file, what cannot be segmented
    or scored: not 2-D or 3-D, too large, an implausible voxel size, NaN values; for ``labels``,
    values that are not the integers of the convention (an empty map is scored). Nothing is read
    before the header passed. (A constant image is refused by :func:`segment_volume`.)
    """
    image = read_image(path, ndims=(2, 3), labels=labels)
    if labels:
        check_labels(np.round(image.data), source=str(path), allow_empty=True)

    def write(labels, out):
        save_like(out, labels.astype(np.uint8), like=image)
    array = image.data
    volume = array if array.ndim == 3 else array.reshape(*array.shape[:2], 1)
    spacing3 = image.spacing + (1.0,) * (3 - len(image.spacing))
    return volume.astype(np.float32), spacing3[:3], write


def segment_folder(model_path, input_dir, output_dir, *, device=None, overwrite: bool = False,
                   progress_bar: bool = True):
    """Segment every image of a folder; write ``<name>_gt.nii.gz`` beside a mirror of its path, and volumes.csv.

    Args:
        model_path: a ``segmenter.pt`` written by ``train_segmenter`` (its config says how slices were cut).
        input_dir: folder in the ACDC or CAMUS layout (any in-plane size and spacing).
        output_dir: where predictions go (same sub-folders as the input).
        device: where to run the model.
        overwrite: replace predictions already there (else they are kept: an interrupted run continues).
        progress_bar: a bar over the images.

    Returns:
        The volumes table (one row per image and structure, in ml); also written to ``volumes.csv``.
    """
    model, config = load_segmenter(model_path, device=device)
    data = config.get("data") or {}
    if not {"modality", "image_size"} <= set(data):
        raise ValueError(f"{model_path}: the checkpoint does not say how its slices were cut (modality, image_size, "
                         "fov_mm); train it with train_segmenter(..., data=data_config(cache))")
    names = LABELS[data["modality"]]
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    images = find_images(input_dir)
    if not images:
        raise FileNotFoundError(f"{input_dir}: no images (.nii.gz, .nii, .mhd) to segment")
    rows = []
    for path in progress(images, desc="segment", enabled=progress_bar):
        out = output_dir / path.relative_to(input_dir).parent / f"{_stem(path)}_gt.nii.gz"
        volume, spacing, write = _read(path)
        if out.exists() and not overwrite:
            labels = np.asarray(nib.load(str(out)).dataobj).reshape(volume.shape)
        else:
            labels = segment_volume(model, volume, spacing, modality=data["modality"], image_size=data["image_size"],
                                    fov_mm=data.get("fov_mm"), source=str(path))
            with atomic_path(out) as tmp:
                write(labels, tmp)
        voxel_ml = float(np.prod(spacing)) / 1000
        for k in (1, 2, 3):
            rows.append({"image": str(path.relative_to(input_dir)), "prediction": str(out.relative_to(output_dir)),
                         "structure": names[k], "volume_ml": float((labels == k).sum()) * voxel_ml})
    table = pd.DataFrame(rows)
    write_csv_atomic(output_dir / "volumes.csv", table)
    return table


def evaluate_folders(pred_dir, truth_dir, *, modality: str = "mri"):
    """Dice and HD95 (mm) per image and structure of predictions against ground truth files of the same name.

    Args:
        pred_dir: predictions (``*_gt.nii.gz``, e.g. from :func:`segment_folder`).
        truth_dir: ground truth in the same relative paths (ACDC / CAMUS ``_gt`` files; .mhd too).
        modality: for the structure names.

    Returns:
        One row per image and structure (file, structure, dice, hd95_mm, volumes); also written to
        ``<pred_dir>/evaluation.csv``.
    """
    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    preds = sorted(p for p in pred_dir.rglob("*_gt.nii.gz"))
    if not preds:
        raise FileNotFoundError(f"{pred_dir}: no *_gt.nii.gz predictions")
    rows, missing = [], []
    for pred_path in preds:
        rel = pred_path.relative_to(pred_dir)
        stem = rel.name[: -len(".nii.gz")]
        candidates = [truth_dir / rel.parent / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES]
        truth_path = next((c for c in candidates if c.exists()), None)
        if truth_path is None:
            missing.append(str(rel))
            continue
        truth, spacing, _ = _read(truth_path, labels=True)
        pred, _, _ = _read(pred_path, labels=True)
        if pred.shape != truth.shape:
            raise ValueError(f"{pred_path}: shape {pred.shape} differs from the truth {truth_path} {truth.shape}")
        for row in volume_scores(np.round(pred).astype(np.uint8), np.round(truth).astype(np.uint8), spacing=spacing,
                                 names=LABELS[modality]):
            rows.append({"file": str(rel), **row})
    if not rows:
        raise FileNotFoundError(f"{truth_dir}: no ground truth matches the predictions (e.g. {missing[:3]})")
    table = pd.DataFrame(rows)
    write_csv_atomic(pred_dir / "evaluation.csv", table)
    return table
