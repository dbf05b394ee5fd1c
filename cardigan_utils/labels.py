"""Label conventions, one-hot encoding and the overlay colours: one home for each.

One convention per modality, converted at the reader (see DESIGN.md):

- cine-MRI (ACDC order): 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity.
- echo (CAMUS order): 0 background, 1 LV cavity, 2 LV myocardium, 3 left atrium.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

LABELS = {
    "mri": {0: "background", 1: "RV", 2: "MYO", 3: "LV"},
    "echo": {0: "background", 1: "LV", 2: "MYO", 3: "LA"},
}
"""Class index -> short structure name, per modality."""

NUM_CLASSES = 4
"""Classes of every label map, background included."""

PHASES = ("ED", "ES")

CLASS_COLORS = ["#00000000", "#1f77b4", "#2ca02c", "#d62728"]
"""Overlay colours of classes 1, 2, 3 (blue, green, red); background transparent."""

CLASS_RGB = np.array([[0, 0, 0], [0.12, 0.47, 0.71], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16]])
"""The overlay colours as RGB in [0, 1], background black (for pictures of label maps)."""


def structure_names(modality: str) -> list[str]:
    """Names of the foreground classes 1..3 of a modality, in label order.

    Args:
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        E.g. ``["RV", "MYO", "LV"]`` for MRI.
    """
    if modality not in LABELS:
        raise ValueError(f"modality must be one of {tuple(LABELS)}, not {modality!r}")
    return [LABELS[modality][k] for k in range(1, NUM_CLASSES)]


def one_hot(labels: torch.Tensor, *, num_classes: int = NUM_CLASSES, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, *spatial) integer labels to a (B, num_classes, *spatial) one-hot map.

    Args:
        labels: integer label maps (a batch of 2-D maps or of volumes).
        num_classes: number of classes.
        dtype: output dtype.

    Returns:
        The one-hot map, contiguous, on the labels' device.

    Raises:
        TypeError: floating-point labels (a probability map is not a label map).
    """
    if labels.dtype.is_floating_point:
        raise TypeError("one_hot needs integer label maps")
    out = F.one_hot(labels.long(), num_classes)
    return out.permute(0, out.dim() - 1, *range(1, out.dim() - 1)).to(dtype).contiguous()


def label_image(label: np.ndarray) -> np.ndarray:
    """An RGB picture of a label map in the overlay colours (background black).

    Args:
        label: (H, W) integer label map.

    Returns:
        (H, W, 3) float array.
    """
    return CLASS_RGB[np.clip(label, 0, NUM_CLASSES - 1)]
