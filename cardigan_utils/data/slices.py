"""2-D slices from Cases: in-plane resampling, crop/pad around the heart, intensity normalisation.

Slices are returned as ``(rows, cols)`` = ``volume[:, :, z].T``, so that ``plt.imshow(slice)``
shows the anatomy the way viewers do (for echo: the transducer at the top).

MRI: each slice is resampled to a target in-plane spacing (``fov_mm / image_size``) and cropped or
padded to a square around the heart. Echo: the whole sector image is resized to the square, as in
cardiGAN (the apical views fill the image; no crop).
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
from scipy import ndimage

from .case import Case, DataError
from .imageio import MAX_VOXELS

DEFAULT_FOV_MM = {"mri": 160.0, "echo": None}
"""Field of view of the square crop: 160 mm holds the LV and RV of an adult short axis."""


@dataclass
class Slices:
    """The 2-D slices of one Case.

    Attributes:
        images: float32 (N, S, S), normalised to [0, 1] per volume.
        labels: uint8 (N, S, S).
        slice_index: (N,) index of each slice in the source volume.
        spacing: in-plane (row, col) spacing of the slices in mm.
    """

    images: np.ndarray
    labels: np.ndarray
    slice_index: np.ndarray
    spacing: tuple[float, float]


def normalise_intensity(volume: np.ndarray, *, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Clip a volume to its ``[lower, upper]`` percentiles and scale it to [0, 1].

    Args:
        volume: any array.
        lower: lower percentile.
        upper: upper percentile.

    Returns:
        float32 array of the same shape.
    """
    lo, hi = np.percentile(volume, [lower, upper])
    if hi <= lo:
        return np.zeros(volume.shape, np.float32)
    return ((np.clip(volume, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def resample_slices(image: np.ndarray, label: np.ndarray, zoom: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Resample a stack of 2-D slices (N, R, C) in-plane by ``zoom`` (rows, cols).

    The image is interpolated linearly; the label is resampled as one-hot channels, linearly, then
    argmax, which keeps boundaries smooth where nearest-neighbour would make them jagged. When an
    axis shrinks, image and one-hot channels are first low-passed (Gaussian, sigma = (1/zoom - 1)/2
    pixels) so that speckle and thin structures do not alias.

    Args:
        image: float array (N, R, C).
        label: integer array (N, R, C).
        zoom: output / input size ratio along rows and cols.

    Returns:
        ``(image, label)`` resampled.
    """
    if np.allclose(zoom, 1.0):
        return image.astype(np.float32), label.astype(np.uint8)
    factors = (1.0, *zoom)
    sigma = (0.0, *[max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom])

    def resize(x: np.ndarray) -> np.ndarray:
        if any(sigma):
            x = ndimage.gaussian_filter(x, sigma, mode="nearest")
        return ndimage.zoom(x, factors, order=1, grid_mode=True, mode="nearest")

    out_image = resize(image.astype(np.float32))
    classes = np.arange(int(label.max()) + 1)
    onehot = [resize((label == k).astype(np.float32)) for k in classes]
    out_label = np.argmax(np.stack(onehot), axis=0).astype(np.uint8)
    return out_image, out_label


def fov_window(spacing: tuple[float, float], fov_mm: float, *, n_slices: int, source: str) -> tuple[int, int]:
    """The (rows, cols) window that holds a square field of view at a volume's resolution, plus 4 pixels.

    Slicing cuts this window from every slice before resampling it, so its size is what a tiny
    voxel size would blow up (16,004 x 16,004 pixels a slice at 0.01 mm): refused before allocating.

    Args:
        spacing: (sx, sy) in-plane voxel size in mm.
        fov_mm: side of the field of view in mm.
        n_slices: slices to cut.
        source: the file or case, named in the message.

    Returns:
        ``(rows, cols)``.

    Raises:
        DataError: the windows of all slices hold more than :data:`~cardigan_utils.data.imageio.MAX_VOXELS`.
    """
    sx, sy = spacing
    window = (int(math.ceil(fov_mm / sy)) + 4, int(math.ceil(fov_mm / sx)) + 4)
    voxels = n_slices * window[0] * window[1]
    if voxels > MAX_VOXELS:
        raise DataError(
            f"{source}: at {sx:g} x {sy:g} mm a pixel the {fov_mm:g} mm field of view is {window[1]:,} x {window[0]:,} "
            f"pixels a slice, {voxels:,} voxels for {n_slices} slice(s), over the limit of {MAX_VOXELS:,}; the voxel "
            "size is implausible for a heart image: write the true one into the header"
        )
    return window


def crop_or_pad(
    array: np.ndarray, center: tuple[float, float], size: int | tuple[int, int], *, fill: float = 0.0
) -> np.ndarray:
    """Cut a window centred on ``center`` from (N, R, C), padding with ``fill`` outside.

    Args:
        array: stack of slices (N, R, C).
        center: (row, col) of the window centre.
        size: side of the square window, or (rows, cols).
        fill: value outside the source.

    Returns:
        (N, rows, cols) array of the same dtype.
    """
    n, rows, cols = array.shape
    h, w = (size, size) if isinstance(size, int) else size
    out = np.full((n, h, w), fill, dtype=array.dtype)
    r0 = int(round(center[0])) - h // 2
    c0 = int(round(center[1])) - w // 2
    sr0, sc0 = max(r0, 0), max(c0, 0)
    sr1, sc1 = min(r0 + h, rows), min(c0 + w, cols)
    if sr1 > sr0 and sc1 > sc0:
        out[:, sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = array[:, sr0:sr1, sc0:sc1]
    return out


def case_slices(
    case: Case,
    *,
    image_size: int,
    fov_mm: float | None = None,
    keep_empty: bool = False,
) -> Slices:
    """Cut a Case into normalised, square 2-D slices.

    Args:
        case: an MRI or echo Case.
        image_size: side of the output slices (64, 128, 256).
        fov_mm: side of the square in mm (MRI; default 160 mm). None for echo resizes the whole
            image to the square.
        keep_empty: keep slices whose label is background only (MRI slices above the base or
            below the apex); by default they are dropped.

    Returns:
        A :class:`Slices`.
    """
    if fov_mm is None:
        fov_mm = DEFAULT_FOV_MM[case.modality]
    image = normalise_intensity(case.image)
    # (X, Y, Z) -> (Z, rows=Y, cols=X)
    image = np.transpose(image, (2, 1, 0))
    label = np.transpose(case.label, (2, 1, 0))
    sx, sy = case.spacing[0], case.spacing[1]
    index = np.arange(image.shape[0])
    if not keep_empty:
        present = label.reshape(label.shape[0], -1).any(axis=1)
        image, label, index = image[present], label[present], index[present]
    if image.shape[0] == 0:
        empty = np.zeros((0, image_size, image_size), np.float32)
        return Slices(empty, empty.astype(np.uint8), index, (0.0, 0.0))
    if fov_mm is None:
        zoom = (image_size / image.shape[1], image_size / image.shape[2])
        image, label = resample_slices(image, label, zoom)
        return Slices(image, label, index, (sy / zoom[0], sx / zoom[1]))
    target = fov_mm / image_size
    fg = np.argwhere(label > 0)
    center = fg[:, 1:].mean(axis=0) if len(fg) else (label.shape[1] / 2, label.shape[2] / 2)
    # Cut the field of view (plus a margin) at the source resolution first, then resample only
    # that window: 4-6x less work than resampling whole slices (measured on ACDC).
    window = fov_window((sx, sy), fov_mm, n_slices=image.shape[0], source=case.key)
    win_image = crop_or_pad(image, center, window)
    win_label = crop_or_pad(label, center, window)
    win_image, win_label = resample_slices(win_image, win_label, (sy / target, sx / target))
    # Pad with 0, the lowest normalised intensity: the background of MR is dark.
    mid = (win_image.shape[1] / 2, win_image.shape[2] / 2)
    return Slices(
        crop_or_pad(win_image, mid, image_size),
        crop_or_pad(win_label, mid, image_size),
        index,
        (target, target),
    )
