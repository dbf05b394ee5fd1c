"""Bad image content and geometry is refused in one line, by one checked reader, before allocating.

Every way the kit reads an image or label file goes through ``imageio.read_image``: the dataset
readers (ACDC, CAMUS) that ``prepare_dataset`` / ``data_scripts/prepare_acdc.py`` use, and
``cardigan segment`` / ``cardigan evaluate``. Each broken file below is tried through the reader
API and through each command that reads it; the slice cache and ``segment_volume`` refuse the
same content when the Cases or arrays come from Python. Valid files (the real ACDC patients,
when ``CARDIGAN_ACDC_DIR`` is set) still read exactly as nibabel and SimpleITK read them.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from cardigan_utils import cli
from cardigan_utils.data import load_cases
from cardigan_utils.data.acdc import read_acdc_patient
from cardigan_utils.data.cache import build_cache
from cardigan_utils.data.camus import read_camus_patient
from cardigan_utils.data.case import DataError
from cardigan_utils.data.export import write_dataset
from cardigan_utils.data.imageio import MAX_VOXELS, read_image, save_like
from cardigan_utils.data.prepare import prepare_dataset
from cardigan_utils.segmentation import load_segmenter, segment_volume, to_model_space
from conftest import ROOT, refused, tiny_segmenter

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("one_torch_thread")]


# ---------------------------------------------------------------------------------------------
# Folders in the ACDC and CAMUS layouts (phantoms), a tiny model, and copies to break.


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Pristine dataset folders: ACDC (NIfTI), CAMUS legacy (.mhd) and CAMUS NIfTI release."""
    root = tmp_path_factory.mktemp("layouts")
    write_dataset(load_cases("phantom-mri", n_patients=2, seed=5), root / "ACDC", layout="acdc")
    echo = load_cases("phantom-echo", n_patients=1)
    write_dataset(echo, root / "CAMUS_mhd", layout="camus-mhd")
    write_dataset(echo, root / "CAMUS_nifti", layout="camus-nifti")
    return root


@pytest.fixture
def acdc(layouts, tmp_path):
    """A copy of the ACDC folder: ``(training folder, first image, its _gt)``."""
    training = shutil.copytree(layouts / "ACDC" / "training", tmp_path / "ACDC" / "training")
    image = sorted((training / "patient001").glob("patient001_frame??.nii.gz"))[0]
    return training, image, image.with_name(image.name.replace(".nii.gz", "_gt.nii.gz"))


@pytest.fixture
def camus_mhd(layouts, tmp_path):
    """A copy of the legacy CAMUS folder: ``(root, first image .mhd, its _gt .mhd)``."""
    root = shutil.copytree(layouts / "CAMUS_mhd", tmp_path / "CAMUS")
    patient = root / "training" / "patient0001"
    return root, patient / "patient0001_2CH_ED.mhd", patient / "patient0001_2CH_ED_gt.mhd"


@pytest.fixture
def camus_nifti(layouts, tmp_path):
    """A copy of the CAMUS NIfTI release: ``(root, first image, its _gt)``."""
    root = shutil.copytree(layouts / "CAMUS_nifti", tmp_path / "CAMUS")
    patient = root / "database_nifti" / "patient0001"
    return root, patient / "patient0001_2CH_ED.nii.gz", patient / "patient0001_2CH_ED_gt.nii.gz"


def _tiny_segmenter(run: Path, dataset: str) -> Path:
    return tiny_segmenter(run, dataset, n_patients=3, steps=1, image_size=32, channels=(4, 8), batch_size=4)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny MRI U-Net (for the ACDC folders)."""
    return _tiny_segmenter(tmp_path_factory.mktemp("model"), "phantom-mri")


@pytest.fixture(scope="module")
def echo_model_path(tmp_path_factory):
    """A tiny echo U-Net (for the CAMUS folders: an MRI model refuses them, the modalities differ)."""
    return _tiny_segmenter(tmp_path_factory.mktemp("echo_model"), "phantom-echo")


# ---------------------------------------------------------------------------------------------
# Ways to break a file. Each breaker takes the path and returns the text the refusal must name.


def _nifti_raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _write_raw(path: Path, raw: bytes) -> None:
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.name.endswith(".gz") else raw)


def patch_header(path: Path, edit) -> None:
    """Edit a NIfTI header in place, bytes as stored (nibabel's saving would 'fix' a bad pixdim)."""
    raw = _nifti_raw(path)
    header = nib.Nifti1Header(raw[:348], check=False)
    edit(header)
    _write_raw(path, header.binaryblock + raw[348:])


def set_pixdim(axis: int, value: float):
    def edit(header):
        header["pixdim"][axis + 1] = value
    return edit


def rewrite_nifti(path: Path, change) -> None:
    """Rewrite a NIfTI's data (``change(array) -> array``) keeping its header and affine."""
    img = nib.load(path)
    data = change(np.asanyarray(img.dataobj).astype(np.float32))
    header = img.header.copy()
    header.set_data_dtype(data.dtype)
    nib.save(nib.Nifti1Image(data, img.affine, header), path)


def _five_d(a):
    """(X, Y[, Z]) -> (X, Y, Z, 2, 2)."""
    a = a.reshape(a.shape[0], a.shape[1], -1)[..., None, None]
    return np.repeat(np.repeat(a, 2, axis=3), 2, axis=4)


def _cine(a):
    """(X, Y[, Z]) -> (X, Y, Z, 3)."""
    return np.repeat(a.reshape(a.shape[0], a.shape[1], -1)[..., None], 3, axis=3)


def _with(values):
    def change(a):
        a.flat[: len(values)] = values
        return a
    return change


def mhd_edit(path: Path, **keys) -> None:
    """Change ``Key = value`` lines of a MetaImage header (the rest stays as written)."""
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        key = line.partition("=")[0].strip()
        if key in keys:
            line = f"{key} = {keys.pop(key)}"
        out.append(line)
    out[-1:-1] = [f"{k} = {v}" for k, v in keys.items()]  # new keys before ElementDataFile
    path.write_text("\n".join(out) + "\n")


def mhd_raw(path: Path) -> Path:
    return path.with_suffix(".raw")


def mhd_values(path: Path, values) -> None:
    raw = mhd_raw(path)
    data = np.fromfile(raw, np.float32)
    data[: len(values)] = values
    data.tofile(raw)


# NIfTI images: (breaker, what the single error line must contain)
NIFTI_IMAGE_BREAKS = {
    "one NaN voxel": (lambda p: rewrite_nifti(p, _with([np.nan])), "NaN or infinite values in 1 of"),
    "three inf voxels": (lambda p: rewrite_nifti(p, _with([np.inf, -np.inf, np.inf])), "NaN or infinite values in 3 of"),
    "pixdim 0": (lambda p: patch_header(p, set_pixdim(0, 0.0)), "axis 0 is zero"),
    "pixdim negative": (lambda p: patch_header(p, set_pixdim(1, -1.5)), "axis 1 is negative"),
    "pixdim 1e4": (lambda p: patch_header(p, set_pixdim(0, 1e4)), "axis 0 is above 100 mm"),
    "pixdim NaN": (lambda p: patch_header(p, set_pixdim(2, np.nan)), "axis 2 is not a number"),
    "pixdim in metres": (lambda p: patch_header(p, set_pixdim(1, 0.0015)), "axis 1 is below 0.01 mm"),
    "header announces 30000x30000x1000": (lambda p: patch_header(p, lambda h: h.set_data_shape((30000, 30000, 1000))),
                                          "30000 x 30000 x 1000 = 900,000,000,000 voxels"),
    "5-D image": (lambda p: rewrite_nifti(p, _five_d), "a 5-D image"),
    "4-D cine for a frame": (lambda p: rewrite_nifti(p, _cine), "a 4-D image"),
}

# NIfTI label maps (ground truth)
NIFTI_LABEL_BREAKS = {
    "label 0.5": (lambda p: rewrite_nifti(p, lambda a: a + 0.5), "label values are not integers"),
    "label 7": (lambda p: rewrite_nifti(p, _with([7.0])), "label values [7] are outside the convention"),
    "label NaN": (lambda p: rewrite_nifti(p, _with([np.nan, np.nan])), "label map has NaN or infinite values in 2"),
    "label pixdim 0": (lambda p: patch_header(p, set_pixdim(0, 0.0)), "axis 0 is zero"),
    "label 5-D": (lambda p: rewrite_nifti(p, _five_d), "a 5-D image"),
}

# MetaImage images (.mhd + .raw of float32, DimSize X Y 1)
MHD_IMAGE_BREAKS = {
    "one NaN voxel": (lambda p: mhd_values(p, [np.nan]), "NaN or infinite values in 1 of"),
    "two inf voxels": (lambda p: mhd_values(p, [np.inf, -np.inf]), "NaN or infinite values in 2 of"),
    "ElementSpacing 0": (lambda p: mhd_edit(p, ElementSpacing="0 0.3 1"), "axis 0 is zero"),
    "ElementSpacing negative": (lambda p: mhd_edit(p, ElementSpacing="0.3 -0.3 1"), "axis 1 is negative"),
    "ElementSpacing 1e4": (lambda p: mhd_edit(p, ElementSpacing="10000 0.3 1"), "axis 0 is above 100 mm"),
    "ElementSpacing NaN": (lambda p: mhd_edit(p, ElementSpacing="0.3 nan 1"), "axis 1 is not a number"),
    "ElementSpacing missing": (lambda p: mhd_edit(p, ElementSpacing=""), "no voxel size for each of the 3 axes"),
    "DimSize smaller than the raw": (lambda p: _shrink_dims(p, -1), "more than the"),
    "DimSize larger than the raw": (lambda p: _shrink_dims(p, +1), "truncated raw data"),
    "header announces 30000x30000x1000": (lambda p: mhd_edit(p, DimSize="30000 30000 1000"),
                                          "30000 x 30000 x 1000 = 900,000,000,000 voxels"),
    "5-D image": (lambda p: mhd_edit(p, NDims=5, DimSize=_dims(p) + " 2 3"), "a 5-D image"),
    "three channels": (lambda p: mhd_edit(p, ElementNumberOfChannels=3), "3 channels per voxel"),
    "raw missing": (lambda p: mhd_raw(p).unlink(), "raw data file of"),
}


def _dims(path: Path) -> str:
    return next(line.split("=")[1].strip() for line in path.read_text().splitlines() if line.startswith("DimSize"))


def _shrink_dims(path: Path, delta: int) -> None:
    x, y, z = (int(v) for v in _dims(path).split())
    mhd_edit(path, DimSize=f"{x + delta} {y} {z}")


def _refuses(call, mentions):
    with pytest.raises(DataError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    for text in mentions:
        assert text in message, f"{text!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------
# Through the reader API


@pytest.mark.parametrize("what", list(NIFTI_IMAGE_BREAKS))
def test_acdc_reader_refuses_a_bad_image(acdc, what, caplog):
    training, image, _ = acdc
    breaker, expected = NIFTI_IMAGE_BREAKS[what]
    breaker(image)
    _refuses(lambda: read_image(image), [str(image), expected])
    _refuses(lambda: read_acdc_patient(training / "patient001"), [str(image), expected])
    # nibabel's own loading would have turned a pixdim of 0 into 1 mm with only a log line
    assert not [r for r in caplog.records if r.name.startswith("nibabel")]


@pytest.mark.parametrize("what", list(NIFTI_LABEL_BREAKS))
def test_acdc_reader_refuses_a_bad_label_map(acdc, what):
    training, _, gt = acdc
    breaker, expected = NIFTI_LABEL_BREAKS[what]
    breaker(gt)
    _refuses(lambda: read_acdc_patient(training / "patient001"), [str(gt), expected])


@pytest.mark.parametrize("what", list(MHD_IMAGE_BREAKS))
def test_camus_reader_refuses_a_bad_mhd(camus_mhd, what):
    root, image, _ = camus_mhd
    breaker, expected = MHD_IMAGE_BREAKS[what]
    breaker(image)
    name = image.name if what != "raw missing" else mhd_raw(image).name
    _refuses(lambda: read_image(image), [name, expected])
    _refuses(lambda: read_camus_patient(image.parent), [name, expected])


@pytest.mark.parametrize("what", ["one NaN voxel", "pixdim 0", "pixdim 1e4", "5-D image"])
def test_camus_reader_refuses_a_bad_nifti(camus_nifti, what):
    _, image, _ = camus_nifti
    breaker, expected = NIFTI_IMAGE_BREAKS[what]
    breaker(image)
    _refuses(lambda: read_camus_patient(image.parent), [str(image), expected])


@pytest.mark.parametrize("what", ["label 0.5", "label 7", "label NaN"])
def test_camus_reader_refuses_a_bad_label_map(camus_nifti, what):
    _, _, gt = camus_nifti
    breaker, expected = NIFTI_LABEL_BREAKS[what]
    breaker(gt)
    _refuses(lambda: read_camus_patient(gt.parent), [str(gt), expected])


def test_a_huge_header_is_refused_before_anything_is_allocated(acdc):
    _, image, _ = acdc
    # just over the limit, in bytes (uint8): without the check nibabel would allocate ~540 MB first
    patch_header(image, lambda h: (h.set_data_dtype(np.uint8), h.set_data_shape((1024, 1024, 513))))
    tracemalloc.start()
    try:
        message = _refuses(lambda: read_image(image), [str(image), "1024 x 1024 x 513 = 537,919,488 voxels",
                                                       f"limit of {MAX_VOXELS:,} voxels"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing: {message}"


def test_an_uncompressed_nifti_whose_size_does_not_match_its_header(acdc, tmp_path):
    _, image, _ = acdc
    plain = tmp_path / "frame.nii"
    plain.write_bytes(_nifti_raw(image))
    assert read_image(plain).data.shape == nib.load(image).shape
    plain.write_bytes(plain.read_bytes() + b"\0" * 64)
    _refuses(lambda: read_image(plain), [str(plain), "the header does not describe the data"])
    plain.write_bytes(plain.read_bytes()[:-200])
    _refuses(lambda: read_image(plain), [str(plain), "the header does not describe the data"])


def test_a_cine_reads_where_a_cine_is_expected(acdc):
    _, image, _ = acdc
    rewrite_nifti(image, lambda a: np.stack([a, a + 1], -1))
    assert read_image(image, ndims=(4,)).data.shape[-1] == 2
    _refuses(lambda: read_image(image, ndims=(3,)), ["a 4-D image", "expected 3-D"])


def test_a_file_of_another_type_is_refused(tmp_path):
    path = tmp_path / "frame.png"
    path.write_bytes(b"\x89PNG")
    _refuses(lambda: read_image(path), [str(path), "not a NIfTI (.nii, .nii.gz) or MetaImage (.mhd) file"])


# ---------------------------------------------------------------------------------------------
# Through the command line: cardigan segment / evaluate


def _segment(model_path, folder, out):
    return ["segment", "--model", model_path, "--input", folder, "--output", out]


@pytest.mark.parametrize("what", list(NIFTI_IMAGE_BREAKS) + ["constant image"])
def test_segment_refuses_a_bad_acdc_image(acdc, model_path, tmp_path, capsys, what):
    training, image, _ = acdc
    if what == "constant image":
        breaker, expected = (lambda p: rewrite_nifti(p, lambda a: np.full_like(a, 7.0))), "the image is constant"
    else:
        breaker, expected = NIFTI_IMAGE_BREAKS[what]
    breaker(image)
    out = tmp_path / "pred"
    refused(capsys, _segment(model_path, training, out), mentions=[image.name, expected], unchanged=[training])
    assert not list(out.rglob(image.name.replace(".nii.gz", "_gt.nii.gz")))  # no all-background map written


@pytest.mark.parametrize("what", list(MHD_IMAGE_BREAKS) + ["constant image"])
def test_segment_refuses_a_bad_camus_mhd(camus_mhd, echo_model_path, tmp_path, capsys, what):
    root, image, _ = camus_mhd
    if what == "constant image":
        breaker, expected = (lambda p: mhd_raw(p).write_bytes(np.zeros(_size(p), np.float32).tobytes())), "is constant"
    else:
        breaker, expected = MHD_IMAGE_BREAKS[what]
    breaker(image)
    name = image.name if what != "raw missing" else mhd_raw(image).name
    out = tmp_path / "pred"
    refused(capsys, _segment(echo_model_path, root, out), mentions=[name, expected], unchanged=[root])
    assert not list(out.rglob("patient0001_2CH_ED_gt.nii.gz"))


def _size(path: Path) -> int:
    return int(np.prod([int(v) for v in _dims(path).split()]))


@pytest.mark.parametrize("what", ["one NaN voxel", "pixdim 0", "header announces 30000x30000x1000", "5-D image"])
def test_segment_refuses_a_bad_camus_nifti(camus_nifti, echo_model_path, tmp_path, capsys, what):
    root, image, _ = camus_nifti
    breaker, expected = NIFTI_IMAGE_BREAKS[what]
    breaker(image)
    refused(capsys, _segment(echo_model_path, root, tmp_path / "pred"), mentions=[image.name, expected], unchanged=[root])


def _perfect_predictions(truth_root: Path, pred_root: Path) -> None:
    for gt in truth_root.rglob("*_gt.nii.gz"):
        target = pred_root / gt.relative_to(truth_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, target)


@pytest.mark.parametrize("side", ["truth", "pred"])
@pytest.mark.parametrize("what", list(NIFTI_LABEL_BREAKS) + ["header announces 30000x30000x1000", "pixdim 1e4"])
def test_evaluate_refuses_a_bad_label_map(acdc, tmp_path, capsys, what, side):
    training, _, gt = acdc
    pred = tmp_path / "pred"
    _perfect_predictions(training, pred)
    assert len(list(pred.rglob("*_gt.nii.gz"))) == 4
    target = gt if side == "truth" else pred / gt.relative_to(training)
    breaker, expected = {**NIFTI_LABEL_BREAKS, **NIFTI_IMAGE_BREAKS}[what]
    breaker(target)
    refused(capsys, ["evaluate", "--pred", pred, "--truth", training], mentions=[str(target), expected],
            unchanged=[training, pred])
    assert not (pred / "evaluation.csv").exists()


def test_evaluate_scores_an_empty_prediction(acdc, tmp_path, capsys):
    """A prediction of background only is a (bad) result to score, not an error."""
    training, _, gt = acdc
    pred = tmp_path / "pred"
    _perfect_predictions(training, pred)
    rewrite_nifti(pred / gt.relative_to(training), lambda a: np.zeros_like(a))
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(training)]) == 0
    assert "file(s) scored" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Through prepare_dataset and data_scripts/prepare_acdc.py


@pytest.mark.parametrize("what", list(NIFTI_IMAGE_BREAKS) + list(NIFTI_LABEL_BREAKS) + ["constant image"])
def test_prepare_skips_the_patient_with_a_bad_file(acdc, tmp_path, what):
    training, image, gt = acdc
    if what == "constant image":
        rewrite_nifti(image, lambda a: np.zeros_like(a))
        target, expected = image, "the image is constant"
    elif what in NIFTI_IMAGE_BREAKS:
        (breaker, expected), target = NIFTI_IMAGE_BREAKS[what], image
        breaker(target)
    else:
        (breaker, expected), target = NIFTI_LABEL_BREAKS[what], gt
        breaker(target)
    report, cache = prepare_dataset(training.parent, dataset="acdc", run_dir=tmp_path / "run", image_size=32)
    assert [p for p, _ in report.problems] == ["patient001"]
    message = report.problems[0][1]
    assert str(target) in message and expected in message and "\n" not in message
    assert set(cache.slices.patient_id) == {"patient002"}
    assert np.isfinite(cache.images).all()


def test_prepare_script_refuses_a_download_of_bad_files(acdc, tmp_path):
    training, _, _ = acdc
    for patient in ("patient001", "patient002"):
        for frame in (training / patient).glob("*_frame??.nii.gz"):
            patch_header(frame, set_pixdim(0, 0.0))
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "data_scripts" / "prepare_acdc.py"), str(training.parent), "--run-dir", str(run),
           "--image-size", "64"]
    env = {"CARDIGAN_PROGRESS": "0", "PATH": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stderr
    assert lines and lines[0].startswith("error: ") and "no patient could be read" in lines[0]
    assert "axis 0 is zero" in done.stderr and "Traceback" not in done.stderr
    assert not (run / "cache").exists() or not any((run / "cache").iterdir())


# ---------------------------------------------------------------------------------------------
# Arrays and Cases built in Python: the slice cache and segment_volume


def _fresh_cases():
    """Two phantom patients with their own arrays (the tests change them in place)."""
    return [dataclasses.replace(c, image=c.image.copy()) for c in load_cases("phantom-mri", n_patients=2, seed=1)]


@pytest.mark.parametrize("what,change,expected", [
    ("NaN voxel", lambda c: c.image.__setitem__((0, 0, 0), np.nan), "NaN or infinite values in 1 of"),
    ("inf voxels", lambda c: c.image.__setitem__((slice(0, 4), 0, 0), np.inf), "NaN or infinite values in 4 of"),
    ("constant", lambda c: c.image.fill(3.0), "is constant"),
])
def test_build_cache_refuses_a_bad_case_built_in_python(tmp_path, what, change, expected):
    cases = _fresh_cases()
    bad = cases[1]
    change(bad)
    out = tmp_path / "cache"
    _refuses(lambda: build_cache(cases, out, image_size=32, progress=False), [bad.patient_id, expected])
    assert not out.exists() and not list(tmp_path.glob("cache.partial-*"))


@pytest.mark.parametrize("spacing,expected", [((0.0, 1.5, 10.0), "axis 0 is zero"),
                                              ((1.5, 1.5, float("nan")), "axis 2 is not a number"),
                                              ((1e4, 1e4, 10.0), "axis 0 is above 100 mm")])
def test_build_cache_refuses_a_case_with_implausible_spacing(tmp_path, spacing, expected):
    cases = _fresh_cases()
    cases[0] = dataclasses.replace(cases[0], spacing=spacing)
    _refuses(lambda: build_cache(cases, tmp_path / "cache", image_size=32, progress=False),
             [cases[0].patient_id, expected])


@pytest.mark.parametrize("what,image", [
    ("NaN", np.where(np.arange(64 * 64 * 3).reshape(64, 64, 3) == 5, np.nan, 1.0) + np.random.rand(64, 64, 3)),
    ("constant", np.full((64, 64, 3), 12.0)),
])
def test_segment_volume_refuses_what_it_cannot_segment(model_path, what, image):
    model, _ = load_segmenter(model_path, device="cpu")
    expected = "NaN or infinite" if what == "NaN" else "is constant"
    _refuses(lambda: segment_volume(model, image, (1.5, 1.5, 10.0), image_size=32, source="scan.nii.gz"),
             ["scan.nii.gz", expected])


def test_a_field_of_view_too_large_for_memory_is_refused_before_slicing():
    image = np.random.rand(64, 64, 12).astype(np.float32)
    _refuses(lambda: to_model_space(image, (0.01, 0.01, 8.0), image_size=64, fov_mm=160.0, source="tiny.nii.gz"),
             ["tiny.nii.gz", "16,004 x 16,004 pixels a slice", f"limit of {MAX_VOXELS:,}"])
    slices, _, _ = to_model_space(image, (0.5, 0.5, 8.0), image_size=64, fov_mm=160.0)
    assert slices.shape == (12, 64, 64)


# ---------------------------------------------------------------------------------------------
# Valid files read exactly as before


def _old_nifti(path):
    img = nib.load(path)
    return np.asanyarray(img.dataobj), img.affine, tuple(float(z) for z in img.header.get_zooms())


def test_valid_phantom_files_read_as_the_libraries_read_them(layouts, tmp_path):
    for path in sorted((layouts / "ACDC").rglob("*.nii.gz")) + sorted((layouts / "CAMUS_nifti").rglob("*.nii.gz")):
        data, affine, zooms = _old_nifti(path)
        got = read_image(path, labels=path.name.endswith("_gt.nii.gz"))
        assert got.data.dtype == data.dtype and np.array_equal(got.data, data.reshape(got.data.shape))
        assert np.array_equal(got.affine, affine) and got.spacing == zooms[: len(got.spacing)]
    for path in sorted((layouts / "CAMUS_mhd").rglob("*.mhd")):
        img = sitk.ReadImage(str(path))
        got = read_image(path, labels=path.name.endswith("_gt.mhd"))
        assert np.array_equal(got.data, sitk.GetArrayFromImage(img).T)
        assert got.spacing == img.GetSpacing() and got.origin == img.GetOrigin()
    # a compressed .mhd (the raw size is not checked) and a prediction written in an .mhd's geometry
    source = sorted((layouts / "CAMUS_mhd").rglob("*_2CH_ED.mhd"))[0]
    zipped = tmp_path / "zipped.mhd"
    sitk.WriteImage(sitk.ReadImage(str(source)), str(zipped), useCompression=True)
    assert np.array_equal(read_image(zipped).data, read_image(source).data)
    out = tmp_path / "pred_gt.nii.gz"
    save_like(out, (read_image(source).data > 0.5).astype(np.uint8), like=read_image(source))
    a, b = sitk.ReadImage(str(source)), sitk.ReadImage(str(out))
    assert a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())


def test_the_real_acdc_patients_read_exactly_as_before(acdc_dir):
    patients = sorted(p for p in acdc_dir.glob("patient[0-9][0-9][0-9]") if p.is_dir())
    assert len(patients) >= 10
    for i, patient in enumerate(patients):
        cases = read_acdc_patient(patient)  # not one real patient is refused
        if i % 10:
            continue
        for case in cases:  # every tenth: the same arrays and voxel sizes as nibabel alone gives
            img_path = Path(case.meta["image_path"])
            data, _, zooms = _old_nifti(img_path)
            gt, _, _ = _old_nifti(img_path.with_name(img_path.name.replace(".nii.gz", "_gt.nii.gz")))
            assert np.array_equal(case.image, np.asarray(data, np.float32))
            assert np.array_equal(case.label, np.round(gt).astype(np.uint8))
            assert case.spacing == zooms[:3]
    cine = next(patients[0].glob("*_4d.nii.gz"), None)
    if cine is not None:
        assert read_image(cine, ndims=(4,)).data.shape == nib.load(cine).shape
        _refuses(lambda: read_image(cine), [cine.name, "a 4-D image"])
