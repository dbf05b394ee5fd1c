"""The Sunnybrook reader: contours rasterised where the phantom's truth is, ED/ES, geometry, bad inputs."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from cardigan_utils.data import DataError, get_dataset, load_cases
from cardigan_utils.data.phantom import phantom_cases
from cardigan_utils.data.sunnybrook import (
    CONTOUR_DIR,
    TABLE,
    case_group,
    list_sunnybrook_patients,
    read_contour,
    read_sunnybrook_patient,
    write_sunnybrook_example,
)

SEED = 1
N_PHASES = 4  # the example's phases per slice: ES is phase 2, ED phase 4


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example folder (2 cases) and the phantom Cases it was written from, by case name."""
    root = write_sunnybrook_example(tmp_path_factory.mktemp("sunnybrook") / "SCD", n_patients=2, seed=SEED)
    truth = phantom_cases("phantom-mri", 2, seed=SEED)
    names = [d.name for d in list_sunnybrook_patients(root)]
    by_name = {name: {c.phase: c for c in truth if c.patient_id == f"phantom{i:03d}"} for i, name in enumerate(names)}
    return root, by_name


@pytest.fixture
def copy(example, tmp_path):
    """A copy of the example to damage, and its first case folder."""
    root = shutil.copytree(example[0], tmp_path / "SCD")
    return root, list_sunnybrook_patients(root)[0]


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _one_line_naming(err: Exception, *names) -> None:
    message = str(err)
    assert "\n" not in message, message
    for name in names:
        assert str(name) in message, message


def _contour_files(case_dir, *, phase: int, kind: str = "*"):
    """The contour files of a case drawn on one phase of the example (1-based)."""
    return [f for f in sorted((case_dir / CONTOUR_DIR).glob(f"IM-0001-*-{kind}contour-manual.txt"))
            if (int(f.name.split("-")[2]) - 1) % N_PHASES + 1 == phase]


def test_the_rasterised_contours_land_on_the_phantom_truth(example):
    root, truth = example
    for case_dir in list_sunnybrook_patients(root):
        for case in read_sunnybrook_patient(case_dir):
            true = truth[case_dir.name][case.phase]
            assert case.image.dtype == np.float32 and case.label.dtype == np.uint8
            # the DICOM pixels, rescaled and in the kit's (X, Y, Z) order, are the phantom's image
            np.testing.assert_array_equal(case.image, true.image)
            for value, name in ((3, "LV"), (2, "MYO")):
                on = case.labelled_slices(name)
                assert on.any()
                assert _dice(case.label[..., on] == value, true.label[..., on] == value) > 0.95, (case.key, name)
                assert not (case.label[..., ~on] == value).any()
            assert not (case.label == 1).any() and not case.labelled_slices("RV").any()  # no RV anywhere
            assert case.labelled_structures == ("MYO", "LV")
            get_dataset("sunnybrook").check_case(case)


def test_ed_and_es_are_the_contoured_phases_told_apart_by_the_cavity_area(example):
    root, truth = example
    for case_dir in list_sunnybrook_patients(root):
        ed, es = read_sunnybrook_patient(case_dir)
        # ED is contoured on the last phase of the cycle, after ES: the area decides, not the order
        assert (ed.phase, ed.meta["frame"], es.phase, es.meta["frame"]) == ("ED", 4, "ES", 2)
        assert ed.meta["n_frames"] == N_PHASES
        np.testing.assert_array_equal(es.image, truth[case_dir.name]["ES"].image)
        assert (ed.label == 3).sum() > (es.label == 3).sum()


def test_labelled_slices_lv_where_an_endocardium_myo_where_both_contours(example):
    root, truth = example
    case_dir = list_sunnybrook_patients(root)[0]
    for case in read_sunnybrook_patient(case_dir):
        cavity = (truth[case_dir.name][case.phase].label == 3).any(axis=(0, 1))
        slices = np.arange(len(cavity))
        # slice 1 has no contour, slice 2 an endocardium only, apical slices without a cavity an epicardium only
        np.testing.assert_array_equal(case.labelled["LV"], cavity & (slices >= 1))
        np.testing.assert_array_equal(case.labelled["MYO"], cavity & (slices >= 2))
        assert not case.label[..., 0].any() and case.labelled["LV"][1] and not case.labelled["MYO"][1]
        assert (case.label[..., 1] == 3).any() and not (case.label[..., 1] == 2).any()


def test_spacing_affine_and_meta_come_from_the_dicom_headers(copy):
    root, case_dir = copy
    ed, _ = read_sunnybrook_patient(case_dir)
    folder = root / "challenge_training" / "SC-HF-I-1"
    first = pydicom.dcmread(folder / "IM-0104-0001.dcm")
    pixel = float(first.PixelSpacing[0])
    assert float(first.SliceThickness) != 10.0 and ed.spacing == pytest.approx((pixel, pixel, 10.0))  # step, not thickness
    assert ed.meta["group"] == "HF-I" and ed.meta["vendor"] == first.Manufacturer != ""
    assert ed.meta["image_path"] == str(folder) and ed.patient_id == "SC-HF-I-01" and ed.meta["series"] == "0104"
    # the affine takes (X, Y, Z) = (column, row, slice) to RAS: DICOM's LPS position with x and y negated
    ras = np.diag([-1.0, -1.0, 1.0])
    last = pydicom.dcmread(folder / f"IM-0104-{(ed.image.shape[2] - 1) * N_PHASES + 1:04d}.dcm")
    row, col = np.array(first.ImageOrientationPatient[:3], float), np.array(first.ImageOrientationPatient[3:], float)
    corner = np.array(last.ImagePositionPatient, float)
    np.testing.assert_allclose(ed.meta["affine"] @ [3, 5, ed.image.shape[2] - 1, 1],
                               [*(ras @ (corner + 3 * pixel * row + 5 * pixel * col)), 1], atol=1e-3)
    # non-square pixels: PixelSpacing is (row spacing, column spacing), the kit's spacing (x, y)
    for path in folder.glob("IM-0104-*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PixelSpacing = [1.0, 2.0]
        ds.save_as(path)
    assert read_sunnybrook_patient(case_dir)[0].spacing == pytest.approx((2.0, 1.0, 10.0))


def test_the_patients_their_groups_and_a_seeded_selection(example):
    root, _ = example
    assert [d.name for d in list_sunnybrook_patients(root)] == ["SC-HF-I-01", "SC-HF-NI-02"]
    assert [case_group(n) for n in ("SC-HF-I-01", "SC-HF-NI-12", "SC-HYP-40", "SC-N-3", "patient01")] == \
        ["HF-I", "HF-NI", "HYP", "N", ""]
    chosen = load_cases("sunnybrook", data_dir=root, n_patients=1, seed=0, progress=False)
    assert [c.phase for c in chosen] == ["ED", "ES"] and len({c.patient_id for c in chosen}) == 1
    with pytest.raises(ValueError, match="one layout"):
        write_sunnybrook_example(root / "other", layout="sunnybrook-2009")


def test_contour_files_are_read_as_x_y_points(tmp_path):
    path = tmp_path / "IM-0001-0048-icontour-manual.txt"
    path.write_text("120.50 98.00\n\n121.0 99.25\n119.75 100.5\n")
    np.testing.assert_array_equal(read_contour(path), [[120.5, 98.0], [121.0, 99.25], [119.75, 100.5]])


def _table_without_first_row(root, case_dir):
    lines = (root / TABLE).read_text().splitlines(keepends=True)
    (root / TABLE).write_text("".join(line for line in lines if not line.startswith(case_dir.name + ",")))
    return root / TABLE, case_dir.name


def _series_folder_absent(root, case_dir):
    table = root / TABLE
    table.write_text(table.read_text().replace("challenge_training/SC-HF-I-1", "challenge_training/absent"))
    return root / "challenge_training" / "absent", table


def _wrong_series(root, case_dir):
    table = root / TABLE
    table.write_text(table.read_text().replace(",0104", ",0777"))
    return root / "challenge_training" / "SC-HF-I-1", "IM-0777-NNNN.dcm"


def _point_outside(root, case_dir):
    path = _contour_files(case_dir, phase=4, kind="i")[2]
    path.write_text(path.read_text() + "999.0 5.0\n")
    return path, "outside"


def _image_without_dicom(root, case_dir):
    path = _contour_files(case_dir, phase=2, kind="o")[0]
    path.rename(path.with_name("IM-0001-0999-ocontour-manual.txt"))
    return path.with_name("IM-0001-0999-ocontour-manual.txt"), "IM-0104-0999.dcm"


def _malformed_line(root, case_dir):
    path = _contour_files(case_dir, phase=2, kind="i")[1]
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "12.5 abc", *lines[2:]]) + "\n")
    return path, "line 2"


def _one_phase(root, case_dir):
    for path in _contour_files(case_dir, phase=2):
        path.unlink()
    return case_dir / CONTOUR_DIR, "expected two"


def _unreadable_dicom(root, case_dir):
    path = root / "challenge_training" / "SC-HF-I-1" / "IM-0104-0007.dcm"
    path.write_bytes(b"not a dicom file")
    return path, "not a readable DICOM"


@pytest.mark.parametrize("damage", [_table_without_first_row, _series_folder_absent, _wrong_series, _point_outside,
                                    _image_without_dicom, _malformed_line, _one_phase, _unreadable_dicom],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_inputs_are_one_line_errors_naming_the_file(copy, damage):
    root, case_dir = copy
    named = damage(root, case_dir)
    with pytest.raises(DataError) as err:
        read_sunnybrook_patient(case_dir)
    _one_line_naming(err.value, *named)


def test_verify_reports_the_damaged_case_and_reads_the_other(copy):
    root, case_dir = copy
    _point_outside(root, case_dir)
    report = get_dataset("sunnybrook").verify(root, progress=False)
    assert [p for p, _ in report.problems] == [case_dir.name] and [c.key for c in report.cases] == \
        ["SC-HF-NI-02_ED", "SC-HF-NI-02_ES"]
    assert "outside the 232 x 256 image" in report.problems[0][1]


def test_a_folder_without_the_table_is_refused_naming_it(copy):
    root, _ = copy
    (root / TABLE).unlink()
    with pytest.raises(DataError) as err:
        list_sunnybrook_patients(root)
    _one_line_naming(err.value, root / TABLE)
