import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from cardigan_utils import metrics, runs
from cardigan_utils.data import choose_patients, dataset_specs, get_dataset, load_cases, prepare_cache, reference_cases
from cardigan_utils.data.acdc import read_acdc
from cardigan_utils.data.camus import read_camus
from cardigan_utils.data.export import official_ids
from cardigan_utils.data.phantom import phantom_cases
from conftest import ROOT


def test_load_cases_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_cases("mnist")
    with pytest.raises(ValueError, match="need n_patients"):
        load_cases("phantom-mri")
    monkeypatch.delenv("CARDIGAN_CAMUS_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="set CARDIGAN_CAMUS_DIR"):
        load_cases("camus")
    assert reference_cases("echo") == []


def test_choose_patients_spreads_over_groups():
    groups = {f"patient{i:03d}": ["DCM", "HCM", "MINF", "NOR", "RV"][i // 20] for i in range(100)}
    chosen = choose_patients(groups, 10, seed=0)
    assert len(chosen) == 10 and chosen == sorted(chosen)
    assert {groups[p] for p in chosen} == {"DCM", "HCM", "MINF", "NOR", "RV"}
    assert chosen != choose_patients(groups, 10, seed=1)
    assert choose_patients(groups, None) == sorted(groups)


@pytest.mark.acdc
def test_acdc_subset_is_stratified(acdc_dir):
    cases = load_cases("acdc", data_dir=acdc_dir, n_patients=10, progress=False)
    assert len({c.patient_id for c in cases}) == 10
    assert {c.meta["Group"] for c in cases} == {"DCM", "HCM", "MINF", "NOR", "RV"}


def test_reference_cases_warn_on_a_wrong_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CARDIGAN_ACDC_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="no real acdc reference"):
        assert reference_cases("mri") == []


def test_prepare_cache_and_metrics_round_trip(tmp_path):
    cache = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=32, n_patients=4, seed=1, progress=False)
    assert cache.path == tmp_path / "cache" / "phantom-mri_32"
    m = metrics.dataset_metrics(cache)
    assert m["n_patients"] == 4 and m["n_cases"] == 8
    assert sum(m["class_fraction"].values()) == pytest.approx(1.0)
    assert m["lv_ed_mean"] > m["lv_es_mean"]
    path = runs.write_metrics(tmp_path, "01_datasets", m)
    assert path == tmp_path / "01_datasets" / "metrics.json"
    assert runs.read_metrics(tmp_path, "01_datasets") == json.loads(json.dumps(m))
    with pytest.raises(FileNotFoundError, match="run notebooks/02_shape_vae.ipynb first"):
        runs.read_metrics(tmp_path, "02_shape_vae")


def _same(a, b):
    assert [c.key for c in a] == [c.key for c in b]
    for x, y in zip(a, b):
        assert np.allclose(x.image, y.image, atol=1e-4) and np.array_equal(x.label, y.label)
        assert np.allclose(x.spacing, y.spacing, atol=1e-5)


@pytest.mark.parametrize(
    "modality,layout",
    [("mri", "acdc"), ("echo", "camus-nifti"), ("echo", "camus-mhd")],
)
def test_phantom_written_in_official_layouts_reads_back(tmp_path, modality, layout):
    out = tmp_path / layout
    cmd = [sys.executable, str(ROOT / "data_scripts" / "make_phantom.py"), "--modality", modality, "--layout", layout,
           "--n-patients", "3", "--seed", "4", "--out", str(out), "--test-fraction", "0.34"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = phantom_cases(f"phantom-{modality}", 3, seed=4)
    names = official_ids([c.patient_id for c in expected], layout=layout)
    expected = [dataclasses.replace(c, patient_id=names[c.patient_id]) for c in expected]
    if layout == "acdc":
        got = read_acdc(out, progress=False)
        assert {p.parent.name for p in out.glob("*/patient*")} == {"training", "testing"}
    else:
        got = read_camus(out)
        if layout == "camus-nifti":
            assert len(read_camus(out, split="testing")) == 4  # one patient, 2 views x 2 phases
    got_by_key = {c.key: c for c in got}
    _same(sorted(expected, key=lambda c: c.key), [got_by_key[c.key] for c in sorted(expected, key=lambda c: c.key)])
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_write_metrics_writes_strict_json(tmp_path):
    path = runs.write_metrics(tmp_path, "05_segmentation", {"ci": [float("nan"), 0.1], "d": {"x": float("inf")}})
    assert json.loads(path.read_text()) == {"ci": [None, 0.1], "d": {"x": None}}


@pytest.mark.parametrize("name", [s.name for s in dataset_specs() if s.needs_folder])
def test_make_phantom_writes_any_registered_dataset(tmp_path, name):
    out = tmp_path / name
    cmd = [sys.executable, str(ROOT / "data_scripts" / "make_phantom.py"), "--dataset", name, "--n-patients", "2",
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    source = done.stdout.split(f"as {name} to ")[1].split(" (set ")[0]  # the folder or file it says it wrote
    report = get_dataset(name).verify(source, progress=False)
    assert not report.problems and len({c.patient_id for c in report.cases}) == 2
    again = subprocess.run(cmd, capture_output=True, text=True)  # never over a folder that holds something
    assert again.returncode == 1 and "not empty" in again.stderr and again.stderr.count("\n") == 1
