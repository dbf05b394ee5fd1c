import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils import viz, widgets
from cardigan_utils.data import prepare_cache
from cardigan_utils.labels import label_image
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.shapes import latent


@pytest.fixture(scope="module")
def model_and_cache(tmp_path_factory):
    cache = prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("lat"), image_size=64, n_patients=4, progress=False)
    torch.manual_seed(0)
    return ShapeVAE(image_size=64, latent_dim=6, channels=[8, 16, 32, 64]).eval(), cache


def test_encode_and_principal_directions(model_and_cache):
    model, cache = model_and_cache
    codes = latent.encode_cache(model, cache, split="train")
    assert codes.mu.shape == (len(cache.indices("train")), 6) and len(codes.slices) == len(codes.mu)
    mean, dirs, std = latent.principal_directions(codes.mu, k=3)
    assert np.allclose(dirs @ dirs.T, np.eye(3), atol=1e-5)
    assert std[0] >= std[1] >= std[2] > 0
    proj = latent.project(codes.mu, mean, dirs)
    assert np.allclose(proj.std(axis=0, ddof=1), std, rtol=1e-4)


def test_interpolate_ends_and_middle():
    path = latent.interpolate(np.zeros(3), np.ones(3), steps=5)
    assert path.shape == (5, 3) and np.allclose(path[0], 0) and np.allclose(path[-1], 1) and np.allclose(path[2], 0.5)


def test_reconstruct_scores_each_slice(model_and_cache):
    model, cache = model_and_cache
    labels = np.asarray(cache.labels[:5])
    recon, dice = latent.reconstruct(model, labels, names=["RV", "MYO", "LV"])
    assert recon.shape == labels.shape and list(dice.columns) == ["RV", "MYO", "LV"] and len(dice) == 5
    assert ((dice.fillna(0) >= 0) & (dice.fillna(0) <= 1)).all().all()


def test_latent_explorer_moves_the_shape(model_and_cache):
    model, cache = model_and_cache
    codes = latent.encode_cache(model, cache)
    mean, dirs, std = latent.principal_directions(codes.mu, k=2)
    ex = widgets.latent_explorer(model, mean, dirs, std)
    assert np.allclose(ex.code(), mean)
    # tests/test_browser.py finds the explorer in JupyterLab by these classes
    assert "cardigan-latent-explorer" in ex.widget._dom_classes
    assert all("cardigan-latent-slider" in s._dom_classes for s in ex.sliders)
    ex.sliders[0].value = 3.0
    assert np.allclose(ex.code(), mean + 3.0 * std[0] * dirs[0], atol=1e-5)
    assert ex.label.shape == (64, 64)


def test_vae_plots(tmp_path):
    hist = pd.DataFrame({"epoch": [1, 2, 3], "recon": [1.0, 0.5, 0.3], "val_loss": [np.nan, 0.6, 0.4]})
    fig = viz.loss_curves(hist, columns=["recon", "val_loss", "missing"])
    assert len(fig.axes) == 2
    masks = np.zeros((3, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 3
    report = pd.DataFrame({"a": [True, False, True], "b": [True, True, True], "valid": [True, False, True]})
    fig = viz.failure_examples(masks, report)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["a"]
    assert viz.failure_examples(masks, report.assign(a=True)) is None
    table = pd.DataFrame({"phase": ["ED", "ES", "ED"], "slice_pos": [0.1, 0.5, 0.9], "group": ["x", "x", "x"]})
    fig = viz.latent_scatter(np.random.rand(3, 2), table)
    assert len(fig.axes) >= 2  # group is constant and left out
    assert label_image(np.array([[0, 3]])).shape == (1, 2, 3)
