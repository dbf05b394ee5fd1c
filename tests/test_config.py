from pathlib import Path

import numpy as np
import pytest
import torch

from cardigan_utils import config
from cardigan_utils.data import dataset_dir


def test_profiles_have_the_shared_names():
    for name, params in config.PROFILES.items():
        assert {"image_size", "batch_size", "max_epochs", "n_patients"} <= set(params), name


def test_stage_sections_override_the_common_values():
    p = config.profile_params("quick", stage="vae")
    assert p["max_epochs"] == config.PROFILES["quick"]["vae"]["max_epochs"] != config.PROFILES["quick"]["max_epochs"]
    assert p["image_size"] == config.PROFILES["quick"]["image_size"] and "vae" not in p
    assert config.profile_params("quick", stage="vae", max_epochs=1)["max_epochs"] == 1
    with pytest.raises(ValueError, match="no 'nowhere' section"):
        config.profile_params("quick", stage="nowhere")


def test_profile_params_overrides_win_and_none_is_ignored():
    p = config.profile_params("smoke", batch_size=3, max_epochs=None)
    assert p["batch_size"] == 3
    assert p["max_epochs"] == config.PROFILES["smoke"]["max_epochs"]
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        config.profile_params("fast")


def test_set_seed_makes_torch_and_numpy_repeat():
    rng = config.set_seed(5)
    a = (rng.random(3), torch.rand(3), np.random.rand(2))
    rng = config.set_seed(5)
    b = (rng.random(3), torch.rand(3), np.random.rand(2))
    for u, v in zip(a, b):
        assert np.allclose(np.asarray(u), np.asarray(v))


def test_get_device_defaults_and_forcing():
    assert config.get_device("cpu").type == "cpu"
    assert config.get_device().type in {"cpu", "cuda", "mps"}


def test_dataset_dir_prefers_argument_then_env(monkeypatch, tmp_path):
    assert dataset_dir("phantom-mri") is None
    monkeypatch.setenv("CARDIGAN_ACDC_DIR", str(tmp_path))
    assert dataset_dir("acdc") == tmp_path
    assert dataset_dir("acdc", "/x") == Path("/x")
    monkeypatch.delenv("CARDIGAN_ACDC_DIR")
    with pytest.raises(FileNotFoundError, match="CARDIGAN_ACDC_DIR"):
        dataset_dir("acdc")


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("CARDIGAN_PROGRESS", "0")
    assert config.progress(range(3)).disable
    monkeypatch.setenv("CARDIGAN_PROGRESS", "1")
    assert not config.progress(range(3)).disable
    assert config.progress(range(3), enabled=False).disable


def test_lab_profile_is_sized_for_a_classroom():
    lab, quick = config.PROFILES["lab"], config.PROFILES["quick"]
    # notebook 05's third exercise needs paired seeds and a low share of real patients
    assert len(lab["segment"]["seeds"]) >= 2 and min(lab["segment"]["fractions"]) < 1.0
    # notebook 03 trains a second GAN for its exercise: the lab GAN must be cheaper than the quick one
    assert lab["spade"]["max_epochs"] * lab["n_patients"] < quick["spade"]["max_epochs"] * quick["n_patients"]
