"""Strong (domain-randomising) augmentation of image + label batches: aligned, seeded, in range, and wider
than the classical one."""

import functools

import pytest
import torch
import torch.nn.functional as F

from cardigan_utils.augment import augment_batch, strong_augment_batch
from test_augment import OFF, _batch

GEOMETRY_OFF = dict(flips=False, rotate_deg=0.0, scale=0.0, translate=0.0, elastic=0.0)
INTENSITY_OFF = dict(tissue=0.0, curve=0.0, gin=0.0, bias=0.0, low_res=1.0, blur=0.0, noise=0.0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _class_means(images, labels):
    """(B, 4) mean intensity of each class in each image (NaN where a class is absent)."""
    return torch.stack([torch.stack([images[i, 0][labels[i] == c].mean() for c in range(4)]) for i in range(len(images))])


def _interior_spread(images, labels, *, margin=2):
    """Standard deviation of the image over each label's pixels at least ``margin`` pixels from another label."""
    lab = labels[:, None].float()
    size = 2 * margin + 1
    interior = (F.max_pool2d(lab, size, 1, margin) == -F.max_pool2d(-lab, size, 1, margin))[:, 0]
    return torch.stack([images[i, 0][(labels[i] == c) & interior[i]].std() for i in range(len(images)) for c in range(4)
                        if ((labels[i] == c) & interior[i]).sum() > 10])


def test_shapes_dtypes_range_and_determinism():
    x, y = _batch()
    a = strong_augment_batch(x, y, _gen(3), p=1.0)
    b = strong_augment_batch(x, y, _gen(3), p=1.0)
    c = strong_augment_batch(x, y, _gen(4), p=1.0)
    assert a[0].shape == x.shape and a[0].dtype == x.dtype and a[1].shape == y.shape and a[1].dtype == y.dtype
    assert set(torch.unique(a[1]).tolist()) <= {0, 1, 2, 3} and 0 <= a[0].min() and a[0].max() <= 1
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0], atol=1e-3) and not torch.equal(a[1], c[1])


def test_strength_zero_is_the_classical_geometry_alone():
    x, y = _batch()
    strong = strong_augment_batch(x, y, _gen(5), p=1.0, strength=0.0)
    geometry = augment_batch(x, y, _gen(5), p=1.0, gamma=0.0, noise=0.0, blur=0.0, bias=0.0)
    assert torch.equal(strong[1], geometry[1]) and torch.allclose(strong[0], geometry[0], atol=1e-6)
    assert not torch.equal(strong[1], y)  # the geometry did act


def test_labels_move_with_the_image():
    # the image is a function of its label map; with the geometry on and every pointwise intensity transform
    # (per-tissue contrast, curves) on, each label's inner pixels must still share one intensity
    x, y = _batch(n=12)
    pointwise = dict(gin=0.0, bias=0.0, low_res=1.0, blur=0.0, noise=0.0)
    ax, ay = strong_augment_batch(x, y, _gen(1), p=1.0, elastic=0.06, rotate_deg=30.0, **pointwise)
    assert not torch.equal(ay, y)
    assert _interior_spread(ax, ay).median() < 0.01 and _interior_spread(ax, ay).max() < 0.1
    # the control: the same image read with the labels it had before the geometry is far from uniform
    assert _interior_spread(ax, y).max() > 0.2
    # everything on: the labels still explain the image better than the unwarped ones do
    sx, sy = strong_augment_batch(x, y, _gen(2), p=1.0, elastic=0.06, rotate_deg=30.0)
    within = torch.nanmean(_class_means(sx, sy).std(0))
    assert _interior_spread(sx, sy).median() < _interior_spread(sx, y).median() and within > 0


@pytest.mark.parametrize("name, value", [
    ("tissue", 0.6), ("curve", 1.0), ("gin", 1.0), ("bias", 0.8), ("low_res", 3.0), ("blur", 2.0), ("noise", 0.15),
])
def test_each_intensity_transform_acts_alone_and_leaves_labels(name, value):
    x, y = _batch()
    ax, ay = strong_augment_batch(x, y, _gen(1), p=1.0, **{**GEOMETRY_OFF, **INTENSITY_OFF, name: value})
    assert not torch.allclose(ax, x, atol=1e-3) and torch.equal(ay, y)
    assert 0 <= ax.min() and ax.max() <= 1


def test_everything_off_or_never_drawn_is_the_identity():
    x, y = _batch()
    for kwargs in ({"p": 1.0, **GEOMETRY_OFF, **INTENSITY_OFF}, {"p": 0.0}):
        ax, ay = strong_augment_batch(x, y, _gen(), **kwargs)
        assert torch.allclose(ax, x, atol=1e-6) and torch.equal(ay, y)
    # as the training loop calls it (study.regime_augment): a partial taking (images, labels, generator)
    hx, hy = functools.partial(strong_augment_batch, modality="echo")(x, y, _gen())
    assert hx.shape == x.shape and not torch.equal(hx, x)


def test_low_resolution_removes_fine_detail():
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None]) % 2).float()[None, None].repeat(4, 1, 1, 1)
    labels = torch.zeros(4, 32, 32, dtype=torch.long)
    ax, _ = strong_augment_batch(checker, labels, _gen(), p=1.0, **GEOMETRY_OFF, **{**INTENSITY_OFF, "low_res": 3.0})
    assert ax.std() < 0.5 * checker.std()
    assert torch.allclose(ax.mean(), checker.mean(), atol=0.05)  # blurred towards grey, not darkened


def test_wider_intensity_distribution_than_the_classical_augmentation():
    # one slice 32 times: the spread over the batch of each class's mean intensity is what augmentation adds
    x, y = _batch(n=1)
    x, y = x.repeat(32, 1, 1, 1), y.repeat(32, 1, 1)
    for seed in range(3):
        classical = _class_means(*augment_batch(x, y, _gen(seed))).std(0)
        strong = _class_means(*strong_augment_batch(x, y, _gen(seed))).std(0)
        assert (strong > 1.5 * classical).all(), (classical, strong)
    # and strength scales it
    weak = _class_means(*strong_augment_batch(x, y, _gen(0), strength=0.25)).std(0)
    assert (weak < _class_means(*strong_augment_batch(x, y, _gen(0), strength=1.0)).std(0)).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"modality": "ct"}, "modality"), ({"strength": -1.0}, "strength must be >= 0"),
    ({"curve_knots": 1}, "curve_knots"), ({"low_res": 0.5}, "low_res"),
])
def test_bad_arguments_are_refused(kwargs, message):
    x, y = _batch(n=2)
    with pytest.raises(ValueError, match=message):
        strong_augment_batch(x, y, _gen(), **kwargs)


def test_classical_settings_of_the_two_agree():
    # the +aug and +strong-aug regimes share the geometry's defaults, so they differ by the intensity side only
    import inspect

    classical = inspect.signature(augment_batch).parameters
    strong = inspect.signature(strong_augment_batch).parameters
    for name in ("p", "flips", "rotate_deg", "scale", "translate", "elastic"):
        assert strong[name].default == classical[name].default, name
    assert set(OFF) - {"gamma"} <= set(strong)


def test_strong_augmentation_examples_figure():
    import matplotlib

    matplotlib.use("Agg")
    from cardigan_utils import viz

    x, y = _batch(n=1)
    fig = viz.augmentation_examples(x[0, 0].numpy(), y[0].numpy(), strong=True)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["original", "tissue contrast", "curve"] and titles[-1] == "all (default)" and len(titles) == 9
