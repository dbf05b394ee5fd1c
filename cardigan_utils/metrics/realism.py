"""Image realism and variety: per-tissue intensity distances, speckle and sector, nearest neighbours, shape diversity."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import wasserstein_distance

from .overlap import per_class_dice


def intensity_distances(
    images_a: np.ndarray,
    images_b: np.ndarray,
    labels: np.ndarray,
    *,
    names: list[str],
    labels_b: np.ndarray | None = None,
    max_pixels: int = 200_000,
    seed: int = 0,
) -> dict[str, float]:
    """Per-class distance between the intensity distributions of two image sets.

    The Wasserstein-1 distance (SciPy) between the intensities of class ``k`` pixels in
    ``images_a`` and in ``images_b``: for images in [0, 1] it is the mean shift, in intensity
    units, of the cheapest way to turn one histogram into the other. Real against generated
    images of the same label maps says how well the GAN renders each tissue; real against real
    (other patients) gives the yardstick of natural variation.

    Args:
        images_a: (N, H, W) images in [0, 1].
        images_b: (M, H, W) images in [0, 1].
        labels: (N, H, W) label maps of ``images_a`` (and of ``images_b`` unless ``labels_b``).
        names: class names, index = label value.
        labels_b: (M, H, W) label maps of ``images_b`` when they differ from ``labels``.
        max_pixels: at most this many pixels per class and set (a seeded random subset).
        seed: seed of that subset.

    Returns:
        ``{name: distance}``; NaN for a class absent from either set.
    """
    labels_b = labels if labels_b is None else labels_b
    if images_a.shape != labels.shape or images_b.shape != labels_b.shape:
        raise ValueError(f"images and label maps differ in shape: {images_a.shape} vs {labels.shape}, "
                         f"{images_b.shape} vs {labels_b.shape}")
    rng = np.random.default_rng(seed)

    def pixels(images: np.ndarray, lab: np.ndarray, k: int) -> np.ndarray:
        values = np.asarray(images)[np.asarray(lab) == k]
        return rng.choice(values, max_pixels, replace=False) if len(values) > max_pixels else values

    out = {}
    for k, name in enumerate(names):
        a, b = pixels(images_a, labels, k), pixels(images_b, labels_b, k)
        out[name] = float(wasserstein_distance(a, b)) if len(a) and len(b) else float("nan")
    return out


def speckle_snr(images: np.ndarray, labels: np.ndarray, *, names: list[str], patch: int = 5) -> dict[str, float]:
    """Per-tissue speckle signal-to-noise ratio: local mean over local standard deviation.

    Echo texture is speckle: inside one tissue the intensity fluctuates around its mean, the more
    so the coarser the speckle (fully developed speckle of envelope data has mean / std of about
    1.91). Measured in ``patch`` x ``patch`` windows that lie wholly inside one class, as the
    median over those windows, it is a texture figure that a per-pixel histogram (and so the
    Wasserstein distance of :func:`intensity_distances`) does not see: a blurred image can have the
    right histogram and far too high an SNR.

    Args:
        images: (N, H, W) images in [0, 1].
        labels: (N, H, W) their label maps.
        names: class names, index = label value.
        patch: window side in pixels.

    Returns:
        ``{name: median local SNR}``; NaN for a class with no whole window (or no texture at all).
    """
    images = np.asarray(images, np.float64)
    labels = np.asarray(labels)
    if images.shape != labels.shape or images.ndim != 3:
        raise ValueError(f"images {images.shape} and label maps {labels.shape} must be (N, H, W) of the same shape")
    size = (1, patch, patch)
    mean = ndimage.uniform_filter(images, size=size, mode="nearest")
    std = np.sqrt(np.maximum(ndimage.uniform_filter(images**2, size=size, mode="nearest") - mean**2, 0.0))
    out = {}
    for k, name in enumerate(names):
        inside = ndimage.minimum_filter((labels == k).astype(np.uint8), size=size, mode="constant") > 0
        inside &= std > 1e-6
        out[name] = float(np.median(mean[inside] / std[inside])) if inside.any() else float("nan")
    return out


def sector_mask(images: np.ndarray, *, threshold: float = 0.03) -> np.ndarray:
    """Where a set of echo images shows tissue: the pixels whose mean over the set exceeds ``threshold``.

    Outside the imaging sector an echo image is black in every frame, so the mean image draws the
    fan; a generator that has learnt the sector's look draws the same fan.

    Args:
        images: (N, H, W) images in [0, 1].
        threshold: mean intensity above which a pixel is inside the sector.

    Returns:
        (H, W) boolean mask.
    """
    return np.asarray(images, np.float32).mean(axis=0) > threshold


def echo_texture(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, *, names: list[str],
                 fake_labels: np.ndarray | None = None) -> dict[str, float]:
    """The speckle and sector look of generated echo against real echo, as numbers.

    Args:
        real: (N, H, W) real images in [0, 1].
        fake: (M, H, W) generated images.
        labels: (N, H, W) label maps of ``real`` (and of ``fake`` unless ``fake_labels``).
        names: class names, index = label value.
        fake_labels: (M, H, W) label maps of ``fake`` when they differ.

    Returns:
        ``snr_real_<name>`` and ``snr_generated_<name>`` per class (:func:`speckle_snr`), and
        ``sector_dice``: the Dice overlap of the two sets' fans (:func:`sector_mask`), 1 when the
        generator draws the real sector.
    """
    fake_labels = labels if fake_labels is None else fake_labels
    out = {f"snr_real_{k}": v for k, v in speckle_snr(real, labels, names=names).items()}
    out |= {f"snr_generated_{k}": v for k, v in speckle_snr(fake, fake_labels, names=names).items()}
    a, b = sector_mask(real), sector_mask(fake)
    out["sector_dice"] = float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))
    return out


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the closest reference image (root-mean-square pixel difference).

    Used to ask whether a GAN copies its training images: generated images should be no closer
    to the training set than new real patients are.

    Args:
        queries: (N, H, W) images.
        references: (M, H, W) images of the same size.
        batch_size: queries compared at once.

    Returns:
        ``(distance, index)``: (N,) RMS distances and (N,) indices into ``references``.
    """
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(f"queries are {queries.shape[1:]}, references {references.shape[1:]}")
    ref = torch.from_numpy(np.asarray(references, np.float32).reshape(len(references), -1))
    dist, idx = [], []
    for i in range(0, len(queries), batch_size):
        q = torch.from_numpy(np.asarray(queries[i : i + batch_size], np.float32).reshape(-1, ref.shape[1]))
        d = torch.cdist(q, ref)
        best = d.min(1)
        dist.append(best.values / np.sqrt(ref.shape[1]))
        idx.append(best.indices)
    return torch.cat(dist).numpy(), torch.cat(idx).numpy()


def diversity(labels: np.ndarray, *, n_pairs: int = 2000, seed: int = 0) -> float:
    """Mean dissimilarity of random pairs of label maps: 1 - mean foreground Dice of the pair.

    0 means every map is the same; real datasets give the yardstick.

    Args:
        labels: (N, H, W) label maps (N >= 2).
        n_pairs: random pairs drawn.
        seed: seed of the pairs.

    Returns:
        The mean over pairs (classes absent from both maps of a pair are left out).
    """
    if len(labels) < 2:
        raise ValueError("diversity needs at least two label maps")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(labels), n_pairs)
    b = (a + rng.integers(1, len(labels), n_pairs)) % len(labels)
    labels = torch.from_numpy(np.asarray(labels))
    dice = per_class_dice(labels[a], labels[b], num_classes=4)
    return float(1 - np.nanmean(dice.numpy()))
