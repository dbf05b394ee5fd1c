"""`cardigan segment` and `cardigan evaluate` on a folder in the ACDC layout."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardigan_utils import cli
from cardigan_utils.data import load_cases
from cardigan_utils.data.export import write_dataset
from cardigan_utils.segmentation import evaluate_folders, find_images
from conftest import tiny_segmenter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def acdc_like(tmp_path_factory):
    root = tmp_path_factory.mktemp("acdc_like")
    write_dataset(load_cases("phantom-mri", n_patients=2, seed=5), root / "ACDC", layout="acdc")
    return root / "ACDC" / "training"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_segmenter(tmp_path_factory.mktemp("model"), "phantom-mri", n_patients=5, steps=3)


def test_find_images_skips_ground_truth_and_cines(acdc_like, tmp_path):
    found = find_images(acdc_like)
    assert len(found) == 4 and not any("_gt" in p.name for p in found)
    (tmp_path / "patient001_4d.nii.gz").write_bytes(b"")
    (tmp_path / "patient0001_4CH_half_sequence.nii.gz").write_bytes(b"")
    assert find_images(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "nowhere")


def test_segment_then_evaluate_from_the_command_line(acdc_like, model_path, tmp_path, capsys):
    out = tmp_path / "pred"
    assert cli.main(["segment", "--model", str(model_path), "--input", str(acdc_like), "--output", str(out)]) == 0
    preds = sorted(out.rglob("*_gt.nii.gz"))
    assert [p.relative_to(out).parent.name for p in preds] == ["patient001"] * 2 + ["patient002"] * 2
    for pred in preds:  # same geometry as the image it segments: it overlays in any viewer
        image = nib.load(acdc_like / pred.relative_to(out).parent / pred.name.replace("_gt", ""))
        labels = nib.load(pred)
        assert labels.shape == image.shape and np.allclose(labels.affine, image.affine)
        assert np.allclose(labels.header.get_zooms(), image.header.get_zooms())
        assert set(np.unique(np.asarray(labels.dataobj))) <= {0, 1, 2, 3}
    volumes = pd.read_csv(out / "volumes.csv")
    assert len(volumes) == 4 * 3 and set(volumes.structure) == {"RV", "MYO", "LV"} and (volumes.volume_ml >= 0).all()
    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(acdc_like)]) == 0
    scores = pd.read_csv(out / "evaluation.csv")
    assert len(scores) == 4 * 3 and scores.dice.between(0, 1).all()
    assert "file(s) scored" in capsys.readouterr().out


def test_evaluate_a_perfect_prediction(acdc_like, tmp_path):
    pred = tmp_path / "pred"
    for gt in acdc_like.rglob("*_gt.nii.gz"):
        (pred / gt.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, pred / gt.parent.name / gt.name)
    table = evaluate_folders(pred, acdc_like)
    assert np.allclose(table.dice, 1.0) and np.allclose(table.hd95_mm, 0.0)
    assert np.allclose(table.volume_pred_ml, table.volume_true_ml)


def test_cli_errors_are_one_line(tmp_path, model_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["segment", "--model", str(model_path), "--input", str(tmp_path / "empty"),
                     "--output", str(tmp_path / "o")]) == 1
    assert "no images" in capsys.readouterr().err
    assert cli.main(["evaluate", "--pred", str(tmp_path), "--truth", str(tmp_path)]) == 1


def test_mhd_images_keep_their_geometry(model_path, tmp_path):
    import SimpleITK as sitk

    from cardigan_utils.segmentation import segment_folder

    write_dataset(load_cases("phantom-echo", n_patients=1), tmp_path / "CAMUS", layout="camus-mhd")
    images = find_images(tmp_path / "CAMUS")
    assert images and all(p.suffix == ".mhd" for p in images)
    # the MRI model's weights, declared an echo model (a CAMUS folder refuses an MRI one): what is
    # checked here is reading and writing .mhd geometry
    config = json.loads(model_path.with_suffix(".json").read_text())
    config["data"] = {**config["data"], "modality": "echo", "fov_mm": None}
    echo_model = tmp_path / "echo" / "segmenter.pt"
    echo_model.parent.mkdir()
    shutil.copy(model_path, echo_model)
    echo_model.with_suffix(".json").write_text(json.dumps(config))
    segment_folder(echo_model, tmp_path / "CAMUS", tmp_path / "pred", progress_bar=False)
    for image in images:
        pred = tmp_path / "pred" / image.relative_to(tmp_path / "CAMUS").parent / image.name.replace(".mhd", "_gt.nii.gz")
        a, b = sitk.ReadImage(str(image)), sitk.ReadImage(str(pred))
        assert a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
        assert np.allclose(a.GetOrigin(), b.GetOrigin())


@pytest.fixture(scope="module")
def echo_model_path(tmp_path_factory):
    return tiny_segmenter(tmp_path_factory.mktemp("echo_model"), "phantom-echo", n_patients=3, steps=2)


def test_segment_then_evaluate_a_derived_camus_copy(echo_model_path, tmp_path, capsys):
    """A copy like CAMUS_224 (1.0 mm placeholder): Dice and HD95 in pixels, never a number in mm or ml."""
    from cardigan_utils.data.camus import write_camus_example

    root = write_camus_example(tmp_path / "copy", n_patients=1, layout="camus-copy") / "database_nifti"
    inputs = tmp_path / "input" / "patient0001"
    inputs.mkdir(parents=True)
    for image in find_images(root):
        shutil.copy(image, inputs / image.name)
    out = tmp_path / "pred"
    assert cli.main(["segment", "--model", str(echo_model_path), "--input", str(inputs.parent), "--output", str(out)]) == 0
    volumes = pd.read_csv(out / "volumes.csv")
    assert len(volumes) == 4 * 3 and set(volumes.structure) == {"LV", "MYO", "LA"}
    assert volumes.volume_ml.isna().all() and (~volumes.spacing_known).all() and (volumes.voxels >= 0).all()
    capsys.readouterr()
    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(root)]) == 0  # echo, from the folder's layout
    printed = capsys.readouterr().out
    assert "hd95_px" in printed and "placeholder spacing" in printed
    scores = pd.read_csv(out / "evaluation.csv")
    assert len(scores) == 4 * 3 and set(scores.structure) == {"LV", "MYO", "LA"}
    assert scores.hd95_mm.isna().all() and scores.volume_true_ml.isna().all() and (~scores.spacing_known).all()
    both = (scores.voxels_pred > 0) & (scores.voxels_true > 0)
    assert scores.hd95_px[both].notna().all() and scores.hd95_px[~both].isna().all()
    assert scores.dice.between(0, 1).all() and (scores.voxels_true > 0).all()


def test_a_perfect_prediction_of_a_derived_copy_scores_zero_pixels(tmp_path):
    from cardigan_utils.data.camus import write_camus_example

    root = write_camus_example(tmp_path / "copy", n_patients=1, layout="camus-copy") / "database_nifti"
    pred = tmp_path / "pred"
    for gt in root.rglob("*_gt.nii.gz"):
        (pred / gt.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, pred / gt.parent.name / gt.name)
    table = evaluate_folders(pred, root)
    assert np.allclose(table.dice, 1.0) and np.allclose(table.hd95_px, 0.0) and table.hd95_mm.isna().all()
    assert (table.voxels_pred == table.voxels_true).all()
