"""The density-matched sampler, warping of invalid codes, and the closeness of shapes to real ones."""

import numpy as np
import pytest
import torch

from cardigan_utils.checkpoint import save_checkpoint
from cardigan_utils.networks.density import kde_bandwidth
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.shapes import (
    anatomy,
    calibrate_bandwidth,
    closeness_report,
    load_vae,
    measure_distances,
    nearest_dice,
    phase_measures,
    plausibility_report,
    sample_valid_shapes,
    shape_measures,
    valid_bank,
    warp_codes,
)

SIZE = 32


def ring_maps(rv_width: torch.Tensor, lv_shift: torch.Tensor) -> torch.Tensor:
    """Short-axis-like label maps: an LV disc in a MYO ring, an RV crescent of ``3 * rv_width`` px.

    The RV is absent (the map fails ``structures_present``) when ``rv_width`` is below about 0.3,
    and present, the map valid, above: validity is monotone in ``rv_width``.
    """
    yy, xx = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32), indexing="ij")
    d = torch.sqrt((xx - 16) ** 2 + (yy - 16) ** 2)[None]
    r_lv = (5 + lv_shift.clamp(-1.5, 1.5))[:, None, None]
    r_myo = r_lv + 3
    labels = torch.zeros(len(rv_width), SIZE, SIZE, dtype=torch.long)
    labels[(d > r_myo) & (d <= r_myo + 3 * rv_width[:, None, None]) & (xx[None] < 16)] = 1
    labels[d <= r_myo] = 2
    labels[d <= r_lv] = 3
    return labels


class RingVAE(ShapeVAE):
    """A ShapeVAE whose decoder draws :func:`ring_maps`: code[0] is the RV width, code[1] the LV size."""

    def __init__(self):
        super().__init__(image_size=SIZE, latent_dim=2, channels=[4, 4, 4])

    def decode(self, z):
        return torch.nn.functional.one_hot(ring_maps(z[:, 0], z[:, 1]), 4).permute(0, 3, 1, 2).float() * 10


# The toy maps are mid-ventricular rings: they need an RV (a ring without one would read as basal, and pass).
MID = {"require": ("RV", "MYO", "LV")}


def valid(labels):
    return plausibility_report(np.asarray(labels), modality="mri", **MID)["valid"].to_numpy()


@pytest.fixture
def ring_vae():
    model = RingVAE()
    g = torch.Generator().manual_seed(0)
    # Training codes: two thirds valid (RV width > ~0.3), one third not.
    model.fit_density(torch.randn(600, 2, generator=g) * torch.tensor([0.8, 0.5]) + torch.tensor([0.7, 0.0]))
    return model


def test_ring_maps_are_valid_exactly_with_an_rv():
    ok = valid(ring_maps(torch.tensor([-1.0, 0.0, 0.1, 0.5, 1.0, 2.0]), torch.zeros(6)))
    assert ok.tolist() == [False, False, False, True, True, True]


def test_bandwidth_rules():
    assert kde_bandwidth(1000, 4) == pytest.approx(1000 ** (-1 / 8))
    assert kde_bandwidth(1000, 4, "silverman") == pytest.approx((1000 * 6 / 4) ** (-1 / 8))
    assert kde_bandwidth(10, 2, 0.3) == 0.3
    for bad in ("loo", 0.0, -1):
        with pytest.raises(ValueError, match="bandwidth"):
            kde_bandwidth(10, 2, bad)


def test_kde_matches_the_codes_better_than_either_gaussian():
    model = ShapeVAE(image_size=SIZE, latent_dim=4, channels=[4, 4, 4])
    g = torch.Generator().manual_seed(0)
    # Two clusters far apart: a single Gaussian puts most of its mass between them.
    side = torch.where(torch.rand(800, generator=g) < 0.5, -1.0, 1.0)
    codes = torch.randn(800, 4, generator=g) * 0.3 + torch.tensor([3.0, -1.0, 0.5, 2.0])
    codes[:, 0] += 2.5 * side
    assert torch.equal(model.sample_codes(5, generator=torch.Generator().manual_seed(1)),
                       model.sample_codes(5, generator=torch.Generator().manual_seed(1), prior="standard"))
    model.fit_density(codes, bandwidth="scott")
    assert model.has_density and len(model.density_codes) == 800
    draws = {p: model.sample_codes(20000, generator=torch.Generator().manual_seed(2), prior=p)
             for p in ("kde", "fitted", "standard")}

    def cov_error(z):
        return float((torch.cov(z.T) - torch.cov(codes.T)).abs().max())

    def mean_error(z):
        return float((z.mean(0) - codes.mean(0)).abs().max())

    assert mean_error(draws["kde"]) < 0.05 < mean_error(draws["standard"])
    assert cov_error(draws["kde"]) < 0.3 * cov_error(draws["standard"])  # the kernel adds (h^2) Sigma

    def between(z):  # share of draws in the empty gap between the clusters
        return float(((z[:, 0] - 3.0).abs() < 1.2).float().mean())

    assert between(codes) < 0.01 and 0.3 < between(draws["fitted"])
    assert between(draws["kde"]) < 0.5 * between(draws["fitted"])
    # Scott's rule smooths across the gap; the cross-validated width keeps to the clusters
    scott = float(model.density_bandwidth)
    model.fit_density(codes)  # the default: "cv"
    assert float(model.density_bandwidth) < scott
    cv = between(model.sample_codes(20000, generator=torch.Generator().manual_seed(2)))
    assert cv < 0.6 * between(draws["kde"]) and cv < 0.2 * between(draws["fitted"])
    # the default is the KDE, and the same generator gives the same draws
    assert torch.equal(model.sample_codes(7, generator=torch.Generator().manual_seed(3)),
                       model.sample_codes(7, generator=torch.Generator().manual_seed(3), prior="kde"))
    with pytest.raises(ValueError, match="prior must be one of"):
        model.sample_codes(2, prior="gmm")
    with pytest.raises(ValueError, match="codes must be"):
        model.fit_density(codes[:, :3])


def _save(model, path):
    save_checkpoint(path, {"model": model.state_dict()}, config={"model": model.config}, kind="vae")


def test_the_density_is_saved_and_old_checkpoints_still_sample(tmp_path):
    model = ShapeVAE(image_size=SIZE, latent_dim=3, channels=[4, 4, 4]).eval()
    codes = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * 2 + 1
    model.fit_density(codes, bandwidth=0.2)
    _save(model, tmp_path / "vae.pt")
    loaded = load_vae(tmp_path / "vae.pt", device="cpu")
    assert torch.equal(loaded.density_codes, codes) and float(loaded.density_bandwidth) == pytest.approx(0.2)
    assert torch.equal(loaded.sample(4, generator=torch.Generator().manual_seed(1)),
                       model.sample(4, generator=torch.Generator().manual_seed(1)))

    state = model.state_dict()
    for key in ("density_codes", "density_bandwidth"):
        del state[key]
    save_checkpoint(tmp_path / "old.pt", {"model": state}, config={"model": model.config}, kind="vae")
    old = load_vae(tmp_path / "old.pt", device="cpu")
    assert not old.has_density
    kde = old.sample_codes(6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(kde, old.sample_codes(6, generator=torch.Generator().manual_seed(2), prior="fitted"))
    assert not torch.equal(kde, old.sample_codes(6, generator=torch.Generator().manual_seed(2), prior="standard"))
    assert old.sample(3).shape == (3, SIZE, SIZE)


def test_warping_walks_to_the_valid_point_nearest_the_invalid_code(ring_vae):
    # Whitening counts code[1] by its spread: (1.5, 0.8) is nearer than (4, 0) for the code (-1, 0).
    ring_vae.fit_prior(torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 10.0]))
    bank = valid_bank(ring_vae, codes=torch.tensor([[1.5, 8.0], [4.0, 0.0], [-2.0, 0.0]]), **MID)
    assert len(bank) == 2 and valid(bank.labels).all()  # the third code has no RV
    invalid = torch.tensor([[-1.0, 0.0], [-0.5, 6.0], [0.0, 1.0], [-3.0, -5.0]])
    assert not valid(ring_vae.decode_labels(invalid)).any()
    steps = 7
    out = warp_codes(ring_vae, invalid, bank, steps=steps, **MID)
    assert out.target.tolist()[0] == 0
    assert valid(out.labels).all()
    assert np.array_equal(out.labels, ring_vae.decode_labels(out.codes).numpy())
    ends = bank.codes[out.target]
    moved, full = (out.codes - invalid).norm(dim=1), (ends - invalid).norm(dim=1)
    assert (moved < full).all() and (out.t < 1).all()
    # the closest valid point, to the bisection's resolution: one step back towards the invalid code fails
    back = invalid + torch.from_numpy(out.t - 2.0**-steps)[:, None].float() * (ends - invalid)
    assert not valid(ring_vae.decode_labels(back)).any()
    with pytest.raises(ValueError, match="empty"):
        warp_codes(ring_vae, invalid, valid_bank(ring_vae, codes=invalid, **MID), **MID)


@pytest.mark.parametrize("warp", [True, False])
def test_sample_valid_shapes_returns_only_valid_shapes_and_its_stats_add_up(ring_vae, warp):
    labels, stats = sample_valid_shapes(ring_vae, 300, seed=4, warp=warp, batch_size=128, **MID)
    assert labels.shape == (300, SIZE, SIZE) and labels.dtype == np.uint8 and valid(labels).all()
    assert stats["drawn"] == stats["valid"] + stats["warped"] + stats["still_invalid"]
    assert stats["accepted"] == 300 == stats["valid"] + stats["warped"] - stats["surplus"]
    assert stats["draws_per_accepted"] == pytest.approx(stats["drawn"] / 300)
    assert 0.4 < stats["valid_fraction"] < 0.95  # a third of the density lies where the RV vanishes
    if warp:
        assert stats["warped"] > 0 and stats["still_invalid"] == 0 and stats["drawn"] == 300
        assert stats["decoded"] == stats["drawn"] + 5 * stats["warped"] and 0 < stats["warp_t_mean"] < 1
    else:
        assert stats["warped"] == 0 and stats["still_invalid"] > 0 and stats["draws_per_accepted"] > 1.2
    again, _ = sample_valid_shapes(ring_vae, 300, seed=4, warp=warp, batch_size=128, **MID)
    assert np.array_equal(labels, again)


def _all_valid_codes(n=600):
    """Training codes that all decode to valid rings (RV width 0.45-1.5): a wide kernel spills below 0.3."""
    g = torch.Generator().manual_seed(0)
    return torch.stack([0.45 + 1.05 * torch.rand(n, generator=g), 0.5 * torch.randn(n, generator=g)], 1)


def _valid_share(model, n=4000, seed=11):
    return valid(model.decode_labels(model.sample_codes(n, generator=torch.Generator().manual_seed(seed)))).mean()


def test_calibration_keeps_the_widest_kernel_whose_draws_are_valid(ring_vae):
    ring_vae.fit_density(_all_valid_codes(), bandwidth=1.6)
    before = _valid_share(ring_vae)
    assert before < 0.93  # the wide kernel draws RV widths below the threshold
    out = calibrate_bandwidth(ring_vae, target=0.97, n_draws=1500, steps=6, **MID)
    assert out.reached and out.start == pytest.approx(1.6) and 0.48 <= out.bandwidth < 1.6
    assert float(ring_vae.density_bandwidth) == pytest.approx(out.bandwidth)  # set in the model
    assert out.tried[out.bandwidth] >= 0.97 and _valid_share(ring_vae) > 0.95  # fresh draws agree
    wider = [h for h, v in out.tried.items() if h > out.bandwidth]
    assert wider and all(out.tried[h] < 0.97 for h in wider)  # every wider width tried fell short
    assert min(wider) / out.bandwidth < 1.25  # bisection pinned the edge down
    record = out.as_config()
    assert record["reached"] and record["bandwidth"] == pytest.approx(out.bandwidth, abs=1e-6) and len(record["tried"]) == len(out.tried)
    # the same seed gives the same choice
    ring_vae.fit_density(_all_valid_codes(), bandwidth=1.6)
    assert calibrate_bandwidth(ring_vae, target=0.97, n_draws=1500, steps=6, **MID).bandwidth == out.bandwidth


def test_calibration_keeps_a_width_already_valid_and_stops_at_the_floor(ring_vae):
    ring_vae.fit_density(_all_valid_codes(), bandwidth=0.05)
    out = calibrate_bandwidth(ring_vae, target=0.95, n_draws=500, **MID)
    assert out.reached and out.bandwidth == pytest.approx(0.05) and len(out.tried) == 1
    # the fixture's codes are a third invalid: no width reaches 95 %; the floor is kept, and said so
    ring_vae.fit_density(torch.randn(600, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([0.8, 0.5])
                         + torch.tensor([0.7, 0.0]), bandwidth=0.5)
    out = calibrate_bandwidth(ring_vae, target=0.95, n_draws=500, floor=0.4, **MID)
    assert not out.reached and len(out.tried) == 2 and max(out.tried.values()) < 0.95
    assert out.tried[out.bandwidth] == max(out.tried.values())  # the more valid of start and floor
    # valid nowhere (codes where the RV vanishes): the width stays
    ring_vae.fit_density(torch.tensor([[-2.0, 0.0], [-2.5, 0.1], [-3.0, 0.0]]), bandwidth=0.01)
    out = calibrate_bandwidth(ring_vae, target=0.95, n_draws=200, **MID)
    assert not out.reached and out.bandwidth == pytest.approx(0.01) and set(out.tried.values()) == {0.0}
    with pytest.raises(ValueError, match="no kernel density"):
        calibrate_bandwidth(RingVAE(), **MID)
    with pytest.raises(ValueError, match="target and floor"):
        calibrate_bandwidth(ring_vae, target=1.5, **MID)


def test_sampling_without_any_valid_code_gives_up(ring_vae):
    ring_vae.fit_density(torch.tensor([[-2.0, 0.0], [-2.5, 0.1], [-3.0, 0.0]]), bandwidth=0.01)
    with pytest.raises(RuntimeError, match="valid shapes in"):
        sample_valid_shapes(ring_vae, 10, max_draws=50, **MID)


def test_measure_distances_are_zero_for_identical_sets_and_grow_with_a_shift():
    g = torch.Generator().manual_seed(0)
    base = ring_maps(torch.rand(200, generator=g) + 0.5, torch.rand(200, generator=g) - 0.5).numpy().astype(np.uint8)
    table = measure_distances(base, base, base)
    assert list(table.measure) == ["area_RV", "area_MYO", "area_LV", "RV/LV", "MYO/LV"]
    assert np.allclose(table[["w1_generated_test", "w1_train_test"]], 0)
    g = torch.Generator().manual_seed(1)
    train = ring_maps(torch.rand(200, generator=g) + 0.5, torch.rand(200, generator=g) - 0.5).numpy()
    lv = {}
    for shift in (0.3, 1.0):
        shifted = ring_maps(torch.rand(200, generator=g) + 0.5, torch.rand(200, generator=g) - 0.5 + shift).numpy()
        table = measure_distances(shifted, base, train).set_index("measure")
        lv[shift] = table.loc["area_LV", "w1_generated_test"]
        assert table.loc["area_LV", "w1_ratio"] > 1
    assert 0 < lv[0.3] < lv[1.0]
    areas = shape_measures(base)
    assert (areas["area_LV"] > 0).all() and np.allclose(areas["RV/LV"], areas["area_RV"] / areas["area_LV"])
    empty = shape_measures(np.zeros((1, 8, 8), np.uint8))
    assert np.isnan(empty["MYO/LV"].iloc[0])


def test_nearest_dice_flags_copies():
    g = torch.Generator().manual_seed(0)
    train = ring_maps(torch.rand(120, generator=g) + 0.5, torch.rand(120, generator=g) * 3 - 1.5).numpy()
    copies = train[np.random.default_rng(0).integers(0, len(train), 50)]
    dice, idx = nearest_dice(copies, train, batch_size=32)
    assert np.allclose(dice, 1.0) and np.array_equal(train[idx], copies)
    moved = np.roll(copies, 3, axis=2)
    dice_moved, _ = nearest_dice(moved, train, batch_size=32)
    assert (dice_moved < 0.95).all()
    with pytest.raises(ValueError, match="one size"):
        nearest_dice(copies, train[:, :16])


def _fake_slice_level(masks, *, modality="mri"):
    """A stand-in for anatomy.slice_level: apical without RV, basal with a big LV, mid otherwise."""
    area_rv = (masks == 1).sum((1, 2))
    area_lv = (masks == 3).sum((1, 2))
    return np.where(area_rv == 0, "apical", np.where(area_lv > 90, "basal", "mid"))


def test_closeness_report_tables(monkeypatch):
    monkeypatch.setattr(anatomy, "slice_level", _fake_slice_level, raising=False)
    g = torch.Generator().manual_seed(0)

    def draw(n):
        return ring_maps(torch.rand(n, generator=g) * 1.5 - 0.2, torch.rand(n, generator=g) * 3 - 1.5).numpy().astype(np.uint8)

    train, test = draw(150), draw(100)
    copier = train[np.random.default_rng(1).integers(0, 150, 120)]  # a sampler that returns training shapes
    phases = np.where(np.arange(100) % 2, "ES", "ED")
    report = closeness_report(copier, test, train, test_phases=phases, n_pairs=300, max_queries=80)
    summary = report["summary"].set_index("set")
    assert summary.loc["generated", "nearest_train_dice"] == pytest.approx(1.0)
    assert summary.loc["generated", "copy_share"] == 1.0
    assert summary.loc["test", "nearest_train_dice"] < 1.0 and np.isnan(summary.loc["train", "nearest_train_dice"])
    assert (summary["diversity"] > 0).all()
    levels = report["slice_levels"]
    assert set(levels.level) == {"basal", "mid", "apical"}
    assert np.allclose(levels.groupby("set").share.sum(), 1.0)
    assert levels.set_index(["set", "level"]).loc[("test", "apical"), "share"] == pytest.approx(
        np.mean(_fake_slice_level(test) == "apical"))
    assert set(report["phases"].phase) == {"ED", "ES"} and (report["phases"].n == 50).all()
    assert "slice_levels" not in closeness_report(copier, test, train, modality="echo", n_pairs=50, max_queries=10)


def test_phase_measures_see_a_smaller_systolic_cavity():
    ed = ring_maps(torch.ones(40), torch.ones(40))
    es = ring_maps(torch.ones(40), -torch.ones(40))
    table = phase_measures(np.concatenate([ed, es]), ["ED"] * 40 + ["ES"] * 40).set_index(["measure", "phase"])
    assert table.loc[("area_LV", "ED"), "mean"] > table.loc[("area_LV", "ES"), "mean"]
    assert table.loc[("area_LV", "ED"), "w1_ed_es"] > 0


def test_allow_fewer_returns_what_an_untrained_model_gives(monkeypatch):
    from cardigan_utils.networks.vae import ShapeVAE
    from cardigan_utils.shapes import sample_valid_shapes

    vae = ShapeVAE(image_size=64, latent_dim=4)
    monkeypatch.setattr(vae, "decode_labels", lambda z, **kw: torch.zeros(len(z), 64, 64, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="0 of 5 valid shapes"):
        sample_valid_shapes(vae, 5, seed=0, max_draws=20)
    labels, stats = sample_valid_shapes(vae, 5, seed=0, max_draws=20, allow_fewer=True)
    assert labels.shape == (0, 64, 64) and stats["accepted"] == 0 and stats["drawn"] == 20
    assert stats["still_invalid"] == 20 and stats["draws_per_accepted"] == float("inf")
