import numpy as np
import pytest

from cardigan_utils.data.case import Case
from cardigan_utils.data.slices import case_slices, crop_or_pad, normalise_intensity, resample_slices
from conftest import disk_case


def test_normalise_intensity_range_and_constant():
    v = np.random.default_rng(0).normal(100, 20, (10, 10, 3))
    n = normalise_intensity(v)
    assert n.dtype == np.float32 and n.min() == 0.0 and n.max() == 1.0
    assert np.all(normalise_intensity(np.ones((4, 4))) == 0)


def test_crop_or_pad_places_the_window():
    a = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    out = crop_or_pad(a, (2, 3), 8, fill=-1)
    assert out.shape == (1, 8, 8)
    assert out[0, 4, 4] == a[0, 2, 3]  # the centre lands at size // 2
    assert (out == -1).sum() == 64 - 30
    assert crop_or_pad(a, (2, 3), (2, 4)).shape == (1, 2, 4)


def test_resample_keeps_labels_and_scales_areas():
    case = disk_case()
    img = np.transpose(case.image, (2, 1, 0))
    lab = np.transpose(case.label, (2, 1, 0))
    out_img, out_lab = resample_slices(img, lab, (2.0, 2.0))
    assert out_lab.shape == (4, 96, 80) and out_img.shape == out_lab.shape
    assert set(np.unique(out_lab)) == {0, 1, 2, 3}
    for k in (1, 2, 3):
        assert (out_lab == k).sum() == pytest.approx(4 * (lab == k).sum(), rel=0.1)


def test_case_slices_mri_spacing_and_centering():
    case = disk_case(spacing=(2.5, 2.5, 10.0))
    s = case_slices(case, image_size=64, fov_mm=80.0)
    assert s.images.shape == (4, 64, 64) and s.spacing == (1.25, 1.25)
    assert 0 <= s.images.min() and s.images.max() <= 1
    # the LV (label 3) area in mm^2 is preserved by resampling
    area_src = (case.label[..., 0] == 3).sum() * 2.5 * 2.5
    area_out = (s.labels[0] == 3).sum() * 1.25 * 1.25
    assert area_out == pytest.approx(area_src, rel=0.1)
    # the heart is centred
    rows, cols = np.nonzero(s.labels[0])
    assert abs(rows.mean() - 32) < 3 and abs(cols.mean() - 32) < 3


def test_case_slices_drops_empty_slices_unless_asked():
    case = disk_case()
    case.label[..., 0] = 0
    assert case_slices(case, image_size=32).slice_index.tolist() == [1, 2, 3]
    assert case_slices(case, image_size=32, keep_empty=True).slice_index.tolist() == [0, 1, 2, 3]


def test_case_slices_echo_resizes_the_whole_image():
    lab = np.zeros((60, 90, 1), np.uint8)
    lab[20:40, 10:50] = 1
    lab[20:40, 50:70] = 3
    case = Case(image=np.random.rand(60, 90, 1).astype(np.float32), label=lab, spacing=(0.5, 0.4, 1.0),
                patient_id="p", phase="ED", modality="echo", view="2CH")
    s = case_slices(case, image_size=32)
    assert s.images.shape == (1, 32, 32)
    assert s.spacing == pytest.approx((0.4 * 90 / 32, 0.5 * 60 / 32))
    # rows are the second array axis (depth): label 1 sits above label 3
    assert np.nonzero(s.labels[0] == 1)[0].mean() < np.nonzero(s.labels[0] == 3)[0].mean()


def test_anisotropic_pixels_keep_shape_and_orientation():
    """A circle of 20 mm radius drawn on 1.0 x 2.0 mm pixels stays a 20 mm circle after slicing."""
    sx, sy = 1.0, 2.0
    x, y = np.meshgrid(np.arange(120) * sx, np.arange(60) * sy, indexing="ij")
    label = np.zeros((120, 60, 1), np.uint8)
    label[np.hypot(x - 50, y - 60) < 20, 0] = 3
    label[(np.abs(x - 95) < 5) & (np.abs(y - 60) < 5), 0] = 1  # a marker at +x of the circle
    case = Case(image=label.astype(np.float32) * 100, label=label, spacing=(sx, sy, 10.0),
                patient_id="p", phase="ED", modality="mri")
    s = case_slices(case, image_size=64, fov_mm=128.0)  # 2 mm pixels
    rows, cols = np.nonzero(s.labels[0] == 3)
    assert (rows.max() - rows.min() + 1) * 2.0 == pytest.approx(40, abs=4)  # y extent, mm
    assert (cols.max() - cols.min() + 1) * 2.0 == pytest.approx(40, abs=4)  # x extent, mm
    mr, mc = np.nonzero(s.labels[0] == 1)
    assert mc.mean() > cols.mean() + 15 and abs(mr.mean() - rows.mean()) < 2  # marker stays at +x (columns)


def test_downsampling_is_anti_aliased():
    """A one-pixel checkerboard (pure high frequency) averages out instead of aliasing."""
    img = (np.indices((1, 90, 90)).sum(axis=0) % 2).astype(np.float32)
    out, _ = resample_slices(img, np.zeros(img.shape, np.uint8), (1 / 3, 1 / 3))
    assert out.std() < 0.05 and out.mean() == pytest.approx(0.5, abs=0.05)
