"""Plots for the notebooks (matplotlib + seaborn). Every function returns its Figure."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from .augment import augment_batch, strong_augment_batch
from .labels import CLASS_COLORS, LABELS, label_image
from .metrics import ed_es_table
from .runs import figure_path


def overlay(ax, image: np.ndarray, label: np.ndarray | None = None, *, alpha: float = 0.4, title: str | None = None):
    """Draw a grey image with its label map on top.

    Args:
        ax: a matplotlib Axes.
        image: 2-D image.
        label: 2-D label map (0 is not drawn), or None for the image alone.
        alpha: opacity of the labels.
        title: Axes title.

    Returns:
        The Axes.
    """
    ax.imshow(image, cmap="gray", interpolation="nearest")
    if label is not None and alpha > 0:
        masked = np.ma.masked_where(label == 0, label)
        ax.imshow(masked, cmap=ListedColormap(CLASS_COLORS), vmin=0, vmax=3, alpha=alpha, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def legend_handles(modality: str):
    """Patches naming each structure in its overlay colour.

    Args:
        modality: ``"mri"`` or ``"echo"``.

    Returns:
        A list of matplotlib patches.
    """
    return [Patch(color=CLASS_COLORS[k], label=LABELS[modality][k]) for k in (1, 2, 3)]


def gallery(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | None = None,
    *,
    titles: Sequence[str] | None = None,
    modality: str = "mri",
    ncols: int = 6,
    alpha: float = 0.4,
    size: float = 2.2,
):
    """A grid of images with label overlays.

    Args:
        images: 2-D images.
        labels: their label maps (or None).
        titles: one per image.
        modality: for the legend.
        ncols: columns of the grid.
        alpha: label opacity.
        size: inches per panel.

    Returns:
        The Figure.
    """
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.3) * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            overlay(ax, images[i], None if labels is None else labels[i], alpha=alpha, title=titles[i] if titles else None)
        else:
            ax.set_axis_off()
    if labels is not None:
        fig.legend(handles=legend_handles(modality), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if labels is not None else 0, 1, 1))
    return fig


def mid_slices(cases, *, titles: Sequence[str] | None = None, alpha: float = 0.4, size: float = 3.0):
    """The middle slice of each Case, image alone (top row) and with its labels (bottom row).

    Used to put phantom and real data side by side at their native resolution.

    Args:
        cases: Cases (MRI volumes or 2-D echo images).
        titles: one per case (default: dataset and key).
        alpha: label opacity of the bottom row.
        size: inches per panel.

    Returns:
        The Figure.
    """
    fig, axes = plt.subplots(2, len(cases), figsize=(size * len(cases), 2 * size + 0.4), squeeze=False)
    for j, case in enumerate(cases):
        labelled = np.flatnonzero(case.label.reshape(-1, case.label.shape[2]).any(axis=0))
        z = int(labelled[len(labelled) // 2]) if len(labelled) else case.image.shape[2] // 2
        image, label = case.image[:, :, z].T, case.label[:, :, z].T
        title = titles[j] if titles else f"{case.dataset}\n{case.key}"
        overlay(axes[0, j], image, title=title)
        overlay(axes[1, j], image, label, alpha=alpha)
    fig.legend(handles=legend_handles(cases[0].modality), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def cache_gallery(cache, *, n: int = 12, split: str | None = None, seed: int = 0, alpha: float = 0.4):
    """A gallery of ``n`` random slices of a slice cache, titled patient / phase / slice.

    Args:
        cache: a :class:`~cardigan_utils.data.cache.SliceCache`.
        n: how many slices.
        split: restrict to one split.
        seed: which slices.
        alpha: label opacity.

    Returns:
        The Figure.
    """
    idx = cache.indices(split)
    idx = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    rows = cache.slices.iloc[idx]
    titles = [f"{r.patient_id} {r.view} {r.phase} z{r.slice_index}".replace("  ", " ") for r in rows.itertuples()]
    return gallery([cache.images[i] for i in idx], [cache.labels[i] for i in idx], titles=titles,
                   modality=cache.manifest["modality"], alpha=alpha)


def class_intensities(cache, *, max_slices: int = 400, seed: int = 0) -> pd.DataFrame:
    """Normalised pixel intensities per class, sampled from a slice cache.

    Args:
        cache: a slice cache.
        max_slices: slices sampled.
        seed: sampling seed.

    Returns:
        Long DataFrame (structure, intensity), up to 2,000 pixels per structure and slice.
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(cache), size=min(max_slices, len(cache)), replace=False)
    names = LABELS[cache.manifest["modality"]]
    parts = []
    for i in idx:
        img, lab = np.asarray(cache.images[i]), np.asarray(cache.labels[i])
        for k, name in names.items():
            values = img[lab == k]
            if len(values):
                values = rng.choice(values, size=min(len(values), 2000 // max(1, len(idx) // 50)), replace=False)
                parts.append(pd.DataFrame({"structure": name, "intensity": values}))
    return pd.concat(parts, ignore_index=True)


def dataset_overview(cache):
    """Four seaborn panels: area per structure, intensity per structure, spacing, slices per case.

    Args:
        cache: a slice cache.

    Returns:
        The Figure.
    """
    names = [LABELS[cache.manifest["modality"]][k] for k in (1, 2, 3)]
    palette = {"background": "#999999", **dict(zip(names, CLASS_COLORS[1:]))}
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    known = cache.slices["spacing_known"].all() if "spacing_known" in cache.slices else True
    # a derived copy without true spacing (CAMUS_224): areas in pixels of the cache, never in mm²
    prefix, unit = ("area_", "area (mm²)") if known else ("pixels_", "area (cache pixels)")
    areas = cache.slices.melt(value_vars=[f"{prefix}{n}" for n in names], var_name="structure", value_name=unit)
    areas["structure"] = areas["structure"].str.removeprefix(prefix)
    sns.boxplot(data=areas[areas[unit] > 0], x="structure", y=unit, hue="structure", ax=axes[0], palette=palette)
    axes[0].set_title("area per slice (where present)" + ("" if known else ": spacing unknown"))
    sns.violinplot(data=class_intensities(cache), x="structure", y="intensity", hue="structure", ax=axes[1], cut=0,
                   density_norm="width", palette=palette)
    axes[1].set_title("normalised intensity per class")
    cases = cache.cases
    if cases["spacing_x"].notna().any():
        sns.histplot(data=cases, x="spacing_x", ax=axes[2], bins=15)
    else:
        axes[2].text(0.5, 0.5, "unknown\n(placeholder in the headers)", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set(title="in-plane spacing of the source", xlabel="mm")
    sns.countplot(data=cases, x="n_slices", ax=axes[3], color="#777")
    axes[3].set(title="slices per source volume", xlabel="slices")
    fig.tight_layout()
    return fig


def ed_es_volumes(cache, *, structure: str | None = None):
    """Paired ED vs ES volumes of one structure per patient (the LV cavity by default).

    For MRI the volumes are in ml; for echo (2-D views) the areas are in cm² (mm²/100).

    Args:
        cache: a slice cache.
        structure: structure name; default ``"LV"``.

    Returns:
        The Figure.
    """
    structure = structure or "LV"
    wide, unit = ed_es_table(cache, structure=structure)
    echo = cache.manifest["modality"] == "echo"
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    for ed, es in zip(wide["ED"], wide["ES"]):
        ax.plot([0, 1], [ed, es], color="#999", lw=0.8, marker="o", ms=3)
    ax.set_xticks([0, 1], ["ED", "ES"])
    ax.set_xlim(-0.3, 1.3)
    drop = float((wide["ED"] > wide["ES"]).mean()) if len(wide) else float("nan")
    ax.set(ylabel=f"{structure} {'area' if echo else 'volume'} ({unit})",
           title=f"{structure}: ED vs ES ({drop:.0%} of {len(wide)} drop)")
    fig.tight_layout()
    return fig


def label_gallery(labels: Sequence[np.ndarray], *, titles: Sequence[str] | None = None, modality: str = "mri",
                  ncols: int = 8, size: float = 1.6):
    """A grid of label maps drawn in the overlay colours.

    Args:
        labels: 2-D label maps.
        titles: one per map.
        modality: for the legend.
        ncols: columns.
        size: inches per panel.

    Returns:
        The Figure.
    """
    n = len(labels)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.3) * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(label_image(np.asarray(labels[i])), interpolation="nearest")
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.legend(handles=legend_handles(modality), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def loss_curves(history: pd.DataFrame, *, columns: Sequence[str], title: str = "", logy: bool = False):
    """Training curves: one panel per group of columns that exist in ``history``.

    Args:
        history: one row per epoch with an ``epoch`` column.
        columns: columns to draw (missing ones are skipped; validation columns are drawn only
            where measured).
        title: figure title.
        logy: logarithmic y axis.

    Returns:
        The Figure.
    """
    present = [c for c in columns if c in history.columns]
    fig, axes = plt.subplots(1, len(present), figsize=(3.6 * len(present), 3.0), squeeze=False)
    for ax, col in zip(axes.flat, present):
        data = history[["epoch", col]].dropna()
        ax.plot(data["epoch"], data[col], marker="o" if len(data) < 30 else None, ms=3)
        ax.set(title=col, xlabel="epoch")
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_scatter(coords: np.ndarray, table: pd.DataFrame, *, color_by: Sequence[str] = ("phase", "slice_pos", "group")):
    """Scatter of the first two latent coordinates, one panel per colouring column.

    Args:
        coords: (N, >=2) coordinates (e.g. principal components).
        table: slice table of the same N rows.
        color_by: columns to colour by (skipped when absent or constant).

    Returns:
        The Figure.
    """
    cols = [c for c in color_by if c in table.columns and table[c].nunique() > 1]
    cols = cols or [None]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.8), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        data = pd.DataFrame({"PC1": coords[:, 0], "PC2": coords[:, 1]})
        if col:
            data[col] = table[col].to_numpy()
        sns.scatterplot(data=data, x="PC1", y="PC2", hue=col, s=10, ax=ax, palette="viridis" if col == "slice_pos" else None)
        ax.set_title(f"latent space, coloured by {col}" if col else "latent space")
    fig.tight_layout()
    return fig


def failure_examples(masks: np.ndarray, report: pd.DataFrame, *, modality: str = "mri", per_check: int = 2):
    """Examples of masks failing each plausibility check (checks nobody failed are left out).

    Args:
        masks: (N, H, W) label maps.
        report: one row per mask, one boolean column per check (True = passed), plus ``valid``.
        modality: for the legend.
        per_check: examples per failed check.

    Returns:
        The Figure, or None if every mask is valid.
    """
    checks = [c for c in report.columns if c != "valid" and report[c].dtype == bool]
    shown, titles = [], []
    for check in checks:
        for i in np.flatnonzero(~report[check].to_numpy())[:per_check]:
            shown.append(masks[i])
            titles.append(check.replace("_", " "))
    if not shown:
        return None
    return label_gallery(shown, titles=titles, modality=modality, ncols=6, size=2.0)


def real_vs_generated(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, *, modality: str = "mri",
                      size: float = 2.0):
    """Label map, real image and generated image of the same anatomy, one column per slice.

    Args:
        real: (N, H, W) real images.
        fake: (N, H, W) images generated from ``labels``.
        labels: (N, H, W) label maps.
        modality: for the legend.
        size: inches per panel.

    Returns:
        The Figure.
    """
    n = len(real)
    fig, axes = plt.subplots(3, n, figsize=(size * n, size * 3), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(label_image(labels[j]), interpolation="nearest")
        axes[0, j].set_axis_off()
        overlay(axes[1, j], real[j])
        overlay(axes[2, j], fake[j])
    for row, name in enumerate(("label map", "real", "generated")):
        axes[row, 0].set_axis_on()
        axes[row, 0].set(xticks=[], yticks=[])
        axes[row, 0].set_ylabel(name)
    fig.legend(handles=legend_handles(modality), loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def echo_look(real: np.ndarray, fake: np.ndarray, *, example: int = 0, zoom: float = 2.5, size: float = 2.8):
    """The sector and the speckle of real and generated echo, side by side.

    Top: the mean image of each set (the imaging sector is where it is not black). Bottom: the
    centre of one real image and of the image generated from its label map, magnified, where the
    speckle's grain shows.

    Args:
        real: (N, H, W) real images in [0, 1].
        fake: (N, H, W) images generated from the real images' label maps.
        example: which image to magnify.
        zoom: magnification of the centre crop.
        size: inches per panel.

    Returns:
        The Figure.
    """
    h, w = real.shape[1:]
    ch, cw = int(h / zoom / 2), int(w / zoom / 2)
    crop = (slice(h // 2 - ch, h // 2 + ch), slice(w // 2 - cw, w // 2 + cw))
    fig, axes = plt.subplots(2, 2, figsize=(2 * size, 2 * size))
    for j, (name, images) in enumerate((("real", real), ("generated", fake))):
        axes[0, j].imshow(np.asarray(images).mean(axis=0), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{name}: mean of {len(images)} images")
        axes[1, j].imshow(np.asarray(images[example])[crop], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1, j].set_title(f"{name}: centre x{zoom:g}")
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def intensity_histograms(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, *, names: Sequence[str],
                         bins: int = 50):
    """Per-class intensity histograms of real and generated images of the same label maps.

    Args:
        real: (N, H, W) real images in [0, 1].
        fake: (N, H, W) generated images in [0, 1].
        labels: (N, H, W) label maps of both.
        names: class names, index = label value.
        bins: histogram bins over [0, 1].

    Returns:
        The Figure.
    """
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False, sharex=True)
    edges = np.linspace(0, 1, bins + 1)
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        mask = labels == k
        for data, label, color in ((real, "real", "0.3"), (fake, "generated", "#d62728")):
            if mask.any():
                ax.hist(data[mask], bins=edges, density=True, histtype="step", lw=1.5, color=color, label=label)
        ax.set(title=name, xlabel="intensity")
    axes.flat[0].set_ylabel("density")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def appearance_spread(tables: dict[str, pd.DataFrame], *, names: Sequence[str], measure: str = "mean",
                      max_points: int = 300, seed: int = 0):
    """Per class, one point per image of an appearance figure, for each set of images side by side.

    Shows how widely images vary (issue 22): real images next to generated ones with N(0, I) style
    codes and with style codes from the fitted density, say.

    Args:
        tables: set name -> :func:`~cardigan_utils.metrics.appearance.appearance_table` of its images.
        names: the classes to show (a column ``<measure>_<name>`` of each table).
        measure: ``"mean"`` (per-image mean intensity) or ``"noise"``.
        max_points: at most this many images drawn per set (a seeded subset; the boxes use them all).
        seed: seed of that subset.

    Returns:
        The Figure.
    """
    rng = np.random.default_rng(seed)
    long = pd.concat([t[[f"{measure}_{n}" for n in names]].set_axis(list(names), axis=1).assign(set=label)
                      for label, t in tables.items()]).melt(id_vars="set", var_name="class", value_name=measure).dropna()
    draw = pd.Series(rng.random(len(long)), index=long.index)
    shown = long[draw.groupby([long["set"], long["class"]]).rank(method="first") <= max_points]
    fig, axes = plt.subplots(1, len(names), figsize=(0.6 + (0.6 + 0.75 * len(tables)) * len(names), 3.2), squeeze=False,
                             sharey=True)
    order = list(tables)
    for ax, name in zip(axes.flat, names):
        sns.boxplot(data=long[long["class"] == name], x="set", y=measure, order=order, ax=ax, color="0.9",
                    showfliers=False, width=0.6)
        sns.stripplot(data=shown[shown["class"] == name], x="set", y=measure, order=order, ax=ax, size=2.5,
                      alpha=0.5, jitter=0.25, hue="set", hue_order=order, legend=False)
        ax.set(title=name, xlabel="")
        ax.tick_params(axis="x", labelrotation=30)
    axes.flat[0].set_ylabel(f"per-image {measure} intensity" if measure == "mean" else f"per-image {measure}")
    fig.tight_layout()
    return fig


def sample_progress(samples_dir: str | Path, *, max_rows: int = 6):
    """The fixed label batch rendered over training: its label maps, then one row per saved epoch (evenly chosen).

    Args:
        samples_dir: the ``<name>_samples`` folder written by ``train_spade``.
        max_rows: at most this many epochs, first and last included.

    Returns:
        The Figure.
    """
    paths = sorted(Path(samples_dir).glob("epoch_*.png"))
    if not paths:
        raise FileNotFoundError(f"{samples_dir}: no sample grids; train the GAN first (notebook 03)")
    chosen = [paths[i] for i in sorted({int(round(i)) for i in np.linspace(0, len(paths) - 1, min(max_rows, len(paths)))})]
    names = [f"epoch {int(p.stem.split('_')[1])}" for p in chosen]
    if (Path(samples_dir) / "labels.png").exists():
        chosen, names = [Path(samples_dir) / "labels.png", *chosen], ["label maps", *names]
    rows = [plt.imread(p) for p in chosen]
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.6 * rows[0].shape[1] / rows[0].shape[0], 1.7 * len(rows)),
                             squeeze=False)
    for ax, img, name in zip(axes[:, 0], rows, names):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig


def nearest_real(synthetic: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, *,
                 yardstick: np.ndarray | None = None, size: float = 2.0):
    """Generated images above their nearest real training images, and the distance distributions.

    Args:
        synthetic: (k, H, W) generated images.
        neighbours: (k, H, W) their nearest real training images.
        distances: (N,) nearest-neighbour distances of all generated images checked.
        yardstick: (M,) the same distances for real images of held-out patients (or None).
        size: inches per panel.

    Returns:
        The Figure.
    """
    k = len(synthetic)
    fig = plt.figure(figsize=(size * (k + 2.5), size * 2))
    grid = fig.add_gridspec(2, k + 3)
    for j in range(k):
        for row, (img, name) in enumerate(((synthetic[j], "generated"), (neighbours[j], "nearest real"))):
            ax = fig.add_subplot(grid[row, j])
            overlay(ax, img)
            if j == 0:
                ax.set_axis_on()
                ax.set(xticks=[], yticks=[], ylabel=name)
    ax = fig.add_subplot(grid[:, k:])
    bins = np.linspace(0, max(distances.max(), yardstick.max() if yardstick is not None else 0) * 1.05, 40)
    ax.hist(distances, bins=bins, density=True, alpha=0.6, color="#d62728", label="generated to nearest train")
    if yardstick is not None:
        ax.hist(yardstick, bins=bins, density=True, alpha=0.6, color="0.4", label="held-out real to nearest train")
    ax.set(xlabel="RMS distance", ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def augmentation_examples(image: np.ndarray, label: np.ndarray, *, modality: str = "mri", seed: int = 0,
                          strong: bool = False, size: float = 2.0):
    """One slice under each augmentation alone (strong settings), and all together.

    Args:
        image: (H, W) image in [0, 1].
        label: (H, W) label map.
        modality: ``"mri"`` or ``"echo"`` (echo has no flips).
        seed: seed of the random draws.
        strong: the intensity transforms of :func:`~cardigan_utils.augment.strong_augment_batch`
            (its geometry is the classical one) instead of the classical augmentation.
        size: inches per panel.

    Returns:
        The Figure.
    """
    geometry_off = dict(flips=False, rotate_deg=0.0, scale=0.0, translate=0.0, elastic=0.0)
    if strong:
        augment = strong_augment_batch
        off = dict(geometry_off, tissue=0.0, curve=0.0, gin=0.0, bias=0.0, low_res=1.0, blur=0.0, noise=0.0)
        variants = {"original": off, "tissue contrast": {**off, "tissue": 0.6}, "curve": {**off, "curve": 1.0},
                    "GIN": {**off, "gin": 1.0}, "bias field": {**off, "bias": 0.8}, "low resolution": {**off, "low_res": 3.0},
                    "blur / sharpen": {**off, "blur": 2.0}, "noise": {**off, "noise": 0.15}, "all (default)": {}}
    else:
        augment = augment_batch
        off = dict(geometry_off, gamma=0.0, noise=0.0, blur=0.0, bias=0.0)
        variants = {"original": off, "flip": {**off, "flips": True}, "rotate": {**off, "rotate_deg": 25.0},
                    "scale": {**off, "scale": 0.25}, "shift": {**off, "translate": 0.2}, "elastic": {**off, "elastic": 0.06},
                    "gamma": {**off, "gamma": 0.6}, "blur": {**off, "blur": 1.5}, "bias field": {**off, "bias": 0.6},
                    "noise": {**off, "noise": 0.08}, "all (default)": {}}
        if modality == "echo":
            variants.pop("flip")
    x = torch.as_tensor(np.array(image, np.float32))[None, None]
    y = torch.as_tensor(np.array(label, np.int64))[None]
    fig, axes = plt.subplots(1, len(variants), figsize=(size * len(variants), size * 1.1), squeeze=False)
    for ax, (name, kw) in zip(axes[0], variants.items()):
        ax_x, ax_y = augment(x, y, torch.Generator().manual_seed(seed), modality=modality,
                             p=1.0 if name != "all (default)" else 0.5, **kw)
        overlay(ax, ax_x[0, 0].numpy(), ax_y[0].numpy(), alpha=0.25, title=name)
    fig.tight_layout()
    return fig


def save_figure(fig, run_dir: str | Path, notebook: str, name: str) -> Path:
    """Save a figure as ``run_dir/<notebook>/figures/<name>.png`` (150 dpi).

    Args:
        fig: the Figure.
        run_dir: the run directory.
        notebook: the notebook's stem, e.g. ``"01_datasets"``.
        name: file stem.

    Returns:
        The PNG path.
    """
    path = figure_path(run_dir, notebook, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path
