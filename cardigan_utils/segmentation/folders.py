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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import progress
from ..data.case import check_image, check_labels
from ..data.imageio import is_placeholder_spacing, read_image, save_like, save_nifti
from ..data.registry import dataset_specs, get_dataset, recognise_folder
from ..data.slices import DEFAULT_FOV_MM, crop_or_pad, fov_window, normalise_intensity, resample_slices
from ..labels import LABELS
from ..metrics import volume_scores
from ..runs import OutputRecord, check_apart, check_output_dir
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


def segment_folder(model_path, input_dir, output_dir, *, dataset: str | None = None, device=None,
                   overwrite: bool = False, progress_bar: bool = True):
    """Segment every image of a folder; write ``<name>_gt.nii.gz`` beside a mirror of its path, and volumes.csv.

    The output folder keeps a record of the predictions written there (``.cardigan-written.json``,
    :class:`~cardigan_utils.runs.OutputRecord`): only those are kept as done or replaced; any other
    file of the same name (a patient's ground truth, say) is never overwritten nor taken for a
    prediction. Several runs may write into the same folder at once.

    Args:
        model_path: a ``segmenter.pt`` written by ``train_segmenter`` (its config says how slices were cut).
        input_dir: folder in the ACDC or CAMUS layout (any in-plane size and spacing); a folder of
            another layout is segmented too.
        output_dir: where predictions go (same sub-folders as the input); apart from ``input_dir``.
        dataset: a registered dataset whose reader reads ``input_dir`` (M&Ms' 4-D cines, Sunnybrook's
            DICOM series...): see :func:`segment_dataset`. None: every image file of the folder.
        device: where to run the model.
        overwrite: replace predictions already there (else they are kept: an interrupted run continues).
        progress_bar: a bar over the images.

    Returns:
        The volumes table (one row per image and structure: voxels, volume_ml (NaN where the spacing is
        a placeholder, see :func:`spacing_known`), spacing_known); also written to ``volumes.csv``.

    Raises:
        ValueError: the output is, holds or lies inside the input; the model was trained on another
            modality than the folder's dataset; the checkpoint does not say how its slices were cut.
        FileNotFoundError: no images in the input folder.
        FileExistsError: a file the kit did not write stands where a prediction or volumes.csv goes.
        OSError: the output folder is a file or cannot be written (naming it).
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_apart(output_dir, {"--input": input_dir}, output_name="--output")
    if dataset is not None:
        return segment_dataset(model_path, input_dir, output_dir, dataset=dataset, device=device, overwrite=overwrite,
                               progress_bar=progress_bar)
    images = find_images(input_dir)
    if not images:
        raise FileNotFoundError(f"{input_dir}: no images (.nii.gz, .nii, .mhd) to segment")
    model, data = _load_model(model_path, device=device)
    check_modality(model_path, data["modality"], input_dir)
    names = LABELS[data["modality"]]
    check_output_dir(output_dir, option="--output")
    record = OutputRecord(output_dir, command="cardigan segment")
    targets = {path: output_dir / path.relative_to(input_dir).parent / f"{_stem(path)}_gt.nii.gz" for path in images}
    for out in [*targets.values(), output_dir / "volumes.csv"]:  # refused before any work, nothing written
        record.check_replaceable(out)
    rows = []
    for path in progress(images, desc="segment", enabled=progress_bar):
        out = targets[path]
        volume, spacing, write = _read(path)
        if out.exists() and not overwrite:  # the kit's own (checked above): an earlier run's, kept
            labels = _read(out, labels=True)[0].reshape(volume.shape)  # a prediction of an earlier run
        else:
            labels = segment_volume(model, volume, spacing, modality=data["modality"], image_size=data["image_size"],
                                    fov_mm=data.get("fov_mm"), source=str(path))
            with record.writing(out) as tmp:
                write(labels, tmp)
        known = spacing_known(spacing, modality=data["modality"])
        voxel_ml = float(np.prod(spacing)) / 1000 if known else float("nan")
        for k in (1, 2, 3):
            rows.append({"image": str(path.relative_to(input_dir)), "prediction": str(out.relative_to(output_dir)),
                         "structure": names[k], "voxels": int((labels == k).sum()),
                         "volume_ml": float((labels == k).sum()) * voxel_ml, "spacing_known": known})
    table = pd.DataFrame(rows)
    with record.writing(output_dir / "volumes.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def _load_model(model_path, *, device=None) -> tuple:
    """(model, its config's ``data``: how its slices were cut) of a ``segmenter.pt``, or ValueError."""
    model, config = load_segmenter(model_path, device=device)
    data = config.get("data") or {}
    if not {"modality", "image_size"} <= set(data):
        raise ValueError(f"{model_path}: the checkpoint does not say how its slices were cut (modality, image_size, "
                         "fov_mm); train it with train_segmenter(..., data=data_config(cache))")
    return model, data


def _dataset_spec(dataset: str, *, modality: str | None = None, model_path=None):
    """The registered real dataset ``dataset`` (of the model's modality when given), or ValueError."""
    spec = get_dataset(dataset)
    if not spec.needs_folder:
        raise ValueError(f"{dataset} is generated, it has no folder to read; give a real dataset "
                         f"({', '.join(s.name for s in dataset_specs() if s.needs_folder)})")
    if modality is not None and spec.modality != modality:
        raise ValueError(f"{model_path} segments {modality} images but {dataset} holds {spec.modality} images; give a "
                         f"model trained on {spec.modality} images")
    return spec


def prediction_path(output_dir, case) -> Path:
    """Where :func:`segment_dataset` writes a Case's prediction: ``<output_dir>/<patient>/<key>_gt.nii.gz``.

    Args:
        output_dir: the output folder.
        case: the Case (its ``patient_id`` and ``key``).

    Returns:
        The path.
    """
    return Path(output_dir) / case.patient_id / f"{case.key}_gt.nii.gz"


def segment_dataset(model_path, input_dir, output_dir, *, dataset: str, device=None, overwrite: bool = False,
                    progress_bar: bool = True) -> pd.DataFrame:
    """Segment every Case a registered dataset's reader reads from a folder, written in the input's geometry.

    For layouts whose files are not single frames: M&Ms-1's 4-D cines (the ED and ES frames its
    information CSV names), Sunnybrook's DICOM series, cardiGAN's HDF5... Each Case's prediction
    goes to :func:`prediction_path`, a NIfTI with the source's affine (``meta["affine"]``, else
    the Case's spacing), labels in the kit's convention (:data:`cardigan_utils.labels.LABELS`),
    whatever the dataset's own file convention. Predictions an earlier run wrote are kept (an
    interrupted run continues) unless ``overwrite``; a file the kit did not write is never replaced.

    Args:
        model_path: a ``segmenter.pt`` written by ``train_segmenter``.
        input_dir: the dataset's folder (root, split or one patient's, as its reader takes it).
        output_dir: where predictions and ``volumes.csv`` go; apart from ``input_dir``.
        dataset: the registered dataset name (e.g. ``"mnms"``, ``"sunnybrook"``).
        device: where to run the model.
        overwrite: redo predictions an earlier run wrote.
        progress_bar: a bar over the patients.

    Returns:
        The volumes table (one row per Case and structure: image (the Case key), prediction,
        patient_id, phase, view, vendor, structure, voxels, volume_ml, spacing_known); also
        written to ``volumes.csv``.

    Raises:
        ValueError: an unknown or generated dataset, one of another modality than the model's, a
            checkpoint that does not say how its slices were cut, output inside the input.
        DataError: the folder is not in the dataset's layout, or a patient's files are damaged (one
            line naming the file).
        FileExistsError: a file the kit did not write stands where a prediction or volumes.csv goes.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_apart(output_dir, {"--input": input_dir}, output_name="--output")
    model, data = _load_model(model_path, device=device)
    spec = _dataset_spec(dataset, modality=data["modality"], model_path=model_path)
    patients = spec.list_patients(input_dir)
    check_output_dir(output_dir, option="--output")
    record = OutputRecord(output_dir, command="cardigan segment")
    record.check_replaceable(output_dir / "volumes.csv")
    names, rows = LABELS[data["modality"]], []
    for patient in progress(patients, desc=f"segment {dataset}", enabled=progress_bar):
        cases = spec.read_patient(patient)
        for case in cases:
            record.check_replaceable(prediction_path(output_dir, case))
        for case in cases:
            out = prediction_path(output_dir, case)
            if out.exists() and not overwrite:  # the kit's own (checked above): an earlier run's, kept
                labels = _read(out, labels=True)[0].reshape(case.image.shape).astype(np.uint8)
            else:
                labels = segment_volume(model, case.image, case.spacing, modality=data["modality"],
                                        image_size=data["image_size"], fov_mm=data.get("fov_mm"), source=case.key)
                with record.writing(out) as tmp:
                    save_nifti(tmp, labels, case.spacing, affine=case.meta.get("affine"))
            voxel_ml = case.voxel_ml
            for k in (1, 2, 3):
                rows.append({"image": case.key, "prediction": str(out.relative_to(output_dir)),
                             "patient_id": case.patient_id, "phase": case.phase, "view": case.view or "",
                             "vendor": str(case.meta.get("vendor", "")), "structure": names[k],
                             "voxels": int((labels == k).sum()), "volume_ml": float((labels == k).sum()) * voxel_ml,
                             "spacing_known": case.spacing_known})
    table = pd.DataFrame(rows)
    with record.writing(output_dir / "volumes.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def spacing_known(spacing, *, modality: str) -> bool:
    """Whether a file's header spacing is true: an echo frame's 1.0 x 1.0 mm is a derived copy's placeholder.

    Args:
        spacing: the header's voxel size.
        modality: ``"mri"`` or ``"echo"`` (an MR image may truly have 1.0 mm pixels).

    Returns:
        False for the placeholder (:func:`~cardigan_utils.data.imageio.is_placeholder_spacing`) of an echo frame.
    """
    return not (modality == "echo" and is_placeholder_spacing(spacing))


def check_modality(model_path, modality: str, input_dir) -> None:
    """Refuse a folder whose dataset is of another modality than the model's (an MRI model on echo images).

    Args:
        model_path: the model, named in the message.
        modality: the modality it was trained on (its config's ``data.modality``).
        input_dir: the folder to segment; its layout tells its dataset
            (:func:`~cardigan_utils.data.registry.recognise_folder`). A folder of no known layout passes.

    Raises:
        ValueError: naming both modalities and what to give instead.
    """
    spec = recognise_folder(input_dir)
    if spec is not None and spec.modality != modality:
        raise ValueError(f"{model_path} segments {modality} images but {input_dir} is a {spec.name} folder of "
                         f"{spec.modality} images: the modalities differ; give a model trained on {spec.modality} "
                         "images, or the folder of images the model was trained for")


def evaluate_folders(pred_dir, truth_dir, *, modality: str | None = None, dataset: str | None = None):
    """Dice and HD95 (mm) per image and structure of predictions against ground truth files of the same name.

    Args:
        pred_dir: predictions (``*_gt.nii.gz``, e.g. from :func:`segment_folder`).
        truth_dir: ground truth in the same relative paths (ACDC / CAMUS ``_gt`` files; .mhd too);
            another folder than ``pred_dir``, neither inside the other.
        modality: the structures' convention (``"mri"`` or ``"echo"``); None: that of the dataset whose
            layout ``truth_dir`` is in (:func:`~cardigan_utils.data.registry.recognise_folder`), else ``"mri"``.
        dataset: a registered dataset whose reader reads ``truth_dir`` (its labels converted to the
            kit's convention, and only the structures it labels scored, where it labels them), the
            predictions being :func:`segment_dataset`'s (:func:`prediction_path`). None: truth files
            of the same name, in the kit's convention; a folder recognised as a dataset with
            another convention or partial labels (M&Ms, Sunnybrook) is refused, naming the option.

    Returns:
        One row per image and labelled structure (file and the columns of
        :func:`~cardigan_utils.metrics.overlap.volume_scores`: dice, hd95_mm, hd95_px, voxel counts,
        volumes, spacing_known, labelled_slices; with ``dataset`` also patient_id, phase, view,
        vendor); also written to ``<pred_dir>/evaluation.csv``. A structure the truth does not
        label has no row (never a Dice of 0 or 1). An echo frame whose
        header holds the 1.0 mm placeholder (a derived CAMUS copy) has hd95_mm and the ml volumes
        NaN and hd95_px measured, never a number in mm.

    Raises:
        ValueError: the two folders are the same, overlap, or a prediction is its truth file itself
            (it would score Dice 1.0); shapes differ.
        FileNotFoundError: no predictions, or no ground truth for them.
        FileExistsError: an ``evaluation.csv`` the kit did not write is in ``pred_dir``.
    """
    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    if pred_dir.expanduser().resolve() == truth_dir.expanduser().resolve():
        raise ValueError(f"--pred {pred_dir} and --truth {truth_dir} are the same folder: the ground truth would be "
                         "scored against itself (Dice 1.0); give --pred the folder of predictions")
    check_apart(pred_dir, {"--truth": truth_dir}, output_name="--pred")
    record = OutputRecord(pred_dir, command="cardigan evaluate")
    record.check_replaceable(pred_dir / "evaluation.csv")
    preds = sorted(p for p in pred_dir.rglob("*_gt.nii.gz"))
    if not preds:
        raise FileNotFoundError(f"{pred_dir}: no *_gt.nii.gz predictions")
    if dataset is not None:
        table = _evaluate_dataset(pred_dir, truth_dir, spec=_dataset_spec(dataset))
    else:
        table = _evaluate_files(preds, pred_dir, truth_dir, modality=modality)
    with record.writing(pred_dir / "evaluation.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def _evaluate_dataset(pred_dir: Path, truth_dir: Path, *, spec) -> pd.DataFrame:
    """Rows of :func:`evaluate_folders` for the Cases a dataset's reader reads from ``truth_dir``."""
    rows, missing = [], []
    for patient in spec.list_patients(truth_dir):
        for case in spec.read_patient(patient):
            pred_path = prediction_path(pred_dir, case)
            if not pred_path.exists():
                missing.append(case.key)
                continue
            pred = _read(pred_path, labels=True)[0]
            if pred.size != case.label.size:
                raise ValueError(f"{pred_path}: shape {pred.shape} differs from {case.key}'s {case.label.shape} in "
                                 f"{truth_dir}; segment that folder with --dataset {spec.name}")
            for row in volume_scores(np.round(pred).astype(np.uint8).reshape(case.label.shape), case.label,
                                     spacing=case.spacing, names=LABELS[spec.modality],
                                     spacing_known=case.spacing_known, labelled=case.labelled):
                rows.append({"file": str(pred_path.relative_to(pred_dir)), "patient_id": case.patient_id,
                             "phase": case.phase, "view": case.view or "", "vendor": str(case.meta.get("vendor", "")),
                             **row})
    if not rows:
        raise FileNotFoundError(f"{pred_dir}: no predictions for the {spec.name} cases of {truth_dir} (e.g. "
                                f"{missing[:3]}); segment it with `cardigan segment --dataset {spec.name}`")
    return pd.DataFrame(rows)


def _evaluate_files(preds: list[Path], pred_dir: Path, truth_dir: Path, *, modality: str | None) -> pd.DataFrame:
    """Rows of :func:`evaluate_folders` for truth files of the same name as the predictions."""
    spec = recognise_folder(truth_dir)
    if spec is not None and (dict(spec.label_map) != {k: k for k in spec.label_map}
                             or set(spec.label_values) != {1, 2, 3}):
        raise ValueError(f"{truth_dir} is a {spec.name} folder: its files hold another label convention or only some "
                         f"structures; score it with --dataset {spec.name} (predictions of `cardigan segment "
                         f"--dataset {spec.name}`)")
    if modality is None:
        modality = spec.modality if spec is not None else "mri"
    rows, missing = [], []
    for pred_path in preds:
        rel = pred_path.relative_to(pred_dir)
        stem = rel.name[: -len(".nii.gz")]
        candidates = [truth_dir / rel.parent / f"{stem}{suffix}" for suffix in IMAGE_SUFFIXES]
        truth_path = next((c for c in candidates if c.exists()), None)
        if truth_path is None:
            missing.append(str(rel))
            continue
        if os.path.samefile(pred_path, truth_path):
            raise ValueError(f"{pred_path} is the ground truth file {truth_path} itself (a link): it would score "
                             "Dice 1.0; give --pred the folder of predictions")
        truth, spacing, _ = _read(truth_path, labels=True)
        pred, _, _ = _read(pred_path, labels=True)
        if pred.shape != truth.shape:
            raise ValueError(f"{pred_path}: shape {pred.shape} differs from the truth {truth_path} {truth.shape}")
        for row in volume_scores(np.round(pred).astype(np.uint8), np.round(truth).astype(np.uint8), spacing=spacing,
                                 names=LABELS[modality], spacing_known=spacing_known(spacing, modality=modality)):
            rows.append({"file": str(rel), **row})
    if not rows:
        raise FileNotFoundError(f"{truth_dir}: no ground truth matches the predictions (e.g. {missing[:3]})")
    return pd.DataFrame(rows)
