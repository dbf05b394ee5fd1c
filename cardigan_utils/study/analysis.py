"""Reading the study's results: the paper's table, paired differences with their intervals, the
clinical (EF) table, the verdict in words, and the slices where regimes disagree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import slice_dice
from .results import REGIMES


def run_means(results: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """One number per run and domain: ``metric`` averaged over volumes and structures (and per structure).

    Args:
        results: the table of :func:`run_study`.
        metric: ``"dice"`` or ``"hd95_mm"`` (NaNs, structures absent from a volume, are skipped).

    Returns:
        One row per (domain, regime, fraction, seed): ``mean`` and one column per structure.
    """
    keys = ["domain", "regime", "fraction", "seed"]
    per_structure = results.pivot_table(index=keys, columns="structure", values=metric, aggfunc="mean")
    per_structure.columns.name = None
    return per_structure.assign(mean=results.groupby(keys)[metric].mean()).reset_index()


def summary_table(results: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """Mean and standard deviation over seeds of each run's mean ``metric`` (the paper's table).

    Args:
        results: the table of :func:`run_study`.
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        One row per (domain, fraction, regime), in :data:`REGIMES` order: ``mean``, ``std`` (over
        seeds; NaN with one seed), ``n_seeds`` and the mean of each structure.
    """
    runs = run_means(results, metric=metric)
    structures = [c for c in runs.columns if c not in ("domain", "regime", "fraction", "seed", "mean")]
    g = runs.groupby(["domain", "fraction", "regime"])
    table = g[structures].mean().assign(mean=g["mean"].mean(), std=g["mean"].std(), n_seeds=g["seed"].nunique())
    table = table.reset_index()
    order = {r: i for i, r in enumerate(REGIMES)}
    table = table.sort_values(["domain", "fraction", "regime"], key=lambda s: s.map(order) if s.name == "regime" else s)
    return table[["domain", "fraction", "regime", "mean", "std", "n_seeds", *structures]].reset_index(drop=True)


def paper_table(summary: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """``mean ± std`` strings, regimes down and (domain, % of real patients) across, for display.

    Args:
        summary: the table of :func:`summary_table`.
        digits: decimals shown.

    Returns:
        A DataFrame of strings.
    """
    def cell(row) -> str:
        std = "" if pd.isna(row["std"]) else f" ± {row['std']:.{digits}f}"
        return f"{row['mean']:.{digits}f}{std}"

    shown = summary.assign(cell=summary.apply(cell, axis=1), percent=(100 * summary.fraction).round(1))
    table = shown.pivot(index="regime", columns=["domain", "percent"], values="cell")
    table = table.reindex([r for r in REGIMES if r in table.index]).sort_index(axis=1)
    table.columns.names = ["domain", "% real patients"]
    return table.fillna("")


def paired_difference(results: pd.DataFrame, *, regime: str, baseline: str, fraction: float, domain: str,
                      metric: str = "dice", confidence: float = 0.95) -> dict[str, Any]:
    """``regime`` minus ``baseline`` in mean ``metric``, paired by seed, with a t confidence interval.

    A seed fixes the real patients, so the two regimes of one seed saw the same real data and the
    per-seed differences are paired.

    Args:
        results: the table of :func:`run_study`.
        regime: e.g. ``"real+aug+synthetic"``.
        baseline: e.g. ``"real+aug"``.
        fraction: the real-data fraction (e.g. 0.05).
        domain: the domain scored.
        metric: ``"dice"`` or ``"hd95_mm"``.
        confidence: level of the interval.

    Returns:
        ``{"mean", "ci_low", "ci_high", "confidence", "n_seeds", "per_seed": {seed: difference}}``;
        the interval is NaN with fewer than two paired seeds.

    Raises:
        ValueError: no seed has both regimes at that fraction and domain.
    """
    runs = run_means(results, metric=metric)
    runs = runs[(runs.domain == domain) & np.isclose(runs.fraction, fraction)]
    wide = runs.pivot(index="seed", columns="regime", values="mean")
    if regime not in wide or baseline not in wide or wide[[regime, baseline]].dropna().empty:
        raise ValueError(f"no seed has both {regime!r} and {baseline!r} at fraction {fraction:g} on {domain!r}")
    diff = (wide[regime] - wide[baseline]).dropna()
    n = len(diff)
    mean = float(diff.mean())
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n))
        low, high = mean - half, mean + half
    else:
        low = high = float("nan")
    return {"mean": mean, "ci_low": low, "ci_high": high, "confidence": confidence, "n_seeds": n,
            "per_seed": {int(s): float(d) for s, d in diff.items()}}


def low_data_differences(results: pd.DataFrame, *, fraction: float | None = None, regime: str = "real+aug+synthetic",
                         baseline: str = "real+aug", metric: str = "dice") -> dict[str, dict[str, Any]]:
    """:func:`paired_difference` for every domain where both regimes ran at ``fraction``.

    Args:
        results: the table of :func:`run_study`.
        fraction: the real-data fraction (default: the smallest in the table).
        regime: the regime with synthetic images.
        baseline: the regime it is compared with.
        metric: ``"dice"`` or ``"hd95_mm"``.

    Returns:
        ``{domain: paired_difference(...)}``, domains in sorted order; domains where no seed has both
        regimes are left out.
    """
    fraction = float(results.fraction.min()) if fraction is None else float(fraction)
    out = {}
    for domain in sorted(results.domain.unique()):
        try:
            out[domain] = paired_difference(results, regime=regime, baseline=baseline, fraction=fraction,
                                            domain=domain, metric=metric)
        except ValueError:
            continue
    return out


def clinical_table(results: pd.DataFrame) -> pd.DataFrame:
    """LV end-diastolic / end-systolic volumes and ejection fraction per patient, predicted and true.

    Args:
        results: the table of :func:`run_study` (its ``volume_pred_ml`` / ``volume_true_ml`` of the LV).

    Returns:
        One row per run, domain, patient and view with both ED and ES scored: ``edv_pred``,
        ``esv_pred``, ``ef_pred`` (%), the same ``_true``, and ``ef_error`` (predicted minus true,
        percentage points).
    """
    lv = results[results.structure == "LV"].assign(view=lambda t: t.view.astype(object).fillna(""))  # MRI volumes have no view
    keys = ["domain", "regime", "fraction", "seed", "patient_id", "view"]
    wide = lv.pivot_table(index=keys, columns="phase", values=["volume_pred_ml", "volume_true_ml"], aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    for kind in ("pred", "true"):
        out[f"edv_{kind}"] = wide[(f"volume_{kind}_ml", "ED")]
        out[f"esv_{kind}"] = wide[(f"volume_{kind}_ml", "ES")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"ef_{kind}"] = 100 * (out[f"edv_{kind}"] - out[f"esv_{kind}"]) / out[f"edv_{kind}"]
    out["ef_error"] = out.ef_pred - out.ef_true
    return out.dropna(subset=["edv_true", "esv_true"]).reset_index()


def describe_study(results: pd.DataFrame, *, low_fraction: float | None = None) -> list[str]:
    """What the numbers say, in sentences computed from the results (for the notebook's conclusion).

    Args:
        results: the table of :func:`run_study`.
        low_fraction: the low-data fraction for the augmented+synthetic vs augmented comparison
            (default: the smallest fraction in the table).

    Returns:
        Sentences: the ranking of regimes per domain and fraction, the effect of synthetic images
        on top of augmentation where both ran, and a warning when seeds are too few for an interval.
    """
    summary = summary_table(results)
    lines = []
    for (domain, fraction), rows in summary.groupby(["domain", "fraction"], sort=True):
        rows = rows.sort_values("mean", ascending=False)
        ranking = " > ".join(f"{r.regime} ({r.mean:.3f})" for r in rows.itertuples())
        lines.append(f"{domain}, {100 * fraction:g} % of the real patients: {ranking}.")
    low = float(summary.fraction.min()) if low_fraction is None else float(low_fraction)
    for domain, d in low_data_differences(results, fraction=low).items():
        if d["n_seeds"] < 2:
            lines.append(f"{domain}, {100 * low:g} %: real+aug+synthetic minus real+aug = {d['mean']:+.3f} Dice from one "
                         "seed; run more seeds for a confidence interval.")
            continue
        verdict = ("better" if d["ci_low"] > 0 else "worse" if d["ci_high"] < 0 else "not distinguishable from no change")
        lines.append(f"{domain}, {100 * low:g} %: adding synthetic images to augmented real data changes mean Dice by "
                     f"{d['mean']:+.3f} ({100 * d['confidence']:g} % CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}, "
                     f"{d['n_seeds']} seeds): {verdict}.")
    return lines


PUBLISHED = {
    "mri": ("Skandarani et al. (MIDL 2020) report that real + classical augmentation + GAN images raised Dice by up "
            "to 12 % over real data on ACDC", ("help",)),
    "echo": ("cardiGAN (Rançon, Vannier; SPADE on CAMUS) reports no substantial improvement from generated echo "
             "images, and blames the gap between real and generated images", ("no change", "harm")),
}
"""What each modality's paper found about adding GAN images, and the outcomes here that agree with it."""


def compare_with_papers(results: pd.DataFrame, *, modality: str, fraction: float | None = None,
                        domain: str = "in-domain") -> str:
    """Whether this study agrees with the paper of its modality, in one sentence computed from the results.

    Args:
        results: the table of :func:`run_study`.
        modality: ``"mri"`` (Skandarani et al.) or ``"echo"`` (cardiGAN).
        fraction: the real-data fraction (default: the smallest in the table).
        domain: the domain compared (the held-out real patients by default).

    Returns:
        The paper's finding, then real+aug+synthetic minus real+aug here (absolute and relative to
        real+aug, with its interval), and whether the two agree; or why they cannot be compared yet.
    """
    finding, claim = PUBLISHED[modality]
    fraction = float(results.fraction.min()) if fraction is None else float(fraction)
    differences = low_data_differences(results, fraction=fraction)
    if domain not in differences:
        return f"{finding}; this study has no paired real+aug and real+aug+synthetic runs on {domain} to compare."
    d = differences[domain]
    runs = run_means(results)
    base = runs[(runs.domain == domain) & np.isclose(runs.fraction, fraction) & (runs.regime == "real+aug")]["mean"].mean()
    here = (f"here, on {domain} at {100 * fraction:g} % of the real patients, adding synthetic images to augmented real "
            f"data changes mean Dice by {d['mean']:+.3f} ({100 * d['mean'] / base:+.1f} % of real+aug's {base:.3f}")
    if d["n_seeds"] < 2:
        return f"{finding}; {here}, one seed): run more seeds before comparing."
    here += f"; {100 * d['confidence']:g} % CI {d['ci_low']:+.3f} to {d['ci_high']:+.3f}, {d['n_seeds']} seeds)"
    found = "help" if d["ci_low"] > 0 else "harm" if d["ci_high"] < 0 else "no change"
    agree = "agrees with" if found in claim else "differs from"
    return f"{finding}; {here}: {found if found != 'no change' else 'no distinguishable change'}, which {agree} the paper."


def disagreements(predictions: dict[str, np.ndarray], labels: np.ndarray, *, n: int = 4) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The slices on which the regimes' predictions differ most in Dice.

    Args:
        predictions: ``{regime: (N, H, W) predicted labels}`` on the same slices.
        labels: (N, H, W) ground truth.
        n: how many slices.

    Returns:
        ``(indices, dice)``: the ``n`` slice indices with the widest Dice range across regimes
        (widest first; background-only slices skipped) and ``{regime: (N,) slice Dice}``.
    """
    dice = {name: slice_dice(pred, labels) for name, pred in predictions.items()}
    table = np.stack(list(dice.values()))
    spread = np.where(np.isnan(table).any(0), -np.inf, np.nanmax(table, 0) - np.nanmin(table, 0))
    order = np.argsort(-spread, kind="stable")
    return order[np.isfinite(spread[order])][:n], dice
