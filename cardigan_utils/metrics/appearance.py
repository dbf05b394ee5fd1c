"""How much images vary in appearance from one to the next: contrast, noise and bias field per image.

:func:`~cardigan_utils.metrics.realism.intensity_distances` pools the pixels of every image: a
generator that renders every heart with the same mid-grey blood pool can match the pooled
histogram of real patients whose blood pools range from dark to bright. Here each image gets its
own figures, so the *spread across images* can be compared (issue 22: generated LV blood pools
at about 0.55 where real ACDC patients spread from 0.2 to 1.0):

- ``mean_<class>``: the mean intensity of the class in that image (its contrast);
- ``noise_<class>``: the standard deviation of what a 3x3 median filter removes, inside the class
  eroded by ``erode`` pixels (so edges between classes do not count as noise);
- ``bias``: the standard deviation, over the labelled structures, of a heavily low-passed image
  after each class's mean is taken off (what is left of a smooth bias field; the low-pass is
  restricted to the structures by normalised convolution, so the background does not leak in).

:func:`appearance_table` measures a set of images, one row per image; :func:`spread_comparison`
puts the spread across images of a generated set next to that of a real one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

SPREADS = ("std", "iqr")
"""How :func:`spread_comparison` measures a spread across images."""


def _check(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images, np.float64), np.asarray(labels)
    if images.ndim != 3 or images.shape != labels.shape:
        raise ValueError(f"images {images.shape} and label maps {labels.shape} must be (N, H, W) of the same shape")
    return images, labels


def _flat(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, H * W), also for N = 0."""
    return x.reshape(len(x), x.shape[1] * x.shape[2])


def class_means(images: np.ndarray, labels: np.ndarray, *, num_classes: int, min_pixels: int = 1) -> np.ndarray:
    """The mean intensity of each class in each image.

    Args:
        images: (N, H, W) images.
        labels: (N, H, W) integer label maps.
        num_classes: classes 0 .. num_classes - 1.
        min_pixels: a class with fewer pixels in an image gets NaN there.

    Returns:
        (N, num_classes) means.
    """
    images, labels = _check(images, labels)
    n = len(images)
    flat = _flat(labels).astype(np.int64) + num_classes * np.arange(n)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n * num_classes)[: n * num_classes].reshape(n, num_classes)
    sums = np.bincount(flat.ravel(), weights=images.ravel(), minlength=n * num_classes)[: n * num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums.reshape(n, num_classes) / counts
    means[counts < max(1, min_pixels)] = np.nan
    return means


def appearance_table(images: np.ndarray, labels: np.ndarray, *, names: list[str], erode: int = 1,
                     bias_sigma: float = 1 / 16, min_pixels: int = 10) -> pd.DataFrame:
    """Per-image appearance figures: per-class mean intensity and noise, and a bias-field figure.

    Args:
        images: (N, H, W) images in [0, 1].
        labels: (N, H, W) their label maps.
        names: class names, index = label value.
        erode: pixels taken off each class's border before its noise is measured (the 3x3 median
            filter reaches one pixel across a border).
        bias_sigma: the low-pass's Gaussian width, as a fraction of the image side (1/16: 4 pixels at 64x64).
        min_pixels: fewer pixels of a class (after erosion, for the noise) give NaN.

    Returns:
        One row per image: ``mean_<name>`` and ``noise_<name>`` per class, and ``bias``; NaN where a
        class is absent (or too small) in an image, and ``bias`` NaN without labelled structures.
    """
    images, labels = _check(images, labels)
    if erode < 0 or not bias_sigma > 0:
        raise ValueError(f"erode must be >= 0 and bias_sigma > 0, not {erode} and {bias_sigma}")
    num_classes = len(names)
    means = class_means(images, labels, num_classes=num_classes, min_pixels=min_pixels)
    residual = images - ndimage.median_filter(images, size=(1, 3, 3), mode="nearest")
    table = {f"mean_{name}": means[:, k] for k, name in enumerate(names)}
    for k, name in enumerate(names):
        inside = labels == k
        if erode:
            inside = ndimage.binary_erosion(inside, structure=np.ones((1, 3, 3), bool), iterations=erode, border_value=1)
        table[f"noise_{name}"] = _masked_std(residual, inside, min_pixels)
    # bias: take each class's mean off, low-pass what is left inside the structures, measure its spread
    flat = np.nan_to_num(np.take_along_axis(means, _flat(labels).astype(np.int64), axis=1))
    centred = images - flat.reshape(images.shape)
    structures = (labels > 0).astype(np.float64)
    sigma = (0.0, bias_sigma * images.shape[1], bias_sigma * images.shape[2])
    weight = ndimage.gaussian_filter(structures, sigma=sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = ndimage.gaussian_filter(centred * structures, sigma=sigma, mode="constant") / weight
    table["bias"] = _masked_std(smooth, structures > 0, min_pixels)
    return pd.DataFrame(table)


def _masked_std(values: np.ndarray, mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Per image, the standard deviation of ``values`` where ``mask`` is set (NaN under ``min_pixels``)."""
    mask = _flat(mask)
    n = mask.sum(1)
    v = np.where(mask, _flat(values), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = v.sum(1) / n
        var = np.where(mask, (v - mean[:, None]) ** 2, 0.0).sum(1) / n
    out = np.sqrt(var)
    out[n < max(2, min_pixels)] = np.nan
    return out


def spread_comparison(real_table: pd.DataFrame, generated_table: pd.DataFrame, *, spread: str = "std") -> pd.DataFrame:
    """The spread across images of each appearance figure, real against generated.

    Args:
        real_table: :func:`appearance_table` of real images.
        generated_table: :func:`appearance_table` of generated images (the same columns).
        spread: ``"std"`` (standard deviation across images) or ``"iqr"`` (interquartile range).

    Returns:
        One row per figure (the columns both tables share): ``real_median``, ``generated_median``,
        ``real_spread``, ``generated_spread`` and ``ratio`` (generated / real: 1 when the generated
        images vary as much as the real ones, below 1 when they are more alike). NaN values (a
        class absent from an image) are left out; fewer than two values give NaN.
    """
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, not {spread!r}")
    columns = [c for c in real_table.columns if c in generated_table.columns]
    if not columns:
        raise ValueError("the two tables share no column: give two appearance_table()s")

    def summary(values: pd.Series) -> tuple[float, float]:
        v = values.dropna().to_numpy(np.float64)
        if len(v) < 2:
            return float("nan"), float("nan")
        size = np.std(v, ddof=1) if spread == "std" else np.subtract(*np.percentile(v, [75, 25]))
        return float(np.median(v)), float(size)

    rows = {}
    for column in columns:
        (real_median, real_spread), (gen_median, gen_spread) = summary(real_table[column]), summary(generated_table[column])
        ratio = gen_spread / real_spread if real_spread > 1e-12 else float("nan")  # NaN compares False
        rows[column] = {"real_median": real_median, "generated_median": gen_median, "real_spread": real_spread,
                        "generated_spread": gen_spread, "ratio": ratio}
    return pd.DataFrame.from_dict(rows, orient="index")


def spread_table(tables: dict[str, pd.DataFrame], *, real: str, measure: str | None = "mean") -> pd.DataFrame:
    """The spreads of several sets of images side by side, each against the real set's (:func:`spread_comparison`).

    Args:
        tables: set name -> :func:`appearance_table` of its images; one of them the real images.
        real: the name of the real set in ``tables``.
        measure: keep only the figures of this measure (``"mean"``, ``"noise"``, ``"bias"``); None: all.

    Returns:
        One row per figure; columns ``real spread``, then ``<set> spread`` and ``<set> ratio`` per other set.
    """
    if real not in tables:
        raise ValueError(f"no set named {real!r} among {sorted(tables)}")
    out = {}
    for name, table in tables.items():
        if name == real:
            continue
        comparison = spread_comparison(tables[real], table)
        out.setdefault("real spread", comparison["real_spread"])
        out[f"{name} spread"], out[f"{name} ratio"] = comparison["generated_spread"], comparison["ratio"]
    frame = pd.DataFrame(out)
    return frame if measure is None else frame[frame.index.str.startswith(measure)]
