"""Fidelity measures on planted cases: U-Net features, Fréchet and kernel distances, MS-SSIM diversity, the copy check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from cardigan_utils.metrics import copy_check, frechet_distance, image_features, kernel_distance, ms_ssim_diversity
from cardigan_utils.networks.unet import build_unet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(n: int, *, seed: int, size: int = 64, noise: float = 0.1) -> np.ndarray:
    """(n, size, size) images in [0, 1]: four soft ellipses of random grey on grey, plus Gaussian noise.

    The same generator with another seed stands for new patients (or new generated images).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        img = np.full((size, size), 0.2)
        for _ in range(4):
            cx, cy, rx, ry = rng.uniform(0.2, 0.8, 2).tolist() + rng.uniform(0.08, 0.25, 2).tolist()
            img[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1] = rng.uniform(0.3, 0.9)
        out[i] = np.clip(ndimage.gaussian_filter(img, 1.0) + rng.normal(0, noise, img.shape), 0, 1)
    return out


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_unet(channels=(4, 8, 16))


@pytest.fixture(scope="module")
def sets():
    """Real training and test images, and new images of the same generator."""
    return {"train": blobs(80, seed=1), "test": blobs(60, seed=2), "fresh": blobs(60, seed=3)}


def test_image_features_are_pooled_encoder_levels_deterministic_at_64_and_128(net):
    images = blobs(5, seed=0)
    feats = image_features(net, images, batch_size=2)
    assert feats.shape == (5, 2 * (4 + 8 + 16)) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, image_features(net, images, batch_size=2))  # deterministic
    np.testing.assert_allclose(feats, image_features(net, images), rtol=1e-4, atol=1e-6)  # whatever the batch
    assert image_features(net, blobs(3, seed=0, size=128)).shape == (3, 56)
    assert not np.allclose(feats[0], feats[1])  # different images, different features
    deeper = build_unet(channels=(2, 4, 6, 8), num_res_units=0)
    assert image_features(deeper, images).shape == (5, 2 * (2 + 4 + 6 + 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        image_features(net, images[:, :62, :62])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        image_features(net, images[0])


def test_image_features_leave_the_model_in_its_mode(net):
    images = blobs(2, seed=0)
    net.train()
    image_features(net, images)
    assert net.training
    net.eval()
    image_features(net, images)
    assert not net.training


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))
    assert abs(frechet_distance(a, a, dim=16)) < 1e-8
    same, small, large = (frechet_distance(a, b + shift, dim=16) for shift in (0.0, 0.5, 1.0))
    assert same < small < large and small > 3 * same
    assert frechet_distance(a, b + 0.5, dim=16) == pytest.approx(frechet_distance(b + 0.5, a, dim=16))
    assert frechet_distance(a, b * 2, dim=None) > 10 * frechet_distance(a, b, dim=None)  # spread alone counts
    assert frechet_distance(a, b * 2, dim=16) < frechet_distance(a, b * 2, dim=None)  # a projection only lowers it
    with pytest.raises(ValueError, match="more than 32 rows"):
        frechet_distance(a[:30], b[:30], dim=None)
    with pytest.raises(ValueError, match="more than 16 rows"):
        frechet_distance(a[:16], b, dim=16)
    with pytest.raises(ValueError, match="same F"):
        frechet_distance(a, b[:, :5])


def test_kernel_distance_is_unbiased_near_zero_and_sees_spread_not_only_means():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))

    def kid(x, y, seed=0):
        return kernel_distance(x, y, n_subsets=20, subset_size=100, seed=seed)

    same, shifted, spread = kid(a, b), kid(a, b + 0.5), kid(a, 2 * b)
    assert abs(same) < 0.02 < shifted and kid(a, b + 1.0) > 2 * shifted
    assert spread > 20 * abs(same)  # a linear kernel (MONAI's MMDMetric) would see no difference here
    assert kid(a, b, seed=1) != same and kid(a, b) == same  # seeded subsets
    with pytest.raises(ValueError, match="subset_size >= 2"):
        kernel_distance(a, b, subset_size=1)


def test_distances_of_unet_features_grow_with_an_intensity_change(net, sets):
    """Real against real is the yardstick; a contrast change of the test images moves both distances up."""
    train = image_features(net, sets["train"])
    fid, kid = [], []
    for c in (0.0, 0.1, 0.2):
        changed = image_features(net, sets["test"] * (1 - c) + c)  # brighter, lower contrast
        fid.append(frechet_distance(train, changed, dim=16))
        kid.append(kernel_distance(train, changed))
    assert fid[0] < fid[1] < fid[2] and fid[2] > 3 * fid[0]
    assert kid[0] < kid[1] < kid[2] and kid[2] > 3 * abs(kid[0])


def test_ms_ssim_diversity_is_one_for_copies_and_lower_for_a_varied_set():
    varied = blobs(20, seed=0)
    assert ms_ssim_diversity(np.repeat(varied[:1], 6, axis=0), n_pairs=50) == pytest.approx(1.0, abs=1e-5)
    score = ms_ssim_diversity(varied, n_pairs=100)
    assert score < 0.5
    assert ms_ssim_diversity(blobs(20, seed=0, noise=0.02), n_pairs=100) > score  # less noise, more alike
    assert ms_ssim_diversity(blobs(6, seed=0, size=128), n_pairs=20) < 0.5
    assert ms_ssim_diversity(varied, n_pairs=100) == score
    with pytest.raises(ValueError, match="at least 2"):
        ms_ssim_diversity(varied[:1])


def test_copy_check_flags_copies_of_training_images_and_not_new_images(sets):
    train = sets["train"]
    copies = np.clip(train[:10] + np.random.default_rng(9).normal(0, 0.02, train[:10].shape), 0, 1)
    generated = np.concatenate([sets["fresh"][:30], copies])
    result = copy_check(generated, train, sets["test"])
    assert set(range(30, 40)) <= set(result.flagged.tolist())
    np.testing.assert_array_equal(result.nearest[30:], np.arange(10))
    assert result.test_fraction == pytest.approx(0.05, abs=0.02)
    assert copy_check(sets["fresh"], train, sets["test"]).generated_fraction <= 0.1
    assert "low-pass" in result.reason
    with pytest.raises(ValueError, match="at least 20"):
        copy_check(generated, train, sets["test"][:10])
    with pytest.raises(ValueError, match="differ in size"):
        copy_check(generated[:, :32], train, sets["test"])


def test_copy_check_is_fair_to_smoother_images(sets):
    """Blurred new images are no copies: the raw-pixel check flags many of them, the low-passed one few."""
    blurred = ndimage.gaussian_filter(sets["fresh"], sigma=(0, 1.5, 1.5))
    raw = copy_check(blurred, sets["train"], sets["test"], sigma=0)
    fair = copy_check(blurred, sets["train"], sets["test"])
    assert raw.generated_fraction >= 0.3 and "biased" in raw.reason
    assert fair.generated_fraction <= 0.2


def test_copy_check_in_unet_feature_space(net, sets):
    train = sets["train"]
    generated = np.concatenate([sets["fresh"][:30], train[:5]])
    result = copy_check(generated, train, sets["test"], model=net)
    assert set(range(30, 35)) <= set(result.flagged.tolist())
    assert np.sum(result.flagged < 30) / 30 <= 0.25 and "U-Net features" in result.reason  # an untrained U-Net
