"""Image realism and variety: per-tissue intensity distances, nearest neighbours, shape diversity."""

from __future__ import annotations

import numpy as np
import torch
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
