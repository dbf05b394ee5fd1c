"""Overlap and distance measures of segmentations: Dice per class and per slice, 3-D Dice / HD95 / volumes.

Everything is MONAI's metrics underneath (``DiceMetric``, ``compute_hausdorff_distance``), in the
kit's label convention (:mod:`cardigan_utils.labels`).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance
from monai.metrics.utils import do_metric_reduction

from ..labels import LABELS, one_hot


def per_class_dice(pred, target, *, num_classes: int):
    """Mean Dice per foreground class over a batch of label maps (MONAI's DiceMetric).

    A class absent from both the prediction and the truth of a slice is left out of that class's
    mean (MONAI's ``ignore_empty``), so an apical slice without RV does not count as a perfect RV.

    Args:
        pred: (B, H, W) integer label maps.
        target: (B, H, W) integer label maps.
        num_classes: classes, background included.

    Returns:
        (num_classes - 1,) tensor of Dice per foreground class (nan if never present).
    """
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)

    def onehot(x):
        return one_hot(x.long(), num_classes=num_classes, dtype=torch.int64)

    truth = onehot(target)
    # The reduction DiceMetric.aggregate() applies, without aggregate() itself: that one gathers the
    # buffers of every process when torch.distributed is initialised, and under torchrun rank 0
    # validates alone (the other ranks would never join the gather).
    dice, _ = do_metric_reduction(metric(onehot(pred), truth), "mean_batch")
    dice = dice.cpu().float()
    # mean_batch reports 0 for a class absent from every slice; it has no Dice: nan.
    dice[truth[:, 1:].sum(dim=(0, 2, 3)).cpu() == 0] = float("nan")
    return dice


def slice_dice(pred, target, *, num_classes: int = 4, batch_size: int = 256) -> np.ndarray:
    """Mean foreground Dice of each slice (MONAI's DiceMetric), over the classes its truth holds.

    Args:
        pred: (N, H, W) integer label maps.
        target: (N, H, W) integer label maps.
        num_classes: classes, background included.
        batch_size: slices per MONAI call.

    Returns:
        (N,) float array; NaN for a slice whose truth is background only.
    """
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    out = []
    for start in range(0, len(pred), batch_size):
        p = one_hot(torch.as_tensor(np.asarray(pred[start:start + batch_size])).long(), num_classes=num_classes,
                    dtype=torch.int64)
        t = one_hot(torch.as_tensor(np.asarray(target[start:start + batch_size])).long(), num_classes=num_classes,
                    dtype=torch.int64)
        out.append(metric(p, t).float())
    per_class = torch.cat(out).numpy() if out else np.zeros((0, num_classes - 1), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: background-only slices
        return np.nanmean(per_class, axis=1)


def segmentation_scores(pred: np.ndarray, cache, indices: np.ndarray) -> pd.DataFrame:
    """Dice and HD95 (mm) per structure for every volume (patient, phase, view) of predicted slices.

    The slices of a volume are stacked in slice order and scored in 3-D with MONAI's metrics, at
    the cache's pixel spacing and the volume's slice spacing, as the ACDC challenge scores them;
    volumes (ml) of prediction and truth come along for EDV / ESV / EF.

    Args:
        pred: (N, S, S) predicted label maps for the cache rows ``indices``.
        cache: the :class:`~cardigan_utils.data.cache.SliceCache` holding the truth.
        indices: the cache rows predicted (e.g. ``cache.indices("test")``).

    Returns:
        One row per volume and labelled structure: patient_id, phase, view, vendor and the columns
        of :func:`volume_scores`, each structure scored only on the slices the cache says it is
        labelled on (columns ``labelled_<structure>``; see :func:`cache_unlabelled`) (a volume whose source spacing is unknown, a cache column
        ``spacing_known`` False, is scored in pixels: hd95_mm and the ml volumes NaN).
    """
    indices = np.asarray(indices)
    if len(pred) != len(indices):
        raise ValueError(f"{len(pred)} predictions for {len(indices)} cache rows")
    names = LABELS[cache.manifest["modality"]]
    table = cache.slices.iloc[indices].assign(_row=np.arange(len(indices)))
    cases = cache.cases.set_index(["patient_id", "phase", "view"])
    rows = []
    for (pid, phase, view), group in table.groupby(["patient_id", "phase", "view"], sort=True):
        group = group.sort_values("slice_index")
        p = np.stack([pred[i] for i in group._row], axis=-1)
        t = np.stack([np.asarray(cache.labels[indices[i]]) for i in group._row], axis=-1)
        known = bool(group["spacing_known"].iloc[0]) if "spacing_known" in group else True  # caches before 2026-12
        pixel = float(group.spacing_mm.iloc[0]) if known else 1.0
        z = float(cases.loc[(pid, phase, view), "spacing_z"]) if (pid, phase, view) in cases.index else pixel
        spacing = (pixel, pixel, z)
        labelled = {n: group[f"labelled_{n}"].to_numpy(bool) for n in list(names.values())[1:]
                    if f"labelled_{n}" in group}  # a cache without the columns: labelled everywhere
        vendor = str(group["vendor"].iloc[0]) if "vendor" in group else ""
        for row in volume_scores(p, t, spacing=spacing, names=names, spacing_known=known,
                                 labelled=labelled or None):
            rows.append({"patient_id": pid, "phase": phase, "view": view, "vendor": vendor, **row})
    return pd.DataFrame(rows)


def cache_unlabelled(cache, indices: np.ndarray | None = None) -> list[str]:
    """The structures no slice of a cache (or of some of its rows) labels: never scored on it.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.
        indices: its rows to look at (None: all).

    Returns:
        Structure names in label order, e.g. ``["RV"]`` for a Sunnybrook cache.
    """
    table = cache.slices if indices is None else cache.slices.iloc[np.asarray(indices)]
    names = LABELS[cache.manifest["modality"]]
    return [names[k] for k in (1, 2, 3) if f"labelled_{names[k]}" in table and not table[f"labelled_{names[k]}"].astype(bool).any()]


def volume_scores(pred: np.ndarray, truth: np.ndarray, *, spacing: tuple[float, ...],
                  names: dict[int, str], spacing_known: bool = True,
                  labelled: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Dice, HD95 (mm, MONAI) and volumes (ml) of the labelled structures in one predicted label volume.

    Args:
        pred: (X, Y, Z) or (X, Y) predicted labels.
        truth: the ground truth, same shape.
        spacing: voxel size in mm, one per axis.
        names: class index -> structure name.
        spacing_known: False when ``spacing`` is a placeholder (a derived CAMUS copy): HD95 is
            then measured in pixels (``hd95_px``, with the placeholder as the pixel) and every
            figure in mm or ml is NaN, never a number in wrong units.
        labelled: which structures the truth labels, and where (:attr:`~cardigan_utils.data.Case.labelled`):
            None, every structure on every slice; else ``{name: bool per slice of the last axis (or
            one bool)}``. A structure is scored only on its labelled slices (prediction and truth
            both cut to them), and a structure labelled nowhere gets no row at all: a missing
            label is never scored as Dice 0 or 1.

    Returns:
        One dict per labelled structure: structure, dice (NaN if absent from both; 0 if predicted
        where the truth has none), hd95_mm (NaN unless present in both and the spacing known),
        hd95_px (NaN when the spacing is known), voxels_pred, voxels_true, volume_pred_ml,
        volume_true_ml (NaN when the spacing is unknown), spacing_known, labelled_slices (how many
        slices of the volume were scored for it).
    """
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    n_slices = pred.shape[-1] if pred.ndim == 3 else 1
    masks = {k: _slice_mask(labelled, names[k], n_slices) for k in (1, 2, 3)}
    scored = [k for k in (1, 2, 3) if masks[k].any()]
    voxel_ml = float(np.prod(spacing)) / 1000 if spacing_known else float("nan")
    p1, t1 = _onehot_volume(pred), _onehot_volume(truth)
    if pred.ndim == 3:  # each structure only on its labelled slices
        keep = torch.ones(p1.shape[1], 1, 1, n_slices, dtype=p1.dtype)
        for k in (1, 2, 3):
            keep[k, ..., :] = torch.as_tensor(np.array(masks[k]), dtype=p1.dtype)
        p1, t1 = p1 * keep, t1 * keep
    with warnings.catch_warnings():  # a structure absent from one side: MONAI warns, we report NaN below
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # MONAI 1.6 deprecation inside its own metric
        hd = compute_hausdorff_distance(p1, t1, include_background=False, percentile=95, spacing=list(spacing))[0]
    rows = []
    for k in scored:
        pk, tk = p1[0, k].numpy().astype(bool), t1[0, k].numpy().astype(bool)
        both = pk.sum() + tk.sum()
        distance = float(hd[k - 1]) if pk.any() and tk.any() else float("nan")
        rows.append({"structure": names[k], "dice": 2 * float((pk & tk).sum()) / float(both) if both else float("nan"),
                     "hd95_mm": distance if spacing_known else float("nan"),
                     "hd95_px": float("nan") if spacing_known else distance,
                     "voxels_pred": int(pk.sum()), "voxels_true": int(tk.sum()),
                     "volume_pred_ml": float(pk.sum()) * voxel_ml, "volume_true_ml": float(tk.sum()) * voxel_ml,
                     "spacing_known": bool(spacing_known), "labelled_slices": int(masks[k].sum())})
    return rows


def unlabelled_structures(labelled: Mapping[str, Any] | None, names: dict[int, str]) -> list[str]:
    """The structures a ground truth does not label anywhere (so nothing is scored for them).

    Args:
        labelled: as :func:`volume_scores` takes it (None: all labelled).
        names: class index -> structure name.

    Returns:
        Their names, in label order (empty when every structure is labelled somewhere).
    """
    return [names[k] for k in (1, 2, 3) if not _slice_mask(labelled, names[k], 1 if labelled is None else None).any()]


def _slice_mask(labelled: Mapping[str, Any] | None, name: str, n_slices: int | None) -> np.ndarray:
    """Where structure ``name`` is labelled: a bool array per slice (all True when ``labelled`` is None)."""
    if labelled is None:
        return np.ones(n_slices or 1, bool)
    mask = np.asarray(labelled.get(name, False), bool)
    if n_slices is None:
        return mask.reshape(-1)
    if mask.ndim == 0:
        return np.full(n_slices, bool(mask))
    if mask.shape != (n_slices,):
        raise ValueError(f"the {name} labelled-slice mask has {mask.size} entries for {n_slices} slices")
    return mask


def _onehot_volume(x: np.ndarray) -> torch.Tensor:
    """(X, Y[, Z]) labels -> (1, 4, X, Y[, Z]) one-hot, as MONAI's distance metrics take them."""
    return one_hot(torch.from_numpy(np.asarray(x).astype(np.int64))[None], dtype=torch.int64)
