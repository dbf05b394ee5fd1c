"""The generator contract (cardigan_utils.images): loading any family's checkpoint, style codes, rendering."""

import json

import numpy as np
import pytest
import torch

from cardigan_utils.checkpoint import save_checkpoint
from cardigan_utils.config import STAGE_DEFAULTS
from cardigan_utils.images import FAMILIES, ImageGenerator, SpadeRenderer, build_spade, load_generator
from cardigan_utils.images.spade import PAPER_MODULATION

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPADE_DEFAULTS = STAGE_DEFAULTS["spade"]
TINY = dict(image_size=64, ngf=4, hidden_channels=8, ndf=8, n_layers_d=3, num_scales=2, spectral_norm=True)


def _checkpoint(path, *, z_dim=8, family="spade"):
    """An untrained SPADE checkpoint as train_spade writes it (``family=None``: one from before the contract)."""
    torch.manual_seed(0)
    # then the kit had the paper's modulation and wrote no setting for it; now it writes its own
    modulation = PAPER_MODULATION if family is None else {k: SPADE_DEFAULTS[k] for k in PAPER_MODULATION}
    generator, _, encoder = build_spade(**TINY, z_dim=z_dim, **modulation)
    model = {**TINY, "z_dim": z_dim, **({} if family is None else modulation)}
    state = {"generator": generator.state_dict(), "encoder": encoder.state_dict() if encoder is not None else {}, "epoch": 1}
    config = {"model": model, "train": {}, "data": {}}
    if family is None:  # written as the kit wrote it then: no family, no kind
        torch.save(state, path)
        path.with_suffix(".json").write_text(json.dumps(config))
        return path, generator
    return save_checkpoint(path, state, config={"family": family, **config}, kind=family), generator


def test_a_loaded_spade_generator_satisfies_the_contract(tmp_path):
    path, generator = _checkpoint(tmp_path / "spade.pt")
    g = load_generator(path, device="cpu")
    assert isinstance(g, ImageGenerator) and isinstance(g, SpadeRenderer)
    assert not isinstance(generator, ImageGenerator)  # a bare network is not a generator of the contract
    assert g.family == "spade" and g.config["family"] == "spade" and g.image_size == 64 and g.style_dim == 8
    assert not g.network.training and g.encoder is not None and not g.encoder.training
    for key, value in generator.state_dict().items():
        assert torch.equal(g.network.state_dict()[key], value), key
    labels = np.random.default_rng(0).integers(0, 4, size=(3, 64, 64)).astype(np.uint8)
    styles = g.sample_styles(3, seed=5)
    images = g.render(labels, styles=styles, batch_size=2)
    assert images.shape == (3, 64, 64) and images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    assert np.allclose(images, g.render(torch.from_numpy(labels), styles=styles), atol=1e-6)


def test_a_checkpoint_without_a_family_is_spade(tmp_path):
    path, _ = _checkpoint(tmp_path / "old.pt", family=None)
    assert "family" not in json.loads((tmp_path / "old.json").read_text())
    assert isinstance(load_generator(path, device="cpu"), SpadeRenderer)


def test_an_unknown_family_is_refused_listing_the_known_ones(tmp_path):
    path, _ = _checkpoint(tmp_path / "spade.pt", family="nope")
    with pytest.raises(ValueError, match="unknown generator family 'nope'") as err:
        load_generator(path, device="cpu")
    assert FAMILIES and all(repr(name) in str(err.value) for name in FAMILIES)


def test_sample_styles_are_seeded_and_none_without_a_style_code(tmp_path):
    g = load_generator(_checkpoint(tmp_path / "a.pt", z_dim=8)[0], device="cpu")
    a, b, c = g.sample_styles(4, seed=1), g.sample_styles(4, seed=1), g.sample_styles(4, seed=2)
    assert a.shape == (4, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, torch.randn(4, 8, generator=torch.Generator().manual_seed(1)))
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    g.sample_styles(4, seed=1)
    assert torch.equal(torch.rand(1), before)  # the global generator is left alone
    plain = load_generator(_checkpoint(tmp_path / "b.pt", z_dim=0)[0], device="cpu")
    assert plain.style_dim == 0 and plain.encoder is None and plain.sample_styles(4, seed=1) is None


def test_train_spade_records_its_family(tmp_path):
    from cardigan_utils.data import prepare_cache
    from cardigan_utils.images import train_spade

    cache = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=64, n_patients=3, progress=False)
    train_spade(cache, run_dir=tmp_path, max_epochs=1, batch_size=4, n_fixed=2, device="cpu", amp=False,
                progress_bar=False, **{k: v for k, v in TINY.items() if k != "image_size"})
    assert json.loads((tmp_path / "spade.json").read_text())["family"] == "spade"
    assert isinstance(load_generator(tmp_path / "spade.pt", device="cpu"), ImageGenerator)
