"""Issue 22: style codes drawn from a density of the real images' codes, and measures of appearance spread.

The SPADE networks are tiny (as in test_images_spade.py) and trained for one epoch on a
three-patient phantom cache: enough for a style encoder whose codes are not N(0, I).
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cardigan_utils.data import prepare_cache
from cardigan_utils.images import fit_style_density, load_generator, load_spade, save_spade, train_spade
from cardigan_utils.metrics import appearance_table, spread_comparison, spread_table
from cardigan_utils.networks.density import CodeDensity
from cardigan_utils.runs import state_fingerprint
from cardigan_utils.synthetic import extrapolation_spread

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(ngf=4, hidden_channels=8, ndf=8, n_layers_d=3, num_scales=2, z_dim=8)
NAMES = ["background", "RV", "MYO", "LV"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(cache, run_dir)``: a tiny SPADE with a style encoder trained for one epoch; its spade.pt has a density."""
    run_dir = tmp_path_factory.mktemp("style")
    cache = prepare_cache("phantom-mri", run_dir=run_dir, image_size=64, n_patients=3, progress=False)
    train_spade(cache, run_dir=run_dir, max_epochs=1, batch_size=4, n_fixed=2, device="cpu", progress_bar=False,
                seed=0, **TINY)
    return cache, run_dir


def _codes(n=600, seed=0):
    """Codes far from N(0, I): shifted, scaled and correlated, in 4 dimensions."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.tensor([[2.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.0], [0.0, 0.3, 0.0, 1.0]])
    return torch.randn(n, 4, generator=g) @ mix.T + torch.tensor([3.0, -2.0, 1.0, 0.5])


# --- the style sampler ------------------------------------------------------------------------


def test_draws_follow_the_fitted_codes_not_the_standard_normal():
    codes = _codes()
    density = CodeDensity(dim=4)
    h = density.fit(codes)
    assert density.fitted and 0 < h == pytest.approx(float(density.bandwidth))
    mean, cov = codes.mean(0), torch.cov(codes.T)
    g = torch.Generator().manual_seed(1)
    for kind, widen in (("kde", 1 + h**2), ("fitted", 1.0)):  # a kernel draw is a code plus N(0, h^2 cov)
        draws = density.sample(40_000, kind=kind, generator=g)
        assert torch.allclose(draws.mean(0), mean, atol=0.05), kind
        assert torch.allclose(torch.cov(draws.T), widen * cov, atol=0.06 * float(cov.abs().max())), kind
    standard = density.sample(40_000, kind="standard", generator=g)
    assert torch.allclose(standard.mean(0), torch.zeros(4), atol=0.05)
    assert torch.allclose(torch.cov(standard.T), torch.eye(4), atol=0.05)
    assert (mean.norm() > 3) and (torch.cov(draws.T) - torch.eye(4)).abs().max() > 1  # the codes are far from N(0, I)
    with pytest.raises(ValueError, match="prior must be one of"):
        density.sample(2, kind="gaussian")
    with pytest.raises(ValueError, match="codes must be"):
        density.fit(codes[:, :3])


def test_the_style_sampler_is_seeded_deterministic_and_keeps_the_global_generator(trained):
    _, run_dir = trained
    g = load_generator(run_dir / "spade.pt", device="cpu")
    assert g.style_prior == "kde"
    a, b, c = g.sample_styles(64, seed=1), g.sample_styles(64, seed=1), g.sample_styles(64, seed=2)
    assert a.shape == (64, 8) and a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)
    standard = g.sample_styles(64, seed=1, prior="standard")
    assert torch.equal(standard, torch.randn(64, 8, generator=torch.Generator().manual_seed(1)))
    assert not torch.allclose(a, standard)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    g.sample_styles(4, seed=1)
    assert torch.equal(torch.rand(1), before)  # the global generator is left alone
    with pytest.raises(ValueError, match="prior must be one of"):
        g.sample_styles(2, seed=0, prior="uniform")
    # render without styles draws them from the same density, with the global generator
    labels = np.array(trained[0].labels[:3])
    torch.manual_seed(7)
    implicit = g.render(labels)
    torch.manual_seed(7)
    assert np.array_equal(implicit, g.render(labels, styles=g.density.sample(3)))


def test_style_extrapolation_moves_codes_from_the_centre_and_widens_the_spread(trained):
    cache, run_dir = trained
    g = load_generator(run_dir / "spade.pt", device="cpu")
    centre = g.density.mean
    base, wide = g.sample_styles(64, seed=1), g.sample_styles(64, seed=1, extrapolation=2.0)
    assert torch.allclose(wide - centre, 2 * (base - centre), atol=1e-5) and centre.abs().sum() > 0
    assert torch.equal(g.sample_styles(64, seed=1, extrapolation=1.0), base)
    standard = g.sample_styles(64, seed=1, prior="standard")  # N(0, I) is centred at 0
    assert torch.allclose(g.sample_styles(64, seed=1, prior="standard", extrapolation=3.0), 3 * standard)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="extrapolation must be > 0"):
            g.sample_styles(2, seed=0, extrapolation=bad)
    # the same label maps, rendered wider: the spread of the per-image mean intensities grows
    idx = np.sort(cache.indices("train"))
    labels, real = np.ascontiguousarray(cache.labels[idx]), np.ascontiguousarray(cache.images[idx])
    table, images = extrapolation_spread(g, labels, real_table=appearance_table(real, labels, names=NAMES),
                                         names=NAMES, seed=0, factors=(1.0, 3.0))
    assert list(table.index) == [1.0, 3.0] and set(images) == {1.0, 3.0} and images[3.0].shape == labels.shape
    means = [f"mean_{n}" for n in NAMES]
    assert (table.loc[3.0, means] > table.loc[1.0, means]).all(), table[means]


# --- the checkpoint -----------------------------------------------------------------------------


def test_train_spade_fits_the_density_on_the_real_training_codes_and_the_checkpoint_keeps_it(trained):
    cache, run_dir = trained
    record = json.loads((run_dir / "spade.json").read_text())["style_density"]
    train = np.sort(cache.indices("train"))
    assert record["kind"] == "kde" and record["split"] == "train" and record["n_codes"] == len(train)
    assert record["rule"] == "leave-one-out likelihood" and record["bandwidth"] > 0
    g = load_spade(run_dir / "spade.pt", device="cpu")
    assert g.density.fitted and float(g.density.bandwidth) == pytest.approx(record["bandwidth"], abs=1e-6)
    # the kernel centres are the encoder's posterior means of the real training images
    codes = g.encode_styles(np.ascontiguousarray(cache.images[train]))
    assert torch.allclose(g.density.codes, codes, atol=1e-5)
    assert torch.allclose(g.density.mean, codes.mean(0), atol=1e-5)
    # a second load draws the same styles; the density counts in the generator's fingerprint
    again = load_generator(run_dir / "spade.pt", device="cpu")
    assert torch.equal(again.sample_styles(16, seed=3), g.sample_styles(16, seed=3))
    assert {"style_density.codes", "style_density.bandwidth"} <= set(g.state_dict())
    # saving writes back what was loaded
    save_spade(g, run_dir / "copy.pt")
    copy = load_spade(run_dir / "copy.pt", device="cpu")
    assert state_fingerprint(copy) == state_fingerprint(g)
    assert json.loads((run_dir / "copy.json").read_text())["style_density"] == record


def _without_density(src, dst):
    """A copy of a SPADE checkpoint as the kit wrote it before the style density."""
    state, config = load_checkpoint(src, kind="spade")
    state.pop("style_density")
    config.pop("style_density")
    return save_checkpoint(dst, state, config=config, kind="spade")


def test_an_old_checkpoint_draws_from_the_standard_normal_and_can_be_given_a_density(trained, tmp_path):
    cache, run_dir = trained
    old = _without_density(run_dir / "spade.pt", tmp_path / "spade.pt")
    g = load_generator(old, device="cpu")
    assert g.style_prior == "standard" and not g.density.fitted
    assert not any(k.startswith("style_density") for k in g.state_dict())  # the fingerprint its sets recorded
    for prior in ("kde", "fitted", "standard"):
        assert torch.equal(g.sample_styles(8, seed=4, prior=prior), torch.randn(8, 8, generator=torch.Generator().manual_seed(4)))
    # an older run gets its density afterwards: fitted from the cache, written back into its checkpoint
    record = fit_style_density(g, cache, bandwidth="scott", progress_bar=False)
    assert record["rule"] == "Scott's rule" and record["n_codes"] == len(cache.indices("train"))
    assert g.style_prior == "kde" and g.config["style_density"] == record
    save_spade(g, old)
    refit = load_generator(old, device="cpu")
    assert refit.style_prior == "kde" and torch.equal(refit.sample_styles(8, seed=4), g.sample_styles(8, seed=4))


def test_resuming_a_finished_run_gives_its_checkpoint_a_density(trained, tmp_path):
    cache, run_dir = trained
    for name in ("spade_last.pt", "spade_last.json", "spade_history.csv"):
        (tmp_path / name).write_bytes((run_dir / name).read_bytes())
    _without_density(run_dir / "spade.pt", tmp_path / "spade.pt")
    train_spade(cache, run_dir=tmp_path, max_epochs=1, batch_size=4, n_fixed=2, device="cpu", progress_bar=False,
                seed=0, **TINY)  # no epoch left to train: only the density is fitted
    assert load_spade(tmp_path / "spade.pt", device="cpu").style_prior == "kde"
    assert json.loads((tmp_path / "spade.json").read_text())["style_density"]["n_codes"] == len(cache.indices("train"))


def test_a_density_that_does_not_fit_the_generator_is_refused_in_one_line(trained, tmp_path):
    _, run_dir = trained
    state, config = load_checkpoint(run_dir / "spade.pt", kind="spade")
    state["style_density"] = CodeDensity(dim=5).state_dict()
    bad = save_checkpoint(tmp_path / "spade.pt", state, config=config, kind="spade")
    with pytest.raises(CheckpointError, match="style_density weights that do not fit") as err:
        load_spade(bad, device="cpu")
    assert "\n" not in str(err.value)


def test_a_generator_without_style_codes_has_no_density(trained, tmp_path):
    cache, _ = trained
    train_spade(cache, run_dir=tmp_path, max_epochs=1, batch_size=4, n_fixed=2, device="cpu", progress_bar=False,
                **{**TINY, "z_dim": 0})
    g = load_spade(tmp_path / "spade.pt", device="cpu")
    assert g.density is None and g.style_prior == "none" and g.sample_styles(3, seed=0) is None
    assert "style_density" not in json.loads((tmp_path / "spade.json").read_text())
    with pytest.raises(ValueError, match="no style encoder"):
        fit_style_density(g, cache, progress_bar=False)


# --- appearance measures ------------------------------------------------------------------------


def _phantoms(n, *, lv_means, seed=0, noise=0.0, gradient=0.0, size=48):
    """Discs: LV (3) inside MYO (2), an RV (1) beside; LV mean intensity per image as given."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    r = np.hypot(y - size / 2, x - size / 2)
    label = np.zeros((size, size), np.uint8)
    label[r < 12] = 2
    label[r < 7] = 3
    label[(np.hypot(y - size / 2, x - 6) < 6) & (r >= 12)] = 1
    labels = np.repeat(label[None], n, axis=0)
    images = np.choose(labels, [0.1, 0.5, 0.3, 0.0]) + (labels == 3) * np.asarray(lv_means)[:, None, None]
    images = images + gradient * (x / size)[None] + rng.normal(0, noise, images.shape) if noise or gradient else images
    return images, labels


def test_the_appearance_table_measures_a_planted_contrast_spread():
    lv = np.random.default_rng(1).uniform(0.2, 1.0, 80)
    images, labels = _phantoms(80, lv_means=lv)
    table = appearance_table(images, labels, names=NAMES)
    assert list(table.columns) == [*(f"mean_{n}" for n in NAMES), *(f"noise_{n}" for n in NAMES), "bias"]
    assert len(table) == 80 and np.allclose(table["mean_LV"], lv) and np.allclose(table["mean_MYO"], 0.3)
    assert np.allclose(table.filter(like="noise_"), 0) and np.allclose(table["bias"], 0, atol=1e-9)
    spread = spread_comparison(table, table)
    assert spread.loc["mean_LV", "real_spread"] == pytest.approx(np.std(lv, ddof=1))
    assert spread.loc["mean_LV", "ratio"] == pytest.approx(1.0)
    assert np.isnan(spread.loc["mean_MYO", "ratio"])  # no spread at all: no ratio
    iqr = spread_comparison(table, table, spread="iqr")
    assert iqr.loc["mean_LV", "real_spread"] == pytest.approx(np.subtract(*np.percentile(lv, [75, 25])))
    with pytest.raises(ValueError, match="spread must be one of"):
        spread_comparison(table, table, spread="mad")
    with pytest.raises(ValueError, match="same shape"):
        appearance_table(images, labels[:, :10], names=NAMES)


def test_noise_and_a_smooth_gradient_raise_their_own_measures():
    lv = np.full(20, 0.6)
    clean = appearance_table(*_phantoms(20, lv_means=lv), names=NAMES)
    noisy = appearance_table(*_phantoms(20, lv_means=lv, noise=0.05), names=NAMES)
    graded = appearance_table(*_phantoms(20, lv_means=lv, gradient=0.4), names=NAMES)
    for name in NAMES:  # the residual of a 3x3 median filter: close to the noise's standard deviation
        assert noisy[f"noise_{name}"].median() == pytest.approx(0.05, rel=0.25), name
        assert graded[f"noise_{name}"].max() < 0.01, name  # a smooth gradient is not noise
    assert graded["bias"].min() > 3 * max(clean["bias"].max(), noisy["bias"].max(), 1e-3)
    assert noisy["bias"].median() < 0.01  # noise is not a bias field
    assert np.allclose(noisy["mean_LV"], 0.6, atol=0.02)


def test_spread_comparison_is_near_one_for_one_distribution_and_below_for_a_narrowed_set():
    rng = np.random.default_rng(2)
    real = appearance_table(*_phantoms(300, lv_means=rng.uniform(0.2, 1.0, 300), seed=1, noise=0.02), names=NAMES)
    same = appearance_table(*_phantoms(300, lv_means=rng.uniform(0.2, 1.0, 300), seed=2, noise=0.02), names=NAMES)
    narrow = appearance_table(*_phantoms(300, lv_means=rng.uniform(0.5, 0.6, 300), seed=3, noise=0.02), names=NAMES)
    assert 0.85 < spread_comparison(real, same).loc["mean_LV", "ratio"] < 1.15
    narrowed = spread_comparison(real, narrow)
    assert narrowed.loc["mean_LV", "ratio"] < 0.25
    assert set(narrowed.columns) == {"real_median", "generated_median", "real_spread", "generated_spread", "ratio"}
    assert isinstance(narrowed, pd.DataFrame) and "bias" in narrowed.index
    side_by_side = spread_table({"real": real, "same": same, "narrow": narrow}, real="real")
    assert list(side_by_side.columns) == ["real spread", "same spread", "same ratio", "narrow spread", "narrow ratio"]
    assert list(side_by_side.index) == [f"mean_{n}" for n in NAMES]
    assert side_by_side.loc["mean_LV", "narrow ratio"] == narrowed.loc["mean_LV", "ratio"]
    with pytest.raises(ValueError, match="no set named 'scan'"):
        spread_table({"real": real}, real="scan")
