"""Bad values and devices are refused where they enter, in one line; valid input is not refused
(Windows-saved Info.cfg, an archive prepared twice); a stuck notebook cell is stopped and named."""

from __future__ import annotations

import shutil
import zipfile

import nbformat
import pytest
import torch

from cardigan_utils import config, notebook
from cardigan_utils.cli import train_parameters
from cardigan_utils.data.acdc import read_acdc_patient, write_acdc_example
from cardigan_utils.data.case import DataError
from cardigan_utils.data.prepare import UNPACKED_MARK, extract_archive, prepare_dataset
from conftest import refused, snapshot

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("name, value, rule", [
    ("batch_size", "abc", "an integer >= 1"),
    ("batch_size", -4, "an integer >= 1"),
    ("batch_size", 2.5, "an integer >= 1"),
    ("max_epochs", 0, "an integer >= 1"),
    ("beta", -1, "a number >= 0"),
    ("lr", 0, "a number > 0"),
    ("latent_dim", True, "an integer >= 1"),
    ("augment", "yes", "true or false"),
    ("channels", [8, 0], "a list of integers >= 1"),
])
def test_cardigan_train_refuses_bad_values(capsys, tmp_path, name, value, rule):
    kind = "segmenter" if name in ("augment", "channels") else "vae"
    line = refused(capsys, ["train", kind, "--run-dir", tmp_path, "--profile", "smoke", "-p", name, str(value)],
                   mentions=[name, rule])
    assert "slice cache" not in line  # refused before it looks for the data


@pytest.mark.parametrize("argv, mentions", [
    (["run", "--profile", "smoke", "-p", "image_size", "100"], ["image_size must be one of (64, 128, 256), got 100"]),
    (["run", "--profile", "smoke", "-p", "n_patients", "0"], ["n_patients must be an integer >= 1"]),
    (["run", "--profile", "smoke", "--seed", "-1"], ["seed must be an integer >= 0, got -1"]),
    (["run", "--profile", "smoke", "--cell-timeout", "0"], ["cell_timeout_s must be a number > 0"]),
    (["generate", "--profile", "smoke", "-p", "n_synthetic", "-5"], ["n_synthetic must be an integer >= 1"]),
    (["generate", "--profile", "smoke", "-p", "filter_plausible", "1"], ["filter_plausible must be true or false"]),
    (["study", "--profile", "smoke", "--fractions", "0"], ["fractions must be a list of numbers > 0 and <= 1"]),
    (["study", "--profile", "smoke", "--fractions", "1.5"], ["fractions must be"]),
    (["train", "vae", "--profile", "smoke", "--image-size", "100"], ["image_size must be one of"]),
])
def test_values_are_checked_before_any_work(capsys, tmp_path, argv, mentions):
    run_dir = tmp_path / "run"
    argv = argv + ["--run-dir", run_dir]
    refused(capsys, argv, mentions=mentions)
    assert not (run_dir / "notebooks").exists()  # no notebook started


@pytest.mark.parametrize("device, says", [
    ("banana", "is not a device name"),
    ("cuda:x", "is not a device name"),
    ("xla", "the kit runs on cpu, cuda or mps"),
    ("cuda", "no usable CUDA GPU"),
    ("mps", "MPS is not available"),
])
def test_devices_the_machine_lacks_are_refused(capsys, tmp_path, device, says):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    for argv in (["train", "vae", "--run-dir", tmp_path, "--profile", "smoke"],
                 ["segment", "--model", tmp_path / "m.pt", "--input", tmp_path, "--output", tmp_path / "out"]):
        refused(capsys, [*argv, "--device", device], mentions=[repr(device), says])
    with pytest.raises(ValueError, match=says):
        config.get_device(device)


def test_good_values_pass_and_the_api_checks_them_too():
    assert config.check_parameters({"fractions": [0.05, 1.0], "channels": None, "betas": (0.0, 0.9), "name": "x"})
    assert train_parameters("segmenter", profile="smoke", overrides={"max_epochs": 3})["max_epochs"] == 3
    with pytest.raises(ValueError, match=r"betas must be two numbers in \[0, 1\)"):
        config.check_parameters({"betas": (0.0, 1.0)})
    with pytest.raises(ValueError, match="max_epochs must be an integer >= 1, got 0"):
        config.profile_params("quick", stage="vae", max_epochs=0)
    with pytest.raises(ValueError, match="mix_ratio must be a number > 0, got nan"):
        config.profile_params("quick", stage="segment", mix_ratio=float("nan"))


@pytest.mark.parametrize("encoding, newline", [("utf-8-sig", "\r\n"), ("utf-16", "\r\n"), ("utf-8-sig", "\n"),
                                               ("utf-8", "\r\n")])
def test_info_cfg_saved_by_windows_editors_reads_as_before(tmp_path, encoding, newline):
    root = write_acdc_example(tmp_path / "acdc", n_patients=1)
    patient = next((root / "training").iterdir())
    before = read_acdc_patient(patient)
    cfg = patient / "Info.cfg"
    cfg.write_bytes(cfg.read_text().replace("\n", newline).encode(encoding))
    after = read_acdc_patient(patient)
    assert [(c.phase, c.meta.get("group"), c.meta.get("frame")) for c in after] == \
           [(c.phase, c.meta.get("group"), c.meta.get("frame")) for c in before]


def _zip(folder, archive):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent))
    return archive


def test_an_archive_prepared_twice_is_reused_and_a_clash_changes_nothing(tmp_path):
    root = write_acdc_example(tmp_path / "ACDC", n_patients=3)
    archive = _zip(root, tmp_path / "ACDC.zip")
    shutil.rmtree(root)
    for _ in range(2):  # the second run used to stop with "already exists"
        report, cache = prepare_dataset(archive, dataset="acdc", run_dir=tmp_path / "run", image_size=64)
        assert not report.problems and cache.manifest["patients"]["train"] > 0
    unpacked = tmp_path / "ACDC"
    assert (unpacked / UNPACKED_MARK).is_file()

    other = write_acdc_example(tmp_path / "other" / "ACDC", n_patients=1, seed=5)
    other_zip = _zip(other, tmp_path / "other.zip")
    before = snapshot(unpacked)
    with pytest.raises(DataError, match="holds the files of another archive"):
        extract_archive(other_zip, unpacked)
    assert snapshot(unpacked) == before

    plain = tmp_path / "plain"  # a folder with files of the same names, not unpacked by the kit
    shutil.copytree(other.parent, plain)
    before = snapshot(plain)
    with pytest.raises(DataError, match="already exists and was not unpacked from other.zip"):
        extract_archive(other_zip, plain)
    assert snapshot(plain) == before and not list(tmp_path.glob("plain.partial-*"))


def test_a_stuck_cell_is_stopped_and_named(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell("run_dir = 'x'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]
    nbformat.write(nb, str(nbdir / "01_stuck.ipynb"))
    with pytest.raises(notebook.NotebookFailed, match=r"01_stuck\.ipynb: cell \[4\] \('import time'\) ran past the "
                                                      r"cell timeout of 2 s"):
        notebook.run_sequence(tmp_path / "run", notebook_dir=nbdir, cell_timeout_s=2, log=lambda line: None)
    assert all(v["cell_timeout_s"] > 0 for v in config.PROFILES.values())
