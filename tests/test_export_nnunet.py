"""The nnU-Net v2 raw dataset exporter for 2-D slices and its structural checker."""

from __future__ import annotations

import json
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

from cardigan_utils.data.export import (
    NNUNET_SLICE_SPACING,
    check_nnunet_dataset,
    finish_nnunet_dataset,
    nnunet_dataset_dir,
    write_nnunet_cases,
    write_nnunet_dataset,
)

SPACING = (1.25, 1.5)
LABEL_NAMES = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
N, H, W = 5, 32, 28


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, H, W)).astype(np.float32)
    labels = rng.integers(0, 4, size=(n, H, W)).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def valid_dataset(tmp_path_factory):
    images, labels = _data()
    root = tmp_path_factory.mktemp("nnunet_raw")
    out = write_nnunet_dataset(root, images, labels, dataset_id=501, name="CardiganSynth", spacing=SPACING,
                               label_names=LABEL_NAMES)
    return out, images, labels


@pytest.fixture()
def dataset_copy(valid_dataset, tmp_path):
    """A fresh copy of the valid dataset that a test may break."""
    src = valid_dataset[0]
    return shutil.copytree(src, tmp_path / src.name)


def test_written_dataset_is_valid_and_named_as_documented(valid_dataset):
    out, images, labels = valid_dataset
    assert out.name == "Dataset501_CardiganSynth"
    assert check_nnunet_dataset(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"synth_{i:06d}_0000.nii.gz" for i in range(N)]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [f"synth_{i:06d}.nii.gz" for i in range(N)]
    assert json.loads((out / "dataset.json").read_text()) == {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "RV": 1, "MYO": 2, "LV": 3},
        "numTraining": N,
        "file_ending": ".nii.gz",
    }
    expected_affine = np.diag([SPACING[0], SPACING[1], NNUNET_SLICE_SPACING, 1.0])
    for i in range(N):
        img = nib.load(out / "imagesTr" / f"synth_{i:06d}_0000.nii.gz")
        lab = nib.load(out / "labelsTr" / f"synth_{i:06d}.nii.gz")
        assert img.shape == lab.shape == (H, W, 1)
        assert img.get_data_dtype() == np.float32 and lab.get_data_dtype() == np.uint8
        np.testing.assert_allclose(np.asanyarray(img.dataobj)[..., 0], images[i])
        np.testing.assert_array_equal(np.asanyarray(lab.dataobj)[..., 0], labels[i])
        for f in (img, lab):
            np.testing.assert_allclose(f.header.get_zooms(), (*SPACING, NNUNET_SLICE_SPACING))
            np.testing.assert_allclose(f.affine, expected_affine)


def test_nnunet_default_reader_sees_a_2d_slice_with_the_out_of_plane_axis_first(valid_dataset):
    """SimpleITKIO (nnU-Net's first reader for .nii.gz) reverses the axes; the planner takes the axis
    of largest spacing as out-of-plane, which must be the singleton one (shape (1, W, H))."""
    sitk = pytest.importorskip("SimpleITK")
    out = valid_dataset[0]
    itk = sitk.ReadImage(str(out / "imagesTr" / "synth_000000_0000.nii.gz"))
    array = sitk.GetArrayFromImage(itk)
    spacing_for_nnunet = list(itk.GetSpacing())[::-1]
    assert array.shape == (1, W, H)
    assert int(np.argmax(spacing_for_nnunet)) == 0


BREAKS = {
    "deleted label": (lambda d: (d / "labelsTr" / "synth_000002.nii.gz").unlink(),
                      "case synth_000002: no label file"),
    "image renamed to channel 0001": (
        lambda d: os.replace(d / "imagesTr" / "synth_000001_0000.nii.gz", d / "imagesTr" / "synth_000001_0001.nii.gz"),
        "channel 0001 is not declared"),
    "image renamed, channel 0000 missing": (
        lambda d: os.replace(d / "imagesTr" / "synth_000001_0000.nii.gz", d / "imagesTr" / "synth_000001_0001.nii.gz"),
        "case synth_000001: missing image channel(s) 0000"),
    "badly named image": (
        lambda d: os.replace(d / "imagesTr" / "synth_000001_0000.nii.gz", d / "imagesTr" / "synth_000001_000.nii.gz"),
        "imagesTr/synth_000001_000.nii.gz: not named"),
    "stray temporary file": (
        lambda d: shutil.copy(d / "imagesTr" / "synth_000001_0000.nii.gz",
                              d / "imagesTr" / "synth_000001_0000.tmp.nii.gz"),
        "imagesTr/synth_000001_0000.tmp.nii.gz: not named"),
    "wrong numTraining": (lambda d: _edit_json(d, numTraining=4), "numTraining is 4 but 5 cases"),
    "numTraining not an int": (lambda d: _edit_json(d, numTraining="5"), "'numTraining' must be of type int"),
    "undeclared label value 7": (lambda d: _rewrite(d / "labelsTr" / "synth_000003.nii.gz", value=7),
                                 "labelsTr/synth_000003.nii.gz: label value(s) [7] not declared"),
    "label shape differs": (lambda d: _rewrite(d / "labelsTr" / "synth_000000.nii.gz", shape=(H, W - 1, 1)),
                            "case synth_000000: shape (32, 27, 1) of labelsTr/synth_000000.nii.gz differs"),
    "label affine differs": (lambda d: _rewrite(d / "labelsTr" / "synth_000004.nii.gz", spacing=(1.0, 1.5)),
                             "case synth_000004: affine (spacing/orientation) of labelsTr/synth_000004.nii.gz differs"),
    "missing key labels": (lambda d: _edit_json(d, labels=None), "missing required key 'labels'"),
    "missing key file_ending": (lambda d: _edit_json(d, file_ending=None), "missing required key 'file_ending'"),
    "dataset.json missing": (lambda d: (d / "dataset.json").unlink(), "dataset.json missing"),
    "non-consecutive labels": (lambda d: _edit_json(d, labels={"background": 0, "RV": 1, "MYO": 2, "LV": 4}),
                               "not consecutive"),
    "no background 0": (lambda d: _edit_json(d, labels={"RV": 1, "MYO": 2, "LV": 3}), "background must be 0"),
    "bad channel_names keys": (lambda d: _edit_json(d, channel_names={"1": "MRI"}), "channel_names: keys"),
    "unsupported file_ending": (lambda d: _edit_json(d, file_ending=".png"), "file_ending '.png'"),
    "singleton axis spacing 1.0": (lambda d: _rewrite_case(d, "synth_000001", slice_spacing=1.0),
                                   "singleton axis has spacing 1"),
    "NaN in an image": (lambda d: _rewrite(d / "imagesTr" / "synth_000002_0000.nii.gz", value=np.nan),
                        "imagesTr/synth_000002_0000.nii.gz: image has NaN"),
}


def _edit_json(dataset_dir, **changes):
    path = dataset_dir / "dataset.json"
    content = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del content[key]
        else:
            content[key] = value
    path.write_text(json.dumps(content))


def _rewrite(path, *, value=None, shape=None, spacing=SPACING, slice_spacing=NNUNET_SLICE_SPACING):
    old = nib.load(path)
    data = np.asanyarray(old.dataobj).copy()
    if shape is not None:
        data = np.zeros(shape, data.dtype)
    if value is not None:
        data.flat[0] = value
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, slice_spacing, 1.0])), path)


def _rewrite_case(dataset_dir, case, *, slice_spacing):
    _rewrite(dataset_dir / "imagesTr" / f"{case}_0000.nii.gz", slice_spacing=slice_spacing)
    _rewrite(dataset_dir / "labelsTr" / f"{case}.nii.gz", slice_spacing=slice_spacing)


@pytest.mark.parametrize("what", list(BREAKS))
def test_checker_reports_each_problem(dataset_copy, what):
    assert check_nnunet_dataset(dataset_copy) == []  # the copy is valid before it is broken
    breaker, expected = BREAKS[what]
    breaker(dataset_copy)
    problems = check_nnunet_dataset(dataset_copy)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("bad_name", ["Dataset12_Heart", "Dataset000_Heart", "Task501_Heart", "Dataset501_He art"])
def test_checker_reports_a_bad_folder_name(valid_dataset, tmp_path, bad_name):
    copy = shutil.copytree(valid_dataset[0], tmp_path / bad_name)
    problems = check_nnunet_dataset(copy)
    assert len(problems) == 1 and "does not match DatasetXXX_Name" in problems[0], problems


def test_checker_on_a_missing_folder(tmp_path):
    assert check_nnunet_dataset(tmp_path / "Dataset501_Nope") == [f"{tmp_path / 'Dataset501_Nope'}: not a folder"]


def test_resume_after_an_interrupted_case(tmp_path):
    images, labels = _data()
    out = nnunet_dataset_dir(tmp_path, dataset_id=502, name="Resume")
    assert write_nnunet_cases(out, images[:3], labels[:3], start_index=0, spacing=SPACING) == [
        f"synth_{i:06d}" for i in range(3)]
    # interrupted while writing case 3: its image landed, its label did not, a temporary file was left
    write_nnunet_cases(out, images[3:4], labels[3:4], start_index=3, spacing=SPACING)
    (out / "labelsTr" / "synth_000003.nii.gz").unlink()
    (out / "labelsTr" / "synth_000004.tmp.nii.gz").write_bytes(b"half a file")
    (out / "imagesTr" / "synth_000007_0000.tmp.nii.gz").write_bytes(b"half a file")  # not rewritten below
    (out / "dataset.json.tmp").write_text("{")
    # a later, different, orphan image that the resumed run does not rewrite
    shutil.copy(out / "imagesTr" / "synth_000000_0000.nii.gz", out / "imagesTr" / "synth_000009_0000.nii.gz")
    stamps = {p: p.stat().st_mtime_ns for i in range(3) for p in (
        out / "imagesTr" / f"synth_{i:06d}_0000.nii.gz", out / "labelsTr" / f"synth_{i:06d}.nii.gz")}
    before = {p: p.read_bytes() for p in stamps}

    ids = write_nnunet_cases(out, images, labels, start_index=0, spacing=SPACING)
    assert ids == [f"synth_{i:06d}" for i in range(N)]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # complete cases were skipped
    assert {p: p.read_bytes() for p in stamps} == before

    path = finish_nnunet_dataset(out, label_names=LABEL_NAMES, extra={"description": "resumed"})
    assert path == out / "dataset.json"
    content = json.loads(path.read_text())
    assert content["numTraining"] == N and content["description"] == "resumed"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"synth_{i:06d}_0000.nii.gz" for i in range(N)]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [f"synth_{i:06d}.nii.gz" for i in range(N)]
    assert not list(out.rglob("*.tmp*"))
    assert check_nnunet_dataset(out) == []
    for i in (3, 4):
        got = np.asanyarray(nib.load(out / "labelsTr" / f"synth_{i:06d}.nii.gz").dataobj)[..., 0]
        np.testing.assert_array_equal(got, labels[i])


def test_a_crash_leaves_the_label_unwritten_and_a_rerun_completes(tmp_path, monkeypatch):
    """The label is written last, through a temporary name: a crash while writing it leaves an image
    without label (not a complete case) and a temporary file, both cleaned up by the rerun."""
    import cardigan_utils.runs as runs  # data.export writes through runs.atomic_path

    images, labels = _data(n=3)
    out = tmp_path / "Dataset508_Crash"
    real_replace = os.replace

    def crash_on_label_of_case_1(src, dst):
        if str(dst).endswith("labelsTr/synth_000001.nii.gz"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(runs.os, "replace", crash_on_label_of_case_1)
    with pytest.raises(KeyboardInterrupt):
        write_nnunet_cases(out, images, labels, start_index=0, spacing=SPACING)
    monkeypatch.setattr(runs.os, "replace", real_replace)
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["synth_000000_0000.nii.gz",
                                                                     "synth_000001_0000.nii.gz"]
    left = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert left[0] == "synth_000000.nii.gz" and len(left) == 2 and left[1].startswith("synth_000001.tmp-"), left
    assert any("case synth_000001: no label file" in p for p in check_nnunet_dataset(out))

    write_nnunet_cases(out, images, labels, start_index=0, spacing=SPACING)
    finish_nnunet_dataset(out, label_names=LABEL_NAMES)
    assert check_nnunet_dataset(out) == []
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3


def test_overwrite_rewrites_complete_cases(tmp_path):
    images, labels = _data(n=2)
    out = tmp_path / "Dataset503_Over"
    write_nnunet_cases(out, images, labels, start_index=0, spacing=SPACING)
    write_nnunet_cases(out, images[::-1], labels[::-1], start_index=0, spacing=SPACING)  # skipped: same files
    got = np.asanyarray(nib.load(out / "labelsTr" / "synth_000000.nii.gz").dataobj)[..., 0]
    np.testing.assert_array_equal(got, labels[0])
    write_nnunet_cases(out, images[::-1], labels[::-1], start_index=0, spacing=SPACING, overwrite=True)
    got = np.asanyarray(nib.load(out / "labelsTr" / "synth_000000.nii.gz").dataobj)[..., 0]
    np.testing.assert_array_equal(got, labels[1])


def test_write_dataset_refuses_an_existing_dataset_unless_overwrite(tmp_path):
    images, labels = _data()
    kwargs = dict(dataset_id=504, name="Twice", spacing=SPACING, label_names=LABEL_NAMES)
    out = write_nnunet_dataset(tmp_path, images, labels, **kwargs)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nnunet_dataset(tmp_path, images, labels, **kwargs)
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == N

    # overwrite with a smaller set: no case of the old one may survive
    again = write_nnunet_dataset(tmp_path, images[:3] + 1.0, labels[:3], overwrite=True, **kwargs)
    assert again == out
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [f"synth_{i:06d}.nii.gz" for i in range(3)]
    np.testing.assert_allclose(np.asanyarray(nib.load(out / "imagesTr" / "synth_000000_0000.nii.gz").dataobj)[..., 0],
                               images[0] + 1.0)
    assert check_nnunet_dataset(out) == []


def test_finish_refuses_bad_label_names_and_clashing_extra(tmp_path):
    images, labels = _data(n=1)
    out = tmp_path / "Dataset505_Finish"
    write_nnunet_cases(out, images, labels, start_index=0, spacing=SPACING)
    with pytest.raises(ValueError, match="consecutive"):
        finish_nnunet_dataset(out, label_names={"background": 0, "LV": 2})
    with pytest.raises(ValueError, match="required dataset.json keys"):
        finish_nnunet_dataset(out, label_names=LABEL_NAMES, extra={"numTraining": 9})
    assert not (out / "dataset.json").exists()
    with pytest.raises(ValueError, match="no complete case"):
        finish_nnunet_dataset(tmp_path / "Dataset506_Empty", label_names=LABEL_NAMES)


@pytest.mark.parametrize("bad", [
    dict(labels=np.full((1, H, W), 300)),
    dict(labels=np.zeros((1, H, W), np.float32)),
    dict(labels=np.zeros((1, H, W + 1), np.uint8)),
    dict(images=np.full((1, H, W), np.nan)),
    dict(spacing=(1.25, 0.0)),
    dict(spacing=(1.25,)),
    dict(case_prefix="syn/th"),
    dict(start_index=-1),
])
def test_write_cases_rejects_bad_input(tmp_path, bad):
    images, labels = _data(n=1)
    kwargs = dict(images=images, labels=labels, start_index=0, spacing=SPACING, case_prefix="synth") | bad
    with pytest.raises(ValueError):
        write_nnunet_cases(tmp_path / "Dataset507_Bad", **kwargs)


def test_nnunet_dataset_dir(tmp_path):
    assert nnunet_dataset_dir(tmp_path, dataset_id=7, name="Heart") == tmp_path / "Dataset007_Heart"
    assert nnunet_dataset_dir(tmp_path, dataset_id=999, name="Cardi-GAN_2") == tmp_path / "Dataset999_Cardi-GAN_2"
    for dataset_id in (0, 1000, -1, 5.0, "5", True):
        with pytest.raises(ValueError, match="1..999"):
            nnunet_dataset_dir(tmp_path, dataset_id=dataset_id, name="Heart")
    for name in ("", "He art", "Heart/1", "Herz.v2", "Hé"):
        with pytest.raises(ValueError, match="letters, digits"):
            nnunet_dataset_dir(tmp_path, dataset_id=5, name=name)


# --- nnU-Net's own checks -----------------------------------------------------------------------


def _nnunet_verify(dataset_dir):
    """nnU-Net's verify_dataset_integrity on one worker (it spawns a pool); raises on a refusal."""
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity").verify_dataset_integrity
    verify(str(dataset_dir), num_processes=1)


def test_nnunet_own_integrity_check_accepts_the_export_and_refuses_a_broken_copy(valid_dataset, dataset_copy, capfd):
    _nnunet_verify(valid_dataset[0])
    said = capfd.readouterr().out
    assert "verify_dataset_integrity Done" in said
    assert not [line for line in said.splitlines() if line.startswith(("Error", "Warning", "WARNING"))], said
    _rewrite(dataset_copy / "labelsTr" / "synth_000003.nii.gz", value=7)  # the check can fail
    with pytest.raises(RuntimeError, match="unexpected labels"):
        _nnunet_verify(dataset_copy)


# --- splits_final.json: folds by patient, synthetic cases in training only ----------------------

from cardigan_utils.data.export import nnunet_case_patients, nnunet_splits, write_nnunet_splits  # noqa: E402


def _case_patients(n_patients=7, seed=0):
    rng = np.random.default_rng(seed)
    return {f"p{p}_{k:06d}": f"p{p}" for p in range(n_patients) for k in range(int(rng.integers(1, 5)))}


def _assert_folds(folds, case_patients, synthetic, n_folds):
    real = set(case_patients)
    assert len(folds) == n_folds
    val_fold = {}
    for k, fold in enumerate(folds):
        assert sorted(fold) == ["train", "val"] and fold["val"]
        assert not set(fold["val"]) & set(synthetic)                       # no synthetic case is validated on
        assert not set(fold["train"]) & set(fold["val"])
        assert set(fold["train"]) == (real - set(fold["val"])) | set(synthetic)   # train = all the others
        for case in fold["val"]:
            assert case not in val_fold                                     # each real case in one val
            val_fold[case] = k
    assert set(val_fold) == real
    by_patient = {}
    for case, k in val_fold.items():
        by_patient.setdefault(case_patients[case], set()).add(k)
    assert all(len(ks) == 1 for ks in by_patient.values()), by_patient   # no patient in two folds' val
    sizes = sorted(sum(1 for ks in by_patient.values() if k in ks) for k in range(n_folds))
    assert sizes[-1] - sizes[0] <= 1                                        # patients dealt evenly


@pytest.mark.parametrize("n_folds", [2, 3, 5, 7])
def test_splits_keep_patients_together_and_synthetic_in_training(n_folds):
    case_patients = _case_patients()
    synthetic = [f"synth_{i:06d}" for i in range(9)]
    folds = nnunet_splits(case_patients, synthetic=synthetic, n_folds=n_folds, seed=3)
    _assert_folds(folds, case_patients, synthetic, n_folds)
    assert folds == nnunet_splits(case_patients, synthetic=reversed(synthetic), n_folds=n_folds, seed=3)
    if n_folds < 7:  # with one patient a fold, other seeds only reorder the folds
        assert any(nnunet_splits(case_patients, synthetic=synthetic, n_folds=n_folds, seed=s) != folds
                   for s in range(4, 8))


@pytest.fixture()
def mixed_dataset(tmp_path):
    """A finished dataset of three real patients (two or three slices each) and four synthetic cases."""
    out = tmp_path / "raw" / "Dataset510_Mixed"
    images, labels = _data(n=12)
    case_patients = {}
    for p, (first, n) in enumerate([(0, 2), (2, 3), (5, 3)]):
        ids = write_nnunet_cases(out, images[first:first + n], labels[first:first + n], start_index=0,
                                 spacing=SPACING, case_prefix=f"patient{p:03d}")
        case_patients.update({case: f"patient{p:03d}" for case in ids})
    synthetic = write_nnunet_cases(out, images[8:], labels[8:], start_index=0, spacing=SPACING)
    finish_nnunet_dataset(out, label_names=LABEL_NAMES)
    return out, case_patients, synthetic


def test_write_splits_where_nnunet_reads_them(mixed_dataset, tmp_path):
    out, case_patients, synthetic = mixed_dataset
    assert nnunet_case_patients(out) == (case_patients, synthetic)
    path = write_nnunet_splits(out, tmp_path / "preprocessed", case_patients=case_patients, synthetic=synthetic,
                               n_folds=3, seed=1)
    assert path == tmp_path / "preprocessed" / "Dataset510_Mixed" / "splits_final.json"
    folds = json.loads(path.read_text())
    _assert_folds(folds, case_patients, synthetic, 3)
    # written again with the same folds: fine; other folds: refused unless overwrite
    write_nnunet_splits(out, tmp_path / "preprocessed", case_patients=case_patients, synthetic=synthetic,
                        n_folds=3, seed=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nnunet_splits(out, tmp_path / "preprocessed", case_patients=case_patients, synthetic=synthetic,
                            n_folds=2, seed=1)
    assert json.loads(path.read_text()) == folds
    write_nnunet_splits(out, tmp_path / "preprocessed", case_patients=case_patients, synthetic=synthetic,
                        n_folds=2, seed=1, overwrite=True)
    assert len(json.loads(path.read_text())) == 2


@pytest.mark.parametrize("change, message", [
    (lambda cp, syn: ({**cp, "patient009_000000": "patient009"}, syn),
     "case 'patient009_000000' is not in the dataset"),
    (lambda cp, syn: (cp, syn + ["synth_000099"]), "case 'synth_000099' is not in the dataset"),
    (lambda cp, syn: (cp, syn[1:]), "case 'synth_000000' has no patient and is not marked synthetic"),
    (lambda cp, syn: (cp, syn + [next(iter(cp))]), "is both a real patient's case and synthetic"),
])
def test_write_splits_refuses_bad_cases_in_one_line(mixed_dataset, tmp_path, change, message):
    out, case_patients, synthetic = mixed_dataset
    case_patients, synthetic = change(case_patients, synthetic)
    with pytest.raises(ValueError, match=message) as err:
        write_nnunet_splits(out, tmp_path / "pp", case_patients=case_patients, synthetic=synthetic, n_folds=2)
    assert "\n" not in str(err.value) and str(out) in str(err.value)
    assert not (tmp_path / "pp").exists()


@pytest.mark.parametrize("n_folds", [4, 1, 0, 2.0, True])
def test_write_splits_refuses_a_bad_number_of_folds(mixed_dataset, tmp_path, n_folds):
    out, case_patients, synthetic = mixed_dataset
    with pytest.raises(ValueError, match=r"n_folds must be an integer from 2 to the number of real patients \(3\)"):
        write_nnunet_splits(out, tmp_path / "pp", case_patients=case_patients, synthetic=synthetic, n_folds=n_folds)


def test_case_patients_refuses_ids_the_kit_did_not_write(mixed_dataset):
    out = mixed_dataset[0]
    for folder, suffix in (("imagesTr", "_0000.nii.gz"), ("labelsTr", ".nii.gz")):
        shutil.copy(out / folder / f"synth_000000{suffix}", out / folder / f"case7{suffix}")
    with pytest.raises(ValueError, match="case id 'case7' is not {patient}_{NNNNNN}"):
        nnunet_case_patients(out)
    with pytest.raises(ValueError, match="no dataset.json"):
        nnunet_case_patients(out.parent / "Dataset511_None")


# --- a synthetic set and a real cache's training patients, through nnU-Net itself ----------------

# Run in a child process: nnunetv2.paths reads nnUNet_raw / _preprocessed / _results once, at import.
_NNUNET_SCRIPT = r"""
import json, sys
import torch
from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess
from nnunetv2.run.run_training import get_trainer_from_args

torch.set_num_threads(1)
dataset_id, n_folds = int(sys.argv[1]), int(sys.argv[2])
# check_dataset_integrity: verify_dataset_integrity first, as nnUNetv2_plan_and_preprocess --verify_dataset_integrity
extract_fingerprints([dataset_id], num_processes=1, check_dataset_integrity=True)
plan_experiments([dataset_id])
preprocess([dataset_id], configurations=("2d",), num_processes=(1,))
folds = []
for fold in range(n_folds):
    trainer = get_trainer_from_args(str(dataset_id), "2d", fold, device=torch.device("cpu"))
    train, val = trainer.get_tr_and_val_datasets()
    val.load_case(val.identifiers[0])  # a preprocessed case of the fold's validation loads
    folds.append({"train": sorted(map(str, train.identifiers)), "val": sorted(map(str, val.identifiers))})
print("FOLDS " + json.dumps(folds))
"""


def test_synthetic_set_and_real_patients_through_nnunet_planning_and_trainer(tmp_path):
    pytest.importorskip("nnunetv2")
    import subprocess
    import sys

    import torch

    from cardigan_utils.data.cache import build_cache
    from cardigan_utils.images import SpadeRenderer
    from cardigan_utils.networks.spade import SPADEGenerator
    from cardigan_utils.networks.vae import ShapeVAE
    from cardigan_utils.synthetic import generate_dataset, to_nnunet
    from conftest import disk_case

    cases = [disk_case(pid=f"patient{i:03d}", phase=phase, shape=(40, 48, 2), radius=8 if phase == "ED" else 6)
             for i in range(6) for phase in ("ED", "ES")]
    cache = build_cache(cases, tmp_path / "cache", image_size=32, val_fraction=0.2, test_fraction=0.2, progress=False)
    torch.manual_seed(0)
    vae = ShapeVAE(image_size=64, latent_dim=8, channels=[8, 16, 32, 64]).eval()
    gen = SpadeRenderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, z_dim=8).eval(), config={})
    set_dir = generate_dataset(vae, gen, out_dir=tmp_path / "set", n=5, shard_size=5, seed=1, filter_plausible=False,
                               batch_size=5, spacing_mm=1.25, progress_bar=False)
    roots = {k: tmp_path / k for k in ("raw", "preprocessed", "results")}
    out = to_nnunet(set_dir, roots["raw"], dataset_id=512, name="Mixed", real=cache, progress_bar=False)
    assert check_nnunet_dataset(out) == []

    case_patients, synthetic = nnunet_case_patients(out)
    train_patients = sorted(set(cache.slices.loc[cache.slices["split"] == "train", "patient_id"]))
    assert sorted(set(case_patients.values())) == train_patients and len(train_patients) >= 3
    assert len(case_patients) == len(cache.indices("train")) and synthetic == [f"synth_{i:06d}" for i in range(5)]
    path = write_nnunet_splits(out, roots["preprocessed"], case_patients=case_patients, synthetic=synthetic,
                               n_folds=3, seed=0)  # before planning: nnU-Net leaves it there
    folds = json.loads(path.read_text())

    env = {**os.environ, **{f"nnUNet_{k}": str(v) for k, v in roots.items()}, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _NNUNET_SCRIPT, "512", "3"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    complaints = [line for line in done.stdout.splitlines() if line.lower().startswith(("error", "warning"))]
    assert not complaints and "verify_dataset_integrity Done" in done.stdout, complaints
    assert "Using splits from existing split file" in (roots["results"] / "Dataset512_Mixed").joinpath(
        "nnUNetTrainer__nnUNetPlans__2d", "fold_0").glob("training_log_*.txt").__next__().read_text()
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("FOLDS ")]
    assert json.loads(line[len("FOLDS "):]) == folds  # the trainer trains and validates on our folds
    plans = json.loads((roots["preprocessed"] / out.name / "nnUNetPlans.json").read_text())
    assert list(plans["configurations"]) == ["2d"]  # 2-D slices: no 3-D configuration planned
    assert json.loads(path.read_text()) == folds
