"""Notebook 03's measures, figures and viewer: intensity distances, real-vs-generated plots, the generator widget."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from cardigan_utils import viz, widgets
from cardigan_utils.config import use_bf16
from cardigan_utils.data.cache import build_cache
from cardigan_utils.images import SpadeRenderer
from cardigan_utils.metrics import intensity_distances
from cardigan_utils.networks.spade import SPADEGenerator
from conftest import disk_case

NAMES = ["background", "RV", "MYO", "LV"]


@pytest.fixture
def cache(tmp_path):
    cases = [disk_case(pid=f"patient{i:03d}", phase=p, radius=8 if p == "ED" else 6) for i in range(6) for p in ("ED", "ES")]
    return build_cache(cases, tmp_path / "c", image_size=64, fov_mm=128.0, progress=False)


def _renderer(network):
    """An untrained SPADE generator behind the generator contract, as the viewer takes it."""
    return SpadeRenderer(network, config={})


def test_intensity_distance_is_the_shift_per_class():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(4, 16, 16))  # no class 3
    a = rng.random((4, 16, 16)) * 0.5
    b = a + np.where(labels == 1, 0.1, 0.0) + np.where(labels == 2, 0.3, 0.0)
    d = intensity_distances(a, b, labels, names=NAMES)
    assert d["background"] == pytest.approx(0.0, abs=1e-9)
    assert d["RV"] == pytest.approx(0.1) and d["MYO"] == pytest.approx(0.3)
    assert np.isnan(d["LV"])
    # other label maps for the second set, and a subset of pixels: still close to the shift
    d2 = intensity_distances(a, b[::-1].copy(), labels, labels_b=labels[::-1].copy(), names=NAMES, max_pixels=100)
    assert d2["MYO"] == pytest.approx(0.3, abs=0.05)
    with pytest.raises(ValueError, match="differ in shape"):
        intensity_distances(a, b[:2], labels, names=NAMES)


def test_gan_figures_are_drawn(cache, tmp_path):
    idx = cache.indices()[:4]
    real, labels = np.asarray(cache.images[idx]), np.asarray(cache.labels[idx])
    fake = np.clip(real + 0.1, 0, 1)
    for name, fig in {"rvg": viz.real_vs_generated(real, fake, labels),
                      "hist": viz.intensity_histograms(real, fake, labels, names=NAMES)}.items():
        assert viz.save_figure(fig, tmp_path, "03_spade_gan", name).stat().st_size > 5_000
    assert len(viz.real_vs_generated(real, fake, labels).axes) == 3 * 4


def test_sample_progress_shows_chosen_epochs(tmp_path):
    from matplotlib.image import imsave

    with pytest.raises(FileNotFoundError, match="train the GAN first"):
        viz.sample_progress(tmp_path / "none")
    for epoch in range(1, 11):
        imsave(tmp_path / f"epoch_{epoch:04d}.png", np.full((8, 32), epoch / 10), cmap="gray", vmin=0, vmax=1)
    fig = viz.sample_progress(tmp_path, max_rows=4)
    assert [ax.get_ylabel() for ax in fig.axes] == ["epoch 1", "epoch 4", "epoch 7", "epoch 10"]
    imsave(tmp_path / "labels.png", np.zeros((8, 32, 3)))
    assert viz.sample_progress(tmp_path, max_rows=2).axes[0].get_ylabel() == "label maps"


def test_generator_viewer_follows_slider_and_style(cache):
    torch.manual_seed(0)
    viewer = widgets.generator_viewer(_renderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, z_dim=8).eval()),
                                      cache, split="train")
    first = viewer.image.copy()
    assert first.shape == (64, 64) and 0 <= first.min() and first.max() <= 1
    viewer.button.click()
    assert viewer.seed == 1 and not np.allclose(viewer.image, first)
    viewer.slider.value = viewer.slider.max
    assert not np.allclose(viewer.image, first)
    fixed = widgets.generator_viewer(_renderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8).eval()), cache,
                                     split="train")
    assert fixed.button.disabled  # no style code: nothing to redraw

def test_generator_viewer_refuses_an_empty_split(cache, monkeypatch):
    monkeypatch.setattr(cache, "indices", lambda split=None: np.array([], dtype=int))
    with pytest.raises(ValueError, match="has no 'test' slices"):
        widgets.generator_viewer(_renderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8)), cache, split="test")


def test_bf16_only_where_it_pays(monkeypatch):
    monkeypatch.delenv("CARDIGAN_BF16", raising=False)
    assert use_bf16(torch.device("cuda")) is True
    assert use_bf16(torch.device("mps")) is False
    assert use_bf16(torch.device("cpu")) == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    monkeypatch.setenv("CARDIGAN_BF16", "0")  # timing a laptop without native bf16
    assert use_bf16(torch.device("cpu")) is False and use_bf16(torch.device("cuda")) is True


def test_speckle_snr_and_sector_tell_texture_and_fan_apart():
    """A blurred copy keeps the mean but loses the grain (higher SNR); a narrower fan lowers the sector Dice."""
    from scipy import ndimage

    from cardigan_utils.metrics import echo_texture, speckle_snr

    rng = np.random.default_rng(0)
    labels = np.zeros((8, 48, 48), np.uint8)
    labels[:, 12:36, 12:36] = 1
    speckle = rng.rayleigh(0.2, labels.shape).astype(np.float32) + 0.1 * labels
    names = ["background", "LV"]
    snr = speckle_snr(speckle, labels, names=names)
    assert 1.5 < snr["background"] < 2.5  # fully developed speckle: mean / std = 1.91
    blurred = ndimage.gaussian_filter(speckle, (0, 2, 2))
    assert speckle_snr(blurred, labels, names=names)["LV"] > 2 * snr["LV"]
    same = echo_texture(speckle, speckle, labels, names=names)
    assert same["sector_dice"] == 1.0 and same["snr_real_LV"] == same["snr_generated_LV"]
    narrow = speckle.copy()
    narrow[:, :, :16] = 0.0  # a fan a third narrower
    assert echo_texture(speckle, narrow, labels, names=names)["sector_dice"] < 0.9
    with pytest.raises(ValueError, match="same shape"):
        speckle_snr(speckle, labels[:2], names=names)
