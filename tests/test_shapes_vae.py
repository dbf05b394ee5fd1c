import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils.augment import affine_labels, random_affine_params
from cardigan_utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cardigan_utils.data import prepare_cache
from cardigan_utils.losses import kl_loss as kl_divergence
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.metrics import per_class_dice
from cardigan_utils.shapes import load_vae, train_vae

SMALL = [8, 16, 32, 64]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("vae"), image_size=64, n_patients=5, progress=False)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shapes_and_finiteness(size):
    torch.manual_seed(0)
    model = ShapeVAE(image_size=size, latent_dim=8, channels=[4, 8, 8, 8, 8][: {64: 4, 128: 5, 256: 5}[size]] if size < 256 else None)
    labels = torch.randint(0, 4, (2, size, size))
    logits, mu, logvar = model(labels)
    assert logits.shape == (2, 4, size, size) and mu.shape == logvar.shape == (2, 8)
    assert torch.isfinite(logits).all() and torch.isfinite(kl_divergence(mu, logvar))
    model.eval()
    assert torch.equal(model(labels)[0], model(labels)[0])  # eval: posterior mean, no noise


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="image_size must be one of"):
        ShapeVAE(image_size=100)
    with pytest.raises(ValueError, match="not divisible"):
        ShapeVAE(image_size=64, channels=[4] * 7)


def test_sample_is_reproducible_per_generator():
    model = ShapeVAE(image_size=64, latent_dim=4, channels=SMALL)
    a = model.sample(5, generator=torch.Generator().manual_seed(1))
    b = model.sample(5, generator=torch.Generator().manual_seed(1))
    c = model.sample(5, generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, 64, 64) and a.dtype == torch.uint8 and int(a.max()) <= 3
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training  # sampling leaves the mode as it was


def test_fitted_prior_matches_the_codes_and_is_saved():
    model = ShapeVAE(image_size=64, latent_dim=3, channels=SMALL)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(model.sample_codes(4, generator=torch.Generator().manual_seed(0)),
                       model.sample_codes(4, generator=torch.Generator().manual_seed(0), prior="standard"))
    codes = torch.randn(5000, 3, generator=g) @ torch.tensor([[2.0, 0, 0], [1.0, 0.5, 0], [0, 0, 0.1]]) + torch.tensor([1.0, -2.0, 0.5])
    model.fit_prior(codes)
    drawn = model.sample_codes(20000, generator=g)
    assert torch.allclose(drawn.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(codes.T), atol=0.1)
    again = ShapeVAE(image_size=64, latent_dim=3, channels=SMALL)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.prior_chol, model.prior_chol)
    with pytest.raises(ValueError, match="prior must be"):
        model.sample_codes(2, prior="uniform")


def test_kl_is_zero_at_the_prior():
    assert float(kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5))) == 0.0
    assert float(kl_divergence(torch.ones(3, 5), torch.zeros(3, 5))) == pytest.approx(2.5)


def test_affine_keeps_labels_and_identity_is_exact():
    labels = torch.randint(0, 4, (3, 32, 32))
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3)
    assert torch.equal(affine_labels(labels, identity), labels)
    warped = affine_labels(labels, random_affine_params(3, rotate_deg=30, generator=torch.Generator().manual_seed(0)))
    assert set(warped.unique().tolist()) <= {0, 1, 2, 3} and not torch.equal(warped, labels)


def test_per_class_dice_ignores_absent_classes():
    t = torch.zeros(2, 8, 8, dtype=torch.long)
    t[0, 2:6, 2:6] = 3
    t[1, 1:3, 1:3] = 1
    d = per_class_dice(t, t, num_classes=4)
    assert d[0] == pytest.approx(1.0) and torch.isnan(d[1]) and d[2] == pytest.approx(1.0)


def test_training_lowers_the_loss_and_writes_checkpoints(cache, tmp_path):
    hist = train_vae(cache, run_dir=tmp_path, channels=SMALL, latent_dim=8, max_epochs=3, batch_size=16, lr=3e-3,
                     device="cpu", progress_bar=False)
    assert list(hist.epoch) == [1, 2, 3] and hist.recon.iloc[-1] < hist.recon.iloc[0]
    assert {"val_loss", "val_dice_RV", "val_dice_MYO", "val_dice_LV", "val_dice_mean"} <= set(hist.columns)
    state, config = load_checkpoint(tmp_path / "vae.pt", kind="vae")
    assert config["model"]["latent_dim"] == 8 and "optimizer" not in state
    model = load_vae(tmp_path / "vae.pt", device="cpu")
    assert not model.training and model.sample(2).shape == (2, 64, 64)
    assert not torch.equal(model.prior_chol, torch.eye(8))  # the sampling prior was fitted and saved
    assert model.has_density and len(model.density_codes) == len(cache.indices("train"))  # the KDE too
    assert config["density"]["n_codes"] == len(cache.indices("train")) and config["density"]["kind"] == "kde"
    # the width was calibrated after the leave-one-out choice, and the model carries the chosen one
    assert config["density"]["rule"].startswith("widest with >= 95%") and config["density"]["tried"]
    assert float(model.density_bandwidth) == pytest.approx(config["density"]["bandwidth"], abs=1e-5)
    assert config["density"]["bandwidth"] <= config["density"]["start"]
    assert pd.read_csv(tmp_path / "vae_history.csv").shape[0] == 3


def test_resume_equals_uninterrupted_training(cache, tmp_path):
    kw = dict(channels=SMALL, latent_dim=8, batch_size=16, device="cpu", progress_bar=False, seed=3)
    full = train_vae(cache, run_dir=tmp_path / "a", max_epochs=3, **kw)
    train_vae(cache, run_dir=tmp_path / "b", max_epochs=1, **kw)
    resumed = train_vae(cache, run_dir=tmp_path / "b", max_epochs=3, **kw)
    a, _ = load_checkpoint(tmp_path / "a" / "vae_last.pt", kind="vae")
    b, _ = load_checkpoint(tmp_path / "b" / "vae_last.pt", kind="vae")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert np.allclose(full.drop(columns="seconds").to_numpy(float), resumed.drop(columns="seconds").to_numpy(float))


def test_resume_from_a_checkpoint_without_the_fitted_prior(cache, tmp_path):
    kw = dict(channels=SMALL, latent_dim=8, batch_size=16, device="cpu", progress_bar=False)
    train_vae(cache, run_dir=tmp_path, max_epochs=1, **kw)
    state, config = load_checkpoint(tmp_path / "vae_last.pt", kind="vae")
    for key in ("prior_mean", "prior_chol"):
        del state["model"][key]
    save_checkpoint(tmp_path / "vae_last.pt", state, config=config, kind="vae", resumable=True)
    assert list(train_vae(cache, run_dir=tmp_path, max_epochs=2, **kw).epoch) == [1, 2]
    state["model"]["net.extra"] = torch.zeros(1)
    save_checkpoint(tmp_path / "vae_last.pt", state, config=config, kind="vae", resumable=True)
    with pytest.raises(CheckpointError, match="weights that do not fit .* delete it"):
        train_vae(cache, run_dir=tmp_path, max_epochs=3, **kw)


def test_checkpoints_are_written_atomically(tmp_path):
    save_checkpoint(tmp_path / "m.pt", {"w": torch.ones(2)}, config={"a": 1}, kind="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]
    state, config = load_checkpoint(tmp_path / "m.pt", kind="m")
    assert torch.equal(state["w"], torch.ones(2)) and config == {"a": 1, "kind": "m", "resumable": False}
    with pytest.raises(FileNotFoundError, match="train the model first"):
        load_checkpoint(tmp_path / "none.pt", kind="m")
