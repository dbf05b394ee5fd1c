"""Partly labelled ground truth (Sunnybrook: no RV, myocardium on some slices): only what is labelled is scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cardigan_utils.data import DataError, build_cache, get_dataset
from cardigan_utils.data.case import Case
from cardigan_utils.data.phantom import phantom_cases
from cardigan_utils.labels import LABELS
from cardigan_utils.metrics import cache_unlabelled, segmentation_scores, unlabelled_structures, volume_scores

NAMES = LABELS["mri"]


def _volume(n_slices: int = 3) -> np.ndarray:
    label = np.zeros((24, 24, n_slices), np.uint8)
    label[4:10, 4:10] = 1   # RV
    label[12:20, 12:20] = 2  # MYO ring
    label[14:18, 14:18] = 3  # LV
    return label


def test_a_structure_labelled_nowhere_gets_no_row_never_dice_0_or_1():
    truth = _volume()
    truth[truth == 1] = 0  # the dataset has no RV label: background there means "unknown"
    pred = _volume()  # the model finds the RV: not an error, not a success
    full = {r["structure"]: r for r in volume_scores(pred, truth, spacing=(1, 1, 1), names=NAMES)}
    assert full["RV"]["dice"] == 0.0  # scored as if labelled, the RV would be a false positive
    partial = volume_scores(pred, truth, spacing=(1, 1, 1), names=NAMES, labelled={"MYO": True, "LV": True})
    assert [r["structure"] for r in partial] == ["MYO", "LV"]
    assert all(r["dice"] == 1.0 and r["labelled_slices"] == 3 for r in partial)
    assert unlabelled_structures({"MYO": True, "LV": [True, False, True]}, NAMES) == ["RV"]
    assert unlabelled_structures(None, NAMES) == []


def test_a_structure_is_scored_only_on_its_labelled_slices():
    truth = _volume()
    truth[..., 1][truth[..., 1] == 2] = 0  # no epicardial contour on slice 1: its myocardium is unknown
    pred = _volume()
    pred[..., 2][pred[..., 2] == 3] = 0  # a real miss of the LV on slice 2
    rows = {r["structure"]: r for r in volume_scores(pred, truth, spacing=(1, 1, 1), names=NAMES,
                                                       labelled={"MYO": [True, False, True], "LV": True})}
    assert rows["MYO"]["dice"] == 1.0 and rows["MYO"]["labelled_slices"] == 2
    assert rows["MYO"]["voxels_true"] == rows["MYO"]["voxels_pred"] == 2 * (64 - 16)
    assert rows["LV"]["dice"] == pytest.approx(2 * 32 / (32 + 48))  # the miss counts: LV is labelled there
    with pytest.raises(ValueError, match="2 entries for 3 slices"):
        volume_scores(pred, truth, spacing=(1, 1, 1), names=NAMES, labelled={"LV": [True, False]})


def test_case_labelled_masks_are_checked():
    image = np.random.default_rng(0).random((24, 24, 3)).astype(np.float32)
    case = Case(image=image, label=_volume(), spacing=(1.0, 1.0, 8.0), patient_id="p1", phase="ED", modality="mri",
                labelled={"MYO": [1, 0, 1], "LV": True, "RV": True})
    assert case.labelled_slices("MYO").tolist() == [True, False, True] and case.labelled_structures == ("RV", "MYO", "LV")
    assert Case(image=image, label=_volume(), spacing=(1.0, 1.0, 8.0), patient_id="p1", phase="ED",
                modality="mri").labelled_slices("RV").all()
    with pytest.raises(DataError, match="not among the mri structures"):
        dataclasses.replace(case, labelled={"LA": True})
    with pytest.raises(DataError, match="shape"):
        dataclasses.replace(case, labelled={"LV": [True, False]})
    # a reader whose masks contradict its labels is caught by the registry's check
    spec = get_dataset("acdc")
    bad = dataclasses.replace(case, dataset="acdc", labelled={"RV": True, "MYO": [True, False, True], "LV": True})
    with pytest.raises(DataError, match=r"MYO is drawn on slice\(s\) \[1\]"):
        spec.check_case(bad)


def _sunnybrook_like(cases: list[Case]) -> list[Case]:
    """MRI phantom Cases relabelled as Sunnybrook would: no RV; myocardium on every other slice."""
    out = []
    for c in cases:
        label = c.label.copy()
        label[label == 1] = 0
        n = label.shape[2]
        myo = np.arange(n) % 2 == 0
        label[..., ~myo] = np.where(label[..., ~myo] == 2, 0, label[..., ~myo])
        out.append(dataclasses.replace(c, label=label, labelled={"LV": np.ones(n, bool), "MYO": myo}))
    return out


def test_the_cache_records_what_is_labelled_and_scores_only_that(tmp_path):
    cases = _sunnybrook_like(phantom_cases("phantom-mri", 2, seed=0))
    cache = build_cache(cases, tmp_path / "cache", image_size=32, progress=False)
    assert {"labelled_RV", "labelled_MYO", "labelled_LV"} <= set(cache.slices.columns)
    assert not cache.slices.labelled_RV.any() and cache.slices.labelled_LV.all()
    assert cache.slices.labelled_MYO.any() and not cache.slices.labelled_MYO.all()
    assert cache.cases.volume_RV_ml.isna().all() and cache.cases.volume_LV_ml.gt(0).all()
    assert cache_unlabelled(cache) == ["RV"]

    idx = np.arange(len(cache))
    pred = np.array(cache.labels[idx])
    unlabelled_myo = ~cache.slices.labelled_MYO.to_numpy()
    pred[unlabelled_myo] = np.where(pred[unlabelled_myo] == 3, 3, 0)  # keep LV; nothing else to learn
    ring = np.zeros_like(pred[0])
    ring[2:6, 2:6] = 2
    pred[unlabelled_myo] = np.maximum(pred[unlabelled_myo], ring)  # MYO "errors" where MYO is unknown
    pred[:, :3, :3] = 1  # an RV "found" everywhere: unknown, never scored
    scores = segmentation_scores(pred, cache, idx)
    assert set(scores.structure) == {"MYO", "LV"}
    assert np.allclose(scores.dice, 1.0)
    assert (scores.labelled_slices > 0).all() and "vendor" in scores


def test_a_fully_labelled_cache_scores_every_structure(tmp_path):
    cache = build_cache(phantom_cases("phantom-mri", 2, seed=0), tmp_path / "cache", image_size=32, progress=False)
    assert cache.slices.labelled_RV.all() and cache_unlabelled(cache) == []
    scores = segmentation_scores(np.array(cache.labels), cache, np.arange(len(cache)))
    assert set(scores.structure) == {"RV", "MYO", "LV"}
    assert set(scores.vendor) == set(cache.slices.vendor)


def test_a_partly_labelled_training_cache_is_refused_by_the_training_notebooks(tmp_path):
    from cardigan_utils.data import load_run_cache, prepare_cache

    cases = _sunnybrook_like(phantom_cases("phantom-mri", 3, seed=0))
    prepare_cache("sunnybrook", run_dir=tmp_path, image_size=32, cases=cases, progress=False)  # notebook 01 browses it
    with pytest.raises(ValueError, match="does not label RV, MYO on every slice.*out-of-domain set"):
        load_run_cache(tmp_path, "sunnybrook", 32)  # notebooks 02-05 would train on it


def test_a_partly_labelled_cache_is_not_exported_for_nnunet_training(tmp_path):
    from cardigan_utils.data.export import nnunet_dataset_dir, write_nnunet_patients

    cases = _sunnybrook_like(phantom_cases("phantom-mri", 3, seed=0))
    cache = build_cache(cases, tmp_path / "cache", image_size=32, progress=False)
    out = nnunet_dataset_dir(tmp_path / "raw", dataset_id=7, name="Partial")
    with pytest.raises(ValueError, match="does not label RV"):
        write_nnunet_patients(out, cache)
    assert not out.exists() or not any(out.rglob("*.nii.gz"))
