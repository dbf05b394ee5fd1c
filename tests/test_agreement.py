"""metric_agreement: planted metrics get the rank agreement with the downstream Dice they were built to have."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cardigan_utils.synthetic import metric_agreement


def snapshots(n: int = 6, *, seed: int = 0) -> pd.DataFrame:
    """``n`` snapshots whose Dice rises with the epoch, and planted metrics."""
    rng = np.random.default_rng(seed)
    dice = np.linspace(0.3, 0.8, n)
    return pd.DataFrame({
        "epoch": np.arange(1, n + 1) * 5,
        "dice": dice,
        "fid": 100.0 * np.exp(-3 * dice),  # a distance falling as Dice rises, not linearly
        "rises_with_dice": dice**2,
        "noise": rng.permutation(n).astype(float),
        "constant": np.full(n, 0.5),
    })


def test_a_distance_falling_as_dice_rises_agrees_fully():
    table = metric_agreement(snapshots(), metrics={"fid": False})
    assert table.loc["fid", "agreement"] == pytest.approx(1.0)
    assert table.loc["fid", "rho"] == pytest.approx(-1.0)  # the raw rank correlation keeps its sign
    assert table.loc["fid", "better"] == "lower" and table.loc["fid", "n"] == 6


def test_the_direction_flips_the_sign():
    table = metric_agreement(snapshots(), metrics={"rises_with_dice": False, "fid": True})
    assert table.loc["rises_with_dice", "agreement"] == pytest.approx(-1.0)  # read as a distance: the wrong order
    assert table.loc["fid", "agreement"] == pytest.approx(-1.0)  # read as a score: the wrong order
    again = metric_agreement(snapshots(), metrics={"rises_with_dice": True})
    assert again.loc["rises_with_dice", "agreement"] == pytest.approx(1.0)
    assert list(table.index) == ["rises_with_dice", "fid"]  # the order asked for


def test_an_unrelated_metric_falls_in_between():
    table = metric_agreement(snapshots(n=8, seed=3), metrics={"noise": False})
    value = table.loc["noise", "agreement"]
    assert -1 < value < 1 and table.loc["noise", "p_value"] > 0.05


def test_a_constant_metric_has_no_agreement_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = metric_agreement(snapshots(), metrics={"constant": False, "fid": False})
    assert np.isnan(table.loc["constant", "agreement"]) and np.isnan(table.loc["constant", "rho"])
    assert table.loc["fid", "agreement"] == pytest.approx(1.0)  # the other metrics are still judged


def test_nan_snapshots_are_left_out_of_that_metric_only():
    frame = snapshots()
    frame.loc[[0, 5], "fid"] = np.nan
    frame.loc[2, "rises_with_dice"] = np.nan
    table = metric_agreement(frame, metrics={"fid": False, "rises_with_dice": True})
    assert table.loc["fid", "n"] == 4 and table.loc["fid", "agreement"] == pytest.approx(1.0)
    assert table.loc["rises_with_dice", "n"] == 5
    frame.loc[1:5, "fid"] = np.nan  # one snapshot left: no correlation
    assert np.isnan(metric_agreement(frame, metrics={"fid": False}).loc["fid", "agreement"])


def test_default_metrics_are_every_other_numeric_column_read_as_distances():
    frame = snapshots().assign(note="text")
    table = metric_agreement(frame)
    assert list(table.index) == ["fid", "rises_with_dice", "noise", "constant"]
    assert (table.better == "lower").all() and table.loc["fid", "agreement"] == pytest.approx(1.0)


def test_another_downstream_column():
    frame = snapshots().assign(hd95=lambda t: 20 - 10 * t.dice)  # a distance: lower is better downstream
    table = metric_agreement(frame, downstream="hd95", metrics={"fid": False})
    assert table.loc["fid", "agreement"] == pytest.approx(-1.0)  # with a distance downstream, the order flips


@pytest.mark.parametrize("frame, kwargs, message", [
    (snapshots(n=2), {}, "at least 3 snapshots"),
    (snapshots(), {"downstream": "hd95"}, "no downstream column 'hd95'"),
    (snapshots(), {"metrics": {"kid": False}}, "no metric column"),
    (snapshots().assign(fid="high"), {"metrics": {"fid": False}}, "not numeric"),
])
def test_tables_it_cannot_judge_are_refused_in_one_line(frame, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        metric_agreement(frame, **kwargs)
    assert "\n" not in str(err.value)
