"""The study's own plots: Dice against the share of real patients, per structure, and the slices
where regimes disagree. Every function returns its Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..viz import legend_handles, overlay
from .analysis import run_means
from .results import REGIMES


def study_points(results: pd.DataFrame, *, metric: str = "dice"):
    """Each regime's mean ``metric`` against the share of real patients, one panel per domain.

    Points are the mean over seeds of each run's mean (structures and volumes), bars the standard
    deviation over seeds.

    Args:
        results: the table of :func:`cardigan_utils.study.run_study`.
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        The Figure.
    """
    runs = run_means(results, metric=metric).assign(percent=lambda t: (100 * t.fraction).round(1))
    order = [r for r in REGIMES if r in set(runs.regime)]
    grid = sns.catplot(data=runs, x="percent", y="mean", hue="regime", hue_order=order, col="domain", kind="point",
                       errorbar="sd", dodge=0.3, height=3.2, aspect=1.2, markersize=5)
    grid.set_axis_labels("% of the real training patients", f"mean {metric}")
    return grid.figure


def study_boxes(results: pd.DataFrame, *, fraction: float | None = None, metric: str = "dice"):
    """Per-volume ``metric`` per structure and regime at one real-data fraction, one panel per domain.

    Args:
        results: the table of :func:`cardigan_utils.study.run_study`.
        fraction: the fraction shown (default: the largest).
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        The Figure.
    """
    fraction = float(results.fraction.max()) if fraction is None else float(fraction)
    shown = results[np.isclose(results.fraction, fraction)]
    order = [r for r in REGIMES if r in set(shown.regime)]
    grid = sns.catplot(data=shown, x="structure", y=metric, hue="regime", hue_order=order, col="domain", kind="box",
                       height=3.2, aspect=1.3, fliersize=2, linewidth=0.8)
    grid.figure.suptitle(f"{100 * fraction:g} % of the real training patients, every seed", y=1.03, fontsize=10)
    return grid.figure


def regime_predictions(images: np.ndarray, labels: np.ndarray, predictions: dict[str, np.ndarray], *,
                       dice: dict[str, np.ndarray] | None = None, modality: str = "mri", size: float = 1.8):
    """Slices (rows) with their truth and each regime's prediction (columns).

    Args:
        images: (N, H, W) images.
        labels: (N, H, W) ground truth.
        predictions: ``{regime: (N, H, W) predicted labels}``.
        dice: ``{regime: (N,) slice Dice}`` printed in the titles, or None.
        modality: ``"mri"`` or ``"echo"`` (legend names).
        size: inches per panel.

    Returns:
        The Figure.
    """
    cols = ["truth", *predictions]
    fig, axes = plt.subplots(len(images), len(cols), figsize=(size * len(cols), size * len(images)), squeeze=False)
    for i in range(len(images)):
        for j, name in enumerate(cols):
            label = labels[i] if name == "truth" else predictions[name][i]
            title = name if i == 0 else None
            if dice is not None and name != "truth":
                title = f"{name}\nDice {dice[name][i]:.2f}" if i == 0 else f"Dice {dice[name][i]:.2f}"
            overlay(axes[i, j], images[i], label, title=title)
    fig.legend(handles=legend_handles(modality), loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout()
    return fig
