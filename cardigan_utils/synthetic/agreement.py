"""Which fidelity metric ranks a GAN's snapshots as the downstream segmentation does (issue 22).

FID, KID, MS-SSIM and the per-tissue Wasserstein distances each claim to say how good a synthetic
set is; what a user of the kit cares about is how well a U-Net trained on that set alone segments
real patients. Given one row per snapshot of a GAN (or per synthetic set), :func:`metric_agreement`
says, per metric, how well it orders the snapshots as the downstream Dice orders them: the
Spearman rank correlation, sign-corrected so that +1 always means "exactly the downstream order"
whether the metric is a distance (lower is better) or a score (higher is better).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

MIN_SNAPSHOTS = 3
"""Fewest snapshots a rank correlation is computed on (with two, every correlation is +1 or -1)."""


def metric_agreement(table: pd.DataFrame, *, downstream: str = "dice",
                     metrics: dict[str, bool] | None = None) -> pd.DataFrame:
    """How well each metric ranks the snapshots like the downstream score does (Spearman, sign-corrected).

    For each metric, the snapshots where both it and the downstream score are finite are ranked
    by each, and the Spearman rho of the two rankings is taken (:func:`scipy.stats.spearmanr`).
    ``agreement`` is that rho oriented so that +1 means "the metric's better snapshots are exactly
    the downstream's better ones": rho itself for a metric where higher is better, -rho for one
    where lower is better (FID, KID, Wasserstein distances). 0 means the metric says nothing
    about the downstream order; -1, the opposite order. A metric (or downstream score) that is
    constant over those snapshots, or known on fewer than :data:`MIN_SNAPSHOTS` of them, has no
    rank correlation: NaN, not an error.

    Args:
        table: one row per snapshot, a column per metric and the ``downstream`` column (e.g.
            ``epoch``, ``dice``, ``fid``, ``kid``, ``ms_ssim``, ``w1_LV`` ...); NaN where unknown.
        downstream: the column of the score the metrics are judged by (higher is better, like Dice).
        metrics: ``{column: higher_is_better}``: which columns to judge and their direction, in the
            order of the result. None: every numeric column but ``downstream`` and ``epoch``, each
            read as a distance (lower is better).

    Returns:
        One row per metric, indexed by ``metric``: ``agreement`` (the sign-corrected rho, in
        [-1, 1], NaN when undefined), ``rho`` (Spearman rho of the metric with ``downstream``, as
        computed), ``p_value`` (of ``rho``, two-sided; with a few snapshots only a rough guide),
        ``better`` (``"higher"`` or ``"lower"``) and ``n`` (snapshots used).

    Raises:
        ValueError: fewer than :data:`MIN_SNAPSHOTS` rows, no ``downstream`` column, a metric
            column missing or not numeric.
    """
    if downstream not in table.columns:
        raise ValueError(f"the table has no downstream column {downstream!r}; its columns: {list(table.columns)}")
    if len(table) < MIN_SNAPSHOTS:
        raise ValueError(f"a rank agreement needs at least {MIN_SNAPSHOTS} snapshots (rows), got {len(table)}")
    if metrics is None:
        metrics = {c: False for c in table.select_dtypes("number").columns if c not in (downstream, "epoch")}
    missing = [name for name in metrics if name not in table.columns]
    if missing:
        raise ValueError(f"the table has no metric column {missing}; its columns: {list(table.columns)}")
    target = _numeric(table, downstream)
    rows = []
    for name, higher_is_better in metrics.items():
        values = _numeric(table, name)
        known = np.isfinite(values) & np.isfinite(target)
        x, y = values[known], target[known]
        rho = p_value = float("nan")
        # spearmanr of a constant column is NaN with a warning; say NaN without one
        if known.sum() >= MIN_SNAPSHOTS and np.ptp(x) > 0 and np.ptp(y) > 0:
            result = spearmanr(x, y)
            rho, p_value = float(result.statistic), float(result.pvalue)
        rows.append({"metric": name, "agreement": rho if higher_is_better else -rho, "rho": rho, "p_value": p_value,
                     "better": "higher" if higher_is_better else "lower", "n": int(known.sum())})
    columns = ["metric", "agreement", "rho", "p_value", "better", "n"]
    return pd.DataFrame(rows, columns=columns).set_index("metric")


def _numeric(table: pd.DataFrame, name: str) -> np.ndarray:
    try:
        return table[name].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} is not numeric (dtype {table[name].dtype})") from None
