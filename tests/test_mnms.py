"""The M&Ms-1 and M&Ms-2 readers: labels remapped, ED/ES frames from the CSV, meta, splits, and bad inputs refused."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from cardigan_utils.data import DataError, get_dataset
from cardigan_utils.data.mnms import (
    MNMS_CSV,
    list_mnms2_patients,
    list_mnms_patients,
    load_mnms,
    read_mnms2_patient,
    read_mnms_patient,
    write_mnms2_example,
    write_mnms_example,
)
from cardigan_utils.data.phantom import phantom_cases
from conftest import ROOT

SEED = 1


def _one_line_naming(err: Exception, *names: str) -> None:
    message = str(err)
    assert "\n" not in message, message
    for name in names:
        assert name in message, message


@pytest.fixture(scope="module")
def truth():
    """The phantom patients the examples are written from: ``[{"ED": case, "ES": case}, ...]``."""
    cases = phantom_cases("phantom-mri", 3, seed=SEED)
    return [{c.phase: c for c in cases if c.patient_id == pid} for pid in sorted({c.patient_id for c in cases})]


@pytest.fixture(scope="module")
def mnms_written(tmp_path_factory):
    """An M&Ms-1 example written once: two labelled patients and one unlabelled."""
    return write_mnms_example(tmp_path_factory.mktemp("mnms") / "MnM", n_patients=2, seed=SEED, n_unlabelled=1)


@pytest.fixture
def mnms(mnms_written, tmp_path):
    """A copy of the M&Ms-1 example that the test may change."""
    return shutil.copytree(mnms_written, tmp_path / "MnM")


@pytest.fixture(scope="module")
def mnms2_written(tmp_path_factory):
    return write_mnms2_example(tmp_path_factory.mktemp("mnms2") / "MnM2", n_patients=2, seed=SEED)


@pytest.fixture
def mnms2(mnms2_written, tmp_path):
    return shutil.copytree(mnms2_written, tmp_path / "MnM2")


def _labelled(root):
    return sorted((root / "Training" / "Labeled").iterdir())


def _csv_rows(root):
    with open(root / MNMS_CSV, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(root, rows):
    with open(root / MNMS_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _set_csv(root, code, **values):
    rows = _csv_rows(root)
    for row in rows:
        if row["External code"] == code:
            row.update({k: str(v) for k, v in values.items()})
    _write_rows(root, rows)


def _rewrite(path, data):
    img = nib.load(str(path))
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(path))


# --- M&Ms-1 -----------------------------------------------------------------------------------


def test_the_ed_and_es_frames_named_by_the_csv_are_read_in_the_kit_labels(mnms_written, truth):
    rows = {r["External code"]: r for r in _csv_rows(mnms_written)}
    for dir_ in _labelled(mnms_written):
        row = rows[dir_.name]
        patient = truth[int(row[""])]  # the CSV's index column: the phantom patient it was written from
        cases = read_mnms_patient(dir_)
        assert [c.phase for c in cases] == ["ED", "ES"]
        cine = np.asarray(nib.load(str(dir_ / f"{dir_.name}_sa.nii.gz")).dataobj)
        stored = np.asarray(nib.load(str(dir_ / f"{dir_.name}_sa_gt.nii.gz")).dataobj)
        for case in cases:
            frame = int(row[case.phase])
            assert case.meta["frame"] == frame
            # the image is the phantom's own frame, not a neighbour (they are blends and differ)
            assert np.array_equal(case.image, patient[case.phase].image)
            assert not np.array_equal(case.image, cine[..., (frame + 1) % cine.shape[3]])
            assert case.image.dtype == np.float32 and case.label.dtype == np.uint8
            # M&Ms 1 LV -> kit 3, 3 RV -> kit 1, 2 MYO stays: the phantom's truth, voxel for voxel
            assert np.array_equal(case.label, patient[case.phase].label)
            assert np.array_equal(case.label == 3, stored[..., frame] == 1)
            assert np.array_equal(case.label == 1, stored[..., frame] == 3)
            assert case.spacing == patient[case.phase].spacing and case.labelled is None
            assert (case.modality, case.dataset, case.patient_id) == ("mri", "mnms", dir_.name)
    assert {int(r["ED"]) for r in rows.values()} == {0, 1, 2} and {int(r["ES"]) for r in rows.values()} == {7, 8}


def test_vendor_centre_and_geometry_in_meta(mnms_written, truth):
    cases = [c for d in _labelled(mnms_written) for c in read_mnms_patient(d)]
    rows = {r["External code"]: r for r in _csv_rows(mnms_written)}
    for case in cases:
        row = rows[case.patient_id]
        assert case.meta["vendor"] == row["Vendor"] and case.meta["vendor_name"] == row["VendorName"]
        assert case.meta["centre"] == row["Centre"] and case.meta["group"] == row["Pathology"]
        assert case.meta["image_path"].endswith(f"{case.patient_id}_sa.nii.gz")
        affine = nib.load(case.meta["image_path"]).affine
        assert isinstance(case.meta["affine"], np.ndarray) and np.allclose(case.meta["affine"], affine)
    assert sorted({c.meta["vendor"] for c in cases}) == sorted({p["ED"].meta["vendor"] for p in truth[:2]}) == ["A", "B"]
    assert len(cases[0].patient_id) == 6 and cases[0].patient_id.isalnum()


def test_unlabelled_patients_are_listed_and_skipped_with_a_warning(mnms_written):
    patients = list_mnms_patients(mnms_written)
    unlabelled = [p for p in patients if p.parent.name == "Unlabeled"]
    assert len(patients) == 3 and len(unlabelled) == 1
    with pytest.warns(UserWarning, match="without ground truth"):
        assert read_mnms_patient(unlabelled[0]) == []
    report = get_dataset("mnms").verify(mnms_written, progress=False)
    assert report.skipped_unlabelled == 1 and not report.problems
    assert len({c.patient_id for c in report.cases}) == 2
    loaded = load_mnms(mnms_written, progress=False)  # only labelled patients are chosen
    assert {c.patient_id for c in loaded} == {p.name for p in patients if p not in unlabelled}


def test_official_splits_and_split_folders(mnms):
    first, second = _labelled(mnms)
    (mnms / "Validation").mkdir()
    shutil.move(second, mnms / "Validation" / second.name)
    spec = get_dataset("mnms")
    assert spec.splits == ("training", "validation", "testing") and spec.env_var == "CARDIGAN_MNMS_DIR"
    assert [p.name for p in list_mnms_patients(mnms, split="validation")] == [second.name]
    assert [p.parent.name for p in list_mnms_patients(mnms, split="training")] == ["Labeled", "Unlabeled"]
    assert len(list_mnms_patients(mnms)) == 3
    # a split folder itself: the CSV is found above it
    assert [p.name for p in list_mnms_patients(mnms / "Training" / "Labeled")] == [first.name]
    assert len(list_mnms_patients(mnms / "Training", split="training")) == 2
    assert [c.patient_id for c in read_mnms_patient(mnms / "Validation" / second.name)] == [second.name] * 2
    with pytest.raises(DataError, match="no M&Ms patient folders") as err:
        list_mnms_patients(mnms, split="testing")
    _one_line_naming(err.value, str(mnms), "Testing/")
    with pytest.raises(DataError, match="asked for the 'training' split") as err:
        list_mnms_patients(mnms / "Validation", split="training")
    _one_line_naming(err.value, str(mnms / "Validation"))
    with pytest.raises(ValueError, match="split must be one of"):
        list_mnms_patients(mnms, split="test")


def _drop_row(root, code):
    _write_rows(root, [r for r in _csv_rows(root) if r["External code"] != code])


def _gt_3d(path, frame):
    _rewrite(path, np.asarray(nib.load(str(path)).dataobj)[..., frame])


def _gt_cropped(path, frame):
    _rewrite(path, np.asarray(nib.load(str(path)).dataobj)[:-2])


def _gt_value(path, frame):
    data = np.asarray(nib.load(str(path)).dataobj).copy()
    data[0, 0, 0, frame] = 5
    _rewrite(path, data)


def _gt_empty(path, frame):
    data = np.asarray(nib.load(str(path)).dataobj).copy()
    data[..., frame] = 0
    _rewrite(path, data)


@pytest.mark.parametrize("damage,message,names", [
    (lambda root, d, gt, ed: _drop_row(root, d.name), "no row for patient", ("csv", "code")),
    (lambda root, d, gt, ed: (root / MNMS_CSV).unlink(), "no M&Ms information CSV", ("folder",)),
    (lambda root, d, gt, ed: _set_csv(root, d.name, ED=""), "ED = '' for .* is not a frame", ("csv", "code", "image")),
    (lambda root, d, gt, ed: _set_csv(root, d.name, ED=10), "ED = '10' for .* is not a frame .* \\(0 to 9\\)",
     ("csv", "code", "image")),
    (lambda root, d, gt, ed: _set_csv(root, d.name, ES=-1), "ES = '-1' .* is not a frame", ("csv", "image")),
    (lambda root, d, gt, ed: _gt_3d(gt, ed), "a 3-D image .* expected 4-D", ("gt",)),
    (lambda root, d, gt, ed: _gt_cropped(gt, ed), "shape .* differs from its image", ("gt", "image")),
    (lambda root, d, gt, ed: _gt_value(gt, ed), r"label values \[5\] are not in the dataset's label map", ("gt",)),
    (lambda root, d, gt, ed: _gt_empty(gt, ed), r"\(frame [0-9]\): the label map is empty", ("gt",)),
], ids=["missing-row", "no-csv", "empty-ed-entry", "ed-beyond-frames", "negative-es", "gt-not-4d", "gt-shape",
        "unknown-label", "empty-ed-gt"])
def test_a_bad_input_is_a_one_line_error_naming_the_file(mnms, damage, message, names):
    patient = _labelled(mnms)[0]
    gt = patient / f"{patient.name}_sa_gt.nii.gz"
    ed = int(next(r["ED"] for r in _csv_rows(mnms) if r["External code"] == patient.name))
    damage(mnms, patient, gt, ed)
    with pytest.raises(DataError, match=message) as err:
        read_mnms_patient(patient)
    named = {"csv": MNMS_CSV, "code": patient.name, "image": f"{patient.name}_sa.nii.gz", "gt": str(gt),
             "folder": str(patient.parent)}
    _one_line_naming(err.value, *(named[n] for n in names))


def test_verify_reports_the_damaged_patient_and_reads_the_others(mnms):
    damaged, intact = _labelled(mnms)
    _set_csv(mnms, damaged.name, ES=99)
    report = get_dataset("mnms").verify(mnms, progress=False)
    assert [p for p, _ in report.problems] == [damaged.name] and "ES = '99'" in report.problems[0][1]
    assert {c.patient_id for c in report.cases} == {intact.name} and report.skipped_unlabelled == 1


def test_no_csv_is_refused_when_listing(mnms):
    (mnms / MNMS_CSV).unlink()
    with pytest.raises(DataError, match="no M&Ms information CSV") as err:
        list_mnms_patients(mnms)
    _one_line_naming(err.value, str(mnms), MNMS_CSV)


def test_a_csv_without_the_needed_columns_or_with_a_patient_twice(mnms):
    patient = _labelled(mnms)[0]
    rows = _csv_rows(mnms)
    _write_rows(mnms, [{k: v for k, v in r.items() if k != "ES"} for r in rows])
    with pytest.raises(DataError, match=r"no column\(s\) \['ES'\]") as err:
        read_mnms_patient(patient)
    _one_line_naming(err.value, MNMS_CSV)
    _write_rows(mnms, rows + rows[:1])
    with pytest.raises(DataError, match="appears twice") as err:
        read_mnms_patient(patient)
    _one_line_naming(err.value, MNMS_CSV, rows[0]["External code"])


def test_a_csv_saved_by_a_spreadsheet_reads(mnms):
    """A byte-order mark, CRLF line ends and a Latin-1 accent in a free-text column change nothing."""
    before = [c.meta["frame"] for d in _labelled(mnms) for c in read_mnms_patient(d)]
    text = (mnms / MNMS_CSV).read_text().replace("\n", "\r\n").replace(",Philips,", ",Philips Médical,")
    (mnms / MNMS_CSV).write_bytes(b"\xef\xbb\xbf" + text.encode("latin-1"))
    cases = [c for d in _labelled(mnms) for c in read_mnms_patient(d)]
    assert [c.meta["frame"] for c in cases] == before
    assert {c.meta["vendor_name"] for c in cases} == {"Siemens", "Philips M\ufffddical"}


# --- M&Ms-2 -----------------------------------------------------------------------------------


def test_mnms2_reads_short_axis_ed_es_in_the_kit_labels(mnms2_written, truth):
    patients = list_mnms2_patients(mnms2_written)
    assert [p.name for p in patients] == ["001", "002"]
    for patient, dir_ in zip(truth, patients):
        cases = read_mnms2_patient(dir_)
        assert [c.phase for c in cases] == ["ED", "ES"]
        for case in cases:
            stored = np.asarray(nib.load(str(dir_ / f"{dir_.name}_SA_{case.phase}_gt.nii.gz")).dataobj)
            assert np.array_equal(case.image, patient[case.phase].image)
            assert np.array_equal(case.label, patient[case.phase].label)
            assert np.array_equal(case.label == 3, stored == 1) and np.array_equal(case.label == 1, stored == 3)
            assert case.dataset == "mnms2" and case.meta["image_path"].endswith(f"_SA_{case.phase}.nii.gz")
            assert np.allclose(case.meta["affine"], nib.load(case.meta["image_path"]).affine)
    with open(mnms2_written / "dataset_information.csv", newline="") as f:
        row = next(csv.DictReader(f))
    first = read_mnms2_patient(patients[0])[0]
    assert row["SUBJECT_CODE"] == "1"  # the CSV has no leading zeros; the folder is 001
    assert (first.meta["vendor"], first.meta["scanner"], first.meta["field"], first.meta["group"]) == (
        row["VENDOR"], row["SCANNER"], float(row["FIELD"]), row["DISEASE"])


def test_mnms2_ignores_the_long_axis_and_takes_the_dataset_folder(mnms2):
    subject = mnms2 / "dataset" / "001"
    for la in subject.glob("*_LA_*"):
        la.write_bytes(b"not an image")
    assert [c.key for c in read_mnms2_patient(subject)] == ["001_ED", "001_ES"]
    assert list_mnms2_patients(mnms2 / "dataset") == list_mnms2_patients(mnms2)
    shutil.move(mnms2 / "dataset_information.csv", mnms2 / "dataset" / "dataset_information.csv")
    assert len(read_mnms2_patient(subject)) == 2  # the CSV inside dataset/ works too
    assert get_dataset("mnms2").splits == () and get_dataset("mnms2").env_var == "CARDIGAN_MNMS2_DIR"
    with pytest.raises(ValueError, match="no official split"):
        list_mnms2_patients(mnms2, split="training")


def test_mnms2_bad_inputs(mnms2):
    gt = mnms2 / "dataset" / "001" / "001_SA_ES_gt.nii.gz"
    _rewrite(gt, np.zeros(nib.load(str(gt)).shape, np.uint8))
    with pytest.raises(DataError, match="the label map is empty") as err:
        read_mnms2_patient(gt.parent)
    _one_line_naming(err.value, str(gt))
    info = mnms2 / "dataset_information.csv"
    info.write_text("\n".join(info.read_text().splitlines()[:2]) + "\n")  # the header and subject 1 only
    with pytest.raises(DataError, match="no row for patient 002") as err:
        read_mnms2_patient(mnms2 / "dataset" / "002")
    _one_line_naming(err.value, str(info))
    info.unlink()
    with pytest.raises(DataError, match="no M&Ms-2 information CSV") as err:
        list_mnms2_patients(mnms2)
    _one_line_naming(err.value, str(mnms2 / "dataset"), "dataset_information.csv")


# --- the prepare script -------------------------------------------------------------------------


def test_prepare_script_reads_an_mnms_download(mnms_written, tmp_path):
    cmd = [sys.executable, str(ROOT / "data_scripts" / "prepare_mnms.py"), str(mnms_written), "--run-dir",
           str(tmp_path / "run"), "--image-size", "64", "--split", "training"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"CARDIGAN_PROGRESS": "0", "PATH": "",
                                                                    "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "2 patients read" in done.stdout and "no ground truth skipped" in done.stdout
