"""The one record type every reader returns, and the data error.

Every reader converts its labels to the kit's convention (:mod:`cardigan_utils.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..labels import LABELS, PHASES, structure_names


class DataError(ValueError):
    """Bad input data, with a one-line message that names the file and the fix."""


@dataclass
class Case:
    """One patient at one phase (and, for echo, one view).

    Attributes:
        image: float32 array (X, Y, Z); Z is 1 for 2-D echo images.
        label: uint8 array, same shape as ``image``, values in the modality's convention.
        spacing: voxel size in mm, (sx, sy, sz). Where the source does not know it (a derived copy
            whose headers hold the 1.0 mm placeholder, cardiGAN's HDF5 file), the placeholder stays
            here for the geometry and ``spacing_known`` is False.
        patient_id: e.g. ``"patient001"``.
        phase: ``"ED"`` or ``"ES"``.
        modality: ``"mri"`` or ``"echo"``.
        view: ``None`` for MRI, ``"2CH"`` or ``"4CH"`` for echo.
        dataset: dataset name (``"acdc"``, ``"camus"``, ``"phantom-mri"``, ...).
        meta: anything else the source provides (group, height, weight, vendor, paths...).
        spacing_known: False when ``spacing`` is a placeholder: then every figure in mm, mm^2 or ml
            (HD95, areas, volumes, EF) is unknown (NaN), never a number in wrong units.
        labelled: which structures the ground truth labels, slice by slice: None when every
            structure of the modality is labelled on every slice (ACDC, CAMUS, M&Ms); otherwise
            ``{structure name: bool array (Z,)}``, True on the slices where that structure was
            delineated. A structure left out is labelled nowhere (Sunnybrook has no RV; its
            myocardium only where an epicardial contour exists). Where a structure is not
            labelled, background in ``label`` means "unknown", never "absent": it is not scored.
    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    patient_id: str
    phase: str
    modality: str
    view: str | None = None
    dataset: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    spacing_known: bool = True
    labelled: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.image.shape != self.label.shape:
            raise DataError(
                f"{self.patient_id} {self.phase}: image shape {self.image.shape} != label shape "
                f"{self.label.shape}; give the image and its own ground truth"
            )
        if self.phase not in PHASES:
            raise DataError(f"{self.patient_id}: phase {self.phase!r} is not one of {PHASES}")
        if self.modality not in LABELS:
            raise DataError(f"{self.patient_id}: modality {self.modality!r} is not one of {tuple(LABELS)}")
        if self.labelled is not None:
            self.labelled = _check_labelled(self.labelled, modality=self.modality, n_slices=self.image.shape[-1],
                                            source=self.key)

    def labelled_slices(self, structure: str) -> np.ndarray:
        """The slices on which a structure is labelled.

        Args:
            structure: a structure name of the Case's modality (``"RV"``, ``"MYO"``, ``"LV"``, ``"LA"``).

        Returns:
            bool array (Z,): all True when the Case is fully labelled, all False for a structure
            its dataset does not label.
        """
        n = self.image.shape[-1]
        if self.labelled is None:
            return np.ones(n, bool)
        return np.array(self.labelled.get(structure, np.zeros(n, bool)), bool)

    @property
    def labelled_structures(self) -> tuple[str, ...]:
        """The structures labelled on at least one slice, in label order."""
        return tuple(s for s in structure_names(self.modality) if self.labelled_slices(s).any())

    @property
    def key(self) -> str:
        """A unique name: ``patient001_ED`` or ``patient0001_2CH_ED``."""
        parts = [self.patient_id] + ([self.view] if self.view else []) + [self.phase]
        return "_".join(parts)

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres; NaN when the spacing is not known."""
        return float(np.prod(self.spacing)) / 1000.0 if self.spacing_known else float("nan")

    def volume_ml(self, label_value: int) -> float:
        """Volume of one structure in millilitres (area in mm^2 / 1000 for 2-D echo); NaN when the spacing is unknown."""
        return float((self.label == label_value).sum()) * self.voxel_ml


def _check_labelled(labelled: Mapping[str, Any], *, modality: str, n_slices: int,
                    source: str) -> dict[str, np.ndarray]:
    """``Case.labelled`` as ``{structure: bool (Z,)}`` with a scalar spread over the slices, or DataError."""
    names = structure_names(modality)
    unknown = [s for s in labelled if s not in names]
    if unknown:
        raise DataError(f"{source}: labelled structures {unknown} are not among the {modality} structures {names}")
    out = {}
    for name in names:
        if name not in labelled:
            continue
        mask = np.asarray(labelled[name], bool)
        mask = np.full(n_slices, bool(mask)) if mask.ndim == 0 else mask
        if mask.shape != (n_slices,):
            raise DataError(f"{source}: the {name} labelled-slice mask has shape {mask.shape}, the image {n_slices} slices")
        out[name] = mask
    return out


def check_labels(label: np.ndarray, *, source: str, allowed: tuple[int, ...] = (0, 1, 2, 3),
                 allow_empty: bool = False) -> None:
    """Raise DataError if ``label`` is empty or has values outside ``allowed``.

    Args:
        label: integer label array.
        source: the file it came from, named in the message.
        allowed: the convention's class indices.
        allow_empty: accept a map of background only (a prediction that found nothing).

    Raises:
        DataError: values outside ``allowed``; background only (unless ``allow_empty``).
    """
    values = np.unique(label)
    bad = [int(v) for v in values if v not in allowed]
    if bad:
        raise DataError(
            f"{source}: label values {bad} are outside the convention {list(allowed)}; "
            "is this a ground-truth file of the right dataset (M&Ms and others need their reader)?"
        )
    if values.max(initial=0) == 0 and not allow_empty:
        raise DataError(f"{source}: the label map is empty (background only); remove the case or fix its ground truth")


def check_image(image: np.ndarray, *, source: str, allow_constant: bool = False) -> None:
    """Raise DataError if an image has NaN or infinite values, or (by default) is constant.

    A NaN spreads through intensity normalisation into every slice and then into the loss (NaN,
    Dice 0); a constant image normalises to zeros and is segmented as background everywhere.
    Neither can be learnt from or segmented, so neither goes in silently.

    Args:
        image: the voxel array.
        source: the file or case, named in the message.
        allow_constant: accept an image with one value everywhere (the readers do; the slice
            cache and segmentation do not).

    Raises:
        DataError: non-finite values (how many named), or a constant image.
    """
    values = np.asarray(image)
    if values.size == 0:
        raise DataError(f"{source}: the image has no voxels (shape {values.shape}); export it again")
    if not np.issubdtype(values.dtype, np.number) and values.dtype != bool:
        raise DataError(f"{source}: voxels of type {values.dtype}, not numbers; convert it to a grey-scale image")
    if np.issubdtype(values.dtype, np.inexact):
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"{source}: image has NaN or infinite values in {int(bad.sum()):,} of {values.size:,} voxels; "
                "the file is damaged or was saved from a failed computation, export it again (the kit does not "
                "fill them in)"
            )
    if not allow_constant:
        low, high = values.min(), values.max()
        if low == high:
            raise DataError(f"{source}: the image is constant (every voxel is {low.item():g}); there is nothing to "
                            "segment or learn from, the file is blank: export it again")
