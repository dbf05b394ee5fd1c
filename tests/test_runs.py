"""The run directory (cardigan_utils.runs): temporary names, atomic writes, path rules and metrics.json."""

import json

import numpy as np
import pytest

from cardigan_utils import runs


def test_temporary_names_keep_the_format_ending_and_never_repeat(tmp_path):
    import re

    name = runs.temporary_path(tmp_path / "a.nii.gz")
    assert name.parent == tmp_path and re.fullmatch(r"a\.tmp-\d+-[0-9a-f]{6}\.nii\.gz", name.name), name
    assert re.fullmatch(r"b\.tmp-\d+-[0-9a-f]{6}\.npz", runs.temporary_path(tmp_path / "d" / "b.npz").name)
    assert re.fullmatch(r"x\.json\.tmp-\d+-[0-9a-f]{6}", runs.temporary_path(tmp_path / "x.json").name)
    assert runs.temporary_path("spade.pt").name.startswith("spade.pt.tmp-")
    # concurrent writers of the same file (three `cardigan segment --overwrite` at once) never share one
    assert len({runs.temporary_path(tmp_path / "p_gt.nii.gz") for _ in range(50)}) == 50


def test_atomic_path_moves_the_file_into_place(tmp_path):
    target = tmp_path / "sub" / "x.json"
    with runs.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path / "sub" and tmp.name.startswith("x.json.tmp-")  # its folder was created
        tmp.write_text("new")
        assert not target.exists()  # nothing under the real name before the block ends
    assert target.read_text() == "new" and sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_atomic_path_leaves_the_old_file_when_the_block_raises(tmp_path):
    target = tmp_path / "a.nii.gz"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with runs.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]  # no temporary file left


def test_text_and_csv_writes(tmp_path):
    import pandas as pd

    assert runs.write_text_atomic(tmp_path / "t" / "a.txt", "hi").read_text() == "hi"
    path = runs.write_csv_atomic(tmp_path / "table.csv", pd.DataFrame({"a": [1, 2]}))
    assert path.read_text().splitlines() == ["a", "1", "2"]  # no index column


def test_path_rules(tmp_path):
    assert runs.cache_dir(tmp_path, "acdc", 128) == tmp_path / "cache" / "acdc_128"
    assert runs.synthetic_dir(tmp_path, "acdc", 128) == tmp_path / "synthetic" / "acdc_128"
    assert runs.model_path(tmp_path, "spade") == tmp_path / "spade.pt"
    with pytest.raises(ValueError, match="stage must be"):
        runs.model_path(tmp_path, "unet")
    assert runs.figure_path(tmp_path, "01_datasets", "gallery") == tmp_path / "01_datasets" / "figures" / "gallery.png"
    assert runs.metrics_path(tmp_path, "01_datasets") == tmp_path / "01_datasets" / "metrics.json"


def test_write_metrics_writes_nan_as_null(tmp_path):
    metrics = {"dice": np.float64("nan"), "ci": [0.5, float("nan")], "nested": {"hd95": float("inf"), "n": 3}}
    path = runs.write_metrics(tmp_path, "05_segmentation", metrics)
    assert path == runs.metrics_path(tmp_path, "05_segmentation")

    def refuse(constant):
        raise AssertionError(f"{constant} in metrics.json: not strict JSON")

    written = json.loads(path.read_text(), parse_constant=refuse)
    assert written == {"dice": None, "ci": [0.5, None], "nested": {"hd95": None, "n": 3}}
    assert runs.read_metrics(tmp_path, "05_segmentation") == written
    with pytest.raises(FileNotFoundError, match="run notebooks/02_shape_vae.ipynb first"):
        runs.read_metrics(tmp_path, "02_shape_vae")


def test_atomic_path_removes_its_temporary_file_when_the_move_fails(tmp_path, monkeypatch):
    import os

    def full_disk(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(runs.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        runs.write_text_atomic(tmp_path / "m.json", "{}")
    monkeypatch.setattr(runs.os, "replace", os.replace)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("output, inputs", [
    ("data", {"--input": "data"}),                   # the same folder
    ("data/pred", {"--input": "data"}),              # inside the input
    ("data", {"--input": "data/testing"}),           # holding the input
    ("pred", {"--pred": "x", "--truth": "pred/."}),  # the same folder, spelled otherwise
])
def test_check_apart_refuses_outputs_among_inputs(tmp_path, output, inputs):
    inputs = {k: tmp_path / v for k, v in inputs.items()}
    with pytest.raises(ValueError, match="would land among the inputs"):
        runs.check_apart(tmp_path / output, inputs, output_name="--output")


def test_check_apart_accepts_separate_folders_and_follows_links(tmp_path):
    (tmp_path / "data").mkdir()
    runs.check_apart(tmp_path / "pred", {"--input": tmp_path / "data"}, output_name="--output")
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    with pytest.raises(ValueError, match="--output .*alias is --input"):
        runs.check_apart(tmp_path / "alias", {"--input": tmp_path / "data"}, output_name="--output")


def test_check_output_dir_and_describe_os_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as err:
        runs.check_output_dir(tmp_path / "afile", option="--output")
    assert runs.describe_os_error(err.value) == f"{tmp_path / 'afile'}: --output names a file, not a folder; " \
                                                "a file stands where a folder is needed; give another path"
    assert runs.check_output_dir(tmp_path / "new" / "dir", option="--output").is_dir()
    assert runs.describe_os_error(OSError(30, "Read-only file system", "/r")) == \
        "/r: Read-only file system; choose a folder you can write to"


def test_output_record_replaces_only_what_the_kit_wrote(tmp_path):
    record = runs.OutputRecord(tmp_path, command="cardigan segment")
    theirs, ours = tmp_path / "patient001_gt.nii.gz", tmp_path / "sub" / "p_gt.nii.gz"
    theirs.write_text("ground truth")
    with pytest.raises(FileExistsError, match="patient001_gt.nii.gz exists and was not written by cardigan segment"):
        record.check_replaceable(theirs)
    ours.parent.mkdir()
    ours.write_text("prediction")
    record.add(ours)
    record.check_replaceable(ours)  # ours: may be replaced
    record.check_replaceable(tmp_path / "absent.nii.gz")  # nothing there yet
    again = runs.OutputRecord(tmp_path, command="cardigan segment")  # a later run reads the record
    assert again.owns(ours) and not again.owns(theirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cardigan-written.json", "patient001_gt.nii.gz", "sub"]
    (tmp_path / ".cardigan-written.json").write_text("{broken")
    with pytest.raises(ValueError, match="damaged record"):
        again.owns(ours)
