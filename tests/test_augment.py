"""Classical augmentation of image + label batches (the segmenter's), on the batch's device."""

import functools

import numpy as np
import pytest
import torch

from cardigan_utils.augment import augment_batch

OFF = dict(flips=False, rotate_deg=0.0, scale=0.0, translate=0.0, elastic=0.0, gamma=0.0, noise=0.0, blur=0.0, bias=0.0)


def _batch(n=6, size=48):
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        r = np.hypot(yy - size / 2, xx - size / 2 - i)
        labels[i][r < 14] = 2
        labels[i][r < 9] = 3
        labels[i][(np.hypot(yy - size / 2, xx - size / 2 + 14 - i) < 9) & (labels[i] == 0)] = 1
    images = np.where(labels == 3, 0.8, np.where(labels == 2, 0.3, np.where(labels == 1, 0.7, 0.1))).astype(np.float32)
    return torch.from_numpy(images)[:, None], torch.from_numpy(labels)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_everything_off_is_the_identity():
    x, y = _batch()
    ax, ay = augment_batch(x, y, _gen(), p=1.0, **OFF)
    assert torch.allclose(ax, x, atol=1e-6) and torch.equal(ay, y)


def test_shapes_dtypes_label_values_and_determinism():
    x, y = _batch()
    a = augment_batch(x, y, _gen(3), p=1.0)
    b = augment_batch(x, y, _gen(3), p=1.0)
    c = augment_batch(x, y, _gen(4), p=1.0)
    assert a[0].shape == x.shape and a[1].shape == y.shape and a[1].dtype == y.dtype
    assert set(torch.unique(a[1]).tolist()) <= {0, 1, 2, 3} and 0 <= a[0].min() and a[0].max() <= 1
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("name, value, moves_labels", [
    ("rotate_deg", 30.0, True), ("scale", 0.3, True), ("translate", 0.2, True), ("elastic", 0.08, True),
    ("gamma", 0.5, False), ("noise", 0.1, False), ("blur", 2.0, False), ("bias", 0.5, False),
])
def test_each_transform_acts_alone(name, value, moves_labels):
    x, y = _batch()
    ax, ay = augment_batch(x, y, _gen(1), p=1.0, **{**OFF, name: value})
    assert not torch.allclose(ax, x, atol=1e-3)
    assert (not torch.equal(ay, y)) == moves_labels
    if moves_labels:  # labels and image move together: the LV cavity stays bright
        assert ax[:, 0][ay == 3].mean() > 0.7 and ax[:, 0][ay == 0].mean() < 0.25


def test_flips_for_mri_never_for_echo():
    x, y = _batch()
    flipped = [not torch.equal(augment_batch(x, y, _gen(s), p=1.0, **{**OFF, "flips": True})[1], y) for s in range(3)]
    assert all(flipped)
    for s in range(3):
        assert torch.equal(augment_batch(x, y, _gen(s), modality="echo", p=1.0, **{**OFF, "flips": True})[1], y)
    with pytest.raises(ValueError, match="modality"):
        augment_batch(x, y, _gen(), modality="ct")


def test_probability_zero_changes_nothing_and_fits_the_training_hook():
    x, y = _batch()
    ax, ay = augment_batch(x, y, _gen(), p=0.0)
    assert torch.allclose(ax, x, atol=1e-6) and torch.equal(ay, y)
    hook = functools.partial(augment_batch, modality="mri")
    hx, hy = hook(x, y, _gen())
    assert hx.shape == x.shape and hy.shape == y.shape


def test_augmentation_examples_figure():
    import matplotlib

    matplotlib.use("Agg")
    from cardigan_utils import viz

    x, y = _batch(n=1)
    fig = viz.augmentation_examples(x[0, 0].numpy(), y[0].numpy())
    assert [ax.get_title() for ax in fig.axes][:3] == ["original", "flip", "rotate"] and len(fig.axes) == 11
    assert len(viz.augmentation_examples(x[0, 0].numpy(), y[0].numpy(), modality="echo").axes) == 10
