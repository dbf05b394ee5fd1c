import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest

from cardigan_utils.data.acdc import list_acdc_patients, read_acdc, read_acdc_patient, write_acdc_patient
from cardigan_utils.data.case import DataError
from conftest import disk_case


@pytest.fixture
def fake_acdc(tmp_path):
    """A two-patient ACDC-layout folder written from small synthetic cases."""
    root = tmp_path / "ACDC" / "training"
    for pid in ("patient001", "patient002"):
        write_acdc_patient([disk_case(pid=pid, phase="ED"), disk_case(pid=pid, phase="ES", radius=6)], root)
    return root


def test_round_trip(fake_acdc):
    cases = read_acdc(fake_acdc, progress=False)
    assert [c.key for c in cases] == ["patient001_ED", "patient001_ES", "patient002_ED", "patient002_ES"]
    ref = disk_case()
    assert np.allclose(cases[0].image, ref.image) and np.array_equal(cases[0].label, ref.label)
    assert cases[0].spacing == (1.5, 1.5, 10.0)
    assert cases[0].meta["Group"] == "NOR" and cases[0].meta["ES"] == 9
    assert cases[0].volume_ml(3) > cases[1].volume_ml(3)


def test_root_may_be_the_dataset_the_split_or_filtered(fake_acdc):
    assert len(list_acdc_patients(fake_acdc.parent)) == 2
    assert len(list_acdc_patients(fake_acdc.parent, split="training")) == 2
    assert [c.patient_id for c in read_acdc(fake_acdc, patients=["patient002"], progress=False)] == ["patient002"] * 2
    with pytest.raises(DataError, match=r"patients \['patient009'\] not found"):
        read_acdc(fake_acdc, patients=["patient009"], progress=False)


def test_wrong_folder(tmp_path):
    with pytest.raises(DataError, match="no ACDC patient folders .*point it at the unpacked ACDC download"):
        list_acdc_patients(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        list_acdc_patients(tmp_path / "nope")


def test_missing_info_cfg(fake_acdc):
    (fake_acdc / "patient001" / "Info.cfg").unlink()
    with pytest.raises(DataError, match=r"patient001/Info\.cfg: file not found; every ACDC patient folder has one"):
        read_acdc_patient(fake_acdc / "patient001")


def test_malformed_info_cfg(fake_acdc):
    (fake_acdc / "patient001" / "Info.cfg").write_text("ED 1\nES: 9\n")
    with pytest.raises(DataError, match="line 1: malformed line 'ED 1'; expected 'Key: value'"):
        read_acdc_patient(fake_acdc / "patient001")
    assert read_acdc_patient(fake_acdc / "patient002")[0].meta["Height"] == 170.0


def test_missing_frame(fake_acdc):
    (fake_acdc / "patient001" / "patient001_frame09_gt.nii.gz").unlink()
    with pytest.raises(DataError, match=r"patient001_frame09_gt\.nii\.gz: file not found"):
        read_acdc_patient(fake_acdc / "patient001")


def _rewrite(path, data, affine=None):
    img = nib.load(str(path))
    nib.save(nib.Nifti1Image(data, img.affine if affine is None else affine, img.header), str(path))


def test_shape_mismatch(fake_acdc):
    gt = fake_acdc / "patient001" / "patient001_frame01_gt.nii.gz"
    _rewrite(gt, np.asarray(nib.load(str(gt)).dataobj)[:-2])
    with pytest.raises(DataError, match=r"frame01_gt\.nii\.gz: shape \(38, 48, 4\) differs from its image \(40, 48, 4\)"):
        read_acdc_patient(fake_acdc / "patient001")


def test_affine_mismatch(fake_acdc):
    gt = fake_acdc / "patient001" / "patient001_frame01_gt.nii.gz"
    img = nib.load(str(gt))
    _rewrite(gt, np.asarray(img.dataobj), affine=np.diag([2.0, 2.0, 10.0, 1.0]))
    with pytest.raises(DataError, match="affine or voxel size .* differs from its image's"):
        read_acdc_patient(fake_acdc / "patient001")


def test_voxel_size_mismatch_with_acdc_style_affines(fake_acdc):
    """Real ACDC affines are diag(-1, -1, 1): the voxel size lives only in the header zooms."""
    pdir = fake_acdc / "patient001"
    for name, zooms in (("patient001_frame01.nii.gz", (1.5, 1.5, 10.0)), ("patient001_frame01_gt.nii.gz", (2.0, 2.0, 5.0))):
        img = nib.load(str(pdir / name))
        out = nib.Nifti1Image(np.asarray(img.dataobj), np.diag([-1.0, -1.0, 1.0, 1.0]))
        out.header.set_zooms(zooms)
        nib.save(out, str(pdir / name))
    with pytest.raises(DataError, match=r"voxel size \(2\.0, 2\.0, 5\.0\) differs from its image's \(1\.5, 1\.5, 10\.0\)"):
        read_acdc_patient(pdir)


@pytest.mark.parametrize("value", ["1x", "1.9", "0"])
def test_frame_numbers_must_be_positive_integers(fake_acdc, value):
    (fake_acdc / "patient001" / "Info.cfg").write_text(f"ED: {value}\nES: 9\n")
    with pytest.raises(DataError, match=f"'ED: {value}' is not a frame number"):
        read_acdc_patient(fake_acdc / "patient001")


def test_split_that_does_not_match_the_folder(fake_acdc):
    with pytest.raises(DataError, match="asked for the 'testing' split but this folder is 'training'"):
        list_acdc_patients(fake_acdc, split="testing")


def test_labels_outside_convention(fake_acdc):
    gt = fake_acdc / "patient001" / "patient001_frame01_gt.nii.gz"
    data = np.asarray(nib.load(str(gt)).dataobj).copy()
    data[0, 0, 0] = 7
    _rewrite(gt, data)
    with pytest.raises(DataError, match=r"label values \[7\] are outside the convention \[0, 1, 2, 3\]"):
        read_acdc_patient(fake_acdc / "patient001")


def test_image_given_as_label(fake_acdc):
    pdir = fake_acdc / "patient001"
    shutil.copy(pdir / "patient001_frame01.nii.gz", pdir / "patient001_frame01_gt.nii.gz")
    with pytest.raises(DataError, match="not integers; is this an image instead of a _gt file"):
        read_acdc_patient(pdir)


def test_empty_mask(fake_acdc):
    gt = fake_acdc / "patient001" / "patient001_frame01_gt.nii.gz"
    _rewrite(gt, np.zeros(nib.load(str(gt)).shape, np.uint8))
    with pytest.raises(DataError, match="label map is empty"):
        read_acdc_patient(fake_acdc / "patient001")


@pytest.mark.parametrize("cut", ["truncate", "garbage", "header"])
def test_corrupt_or_truncated_nifti(fake_acdc, cut):
    path = fake_acdc / "patient001" / "patient001_frame01.nii.gz"
    raw = path.read_bytes()
    if cut == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif cut == "garbage":
        path.write_bytes(gzip.compress(b"not a nifti at all" * 30))
    else:  # a damaged header inside a valid gzip stream: an unknown datatype code (bytes 70-71)
        header = bytearray(gzip.decompress(raw))
        header[70:72] = (9999).to_bytes(2, "little")
        path.write_bytes(gzip.compress(bytes(header)))
    with pytest.raises(DataError, match=r"frame01\.nii\.gz: cannot read it as NIfTI .*corrupt or truncated") as err:
        read_acdc_patient(fake_acdc / "patient001")
    assert "\n" not in str(err.value)


@pytest.mark.acdc
def test_real_acdc_patients(acdc_dir):
    cases = read_acdc(acdc_dir, patients=["patient001", "patient100"], progress=False)
    assert [c.key for c in cases] == ["patient001_ED", "patient001_ES", "patient100_ED", "patient100_ES"]
    p1_ed, p1_es = cases[:2]
    assert p1_ed.meta["Group"] == "DCM" and p1_ed.meta["ES"] == 12 and p1_ed.meta["NbFrame"] == 30
    assert p1_ed.spacing == pytest.approx((1.5625, 1.5625, 10.0))
    assert p1_ed.image.shape == (216, 256, 10) and p1_ed.label.dtype == np.uint8
    assert set(np.unique(p1_ed.label)) == {0, 1, 2, 3}
    # LV cavity (label 3) is larger at end-diastole than at end-systole
    assert p1_ed.volume_ml(3) > p1_es.volume_ml(3) > 0
