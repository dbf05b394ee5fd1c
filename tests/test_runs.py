"""The run directory (cardigan_utils.runs): temporary names, atomic writes, path rules and metrics.json."""

import json

import numpy as np
import pytest

from cardigan_utils import runs


def test_temporary_names_keep_the_format_ending(tmp_path):
    assert runs.temporary_path(tmp_path / "a.nii.gz") == tmp_path / "a.tmp.nii.gz"
    assert runs.temporary_path(tmp_path / "d" / "b.npz") == tmp_path / "d" / "b.tmp.npz"
    assert runs.temporary_path(tmp_path / "x.json") == tmp_path / "x.json.tmp"
    assert runs.temporary_path("spade.pt").name == "spade.pt.tmp"


def test_atomic_path_moves_the_file_into_place(tmp_path):
    target = tmp_path / "sub" / "x.json"
    with runs.atomic_path(target) as tmp:
        assert tmp == tmp_path / "sub" / "x.json.tmp"  # its folder was created
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
