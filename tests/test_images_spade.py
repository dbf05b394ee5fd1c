"""SPADE GAN: generator, SPADE norm, multi-scale discriminator, GAN losses and the training loop.

Every network here is tiny (ngf=4, hidden_channels=8, ndf=8) and works on 64x64 slices of a
three-patient phantom cache, so the whole file runs in seconds on the CPU.
"""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from cardigan_utils.data import prepare_cache
from cardigan_utils.images import build_spade, load_spade, render, spade_step, train_spade
from cardigan_utils.labels import one_hot
from cardigan_utils.losses import feature_matching_loss, hinge_d_loss, hinge_g_loss, kl_loss
from cardigan_utils.networks.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from cardigan_utils.networks.spade import SPADE, BlockModulation, SPADEGenerator, SPADEResBlock

TINY = dict(ngf=4, hidden_channels=8, ndf=8, n_layers_d=3, num_scales=2)  # build_spade / train_spade widths


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # 3 patients: 18 train slices (4 batches of 4) and a non-empty val split for the fixed samples
    return prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("spade"), image_size=64, n_patients=3, progress=False)


def _batch(cache, n=4):
    """The first ``n`` train slices as (one-hot seg, image in [-1, 1])."""
    idx = cache.indices("train")[:n]
    real = torch.from_numpy(np.ascontiguousarray(cache.images[idx]))[:, None] * 2 - 1
    return one_hot(torch.from_numpy(np.ascontiguousarray(cache.labels[idx]))), real


def _optimisers(generator, discriminator, encoder=None):
    g_params = list(generator.parameters()) + (list(encoder.parameters()) if encoder is not None else [])
    return (torch.optim.Adam(g_params, lr=1e-4, betas=(0.0, 0.9)),
            torch.optim.Adam(discriminator.parameters(), lr=4e-4, betas=(0.0, 0.9)))


def _random_seg(n, size, generator=None):
    return one_hot(torch.randint(0, 4, (n, size, size), generator=generator))


# --- generator --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("z_dim", [0, 8])
def test_generator_shapes_range_and_finiteness(size, z_dim):
    torch.manual_seed(0)
    gen = SPADEGenerator(image_size=size, ngf=4, hidden_channels=8, z_dim=z_dim)
    seg = _random_seg(2, size)
    out = gen(seg)
    assert out.shape == (2, 1, size, size) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= -1 and out.max() <= 1
    if z_dim:  # the style code changes the image, an explicit one gives the same image twice (eval mode)
        gen.eval()
        z = torch.randn(2, z_dim)
        assert torch.equal(gen(seg, z), gen(seg, z))
        assert not torch.allclose(gen(seg, z), gen(seg, z + 1))


def test_generator_refuses_bad_sizes():
    with pytest.raises(ValueError, match="image_size must be"):
        SPADEGenerator(image_size=100)
    gen = SPADEGenerator(image_size=64, ngf=4, hidden_channels=8)
    with pytest.raises(ValueError, match="label map is"):
        gen(_random_seg(2, 128))
    with pytest.raises(ValueError, match="label map is"):
        gen(one_hot(torch.zeros(2, 64, 32, dtype=torch.long)))


def test_one_hot_refuses_float_labels():
    labels = torch.tensor([[[0, 3], [2, 1]]])
    assert torch.equal(one_hot(labels).argmax(1), labels) and one_hot(labels).shape == (1, 4, 2, 2)
    with pytest.raises(TypeError):
        one_hot(labels.float())


# --- SPADE norm -------------------------------------------------------------------------------


def test_spade_output_shape():
    spade = SPADE(channels=3, label_channels=4, hidden_channels=8)
    assert spade(torch.randn(2, 3, 16, 16), _random_seg(2, 16)).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_spade_modulation_matches_the_formula(norm):
    torch.manual_seed(0)
    spade = SPADE(channels=1, label_channels=4, hidden_channels=8, norm=norm)
    x = torch.randn(2, 1, 8, 8) * 3 + 1
    seg = torch.zeros(2, 4, 8, 8)
    seg[:, 2] = 1  # every pixel is class 2
    conv1, conv2 = spade.shared[0], spade.gamma_beta
    # norm(x) by hand: batch statistics over (B, H, W) in train mode, or per sample over (H, W)
    dims = (0, 2, 3) if norm == "batch" else (2, 3)
    normed = (x - x.mean(dims, keepdim=True)) / torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + 1e-5)
    # gamma, beta over the whole map (zero padding at the border) from the module's own weights
    gb = F.conv2d(F.relu(F.conv2d(seg, conv1.weight, conv1.bias, padding=1)), conv2.weight, conv2.bias, padding=1)
    expected = normed * (1 + gb[:, :1]) + gb[:, 1:]
    assert torch.allclose(spade(x, seg), expected, atol=1e-5)
    # two pixels in from the border both convolutions see a constant map: gamma, beta are scalars
    hidden = F.relu(conv1.weight[:, 2].sum((-2, -1)) + conv1.bias)  # (8,)
    gamma, beta = conv2.weight.sum((-2, -1)) @ hidden + conv2.bias  # (2,)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert torch.allclose(spade(x, seg)[inner], (normed * (1 + gamma) + beta)[inner], atol=1e-5)


def test_block_modulation_matches_the_formula():
    # a widening block (with shortcut): every norm's gamma and beta from one shared layer and one 1x1 convolution
    torch.manual_seed(0)
    block = SPADEResBlock(in_channels=6, out_channels=4, label_channels=4, hidden_channels=8, modulation_kernel=1,
                          block_modulation=True)
    assert isinstance(block.modulation, BlockModulation) and not any(isinstance(m, SPADE) for m in block.modules())
    x, seg = torch.randn(2, 6, 8, 8) * 2 + 1, _random_seg(2, 8)
    mod = block.modulation
    gb = F.conv2d(F.relu(F.conv2d(seg, mod.shared[0].weight, mod.shared[0].bias, padding=1)),
                  mod.gamma_beta.weight, mod.gamma_beta.bias)
    g0, b0, g1, b1, gs, bs = gb.split([6, 6, 4, 4, 6, 6], dim=1)

    def bn(t):  # batch statistics (train mode), no affine
        return (t - t.mean((0, 2, 3), keepdim=True)) / torch.sqrt(t.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)

    dx = block.conv_0(F.leaky_relu(bn(x) * (1 + g0) + b0, 0.2))
    dx = block.conv_1(F.leaky_relu(bn(dx) * (1 + g1) + b1, 0.2))
    expected = block.conv_s(bn(x) * (1 + gs) + bs) + dx
    assert torch.allclose(block(x, seg), expected, atol=1e-4)


def test_block_modulation_is_lighter_and_keeps_the_output_contract():
    kw = dict(image_size=64, ngf=4, hidden_channels=16, z_dim=8)
    paper = SPADEGenerator(**kw)
    light = SPADEGenerator(**kw, modulation_kernel=1, block_modulation=True)
    n = {name: sum(p.numel() for m in net.modules() if isinstance(m, (SPADE, BlockModulation)) for p in m.parameters())
         for name, net in (("paper", paper), ("light", light))}
    assert 0 < n["light"] < n["paper"] / 4, n  # 1x1 instead of 3x3, one shared layer per block instead of 2-3
    out = light(_random_seg(2, 64))
    assert out.shape == (2, 1, 64, 64) and out.min() >= -1 and out.max() <= 1
    with pytest.raises(ValueError, match="modulation_kernel must be odd"):
        SPADEGenerator(**kw, modulation_kernel=2)


def test_a_checkpoint_without_modulation_settings_loads_with_the_papers(cache, tmp_path):
    # checkpoints written before the lighter modulation hold the paper's layout and no setting for it
    kw = dict(**TINY, z_dim=8, batch_size=4, max_epochs=1, n_fixed=4, device="cpu", progress_bar=False)
    train_spade(cache, run_dir=tmp_path, modulation_kernel=3, block_modulation=False, **kw)
    for name in ("spade.json", "spade_last.json"):
        config = json.loads((tmp_path / name).read_text())
        for key in ("modulation_kernel", "block_modulation"):
            del config["model"][key]
        (tmp_path / name).write_text(json.dumps(config))
    loaded = load_spade(tmp_path / "spade.pt", device="cpu")
    assert sum(isinstance(m, SPADE) for m in loaded.network.modules()) == 7 * 2 + 4
    # and such a run resumes when asked for the paper's modulation, not the kit's
    assert list(train_spade(cache, run_dir=tmp_path, modulation_kernel=3, block_modulation=False,
                            **{**kw, "max_epochs": 2}).epoch) == [1, 2]
    with pytest.raises(ValueError, match="was trained with"):
        train_spade(cache, run_dir=tmp_path, modulation_kernel=1, block_modulation=True, **{**kw, "max_epochs": 3})


# --- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_gradients_reach_every_spade_block(spectral_norm):
    torch.manual_seed(0)
    gen = SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, spectral_norm=spectral_norm)
    disc = MultiScaleDiscriminator(ndf=8, n_layers=3, num_scales=2, spectral_norm=spectral_norm)
    seg = _random_seg(2, 64)
    hinge_g_loss([s[-1] for s in disc(gen(seg), seg)]).backward()
    blocks = [m for m in gen.modules() if isinstance(m, SPADEResBlock)]
    norms = [m for m in gen.modules() if isinstance(m, SPADE)]
    assert len(blocks) == 7 and len(norms) == 7 * 2 + 4  # four width changes add a shortcut SPADE
    for i, module in enumerate(blocks + norms):
        params = list(module.named_parameters())
        assert params
        for name, p in params:
            assert p.grad is not None, (i, name)
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, (i, name)


def test_gradients_reach_every_block_modulation():
    torch.manual_seed(0)
    gen = SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, modulation_kernel=1, block_modulation=True)
    disc = MultiScaleDiscriminator(ndf=8, n_layers=3, num_scales=2)
    seg = _random_seg(2, 64)
    hinge_g_loss([s[-1] for s in disc(gen(seg), seg)]).backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# --- discriminator ----------------------------------------------------------------------------


def test_multiscale_discriminator_outputs():
    torch.manual_seed(0)
    n_layers, num_scales = 3, 3
    disc = MultiScaleDiscriminator(ndf=8, n_layers=n_layers, num_scales=num_scales)
    out = disc(torch.rand(2, 1, 64, 64) * 2 - 1, _random_seg(2, 64))
    assert len(out) == num_scales
    for scale in out:
        assert len(scale) == n_layers + 1
        assert scale[-1].shape[:2] == (2, 1)
        assert [f.shape[1] for f in scale[:-1]] == [8, 16, 32]  # width doubles per layer
        assert all(torch.isfinite(f).all() for f in scale)
    sizes = [scale[-1].shape[-1] for scale in out]
    assert sizes[0] > sizes[1] > sizes[2]  # each scale sees the input pooled by two
    assert all(scale[-1].shape[-2] == scale[-1].shape[-1] for scale in out)
    with pytest.raises(ValueError, match="norm must be"):
        PatchDiscriminator(in_channels=5, norm="batch")


# --- losses -----------------------------------------------------------------------------------


def test_hinge_losses_by_hand():
    sure_real, sure_fake = [torch.tensor([1.0, 2.5]), torch.tensor([[1.0]])], [torch.tensor([-1.0, -4.0]), torch.tensor([[-1.5]])]
    assert float(hinge_d_loss(sure_real, sure_fake)) == 0.0  # beyond the margins: nothing to learn
    real = [torch.tensor([2.0, 0.5]), torch.tensor([[1.0]])]
    fake = [torch.tensor([-3.0, 0.0]), torch.tensor([[-0.5]])]
    # scale 0: mean(relu(1 - r)) = 0.25, mean(relu(1 + f)) = 0.5; scale 1: 0 + 0.5; averaged over scales
    assert float(hinge_d_loss(real, fake)) == pytest.approx((0.75 + 0.5) / 2)
    assert float(hinge_d_loss(real, fake)) > 0
    # generator: -mean per scale, averaged over scales
    assert float(hinge_g_loss([torch.tensor([1.0, 3.0]), torch.tensor([[-1.0]])])) == pytest.approx((-2.0 + 1.0) / 2)


def test_feature_matching_loss():
    torch.manual_seed(0)
    feats = [[torch.randn(2, 3, 4, 4), torch.randn(2, 5, 2, 2), torch.randn(2, 1, 2, 2)] for _ in range(2)]
    assert float(feature_matching_loss(feats, feats)) == 0.0
    # only the score maps differ: ignored
    other_scores = [[f[0], f[1], f[2] + 7] for f in feats]
    assert float(feature_matching_loss(feats, other_scores)) == 0.0
    # by hand: scale 0 features shifted by 1 and 2 (sum 3), scale 1 by 0.5 (sum 0.5); mean over scales
    shifted = [[feats[0][0] + 1, feats[0][1] - 2, feats[0][2]], [feats[1][0] + 0.5, feats[1][1], feats[1][2]]]
    assert float(feature_matching_loss(shifted, feats)) == pytest.approx((3.0 + 0.5) / 2)
    # the real features are targets: no gradient flows to them
    fake = [[f.clone().requires_grad_() for f in scale] for scale in shifted]
    real = [[f.clone().requires_grad_() for f in scale] for scale in feats]
    feature_matching_loss(fake, real).backward()
    assert all(f.grad is None for scale in real for f in scale)
    assert fake[0][0].grad is not None and fake[0][0].grad.abs().sum() > 0
    assert fake[0][2].grad is None or not fake[0][2].grad.any()  # the score map takes no part


def test_kl_loss_values():
    assert float(kl_loss(torch.zeros(3, 5), torch.zeros(3, 5))) == 0.0
    assert float(kl_loss(torch.ones(3, 5), torch.zeros(3, 5))) == pytest.approx(2.5)
    assert float(kl_loss(torch.zeros(3, 5), torch.full((3, 5), 1.0))) > 0  # a wider posterior costs too


# --- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("simultaneous", [True, False])
def test_spade_step_returns_detached_losses_and_trains_the_encoder(cache, simultaneous):
    torch.manual_seed(0)
    gen, disc, enc = build_spade(image_size=64, z_dim=8, **TINY)
    assert enc is not None and gen.z_dim == 8
    opt_g, opt_d = _optimisers(gen, disc, enc)
    seg, real = _batch(cache)
    # the gradient the encoder would get from its KL term alone (same weights, same power iteration)
    kl_only = copy.deepcopy(enc)
    (0.05 * kl_loss(*kl_only(real))).backward()
    losses = spade_step(gen, disc, opt_g, opt_d, seg, real, encoder=enc, kl_weight=0.05, simultaneous=simultaneous)
    assert set(losses) == {"d", "g_gan", "fm", "kl"}
    for key, value in losses.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key
    assert float(losses["kl"]) > 0 and float(losses["fm"]) > 0 and float(losses["d"]) > 0
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # ... and the style code also carries the generator's loss back to the encoder
    assert not torch.allclose(enc.mu.weight.grad, kl_only.mu.weight.grad)
    assert all(p.requires_grad for p in disc.parameters())  # unfrozen after the generator step


def test_spade_step_without_encoder_has_zero_kl(cache):
    torch.manual_seed(0)
    gen, disc, enc = build_spade(image_size=64, **TINY)
    assert enc is None
    opt_g, opt_d = _optimisers(gen, disc)
    before = copy.deepcopy(gen.state_dict())
    losses = spade_step(gen, disc, opt_g, opt_d, *_batch(cache))
    assert float(losses["kl"]) == 0.0
    assert any(not torch.equal(before[k], v) for k, v in gen.state_dict().items())  # the generator moved


def test_spade_step_unfreezes_the_discriminator_on_error(cache):  # the two-pass update freezes it
    class Failing(torch.optim.SGD):
        def step(self, closure=None):
            raise RuntimeError("boom")

    torch.manual_seed(0)
    gen, disc, _ = build_spade(image_size=64, **TINY)
    opt_d = torch.optim.SGD(disc.parameters(), lr=1e-3)
    with pytest.raises(RuntimeError, match="boom"):
        spade_step(gen, disc, Failing(gen.parameters(), lr=1e-3), opt_d, *_batch(cache), simultaneous=False)
    assert all(p.requires_grad for p in disc.parameters())


def test_simultaneous_step_gives_each_network_the_gradient_of_its_own_loss(cache):
    # by hand: D's hinge loss on the detached output, G's loss through a frozen D, both with the
    # weights from before the step, in separate passes (no spectral norm: its power iteration
    # would move between the passes; D's instance norms keep no statistics)
    torch.manual_seed(0)
    gen, disc, enc = build_spade(image_size=64, z_dim=8, **{**TINY, "spectral_norm": False})
    seg, real = _batch(cache)
    nets = [copy.deepcopy(m) for m in (gen, disc, enc)]
    sgd = [torch.optim.SGD(list(gen.parameters()) + list(enc.parameters()), lr=1.0), torch.optim.SGD(disc.parameters(), lr=1.0)]
    torch.manual_seed(1)
    losses = spade_step(gen, disc, *sgd, seg, real, encoder=enc, fm_weight=10.0, kl_weight=0.05)
    g, d, e = nets
    torch.manual_seed(1)
    mu, logvar = e(real)
    fake = g(seg, mu + torch.randn_like(mu) * torch.exp(0.5 * logvar))
    d_loss = hinge_d_loss([s[-1] for s in d(real, seg)], [s[-1] for s in d(fake.detach(), seg)])
    d_grads = torch.autograd.grad(d_loss, list(d.parameters()))
    d.requires_grad_(False)
    fake_out = d(fake, seg)
    g_loss = hinge_g_loss([s[-1] for s in fake_out]) + 10.0 * feature_matching_loss(fake_out, d(real, seg)) \
        + 0.05 * kl_loss(mu, logvar)
    g_grads = torch.autograd.grad(g_loss, list(g.parameters()) + list(e.parameters()))
    assert torch.allclose(losses["d"], d_loss, atol=1e-5)
    for (name, after), before, grad in zip(disc.named_parameters(), d.parameters(), d_grads):
        assert torch.allclose(after, before - grad, atol=1e-5), name  # SGD, lr 1
    for (name, after), before, grad in zip(list(gen.named_parameters()) + list(enc.named_parameters()),
                                            list(g.parameters()) + list(e.parameters()), g_grads):
        assert torch.allclose(after, before - grad, atol=1e-5), name


@pytest.mark.parametrize("simultaneous", [True, False])
def test_a_few_gan_steps_fit_a_fixed_batch(cache, simultaneous):
    # Feature matching against a discriminator that is itself learning is not monotone (it rises
    # for some seeds), so the test measures what it should bring: generated images of a fixed
    # batch move towards the real ones. L1 on a copy of the generator in train mode (batch
    # statistics, like training), so that batch-norm running statistics play no part.
    seg, real = _batch(cache)

    def l1():
        with torch.no_grad():
            return float((copy.deepcopy(gen).train()(seg) - real).abs().mean())

    torch.manual_seed(0)
    gen, disc, _ = build_spade(image_size=64, **TINY)
    opt_g, opt_d = _optimisers(gen, disc)
    start = l1()
    for _ in range(30):
        spade_step(gen, disc, opt_g, opt_d, seg, real, fm_weight=10.0, simultaneous=simultaneous)
    assert l1() < 0.8 * start


@pytest.mark.parametrize("z_dim", [0, 8])
def test_train_spade_resume_equals_uninterrupted_training(cache, tmp_path, z_dim):
    # with z_dim the style encoder, its checkpoint and the per-epoch seeding of the style noise take part
    kw = dict(**TINY, z_dim=z_dim, batch_size=4, n_fixed=4, device="cpu", progress_bar=False, seed=3)
    full = train_spade(cache, run_dir=tmp_path / "a", max_epochs=2, **kw)
    train_spade(cache, run_dir=tmp_path / "b", max_epochs=1, **kw)
    resumed = train_spade(cache, run_dir=tmp_path / "b", max_epochs=2, **kw)
    a = torch.load(tmp_path / "a" / "spade_last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "spade_last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for net in ("generator", "discriminator", "encoder"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
    losses = ["epoch", "d", "g_gan", "fm", "kl"]
    assert list(full.epoch) == [1, 2] and list(resumed.epoch) == [1, 2]
    assert full[losses].equals(resumed[losses])  # exact: the CPU run is deterministic
    assert np.isfinite(full[["d", "g_gan", "fm"]].to_numpy()).all()
    # files of a run
    for run in ("a", "b"):
        d = tmp_path / run
        for name in ("spade.pt", "spade.json", "spade_last.pt", "spade_history.csv",
                     "spade_samples/epoch_0001.png", "spade_samples/epoch_0002.png"):
            assert (d / name).is_file(), (run, name)
        assert pd.read_csv(d / "spade_history.csv").shape[0] == 2
    # the generator of spade.pt renders label maps
    loaded = load_spade(tmp_path / "b" / "spade.pt", device="cpu")
    gen, enc, config = loaded.network, loaded.encoder, loaded.config
    assert not gen.training and config["model"]["ngf"] == 4 and config["model"]["z_dim"] == z_dim
    assert (enc is None) == (z_dim == 0) and (enc is None or not enc.training)
    for key, value in gen.state_dict().items():
        assert torch.equal(value, a["generator"][key]), key
    images = render(gen, torch.from_numpy(np.array(cache.labels[:3])).long())
    assert images.shape == (3, 64, 64) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0


def test_train_spade_refuses_a_batch_larger_than_the_train_split(cache, tmp_path):
    with pytest.raises(ValueError, match="less than one batch"):
        train_spade(cache, run_dir=tmp_path, batch_size=1000, max_epochs=1, device="cpu", progress_bar=False, **TINY)


# --- render -----------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_render_accepts_labels_or_one_hot_and_keeps_the_mode(training):
    torch.manual_seed(0)
    gen = SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, z_dim=8).train(training)
    gen(_random_seg(4, 64))  # some batch-norm statistics (train mode updates them)
    stats = copy.deepcopy(gen.state_dict())
    labels = torch.randint(0, 4, (3, 64, 64), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    from_labels = render(gen, labels)
    torch.manual_seed(5)
    from_one_hot = render(gen, one_hot(labels))
    torch.manual_seed(6)
    other_seed = render(gen, labels)
    assert from_labels.shape == (3, 64, 64) and from_labels.dtype == np.float32
    assert from_labels.min() >= 0 and from_labels.max() <= 1
    assert np.array_equal(from_labels, from_one_hot)
    assert not np.allclose(from_labels, other_seed)  # z is drawn from the global generator
    assert gen.training is training
    for key, value in gen.state_dict().items():  # eval mode: no running statistic moved
        assert torch.equal(value, stats[key]), key
    # explicit style codes, in batches or at once: the same images
    z = torch.randn(3, 8)
    assert np.allclose(render(gen, labels, z=z, batch_size=2), render(gen, labels, z=z), atol=1e-6)


def test_render_uses_the_generators_label_count():
    gen = SPADEGenerator(image_size=64, label_channels=3, ngf=4, hidden_channels=8)
    out = render(gen, torch.randint(0, 3, (2, 64, 64)))
    assert out.shape == (2, 64, 64)


def test_resume_with_another_model_is_refused(cache, tmp_path):
    kw = dict(batch_size=4, max_epochs=1, device="cpu", progress_bar=False)
    train_spade(cache, run_dir=tmp_path, **TINY, **kw)
    with pytest.raises(ValueError, match="was trained with"):
        train_spade(cache, run_dir=tmp_path, **{**TINY, "ngf": 8}, **{**kw, "max_epochs": 2})
