"""CAMUS reader/writer: round trips in both official layouts, splits, and every bad input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from cardigan_utils.data.camus import (
    list_camus_patients,
    write_camus_example,
    read_camus,
    read_camus_info,
    read_camus_patient,
    write_camus_info,
    write_camus_patient,
    write_camus_split,
)
from cardigan_utils.data.case import Case, DataError
from cardigan_utils.data.imageio import save_mhd, save_nifti

SPACING = (0.31, 0.27, 1.0)
INFO = {"ED": 1, "ES": 14, "NbFrame": 14, "Sex": "F", "Age": 64, "ImageQuality": "Good", "EF": 57.3, "FrameRate": 50.0}


# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------


def make_label(shape=(64, 80), phase="ED", view="2CH") -> np.ndarray:
    """An LV ellipse (1), a myocardium ring around it (2) and an LA blob below it (3)."""
    x, y = np.mgrid[: shape[0], : shape[1]].astype(float)
    shrink = 1.0 if phase == "ED" else 0.8
    cx, cy = shape[0] / 2 + (2 if view == "4CH" else 0), shape[1] * 0.42
    lv = ((x - cx) / (9 * shrink)) ** 2 + ((y - cy) / (18 * shrink)) ** 2 <= 1
    epi = ((x - cx) / (9 * shrink + 4)) ** 2 + ((y - cy) / (18 * shrink + 4)) ** 2 <= 1
    la = ((x - cx) / 7) ** 2 + ((y - (cy + 25)) / 6) ** 2 <= 1
    label = np.zeros(shape, np.uint8)
    label[epi] = 2
    label[lv] = 1
    label[la & ~epi] = 3
    return label


def make_case(pid="patient0001", view="2CH", phase="ED", *, seed=0, meta=None, spacing=SPACING) -> Case:
    label = make_label(phase=phase, view=view)[:, :, None]
    rng = np.random.default_rng(seed)
    image = (np.choose(label, [40.0, 20.0, 160.0, 25.0]) + rng.normal(0, 5, label.shape)).astype(np.float32)
    return Case(
        image=image, label=label, spacing=spacing, patient_id=pid, phase=phase, modality="echo", view=view,
        dataset="phantom-echo", meta=dict(INFO if meta is None else meta),
    )


def patient_cases(pid="patient0001", seed=0, meta=None) -> list[Case]:
    return [
        make_case(pid, v, p, seed=seed + i, meta=meta)
        for i, (v, p) in enumerate([("2CH", "ED"), ("2CH", "ES"), ("4CH", "ED"), ("4CH", "ES")])
    ]


def nifti_release(root: Path, ids=("patient0001", "patient0002", "patient0003"), split=True) -> Path:
    for k, pid in enumerate(ids):
        write_camus_patient(patient_cases(pid, seed=10 * k), root / "database_nifti", fmt="nifti")
    if split:
        write_camus_split(root, {"training": list(ids[:-2]), "validation": [ids[-2]], "testing": [ids[-1]]})
    return root


def legacy_release(root: Path) -> Path:
    write_camus_patient(patient_cases("patient0001"), root / "training", fmt="mhd")
    write_camus_patient(patient_cases("patient0002", seed=5), root / "training", fmt="mhd")
    test_dir = write_camus_patient(patient_cases("patient0501", seed=9), root / "testing", fmt="mhd")
    for gt in list(test_dir.glob("*_gt.*")):  # the public testing set ships without ground truth
        gt.unlink()
    return root


def raises(match: str):
    """pytest.raises(DataError) whose message is one line and contains ``match`` literally."""
    return pytest.raises(DataError, match=re.escape(match))


def one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["nifti", "mhd"])
def test_round_trip(tmp_path, fmt):
    cases = patient_cases()
    folder = write_camus_patient(cases, tmp_path / "out", fmt=fmt)
    assert folder == tmp_path / "out" / "patient0001"
    ext = ".nii.gz" if fmt == "nifti" else ".mhd"
    for v in ("2CH", "4CH"):
        for p in ("ED", "ES"):
            assert (folder / f"patient0001_{v}_{p}{ext}").is_file()
            assert (folder / f"patient0001_{v}_{p}_gt{ext}").is_file()
            if fmt == "mhd":
                assert (folder / f"patient0001_{v}_{p}.raw").is_file()
    cfg = (folder / "Info_2CH.cfg").read_text().splitlines()
    assert cfg[:4] == ["ED: 1", "ES: 14", "NbFrame: 14", "Sex: F"]

    back = read_camus_patient(folder)
    assert [(c.view, c.phase) for c in back] == [("2CH", "ED"), ("2CH", "ES"), ("4CH", "ED"), ("4CH", "ES")]
    for orig, got in zip(cases, back):
        assert got.image.dtype == np.float32 and got.image.shape == (64, 80, 1)
        assert got.label.dtype == np.uint8
        np.testing.assert_array_equal(got.image, orig.image)
        np.testing.assert_array_equal(got.label, orig.label)
        assert got.spacing == pytest.approx(SPACING, rel=1e-6)
        assert (got.patient_id, got.modality, got.dataset) == ("patient0001", "echo", "camus")
        assert got.key == orig.key
        for key, value in INFO.items():
            assert got.meta[key] == value and type(got.meta[key]) is type(value)
        assert got.meta["format"] == fmt
        assert Path(got.meta["image_path"]).is_file() and Path(got.meta["label_path"]).is_file()
        assert Path(got.meta["info_path"]).name == f"Info_{got.view}.cfg"
        assert got.volume_ml(1) == pytest.approx((orig.label == 1).sum() * 0.31 * 0.27 / 1000, rel=1e-5)


def test_views_phases_subset(tmp_path):
    folder = write_camus_patient(patient_cases(), tmp_path, fmt="nifti")
    (folder / "Info_2CH.cfg").unlink()  # not needed when only 4CH is read
    got = read_camus_patient(folder, views=("4CH",), phases=("ES",))
    assert [c.key for c in got] == ["patient0001_4CH_ES"]
    with pytest.raises(ValueError):
        read_camus_patient(folder, views=("3CH",))


def test_writer_default_info_and_meta_filtering(tmp_path):
    cases = patient_cases(meta={"vendor": "B", "seed": 3, "array": np.zeros(2), "note": "a\nb", "format": "x"})
    folder = write_camus_patient(cases, tmp_path, fmt="nifti")
    info = read_camus_info(folder / "Info_4CH.cfg")
    assert info == {"ED": 1, "ES": 2, "NbFrame": 2, "vendor": "B", "seed": 3}


def test_writer_accepts_2d_arrays_and_read_back_2d_mhd(tmp_path):
    case = make_case()
    flat = Case(case.image[:, :, 0], case.label[:, :, 0], SPACING, "patient0007", "ED", "echo", "2CH")
    folder = write_camus_patient([flat], tmp_path / "training", fmt="mhd")
    # a 2-D .mhd (NDims = 2) reads as (X, Y, 1) too
    save_mhd(folder / "patient0007_2CH_ED.mhd", case.image[:, :, 0], SPACING[:2])
    save_mhd(folder / "patient0007_2CH_ED_gt.mhd", case.label[:, :, 0], SPACING[:2])
    (got,) = read_camus_patient(folder, views=("2CH",), phases=("ED",))
    assert got.image.shape == (64, 80, 1)
    np.testing.assert_array_equal(got.label, case.label)


def test_writer_rejects_bad_cases(tmp_path):
    mri = Case(np.zeros((8, 8, 1), np.float32), np.ones((8, 8, 1), np.uint8), (1, 1, 1), "p1", "ED", "mri")
    with raises("CAMUS holds echo 2CH/4CH views") as e:
        write_camus_patient([mri], tmp_path)
    one_line(e)
    with raises("cases of several patients"):
        write_camus_patient([make_case("patient0001"), make_case("patient0002")], tmp_path)
    with raises("given twice"):
        write_camus_patient([make_case(), make_case()], tmp_path)
    bad = make_case()
    bad.label[0, 0, 0] = 7
    with raises("label values [7]"):
        write_camus_patient([bad], tmp_path)
    with pytest.raises(ValueError):
        write_camus_patient([make_case()], tmp_path, fmt="png")


def test_info_parsing_types(tmp_path):
    path = tmp_path / "Info_2CH.cfg"
    path.write_text("ED: 1\r\nES: 14\n\n# comment\nSex: M\nEF: 43.25\nFrameRate: 33.0\nNote: a: b\n")
    assert read_camus_info(path) == {"ED": 1, "ES": 14, "Sex": "M", "EF": 43.25, "FrameRate": 33.0, "Note": "a: b"}
    write_camus_info(path, {"Age": 70, "ED": 3, "EF": 0.1})
    assert path.read_text() == "ED: 3\nAge: 70\nEF: 0.1\n"


# --------------------------------------------------------------------------------------------
# releases, roots, splits, patients filter
# --------------------------------------------------------------------------------------------


def test_nifti_root_either_folder(tmp_path):
    root = nifti_release(tmp_path / "CAMUS_public")
    a = read_camus(root)
    b = read_camus(root / "database_nifti")
    assert [c.key for c in a] == [c.key for c in b]
    assert len(a) == 12
    assert [p.name for p in list_camus_patients(root)] == ["patient0001", "patient0002", "patient0003"]
    assert {c.meta["split"] for c in a if c.patient_id == "patient0003"} == {"testing"}


def test_nifti_splits(tmp_path):
    root = nifti_release(tmp_path)
    for name, expect in [("training", ["patient0001"]), ("validation", ["patient0002"]), ("testing", ["patient0003"])]:
        assert [p.name for p in list_camus_patients(root, split=name)] == expect
        assert [p.name for p in list_camus_patients(root / "database_nifti", split=name)] == expect
        cases = read_camus(root, split=name, views=("2CH",))
        assert {c.patient_id for c in cases} == set(expect)
        assert all(c.meta["split"] == name for c in cases)
    with pytest.raises(ValueError):
        list_camus_patients(root, split="train")


def test_patients_filter(tmp_path):
    root = nifti_release(tmp_path)
    cases = read_camus(root, patients=["patient0003", "patient0001"], phases=("ED",))
    assert [c.key for c in cases] == [
        "patient0001_2CH_ED", "patient0001_4CH_ED", "patient0003_2CH_ED", "patient0003_4CH_ED",
    ]
    with raises("patient(s) ['patient0009'] not found") as e:
        read_camus(root, patients=["patient0009"])
    one_line(e)
    with raises("split 'training'"):
        read_camus(root, split="training", patients=["patient0003"])


def test_missing_split_file(tmp_path):
    root = nifti_release(tmp_path, split=False)
    assert len(read_camus(root, views=("2CH",), phases=("ED",))) == 3  # no split needed
    with raises(str(root / "database_split" / "subgroup_training.txt") + ": split file not found") as e:
        read_camus(root, split="training")
    assert "write_camus_split" in one_line(e) and "split=None" in str(e.value)
    with raises(str(root / "database_split" / "subgroup_testing.txt")):
        list_camus_patients(root / "database_nifti", split="testing")


def test_split_lists_absent_patient(tmp_path):
    root = nifti_release(tmp_path)
    write_camus_split(root / "database_nifti", {"training": ["patient0001", "patient0042"]})
    with raises("lists 1 patient(s) absent from") as e:
        list_camus_patients(root, split="training")
    assert "patient0042" in one_line(e)


def test_legacy_release(tmp_path):
    root = legacy_release(tmp_path)
    assert [p.parent.name + "/" + p.name for p in list_camus_patients(root)] == [
        "testing/patient0501", "training/patient0001", "training/patient0002",
    ]
    cases = read_camus(root, split="training")
    assert len(cases) == 8 and all(c.meta["format"] == "mhd" and c.meta["split"] == "training" for c in cases)
    assert [c.key for c in read_camus(root / "training", patients=["patient0002"], views=["4CH"])] == [
        "patient0002_4CH_ED", "patient0002_4CH_ES",
    ]
    with raises("no validation subset") as e:
        read_camus(root, split="validation")
    one_line(e)


def test_legacy_testing_without_gt(tmp_path):
    root = legacy_release(tmp_path)
    gt = root / "testing" / "patient0501" / "patient0501_2CH_ED_gt.mhd"
    with raises(f"{gt}: ground-truth file not found") as e:
        read_camus(root, split="testing")
    assert "require_labels=False" in one_line(e)
    with pytest.warns(UserWarning, match="skipped 4 image"):
        assert read_camus(root, split="testing", require_labels=False) == []
    with pytest.warns(UserWarning, match="skipped 4 image"):
        assert len(read_camus(root, require_labels=False)) == 8


def test_legacy_same_id_in_training_and_testing(tmp_path):
    write_camus_patient(patient_cases("patient0001"), tmp_path / "training", fmt="mhd")
    write_camus_patient(patient_cases("patient0001", seed=3), tmp_path / "testing", fmt="mhd")
    with raises("exist in both training/ and testing/") as e:
        read_camus(tmp_path)
    assert "split='training'" in one_line(e)
    assert len(read_camus(tmp_path, split="testing")) == 4


def test_legacy_missing_subset_folder(tmp_path):
    write_camus_patient(patient_cases(), tmp_path / "training", fmt="mhd")
    with raises(f"{tmp_path / 'testing'}: no patient folders there"):
        read_camus(tmp_path, split="testing")


# --------------------------------------------------------------------------------------------
# bad inputs: one clear line each
# --------------------------------------------------------------------------------------------


def test_wrong_folder(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("x")
    with raises(f"{tmp_path}: no CAMUS patient folders found") as e:
        read_camus(tmp_path)
    text = one_line(e)
    assert "database_nifti" in text and "training/" in text and "testing/" in text
    with raises("folder not found"):
        list_camus_patients(tmp_path / "nope")
    with raises("patient folder not found"):
        read_camus_patient(tmp_path / "patient0001")
    empty = tmp_path / "patient0001"
    empty.mkdir()
    with raises(f"{empty}: no .nii.gz or .mhd image"):
        read_camus_patient(empty)


@pytest.fixture(params=["nifti", "mhd"])
def patient(request, tmp_path):
    """(patient folder, format, extension) of one well-formed patient."""
    fmt = request.param
    folder = write_camus_patient(patient_cases(), tmp_path / "database_nifti", fmt=fmt)
    return folder, fmt, ".nii.gz" if fmt == "nifti" else ".mhd"


def _save(path: Path, fmt: str, data: np.ndarray, spacing=SPACING[:2]) -> None:
    if fmt == "nifti":
        save_nifti(path, data, spacing)
    else:
        save_mhd(path, data[:, :, None], tuple(spacing) + (1.0,))


@pytest.mark.parametrize("view", ["2CH", "4CH"])
def test_missing_info_cfg(patient, view):
    """The legacy release always ships its Info files: one missing is an error; a NIfTI copy reads without."""
    folder, fmt, _ = patient
    (folder / f"Info_{view}.cfg").unlink()
    if fmt == "mhd":
        with raises(f"{folder / f'Info_{view}.cfg'}: file not found") as e:
            read_camus_patient(folder)
        assert "Info_2CH.cfg and Info_4CH.cfg" in one_line(e)
        return
    with pytest.warns(UserWarning, match="1 patient folder") as caught:
        cases = read_camus_patient(folder)
    assert len(caught) == 1
    assert {c.view: "ED" in c.meta for c in cases} == {view: False, ({"2CH", "4CH"} - {view}).pop(): True}
    assert all(c.spacing_known for c in cases)  # the true spacing is still in the headers


def test_derived_copy_reads_with_one_warning_and_unknown_spacing(tmp_path):
    """A copy like CAMUS_224 (no Info files, 224x224, the 1.0 mm placeholder) reads, warning once for the whole read."""
    root = write_camus_example(tmp_path / "copy", n_patients=3, layout="camus-copy")
    assert not list(root.rglob("Info_*.cfg"))
    with pytest.warns(UserWarning) as caught:
        cases = read_camus(root)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "3 patient folder(s) have no Info_2CH.cfg" in messages[0] and "placeholder spacing" in messages[0]
    assert len(cases) == 3 * 4 and {c.image.shape for c in cases} == {(224, 224, 1)}
    assert {(c.view, c.phase) for c in cases} == {(v, p) for v in ("2CH", "4CH") for p in ("ED", "ES")}
    assert not any(c.spacing_known for c in cases) and all(np.isnan(c.volume_ml(1)) for c in cases)
    assert all("ED" not in c.meta and "info_path" not in c.meta for c in cases)


def test_official_release_keeps_its_spacing_and_reads_silently(tmp_path):
    import warnings

    root = write_camus_example(tmp_path / "official", n_patients=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cases = read_camus(root)
    assert all(c.spacing_known for c in cases) and all(c.volume_ml(1) > 0 for c in cases)
    assert all(c.meta["ED"] == 1 for c in cases)


def test_real_camus_copy(camus_dir):
    """The derived copy in ../shared: 50 validation patients, 200 frames, spacing unknown everywhere."""
    with pytest.warns(UserWarning, match="50 patient folder"):
        cases = read_camus(camus_dir, split="validation")
    assert len(cases) == 200 and not any(c.spacing_known for c in cases)
    assert {c.image.shape for c in cases} == {(224, 224, 1)}
    assert all(set(np.unique(c.label)) == {0, 1, 2, 3} for c in cases)


def test_malformed_cfg_line(patient):
    folder, _, _ = patient
    (folder / "Info_4CH.cfg").write_text("ED: 1\nES 14\n")
    with raises(f"{folder / 'Info_4CH.cfg'}, line 2: malformed line 'ES 14'") as e:
        read_camus_patient(folder)
    assert "'Key: value'" in one_line(e)
    (folder / "Info_4CH.cfg").write_text("ED: 1\nED: 2\n")
    with raises("line 2: key 'ED' appears twice"):
        read_camus_patient(folder)


def test_missing_image_and_gt(patient):
    folder, _, ext = patient
    gt = folder / f"patient0001_4CH_ES_gt{ext}"
    gt.unlink()
    with raises(f"{gt}: ground-truth file not found") as e:
        read_camus_patient(folder)
    one_line(e)
    with pytest.warns(UserWarning, match="skipped 1 image"):
        assert len(read_camus_patient(folder, require_labels=False)) == 3
    img = folder / f"patient0001_2CH_ES{ext}"
    img.unlink()
    with raises(f"{img}: image file not found") as e:
        read_camus_patient(folder, require_labels=False)
    one_line(e)


def test_shape_mismatch(patient):
    folder, fmt, ext = patient
    gt = folder / f"patient0001_2CH_ED_gt{ext}"
    _save(gt, fmt, make_label(shape=(60, 80)))
    with raises(f"{gt}: label shape (60, 80) != image shape (64, 80)") as e:
        read_camus_patient(folder)
    one_line(e)


def test_spacing_mismatch(patient):
    folder, fmt, ext = patient
    gt = folder / f"patient0001_2CH_ES_gt{ext}"
    _save(gt, fmt, make_label(phase="ES"), spacing=(0.5, 0.27))
    with raises(f"{gt}: voxel spacing/affine (0.5, 0.27) differs from the image") as e:
        read_camus_patient(folder)
    one_line(e)


def test_affine_mismatch_nifti(tmp_path):
    import nibabel as nib

    folder = write_camus_patient(patient_cases(), tmp_path, fmt="nifti")
    gt = folder / "patient0001_4CH_ED_gt.nii.gz"
    affine = np.diag([0.31, 0.27, 1.0, 1.0])
    affine[:3, 3] = [10.0, 0.0, 0.0]  # same spacing, shifted origin
    nib.save(nib.Nifti1Image(make_label(view="4CH"), affine), str(gt))
    with raises(f"{gt}: voxel spacing/affine"):
        read_camus_patient(folder)


def test_label_values_outside(patient):
    folder, fmt, ext = patient
    gt = folder / f"patient0001_4CH_ED_gt{ext}"
    label = make_label(view="4CH")
    label[:3, :3] = 4
    _save(gt, fmt, label)
    with raises(f"{gt}: label values [4] are outside the convention [0, 1, 2, 3]") as e:
        read_camus_patient(folder)
    one_line(e)


def test_non_integer_label(tmp_path):
    folder = write_camus_patient(patient_cases(), tmp_path, fmt="nifti")
    gt = folder / "patient0001_2CH_ED_gt.nii.gz"
    save_nifti(gt, make_label().astype(np.float32) + 0.5, SPACING[:2])
    with raises(f"{gt}: ground truth has non-integer values"):
        read_camus_patient(folder)


def test_empty_mask(patient):
    folder, fmt, ext = patient
    gt = folder / f"patient0001_2CH_ED_gt{ext}"
    _save(gt, fmt, np.zeros((64, 80), np.uint8))
    with raises(f"{gt}: the label map is empty") as e:
        read_camus_patient(folder)
    one_line(e)


def test_corrupt_and_truncated_nifti(tmp_path):
    folder = write_camus_patient(patient_cases(), tmp_path, fmt="nifti")
    img = folder / "patient0001_2CH_ED.nii.gz"
    img.write_bytes(b"this is not a nifti file at all")
    with raises(f"{img}: cannot read it as NIfTI") as e:
        read_camus_patient(folder)
    assert "corrupt or truncated" in one_line(e)
    gt = folder / "patient0001_4CH_ES_gt.nii.gz"
    data = gt.read_bytes()
    assert gzip.decompress(data)  # a valid gzip before truncation
    gt.write_bytes(data[: len(data) // 2])
    with raises(f"{gt}: cannot read it as NIfTI") as e:
        read_camus_patient(folder, views=("4CH",))
    assert "corrupt or truncated" in one_line(e)


def test_truncated_and_missing_raw(tmp_path):
    folder = write_camus_patient(patient_cases(), tmp_path, fmt="mhd")
    raw = folder / "patient0001_2CH_ES.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    with raises(f"{raw}: truncated raw data (1000 of {64 * 80 * 4} bytes") as e:
        read_camus_patient(folder)
    one_line(e)
    raw.unlink()
    with raises(f"{raw}: raw data file of patient0001_2CH_ES.mhd not found") as e:
        read_camus_patient(folder)
    one_line(e)
    gt_raw = folder / "patient0001_4CH_ED_gt.raw"
    gt_raw.write_bytes(b"")
    with raises(f"{gt_raw}: truncated raw data (0 of {64 * 80} bytes"):
        read_camus_patient(folder, views=("4CH",))


def test_sequence_file_rejected(tmp_path):
    folder = write_camus_patient(patient_cases(), tmp_path, fmt="nifti")
    img = folder / "patient0001_2CH_ED.nii.gz"
    save_nifti(img, np.zeros((64, 80, 5), np.float32), SPACING)
    with raises(f"{img}: expected a 2-D image, got shape (64, 80, 5)"):
        read_camus_patient(folder)
