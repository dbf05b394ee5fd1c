"""Outputs never land on inputs, results know what they were made from, and file system faults end in one line.

Three classes of mistakes and faults, each tried through the command a user types:

1. writing over inputs: ``segment``, ``evaluate``, ``lab build`` and ``make_phantom.py`` refuse an
   output that is, holds or lies inside an input, and replace only files the kit recorded writing;
2. stale results: ``generate`` refuses (or, with ``--overwrite``, remakes) a set made from other models;
3. environment faults: a read-only or full disk, or a file where the output folder should be, ends
   in one line naming the path, with no temporary file left; concurrent runs never collide.

Each case checks the one line, the exit status, and that no input file changed (``refused``).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils import cli, runs
from cardigan_utils.checkpoint import save_checkpoint
from cardigan_utils.data import load_cases, prepare_cache
from cardigan_utils.data.export import write_dataset
from cardigan_utils.data.slices import DEFAULT_FOV_MM
from cardigan_utils.images import build_spade, load_generator
from cardigan_utils.networks.unet import build_unet
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.notebook import NOTEBOOK_DIR
from cardigan_utils.segmentation import segment_folder
from cardigan_utils.shapes import load_vae
from cardigan_utils.synthetic import models_fingerprint, read_manifest
from conftest import ROOT, refused, snapshot

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("one_torch_thread", "quiet")]

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
"""chmod does not stop root from writing: the read-only folder cases are then simulated instead."""


@pytest.fixture
def quiet(monkeypatch):
    """No progress bars on stderr: the refusal must be the only line there."""
    monkeypatch.setenv("CARDIGAN_PROGRESS", "0")


def leftovers(*folders) -> list[str]:
    """Temporary files or folders (``.tmp``, ``.partial``) left under ``folders``."""
    return sorted(str(p) for folder in map(Path, folders) if folder.exists() for p in folder.rglob("*")
                  if runs.TMP_MARK in p.name or ".partial" in p.name)


def failing(err_no: int, *, partial: int | None = -1):
    """A writer (or ``os.replace``) that fails as a full or read-only disk does: no file named in the error.

    Args:
        err_no: ``errno.ENOSPC``, ``errno.EROFS`` ...
        partial: which positional argument is the file being written, to leave half a file there
            first (what a disk filling up mid-write leaves); None: write nothing.
    """

    def fail(*args, **kwargs):
        if partial is not None:
            Path(args[partial]).write_bytes(b"half a file")
        raise OSError(err_no, os.strerror(err_no))

    return fail


# ---------------------------------------------------------------------------------------------
# Small folders and models, made in seconds


@pytest.fixture(scope="module")
def acdc_like(tmp_path_factory) -> Path:
    """Two MRI phantom patients in the ACDC layout: ``.../ACDC/training``."""
    root = tmp_path_factory.mktemp("acdc")
    write_dataset(load_cases("phantom-mri", n_patients=2, seed=5), root / "ACDC", layout="acdc")
    return root / "ACDC" / "training"


@pytest.fixture(scope="module")
def camus_like(tmp_path_factory) -> Path:
    """One echo phantom patient in the CAMUS NIfTI layout: ``.../CAMUS``."""
    root = tmp_path_factory.mktemp("camus")
    write_dataset(load_cases("phantom-echo", n_patients=1, seed=5), root / "CAMUS", layout="camus-nifti")
    return root / "CAMUS"


def _segmenter(path: Path, *, modality: str) -> Path:
    """An untrained tiny U-Net checkpoint whose config says how slices are cut (what segment reads)."""
    torch.manual_seed(0)
    net = build_unet(channels=(4, 8, 16), num_res_units=1)
    data = {"modality": modality, "image_size": 32, "fov_mm": DEFAULT_FOV_MM[modality], "dataset": f"phantom-{modality}"}
    return save_checkpoint(path, {"model": net.state_dict()}, config={"model": net.config, "data": data},
                           kind="segmenter")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("segmenters")
    return {m: _segmenter(folder / m / "segmenter.pt", modality=m) for m in ("mri", "echo")}


def segment(model: Path, input_dir: Path, output: Path, *extra) -> list:
    return ["segment", "--model", model, "--input", input_dir, "--output", output, "--device", "cpu", *extra]


# ---------------------------------------------------------------------------------------------
# 1. Outputs never land on inputs; only the kit's own files are replaced


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_segment_into_its_own_input_is_refused(acdc_like, models, capsys, overwrite):
    line = refused(capsys, segment(models["mri"], acdc_like, acdc_like, *overwrite),
                   mentions=["--output", "is --input", "separate folder"], unchanged=[acdc_like])
    assert str(acdc_like) in line and not (acdc_like / runs.RECORD_NAME).exists()


def test_segment_output_inside_or_around_the_input_is_refused(acdc_like, models, capsys):
    refused(capsys, segment(models["mri"], acdc_like, acdc_like / "predictions"), mentions=["lies inside --input"],
            unchanged=[acdc_like])
    assert not (acdc_like / "predictions").exists()
    refused(capsys, segment(models["mri"], acdc_like / "patient001", acdc_like, "--overwrite"), mentions=["holds --input"],
            unchanged=[acdc_like])


def test_segment_through_a_link_to_the_input_is_refused(acdc_like, models, tmp_path, capsys):
    (tmp_path / "link").symlink_to(acdc_like, target_is_directory=True)
    refused(capsys, segment(models["mri"], acdc_like, tmp_path / "link", "--overwrite"), mentions=["is --input"],
            unchanged=[acdc_like])


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_ground_truth_in_the_output_is_neither_replaced_nor_taken_for_a_prediction(acdc_like, models, tmp_path,
                                                                                    capsys, overwrite):
    """The measured mistake: an output folder holding the patients' ``_gt`` files (a copy of the dataset)."""
    copy = tmp_path / "copy"
    shutil.copytree(acdc_like, copy)
    image = next(copy.rglob("patient001_frame01.nii.gz"))
    refused(capsys, segment(models["mri"], acdc_like, copy, *overwrite),
            mentions=[f"{image.parent / 'patient001_frame01_gt.nii.gz'}", "not written by cardigan segment"],
            unchanged=[copy, acdc_like])
    assert not (copy / "volumes.csv").exists() and not (copy / runs.RECORD_NAME).exists()


def test_a_foreign_volumes_csv_is_left_alone(acdc_like, models, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "volumes.csv").write_text("image,volume_ml\nmine,1.0\n")
    refused(capsys, segment(models["mri"], acdc_like, out), mentions=["volumes.csv", "not written by"], unchanged=[out])
    assert not list(out.rglob("*_gt.nii.gz"))  # refused before any prediction was written


def test_the_kits_own_predictions_are_kept_or_replaced(acdc_like, models, tmp_path, capsys):
    """What the record allows: an interrupted run continues, --overwrite redoes, nothing else is touched."""
    out = tmp_path / "out"
    assert cli.main([str(a) for a in segment(models["mri"], acdc_like, out)]) == 0
    preds = sorted(out.rglob("*_gt.nii.gz"))
    listed = json.loads((out / runs.RECORD_NAME).read_text())["files"]
    assert len(preds) == 4 and set(listed) == {str(p.relative_to(out)) for p in preds} | {"volumes.csv"}
    (out / "notes.txt").write_text("mine")
    lost = np.asarray(nib.load(preds[0]).dataobj)
    preds[0].unlink()  # an interrupted run: one prediction missing
    others = snapshot(*preds[1:], out / "notes.txt")
    assert cli.main([str(a) for a in segment(models["mri"], acdc_like, out)]) == 0
    assert snapshot(*preds[1:], out / "notes.txt") == others  # the others kept as they were
    assert np.array_equal(np.asarray(nib.load(preds[0]).dataobj), lost)  # the missing one made again
    os.utime(preds[1], (0, 0))
    assert cli.main([str(a) for a in segment(models["mri"], acdc_like, out, "--overwrite")]) == 0
    assert preds[1].stat().st_mtime > 0 and (out / "notes.txt").read_text() == "mine"
    assert not leftovers(out)


def test_evaluate_refuses_the_truth_as_its_own_prediction(acdc_like, tmp_path, capsys):
    refused(capsys, ["evaluate", "--pred", acdc_like, "--truth", acdc_like], mentions=["same folder", "Dice 1.0"],
            unchanged=[acdc_like])
    (tmp_path / "alias").symlink_to(acdc_like, target_is_directory=True)
    refused(capsys, ["evaluate", "--pred", tmp_path / "alias", "--truth", acdc_like], mentions=["same folder"],
            unchanged=[acdc_like])
    refused(capsys, ["evaluate", "--pred", acdc_like.parent, "--truth", acdc_like], mentions=["holds --truth"],
            unchanged=[acdc_like.parent])
    links = tmp_path / "links"  # a folder of links to the ground truth files: the same files
    for gt in acdc_like.rglob("*_gt.nii.gz"):
        (links / gt.parent.name).mkdir(parents=True, exist_ok=True)
        (links / gt.parent.name / gt.name).symlink_to(gt)
    refused(capsys, ["evaluate", "--pred", links, "--truth", acdc_like], mentions=["itself", "Dice 1.0"],
            unchanged=[acdc_like])
    assert not (links / "evaluation.csv").exists()


def test_evaluate_predictions_inside_the_truth_folder_are_refused(acdc_like, tmp_path, capsys):
    truth = tmp_path / "truth"
    shutil.copytree(acdc_like, truth)
    preds = truth / "preds"
    for gt in acdc_like.rglob("*_gt.nii.gz"):
        (preds / gt.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, preds / gt.parent.name / gt.name)
    refused(capsys, ["evaluate", "--pred", preds, "--truth", truth], mentions=["lies inside --truth"], unchanged=[truth])


def test_evaluate_leaves_a_foreign_evaluation_csv_alone(acdc_like, models, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([str(a) for a in segment(models["mri"], acdc_like, out)]) == 0
    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(acdc_like)]) == 0  # its own: replaced next time
    assert cli.main(["evaluate", "--pred", str(out), "--truth", str(acdc_like)]) == 0
    (out / "evaluation.csv").unlink()
    (out / "evaluation.csv").write_text("file,dice\nthe reviewer's scores,0.91\n")
    refused(capsys, ["evaluate", "--pred", out, "--truth", acdc_like], mentions=["evaluation.csv", "not written by"],
            unchanged=[out, acdc_like])


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A copy of the teacher notebooks that hold exercises (the lab builds from them)."""
    folder = tmp_path_factory.mktemp("teacher") / "notebooks"
    folder.mkdir()
    for name in ("02_shape_vae.ipynb", "03_spade_gan.ipynb"):
        shutil.copy(NOTEBOOK_DIR / name, folder / name)
    return folder


def test_lab_build_onto_the_teacher_notebooks_is_refused(teacher, capsys):
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", teacher], mentions=["--out", "is --notebooks"],
            unchanged=[teacher])
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", teacher / "students"],
            mentions=["lies inside --notebooks"], unchanged=[teacher])
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", teacher.parent], mentions=["holds --notebooks"],
            unchanged=[teacher])
    assert sorted(p.name for p in teacher.iterdir()) == ["02_shape_vae.ipynb", "03_spade_gan.ipynb"]


def test_lab_build_replaces_only_its_own_copies(teacher, tmp_path, capsys):
    out = tmp_path / "lab"
    assert cli.main(["lab", "build", "--notebooks", str(teacher), "--out", str(out)]) == 0
    built = snapshot(out)
    assert cli.main(["lab", "build", "--notebooks", str(teacher), "--out", str(out)]) == 0  # its own: rebuilt
    assert snapshot(out) == built
    mine = tmp_path / "teachers_copy"  # the teacher's notebooks copied where the students' would go
    shutil.copytree(teacher, mine)
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", mine],
            mentions=["02_shape_vae.ipynb", "not written by cardigan lab build"], unchanged=[mine, teacher])
    (out / "03_spade_gan.md").unlink()
    (out / "03_spade_gan.md").write_text("the sheet a colleague rewrote by hand")
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", out], mentions=["03_spade_gan.md"], unchanged=[out])


def _make_phantom():
    spec = importlib.util.spec_from_file_location("make_phantom", ROOT / "data_scripts" / "make_phantom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def phantom_refused(capsys, argv, *, mentions=(), unchanged=()) -> str:
    """``make_phantom.py <argv>`` exits 1 with one ``error: ...`` line and changes no file under ``unchanged``."""
    before = snapshot(*unchanged)
    capsys.readouterr()
    code = _make_phantom()([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert all(str(m) in lines[0] for m in mentions), (mentions, lines[0])
    assert snapshot(*unchanged) == before, "an input file changed"
    return lines[0]


def test_make_phantom_never_overwrites_a_real_dataset(acdc_like, camus_like, tmp_path, capsys):
    real = tmp_path / "ACDC"  # a real download: files the kit did not write
    shutil.copytree(acdc_like.parent, real)
    (real / runs.RECORD_NAME).unlink()
    phantom_refused(capsys, ["--out", real, "--n-patients", "2", "--overwrite"],
                    mentions=[str(real), "did not write", "never overwritten"], unchanged=[real])
    phantom_refused(capsys, ["--out", real, "--n-patients", "2"], mentions=["not empty"], unchanged=[real])
    echo = tmp_path / "CAMUS"
    shutil.copytree(camus_like, echo)
    (echo / runs.RECORD_NAME).unlink()
    phantom_refused(capsys, ["--modality", "echo", "--layout", "camus-nifti", "--out", echo, "--overwrite"],
                    mentions=["did not write"], unchanged=[echo])
    assert not leftovers(real, echo)


def test_make_phantom_replaces_its_own_phantom_only(tmp_path, capsys):
    out = tmp_path / "phantom"
    assert _make_phantom()(["--out", str(out), "--n-patients", "3", "--test-fraction", "0"]) == 0
    assert _make_phantom()(["--out", str(out), "--n-patients", "2", "--seed", "1", "--test-fraction", "0",
                            "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "training").iterdir()) == ["patient001", "patient002"]  # no stale patient003
    mine = out / "training" / "patient003"  # a real patient added by hand beside the phantom
    shutil.copytree(out / "training" / "patient001", mine)
    for f in mine.iterdir():
        f.rename(mine / f.name.replace("patient001", "patient003"))
    notes = out / "README.txt"
    notes.write_text("my notes")
    phantom_refused(capsys, ["--out", out, "--n-patients", "3", "--test-fraction", "0", "--overwrite"],
                    mentions=["patient003", "not written by"], unchanged=[out])
    assert _make_phantom()(["--out", str(out), "--n-patients", "2", "--test-fraction", "0", "--overwrite"]) == 0
    assert mine.is_dir() and notes.read_text() == "my notes" and not leftovers(out)


def test_write_dataset_refuses_to_overwrite_files_it_did_not_write(tmp_path):
    cases = load_cases("phantom-mri", n_patients=1, seed=0)
    (tmp_path / "d" / "training").mkdir(parents=True)
    (tmp_path / "d" / "training" / "subject.nii.gz").write_bytes(b"a real scan")
    with pytest.raises(FileExistsError, match="did not write"):
        write_dataset(cases, tmp_path / "d", layout="acdc", overwrite=True)
    assert (tmp_path / "d" / "training" / "subject.nii.gz").read_bytes() == b"a real scan"
    assert sorted(p.name for p in (tmp_path / "d").rglob("*")) == ["subject.nii.gz", "training"]


# ---------------------------------------------------------------------------------------------
# Modalities: a model on another modality's folder


def test_an_mri_model_on_an_echo_folder_says_the_modalities_differ(acdc_like, camus_like, models, tmp_path, capsys):
    out = tmp_path / "out"
    for folder in (camus_like, camus_like / "database_nifti", camus_like / "database_nifti" / "patient0001"):
        refused(capsys, segment(models["mri"], folder, out), mentions=["modalities differ", "mri", "echo", "camus"],
                unchanged=[camus_like])
    refused(capsys, segment(models["echo"], acdc_like, out), mentions=["modalities differ", "acdc"], unchanged=[acdc_like])
    assert not out.exists() or not any(out.iterdir())


def test_a_folder_of_no_known_layout_is_still_segmented(acdc_like, models, tmp_path, capsys):
    loose = tmp_path / "scans"
    loose.mkdir()
    shutil.copy(next(acdc_like.rglob("patient001_frame01.nii.gz")), loose / "scan.nii.gz")
    assert cli.main([str(a) for a in segment(models["echo"], loose, tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "scan_gt.nii.gz").exists()


# ---------------------------------------------------------------------------------------------
# 2. Stale results: a synthetic set knows the models it was made from


def _vae(path: Path, *, seed: int) -> None:
    torch.manual_seed(seed)
    vae = ShapeVAE(image_size=64, latent_dim=8, channels=[8, 16, 32, 64])
    save_checkpoint(path, {"model": vae.state_dict()}, config={"model": vae.config}, kind="vae")


def _spade(path: Path, *, seed: int) -> None:
    torch.manual_seed(seed)
    model = dict(image_size=64, ngf=4, hidden_channels=8, ndf=8, n_layers_d=3, num_scales=2, spectral_norm=True, z_dim=8,
                 modulation_kernel=1, block_modulation=True)
    generator, _, encoder = build_spade(**model)
    save_checkpoint(path, {"generator": generator.state_dict(), "encoder": encoder.state_dict()},
                    config={"family": "spade", "model": model, "train": {}, "data": {}}, kind="spade")


@pytest.fixture(scope="module")
def run_template(tmp_path_factory) -> Path:
    """A run directory with notebook 01's cache and untrained tiny VAE and generator checkpoints."""
    run = tmp_path_factory.mktemp("run")
    prepare_cache("phantom-mri", run_dir=run, image_size=64, n_patients=3, progress=False)
    _vae(run / "vae.pt", seed=0)
    _spade(run / "spade.pt", seed=0)
    return run


@pytest.fixture
def run_dir(run_template, tmp_path) -> Path:
    """A fresh copy of :func:`run_template` for one test."""
    return Path(shutil.copytree(run_template, tmp_path / "run"))


def generate(run: Path, *extra) -> list:
    return ["generate", "--run-dir", run, "--profile", "smoke", "--device", "cpu", "-p", "n_synthetic", "4",
            "-p", "shard_size", "2", "-p", "filter_plausible", "false", "-p", "render_batch_size", "4", *extra]


def test_the_fingerprint_is_the_checkpoints_and_only_its(run_dir, tmp_path):
    twice = [models_fingerprint(load_vae(run_dir / "vae.pt", device="cpu"),
                                load_generator(run_dir / "spade.pt", device="cpu")) for _ in range(2)]
    assert twice[0] == twice[1] and all(len(v) == 64 for v in twice[0].values())
    shutil.copy(run_dir / "spade.pt", tmp_path / "moved.pt")
    shutil.copy(run_dir / "spade.json", tmp_path / "moved.json")
    assert runs.state_fingerprint(load_generator(tmp_path / "moved.pt", device="cpu")) == twice[0]["generator"]
    _spade(tmp_path / "other.pt", seed=1)
    assert runs.state_fingerprint(load_generator(tmp_path / "other.pt", device="cpu")) != twice[0]["generator"]
    vae = load_vae(run_dir / "vae.pt", device="cpu")
    with torch.no_grad():
        next(vae.parameters()).view(-1)[0] += 1e-6  # one weight, a little
    assert runs.state_fingerprint(vae) != twice[0]["vae"]


def test_a_set_from_replaced_models_is_not_returned_as_finished(run_dir, capsys):
    assert cli.main([str(a) for a in generate(run_dir)]) == 0
    set_dir = run_dir / "synthetic" / "phantom-mri_64"
    first = read_manifest(set_dir)
    assert first["models"] == json.loads((set_dir / "generation.json").read_text())["models"]
    kept = snapshot(set_dir)
    assert cli.main([str(a) for a in generate(run_dir)]) == 0 and snapshot(set_dir) == kept  # same models: reused
    _spade(run_dir / "spade.pt", seed=1)  # notebook 03 run again
    refused(capsys, generate(run_dir), mentions=[str(set_dir), "other models", "generator changed", "--overwrite"],
            unchanged=[set_dir])
    assert cli.main([str(a) for a in generate(run_dir, "--overwrite")]) == 0
    second = read_manifest(set_dir)
    assert second["models"]["generator"] != first["models"]["generator"] and second["models"]["vae"] == first["models"]["vae"]
    _vae(run_dir / "vae.pt", seed=1)
    refused(capsys, generate(run_dir), mentions=["the VAE changed"], unchanged=[set_dir])


def test_an_unfinished_set_is_not_completed_by_other_models(run_dir, capsys):
    assert cli.main([str(a) for a in generate(run_dir)]) == 0
    set_dir = run_dir / "synthetic" / "phantom-mri_64"
    (set_dir / "manifest.json").unlink()  # interrupted before the end
    (set_dir / "shard_00001.npz").unlink()
    _spade(run_dir / "spade.pt", seed=2)
    refused(capsys, generate(run_dir), mentions=["other models"], unchanged=[set_dir])
    assert not (set_dir / "shard_00001.npz").exists()


def test_a_set_made_before_fingerprints_is_refused(run_dir, capsys):
    assert cli.main([str(a) for a in generate(run_dir)]) == 0
    set_dir = run_dir / "synthetic" / "phantom-mri_64"
    params = json.loads((set_dir / "generation.json").read_text())
    del params["models"]
    (set_dir / "generation.json").write_text(json.dumps(params))
    refused(capsys, generate(run_dir), mentions=["unrecorded"], unchanged=[set_dir])


# ---------------------------------------------------------------------------------------------
# 3. Environment faults: one line naming the path, no temporary file left


def test_segment_output_naming_a_file(acdc_like, models, tmp_path, capsys):
    target = tmp_path / "volumes.txt"
    target.write_text("not a folder")
    refused(capsys, segment(models["mri"], acdc_like, target), mentions=[str(target), "names a file"],
            unchanged=[target, acdc_like])
    refused(capsys, segment(models["mri"], acdc_like, target / "sub"), mentions=[str(target)], unchanged=[target])


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders; see the simulated cases")
def test_segment_into_a_read_only_folder(acdc_like, models, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    try:
        refused(capsys, segment(models["mri"], acdc_like, out), mentions=[str(out), "cannot be written"],
                unchanged=[acdc_like])
    finally:
        out.chmod(0o755)
    assert not any(out.iterdir())


@pytest.mark.parametrize("err_no,hint", [(errno.EROFS, "choose a folder you can write to"),
                                         (errno.ENOSPC, "free some space"), (errno.EACCES, "choose a folder")])
def test_segment_when_the_move_into_place_fails(acdc_like, models, tmp_path, capsys, monkeypatch, err_no, hint):
    out = tmp_path / "out"
    monkeypatch.setattr(os, "replace", failing(err_no, partial=None))
    line = refused(capsys, segment(models["mri"], acdc_like, out, "--overwrite"), mentions=[str(out), hint],
                   unchanged=[acdc_like])
    assert os.strerror(err_no) in line and runs.TMP_MARK not in line
    assert not leftovers(out) and not list(out.rglob("*_gt.nii.gz"))


def test_segment_on_a_full_disk(acdc_like, models, tmp_path, capsys, monkeypatch):
    """The writer fails half-way (ENOSPC names no file): the line names the prediction; no half file stays."""
    out = tmp_path / "out"
    monkeypatch.setattr(nib, "save", failing(errno.ENOSPC))
    line = refused(capsys, segment(models["mri"], acdc_like, out), mentions=["_gt.nii.gz", "No space left on device",
                                                                           "free some space"], unchanged=[acdc_like])
    assert line.startswith(f"cardigan: {out}") and not leftovers(out)
    monkeypatch.undo()
    monkeypatch.setenv("CARDIGAN_PROGRESS", "0")
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing(errno.ENOSPC))  # the predictions fit, volumes.csv does not
    refused(capsys, segment(models["mri"], acdc_like, out), mentions=[str(out / "volumes.csv")], unchanged=[acdc_like])
    assert not leftovers(out) and not (out / "volumes.csv").exists()


def test_concurrent_segment_runs_into_one_folder_all_succeed(acdc_like, models, tmp_path):
    out = tmp_path / "out"
    start, errors = threading.Barrier(3), []

    def run():
        try:
            start.wait()
            segment_folder(models["mri"], acdc_like, out, device="cpu", overwrite=True, progress_bar=False)
        except Exception as err:  # noqa: BLE001 - collected and reported below
            errors.append(repr(err))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    listed = json.loads((out / runs.RECORD_NAME).read_text())["files"]
    assert set(listed) == {str(p.relative_to(out)) for p in out.rglob("*_gt.nii.gz")} | {"volumes.csv"}
    assert len(listed) == 5 and not leftovers(out) and len(pd.read_csv(out / "volumes.csv")) == 12
    assert cli.main(["segment", "--model", str(models["mri"]), "--input", str(acdc_like), "--output", str(out),
                     "--device", "cpu"]) == 0  # every prediction recorded: the next run takes them as its own


def test_evaluate_into_a_read_only_prediction_folder(acdc_like, tmp_path, capsys, monkeypatch):
    pred = tmp_path / "pred"
    for gt in acdc_like.rglob("*_gt.nii.gz"):
        (pred / gt.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(gt, pred / gt.parent.name / gt.name)
    monkeypatch.setattr(os, "replace", failing(errno.EROFS, partial=None))
    refused(capsys, ["evaluate", "--pred", pred, "--truth", acdc_like], mentions=[str(pred), "Read-only file system"],
            unchanged=[pred, acdc_like])
    assert not leftovers(pred)


@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EROFS])
def test_generate_on_a_full_or_read_only_disk(run_dir, capsys, monkeypatch, err_no):
    set_dir = run_dir / "synthetic" / "phantom-mri_64"
    models_before = snapshot(run_dir / "vae.pt", run_dir / "spade.pt")
    monkeypatch.setattr(np, "savez", failing(err_no))
    line = refused(capsys, generate(run_dir), mentions=[str(set_dir / "shard_00000.npz"), os.strerror(err_no)])
    assert not leftovers(run_dir) and not (set_dir / "manifest.json").exists()
    assert snapshot(run_dir / "vae.pt", run_dir / "spade.pt") == models_before and "Traceback" not in line
    monkeypatch.undo()
    monkeypatch.setenv("CARDIGAN_PROGRESS", "0")
    assert cli.main([str(a) for a in generate(run_dir)]) == 0 and read_manifest(set_dir)["n"] == 4  # space again: done


def test_generate_when_the_disk_fills_while_the_cache_is_written(run_dir, capsys, monkeypatch):
    """The set is finished; its slice cache for notebook 05 is not: no ``.partial-`` folder stays beside it."""
    cache = run_dir / "cache" / "synthetic-phantom-mri_64"
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing(errno.ENOSPC, partial=1))
    refused(capsys, generate(run_dir), mentions=[str(cache), "free some space"], unchanged=[run_dir / "cache" / "phantom-mri_64"])
    assert not leftovers(run_dir) and not cache.exists()
    monkeypatch.undo()
    monkeypatch.setenv("CARDIGAN_PROGRESS", "0")
    assert cli.main([str(a) for a in generate(run_dir)]) == 0 and (cache / "manifest.json").exists()


def test_generate_into_a_run_directory_named_by_a_file(run_dir, capsys):
    (run_dir / "synthetic").write_text("a file where the sets go")
    refused(capsys, generate(run_dir), mentions=[str(run_dir / "synthetic")], unchanged=[run_dir / "synthetic"])


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders; see the simulated cases")
def test_generate_in_a_read_only_run_directory(run_dir, capsys):
    run_dir.chmod(0o555)
    try:
        refused(capsys, generate(run_dir), mentions=[str(run_dir)], unchanged=[run_dir])
    finally:
        run_dir.chmod(0o755)


def test_lab_build_faults(teacher, tmp_path, capsys, monkeypatch):
    target = tmp_path / "lab.txt"
    target.write_text("x")
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", target], mentions=[str(target), "names a file"],
            unchanged=[target, teacher])
    out = tmp_path / "lab"
    monkeypatch.setattr(Path, "write_text", failing(errno.ENOSPC, partial=0))
    refused(capsys, ["lab", "build", "--notebooks", teacher, "--out", out], mentions=[str(out), "free some space"],
            unchanged=[teacher])
    assert not leftovers(out) and not [p for p in out.iterdir() if p.suffix in (".ipynb", ".md")]


def test_make_phantom_faults(tmp_path, capsys, monkeypatch):
    target = tmp_path / "file"
    target.write_text("x")
    phantom_refused(capsys, ["--out", target, "--n-patients", "1"], mentions=[str(target), "names a file"],
                    unchanged=[target])
    out = tmp_path / "phantom"
    monkeypatch.setattr(os, "replace", failing(errno.EROFS, partial=None))
    phantom_refused(capsys, ["--out", out, "--n-patients", "1"], mentions=[str(out), "Read-only file system"])
    assert not leftovers(out) and not [p for p in out.rglob("*") if p.is_file()]
    monkeypatch.undo()
    monkeypatch.setattr(nib, "save", failing(errno.ENOSPC))  # the disk fills while the patients are written
    line = phantom_refused(capsys, ["--out", out, "--n-patients", "1"], mentions=[str(out), "free some space"])
    assert runs.TMP_MARK not in line and not leftovers(out) and not [p for p in out.rglob("*") if p.is_file()]


def test_a_file_put_in_place_while_the_kit_writes_is_left_alone(tmp_path):
    """The check before the move is made again under the folder's lock: a file that appeared meanwhile stays."""
    record = runs.OutputRecord(tmp_path, command="cardigan segment")
    target = tmp_path / "p_gt.nii.gz"
    with pytest.raises(FileExistsError, match="not written by cardigan segment"):
        with record.writing(target) as tmp:
            tmp.write_text("the prediction")
            target.write_text("someone else's file, copied in meanwhile")
    assert target.read_text() == "someone else's file, copied in meanwhile" and not record.owns(target)
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_atomic_write_names_the_file_not_its_temporary_name(tmp_path, monkeypatch, err_no):
    target = tmp_path / "a" / "metrics.json"
    monkeypatch.setattr(os, "replace", failing(err_no, partial=None))
    with pytest.raises(OSError) as raised:
        runs.write_text_atomic(target, "{}")
    assert raised.value.errno == err_no and raised.value.filename == str(target) and not leftovers(tmp_path)
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError) as raised:  # an error about another file is left as it is
        with runs.atomic_path(target):
            open(tmp_path / "missing-input")
    assert raised.value.filename == str(tmp_path / "missing-input") and not leftovers(tmp_path)
