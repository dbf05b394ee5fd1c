"""`cardigan segment --dataset` and `cardigan evaluate --dataset`: any registered layout, predictions in the input's geometry."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardigan_utils import cli
from cardigan_utils.data import get_dataset
from cardigan_utils.segmentation import evaluate_folders, prediction_path, segment_dataset
from conftest import tiny_segmenter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_all(name: str, root) -> list:
    """Every Case the dataset's reader reads from ``root``."""
    spec = get_dataset(name)
    return [case for patient in spec.list_patients(root) for case in spec.read_patient(patient)]


def segment_example(name: str, model_path, tmp_path) -> tuple:
    """A phantom folder in ``name``'s layout segmented by ``cardigan segment --dataset``: (root, output, its Cases)."""
    root = get_dataset(name).write_example(tmp_path / name, n_patients=2, seed=1)
    out = tmp_path / "pred"
    assert cli.main(["segment", "--model", str(model_path), "--input", str(root), "--output", str(out),
                     "--dataset", name]) == 0
    return root, out, read_all(name, root)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_segmenter(tmp_path_factory.mktemp("model"), "phantom-mri", n_patients=5, steps=3)


@pytest.fixture(scope="module")
def acdc_example(tmp_path_factory):
    return get_dataset("acdc").write_example(tmp_path_factory.mktemp("acdc") / "ACDC", n_patients=2, seed=3)


def test_segment_and_evaluate_a_registered_layout(acdc_example, model_path, tmp_path, capsys):
    out = tmp_path / "pred"
    assert cli.main(["segment", "--model", str(model_path), "--input", str(acdc_example), "--output", str(out),
                     "--dataset", "acdc"]) == 0
    cases = read_all("acdc", acdc_example)
    for case in cases:  # each prediction overlays the frame it segments
        pred = nib.load(prediction_path(out, case))
        source = nib.load(case.meta["image_path"])
        assert pred.shape == case.image.shape and np.allclose(pred.affine, source.affine)
    volumes = pd.read_csv(out / "volumes.csv", keep_default_na=False)
    assert len(volumes) == 3 * len(cases) and set(volumes.image) == {c.key for c in cases}
    assert "2 image" not in capsys.readouterr().out

    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(acdc_example), "--dataset", "acdc"]) == 0
    printed = capsys.readouterr().out
    assert "not scored" not in printed
    table = pd.read_csv(out / "evaluation.csv", keep_default_na=False)
    assert set(table.structure) == {"RV", "MYO", "LV"} and len(table) == 3 * len(cases)
    assert {"patient_id", "phase", "vendor", "labelled_slices"} <= set(table.columns)


def test_a_perfect_prediction_scores_one(acdc_example, tmp_path):
    from cardigan_utils.data.imageio import save_nifti

    for case in read_all("acdc", acdc_example):
        save_nifti(prediction_path(tmp_path / "pred", case), case.label, case.spacing)
    table = evaluate_folders(tmp_path / "pred", acdc_example, dataset="acdc")
    assert np.allclose(table.dice, 1.0)


@pytest.mark.parametrize("dataset, message", [
    ("mnist", "unknown dataset 'mnist'"),
    ("phantom-mri", "phantom-mri is generated"),
    ("camus", "segments mri images but camus holds echo images"),
])
def test_bad_dataset_choices_are_one_line_errors(dataset, message, acdc_example, model_path, tmp_path, capsys):
    with pytest.raises(ValueError, match=message):
        segment_dataset(model_path, acdc_example, tmp_path / "pred", dataset=dataset)
    assert not (tmp_path / "pred").exists()
    if dataset != "mnist":
        code = cli.main(["segment", "--model", str(model_path), "--input", str(acdc_example), "--output",
                         str(tmp_path / "pred"), "--dataset", dataset])
        err = capsys.readouterr().err
        assert code == 1 and message in err and err.count("\n") == 1


def test_mnms_4d_cines_are_segmented_at_ed_and_es_in_their_geometry(model_path, tmp_path, capsys):
    root, out, cases = segment_example("mnms", model_path, tmp_path)
    for case in cases:
        pred = nib.load(prediction_path(out, case))
        cine = nib.load(case.meta["image_path"])  # 4-D: the prediction is one frame of it, same voxel grid
        assert cine.ndim == 4 and pred.shape == cine.shape[:3] and np.allclose(pred.affine, cine.affine)
    capsys.readouterr()
    # the truth files hold M&Ms' 1 LV, 2 MYO, 3 RV: scoring them as files would swap LV and RV
    code = cli.main(["evaluate", "--pred", str(out), "--truth", str(root)])
    err = capsys.readouterr().err
    assert code == 1 and "--dataset mnms" in err and err.count("\n") == 1
    table = evaluate_folders(out, root, dataset="mnms")
    assert set(table.structure) == {"RV", "MYO", "LV"} and set(table.vendor) == {c.meta["vendor"] for c in cases}


def test_a_perfect_mnms_prediction_scores_one_after_the_label_remap(tmp_path):
    from cardigan_utils.data.imageio import save_nifti

    spec = get_dataset("mnms")
    root = spec.write_example(tmp_path / "MnM", n_patients=2, seed=2)
    for case in read_all("mnms", root):  # the kit's convention, as segment_dataset writes it
        save_nifti(prediction_path(tmp_path / "pred", case), case.label, case.spacing, affine=case.meta["affine"])
    table = evaluate_folders(tmp_path / "pred", root, dataset="mnms")
    assert np.allclose(table.dice, 1.0) and set(table.structure) == {"RV", "MYO", "LV"}


def test_sunnybrook_dicom_is_segmented_and_only_its_labelled_structures_scored(model_path, tmp_path, capsys):
    root, out, cases = segment_example("sunnybrook", model_path, tmp_path)
    for case in cases:  # a NIfTI over the DICOM series: its grid and its position in the scanner
        pred = nib.load(prediction_path(out, case))
        assert pred.shape == case.image.shape and np.allclose(pred.affine, case.meta["affine"])
    capsys.readouterr()
    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(root), "--dataset", "sunnybrook"]) == 0
    printed = capsys.readouterr().out
    assert "RV not labelled in" in printed and "not scored" in printed
    table = pd.read_csv(out / "evaluation.csv")
    assert set(table.structure) == {"MYO", "LV"}


def test_a_perfect_sunnybrook_prediction_scores_one_whatever_it_says_where_nothing_is_labelled(tmp_path):
    from cardigan_utils.data.imageio import save_nifti

    spec = get_dataset("sunnybrook")
    root = spec.write_example(tmp_path / "SCD", n_patients=2, seed=2)
    for case in read_all("sunnybrook", root):
        pred = case.label.copy()
        unknown = ~case.labelled_slices("MYO")
        pred[..., unknown] = np.where(pred[..., unknown] == 0, 2, pred[..., unknown])  # MYO where it is unknown
        pred[:3, :3] = 1  # an RV: Sunnybrook does not label it
        save_nifti(prediction_path(tmp_path / "pred", case), pred, case.spacing, affine=case.meta["affine"])
    table = evaluate_folders(tmp_path / "pred", root, dataset="sunnybrook")
    assert set(table.structure) == {"MYO", "LV"} and np.allclose(table.dice, 1.0)
    assert (table.labelled_slices > 0).all()
