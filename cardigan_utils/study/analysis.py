"""Reading the study's results: the paper's table, paired differences with their intervals, the
generalisation table (what each regime loses on unseen domains, what synthetic images add there),
the clinical (EF) table, the verdicts in words, and the slices where regimes disagree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import slice_dice
from .results import REGIMES, synthetic_baseline

CONFIDENCE = 0.95
"""Level of the paired intervals (:func:`paired_difference`'s default, hence the generalisation table's)."""


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
                      metric: str = "dice", confidence: float = CONFIDENCE) -> dict[str, Any]:
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


def _effect(difference: dict[str, Any]) -> str | None:
    """What a :func:`paired_difference` says: ``"help"`` (interval above 0), ``"harm"`` (below 0),
    ``"no change"`` (it holds 0), or None with one seed (no interval)."""
    if difference["n_seeds"] < 2:
        return None
    return "help" if difference["ci_low"] > 0 else "harm" if difference["ci_high"] < 0 else "no change"


def _interval(difference: dict[str, Any]) -> str:
    """``95 % CI -0.010 to +0.030, 5 seeds`` of a :func:`paired_difference`."""
    return (f"{100 * difference['confidence']:g} % CI {difference['ci_low']:+.3f} to {difference['ci_high']:+.3f}, "
            f"{difference['n_seeds']} seeds")


def generalisation_table(results: pd.DataFrame, *, in_domain: str = "in-domain",
                         reference: str = "real+aug") -> pd.DataFrame:
    """Per regime, fraction and domain: the mean Dice, its drop from in-domain, and the gain of synthetic images there.

    The drop of a regime on a domain is its in-domain mean Dice minus its mean Dice there (means
    over seeds of each run's mean, as :func:`summary_table`). The gain of synthetic images is
    :func:`paired_difference` (paired by seed, t interval) of a regime with synthetic images
    against the same regime without them (:func:`~.results.synthetic_baseline`:
    real+aug+synthetic against real+aug, real+strong-aug+synthetic against real+strong-aug,
    real+synthetic against real).

    Args:
        results: the table of :func:`run_study`.
        in_domain: the domain the drops are measured from.
        reference: the regime whose drop the others are compared with (issue 23: real+aug).

    Returns:
        One row per (fraction, regime, domain), regimes in :data:`REGIMES` order and ``in_domain``
        first: ``mean``, ``std``, ``n_seeds``, ``in_domain`` (that regime's in-domain mean),
        ``drop`` and ``relative_drop`` (drop / in-domain mean), ``drop_vs_reference`` (drop /
        the reference regime's drop on that domain; NaN where the reference did not run or lost
        nothing), ``synthetic_gain``, ``gain_ci_low``, ``gain_ci_high``, ``gain_n_seeds`` (NaN for
        regimes without a pair, and the interval with one seed).
    """
    summary = summary_table(results)
    table = summary[["fraction", "regime", "domain", "mean", "std", "n_seeds"]].copy()
    own = summary[summary.domain == in_domain].set_index(["fraction", "regime"])["mean"]
    table["in_domain"] = [own.get((f, r), np.nan) for f, r in zip(table.fraction, table.regime)]
    table["drop"] = table.in_domain - table["mean"]
    table["relative_drop"] = table["drop"] / table.in_domain
    ref = table[table.regime == reference].set_index(["fraction", "domain"])["drop"]
    ref_drop = np.array([ref.get((f, d), np.nan) for f, d in zip(table.fraction, table.domain)], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["drop_vs_reference"] = np.where(ref_drop > 0, table["drop"] / ref_drop, np.nan)
    gains: dict[tuple[float, str, str], dict[str, Any]] = {}
    for fraction in sorted(table.fraction.unique()):
        for regime in table.regime.unique():
            baseline = synthetic_baseline(regime)
            if baseline is None:
                continue
            for domain, d in low_data_differences(results, fraction=fraction, regime=regime, baseline=baseline).items():
                gains[fraction, regime, domain] = d
    keys = list(zip(table.fraction, table.regime, table.domain))
    for column, field in (("synthetic_gain", "mean"), ("gain_ci_low", "ci_low"), ("gain_ci_high", "ci_high"),
                          ("gain_n_seeds", "n_seeds")):
        table[column] = [gains[k][field] if k in gains else np.nan for k in keys]
    order = {r: i for i, r in enumerate(REGIMES)}
    table = table.assign(_r=table.regime.map(order), _d=table.domain != in_domain)
    return table.sort_values(["fraction", "_r", "_d", "domain"]).drop(columns=["_r", "_d"]).reset_index(drop=True)


def generalisation_verdict(table: pd.DataFrame, *, in_domain: str = "in-domain", reference: str = "real+aug",
                           criterion: float = 0.5) -> list[str]:
    """What the generalisation table says, in sentences: the drops out of domain and whether the GAN helps there.

    Args:
        table: the table of :func:`generalisation_table`.
        in_domain: the domain the drops are measured from.
        reference: the regime whose drop is the yardstick (issue 23: real+aug).
        criterion: a regime meets issue 23's goal on a domain where its drop is at most this share of
            the reference's drop.

    Returns:
        Per fraction: one sentence per out-of-domain domain with each regime's drop (absolute and
        relative) and whether it is at most ``criterion`` of the reference's (flagged where the
        drop shrank only because in-domain Dice fell: the Dice there is still below the
        reference's); one per pair of
        regimes with and without synthetic images, saying on which domains the synthetic images
        help, harm, or change nothing distinguishable (95 % intervals over seeds), or that one seed
        gives no interval. A sentence saying so when there is no out-of-domain data.
    """
    lines = []
    if table.empty or not (table.domain != in_domain).any():
        return [f"No out-of-domain results: the study scored {in_domain} only, so generalisation cannot be judged."]
    for fraction, rows in table.groupby("fraction", sort=True):
        share = f"{100 * fraction:g} % of the real patients"
        for domain in sorted(set(rows.domain) - {in_domain}):
            here = rows[(rows.domain == domain) & rows["drop"].notna()].set_index("regime")
            if here.empty:
                continue
            parts = [f"{r} {row['drop']:.3f} ({100 * row.relative_drop:.1f} %)" for r, row in here.iterrows()]
            sentence = f"{domain}, {share}: mean Dice lost from in-domain (relative): {'; '.join(parts)}."
            if reference not in here.index:
                sentence += f" {reference} did not run: no yardstick for issue 23's criterion."
            elif not here.loc[reference, "drop"] > 0:
                sentence += f" {reference} loses nothing here: no drop to halve."
            else:
                limit, theirs = criterion * here.loc[reference, "drop"], here.loc[reference, "mean"]
                met = [r + (f" (yet below {reference} on {domain}, {row['mean']:.3f} against {theirs:.3f}: its in-domain "
                            "Dice fell)" if row["mean"] < theirs else "")
                       for r, row in here.iterrows() if r != reference and row["drop"] <= limit]
                sentence += f" At most {criterion:g} of {reference}'s drop ({limit:.3f}): {', '.join(met) if met else 'no regime'}."
            lines.append(sentence)
        for regime in [r for r in REGIMES if r in set(rows.regime)]:
            paired = rows[(rows.regime == regime) & rows.synthetic_gain.notna()]
            if paired.empty:
                continue
            found: dict[str, list[str]] = {"help": [], "harm": [], "no change": [], None: []}
            details = []
            for row in paired.itertuples():
                d = {"mean": row.synthetic_gain, "ci_low": row.gain_ci_low, "ci_high": row.gain_ci_high,
                     "n_seeds": int(row.gain_n_seeds), "confidence": CONFIDENCE}
                found[_effect(d)].append(row.domain)
                details.append(f"{row.domain} {row.synthetic_gain:+.3f}"
                               + (f" ({_interval(d)})" if d["n_seeds"] > 1 else " (one seed)"))
            words = {"help": "help on", "harm": "harm on", "no change": "change nothing distinguishable on",
                     None: "cannot be judged from one seed on"}
            verdict = "; ".join(f"{words[k]} {', '.join(v)}" for k, v in found.items() if v)
            lines.append(f"{share}: synthetic images added to {synthetic_baseline(regime)} ({regime}): {verdict}. "
                         f"Mean Dice gain: {'; '.join(details)}.")
    return lines


def fidelity_beside_dice(results: pd.DataFrame, *, judged: dict[str, dict[str, float]],
                         w1: dict[str, dict[str, float]] | None = None, domain: str = "in-domain") -> pd.DataFrame:
    """The synthetic set judged as the field judges it, next to the test that matters: a U-Net trained on it alone.

    Each row is one measure of the synthetic set beside the same measure of real images (the
    yardstick): FID, KID and MS-SSIM diversity in the kit's features (notebook 04), the mean
    per-tissue W1 of intensities, and, per share of real patients, the mean Dice on ``domain`` of the
    ``synthetic`` regime's U-Nets beside the ``real`` regime's. Which fidelity measure predicts
    that Dice takes several GANs to say (``benchmarks/metric_agreement.py``).

    Args:
        results: the table of :func:`run_study`.
        judged: ``{"synthetic": {"FID", "KID", "MS-SSIM"}, "real train": {...}}``, as
            :func:`~cardigan_utils.synthetic.judge_synthetic` returns it (its ``fid_kid_ms_ssim``
            in notebook 04's ``metrics.json``); the real training slices scored against the real test ones.
        w1: ``{"synthetic": {class: W1}, "real": {class: W1}}`` (optional): per-tissue Wasserstein
            distances to the real test images of the synthetic set and of other real patients.
        domain: the test domain of the Dice rows.

    Returns:
        One row per measure (index ``measure``), columns ``synthetic`` and ``real``; the Dice rows
        are missing for a share of patients where either regime has no run.
    """
    rows = []
    for key, label in (("FID", "FID (kit features; lower: closer to the real test images)"),
                       ("KID", "KID (kit features)"), ("MS-SSIM", "MS-SSIM within the set (lower: more varied)")):
        rows.append({"measure": label, "synthetic": float(judged["synthetic"][key]),
                     "real": float(judged["real train"][key])})
    if w1 is not None:
        rows.append({"measure": "W1 of intensities, mean over tissues",
                     "synthetic": float(np.nanmean(list(w1["synthetic"].values()))),
                     "real": float(np.nanmean(list(w1["real"].values())))})
    summary = summary_table(results)
    means = summary[summary.domain == domain].set_index(["regime", "fraction"])["mean"]
    for fraction in sorted(summary.fraction.unique()):
        if ("synthetic", fraction) in means.index and ("real", fraction) in means.index:
            rows.append({"measure": f"Dice on {domain} of a U-Net trained on it alone, as many slices as {fraction:.0%} "
                                    "of the real patients (real: the real-only U-Net)",
                         "synthetic": float(means["synthetic", fraction]), "real": float(means["real", fraction])})
    return pd.DataFrame(rows, columns=["measure", "synthetic", "real"]).set_index("measure")


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
        verdict = {"help": "better", "harm": "worse", "no change": "not distinguishable from no change"}[_effect(d)]
        lines.append(f"{domain}, {100 * low:g} %: adding synthetic images to augmented real data changes mean Dice by "
                     f"{d['mean']:+.3f} ({_interval(d)}): {verdict}.")
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
    here += f"; {_interval(d)})"
    found = _effect(d)
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
