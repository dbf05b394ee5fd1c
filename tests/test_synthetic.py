"""Synthetic sets: deterministic shards, resuming after an interruption, the plausibility filter, exports."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from cardigan_utils.images import SpadeRenderer
from cardigan_utils.networks.density import CodeDensity
from cardigan_utils.networks.spade import SPADEGenerator
from cardigan_utils.networks.vae import ShapeVAE
from cardigan_utils.synthetic import generate  # the module: generate_dataset looks generate_pairs up there
from cardigan_utils.synthetic import generate_dataset, iter_shards, load_synthetic, to_acdc_layout, to_cache
from conftest import interrupted_on_call


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    vae = ShapeVAE(image_size=64, latent_dim=8, channels=[8, 16, 32, 64]).eval()
    gen = SpadeRenderer(SPADEGenerator(image_size=64, ngf=4, hidden_channels=8, z_dim=8).eval(), config={})
    return vae, gen


def _make(models, out, **kw):
    vae, gen = models
    args = dict(n=25, shard_size=10, seed=1, filter_plausible=False, batch_size=8, spacing_mm=1.25, progress_bar=False)
    return generate_dataset(vae, gen, out_dir=out, **{**args, **kw})


def _arrays(out):
    return [tuple(a.copy() for a in pair) for pair in iter_shards(out)]


def test_set_is_deterministic_per_seed(models, tmp_path):
    a, b, c = _make(models, tmp_path / "a"), _make(models, tmp_path / "b"), _make(models, tmp_path / "c", seed=2)
    images, labels = load_synthetic(a)
    assert images.shape == labels.shape == (25, 64, 64) and labels.dtype == np.uint8
    assert 0 <= images.min() and images.max() <= 1
    assert [len(i) for i, _ in iter_shards(a)] == [10, 10, 5]
    for (ia, la), (ib, lb) in zip(_arrays(a), _arrays(b)):
        assert np.array_equal(ia, ib) and np.array_equal(la, lb)
    assert not np.array_equal(load_synthetic(c)[1], labels)
    # shards differ from one another (each has its own seed)
    first, second = _arrays(a)[:2]
    assert not np.array_equal(first[1], second[1])
    m = json.loads((a / "manifest.json").read_text())
    assert m["n"] == 25 and m["n_shards"] == 3 and m["spacing_mm"] == 1.25
    assert m["style_density"] is None  # a generator without a fitted style density: N(0, I) styles


def test_styles_come_from_the_generators_style_density(models, tmp_path):
    vae, gen = models
    density = CodeDensity(dim=8)
    density.fit(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)) * 0.1 + 2)
    fitted = SpadeRenderer(gen.network, config={"style_density": {"kind": "kde", "n_codes": 50}}, density=density)
    out, plain = _make((vae, fitted), tmp_path / "fitted"), _make(models, tmp_path / "plain")
    assert json.loads((out / "manifest.json").read_text())["style_density"] == {"kind": "kde", "n_codes": 50}
    (images, labels), (plain_images, plain_labels) = load_synthetic(out), load_synthetic(plain)
    assert np.array_equal(labels, plain_labels) and not np.allclose(images, plain_images)  # same shapes, other styles
    assert fitted.sample_styles(100, seed=2).mean() > 1.5  # drawn around the codes (mean 2), not from N(0, I)


def test_extrapolated_styles_keep_the_label_maps_and_widen_the_images(models, tmp_path):
    # issue 23: styles farther from the centre of the real styles, label maps unchanged
    plain, wide = _make(models, tmp_path / "plain"), _make(models, tmp_path / "wide", style_extrapolation=3.0)
    (images, labels), (wide_images, wide_labels) = load_synthetic(plain), load_synthetic(wide)
    assert np.array_equal(labels, wide_labels) and not np.allclose(images, wide_images)
    per_image = [float(np.std(x.reshape(len(x), -1).mean(1))) for x in (images, wide_images)]
    assert per_image[1] > per_image[0]  # the images' mean intensities spread wider
    assert json.loads((wide / "generation.json").read_text())["style_extrapolation"] == 3.0
    assert json.loads((wide / "manifest.json").read_text())["style_extrapolation"] == 3.0
    # at 1 the set's parameters are those of a set made before the setting (it stays a finished set)
    assert "style_extrapolation" not in json.loads((plain / "generation.json").read_text())
    with pytest.raises(FileExistsError, match="generated with"):
        _make(models, plain, style_extrapolation=2.0)


def test_interrupted_generation_completes_without_duplicates(models, tmp_path, monkeypatch):
    whole = _make(models, tmp_path / "whole")
    real_pairs = generate.generate_pairs
    monkeypatch.setattr(generate, "generate_pairs", interrupted_on_call(real_pairs, 2))  # during the second shard
    with pytest.raises(KeyboardInterrupt):
        _make(models, tmp_path / "cut")
    cut = tmp_path / "cut"
    assert sorted(p.name for p in cut.glob("shard_*")) == ["shard_00000.npz"] and not (cut / "manifest.json").exists()
    (cut / "shard_00001.tmp.npz").write_bytes(b"half a file")  # what a kill during the write leaves
    with pytest.raises(FileNotFoundError, match="no finished synthetic set"):
        load_synthetic(cut)
    monkeypatch.setattr(generate, "generate_pairs", real_pairs)
    _make(models, cut)
    assert sorted(p.name for p in cut.iterdir()) == ["generation.json", "manifest.json", "shard_00000.npz",
                                                     "shard_00001.npz", "shard_00002.npz"]
    for (ia, la), (ib, lb) in zip(_arrays(whole), _arrays(cut)):
        assert np.array_equal(ia, ib) and np.array_equal(la, lb)


def test_other_parameters_are_refused_unless_overwrite(models, tmp_path):
    out = _make(models, tmp_path / "s")
    with pytest.raises(FileExistsError, match="generated with"):
        _make(models, out, n=30)
    _make(models, out, n=30, overwrite=True)
    assert len(load_synthetic(out)[0]) == 30
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no synthetic set"):
        _make(models, tmp_path / "other")


def test_plausibility_filter_keeps_valid_shapes_only(models, tmp_path, monkeypatch):
    vae, gen = models
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 34)
    mask = np.zeros((64, 64), np.uint8)
    mask[np.hypot(yy - 32, xx - 18) < 12] = 1
    mask[r < 12] = 2
    mask[r < 8] = 3
    valid = torch.from_numpy(mask)

    def half_valid(z, **kw):  # a valid heart where the first coordinate is positive, nothing elsewhere
        out = torch.zeros(len(z), 64, 64, dtype=torch.uint8)
        out[z[:, 0] > 0] = valid
        return out

    monkeypatch.setattr(vae, "decode_labels", half_valid)
    images, labels, stats = generate.generate_pairs(vae, gen, n=6, seed=0, batch_size=4)
    assert all(np.array_equal(l, mask) for l in labels) and stats["kept"] == 6
    # the draws that failed were warped to valid ones, not thrown away
    assert stats["drawn"] == stats["valid"] + stats["warped"] >= 6 and stats["warped"] > 0
    out = generate_dataset(vae, gen, out_dir=tmp_path / "f", n=6, shard_size=3, batch_size=4, progress_bar=False)
    manifest = json.loads((out / "manifest.json").read_text())
    shards = [np.load(p) for p in sorted(out.glob("shard_*.npz"))]
    drawn, ok = sum(int(f["drawn"]) for f in shards), sum(int(f["valid"]) for f in shards)
    assert manifest["shapes_drawn"] == drawn and manifest["plausible_fraction_of_drawn"] == round(ok / drawn, 4)
    assert manifest["shapes_warped"] == sum(int(f["warped"]) for f in shards) == drawn - ok
    monkeypatch.setattr(vae, "decode_labels", lambda z, **kw: torch.zeros(len(z), 64, 64, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="valid shapes in"):
        generate.generate_pairs(vae, gen, n=4, seed=0, batch_size=4, max_draws=8)


def test_sizes_must_match(models):
    vae, _ = models
    with pytest.raises(ValueError, match="same cache"):
        generate.generate_pairs(vae, SpadeRenderer(SPADEGenerator(image_size=128, ngf=4, hidden_channels=8), config={}),
                                n=2, seed=0, filter_plausible=False)


def test_export_to_cache_and_acdc_layout(models, tmp_path):
    out = _make(models, tmp_path / "s")
    images, labels = load_synthetic(out)
    cache = to_cache(out, tmp_path / "cache")
    assert len(cache) == 25 and list(cache.indices("train")) == list(range(25)) and len(cache.indices("test")) == 0
    assert np.allclose(cache.images, images) and np.array_equal(cache.labels, labels)
    assert cache.slices.area_LV.iloc[0] == pytest.approx((labels[0] == 3).sum() * 1.25**2)
    with pytest.raises(FileExistsError):
        to_cache(out, tmp_path / "cache")
    root = to_acdc_layout(out, tmp_path / "acdc", slices_per_patient=10)
    patients = sorted(p.name for p in (root / "training").iterdir())
    assert patients == ["patient001", "patient002", "patient003"]
    img = nib.load(root / "training" / "patient001" / "patient001_frame01.nii.gz")
    gt = nib.load(root / "training" / "patient001" / "patient001_frame01_gt.nii.gz")
    assert img.shape == gt.shape == (64, 64, 10) and np.allclose(img.header.get_zooms(), (1.25, 1.25, 10.0))
    # slices come back as the cache shows them: volume[:, :, z].T
    assert np.array_equal(np.asarray(gt.dataobj)[:, :, 3].T, labels[3])
    assert np.allclose(np.asarray(img.dataobj)[:, :, 3].T, images[3], atol=1e-6)
    assert nib.load(root / "training" / "patient003" / "patient003_frame01.nii.gz").shape[-1] == 5


def test_nearest_neighbours_find_the_copy():
    from cardigan_utils.metrics import nearest_neighbours

    rng = np.random.default_rng(0)
    refs = rng.random((40, 16, 16)).astype(np.float32)
    queries = refs[[5, 17, 33]] + 0.01
    dist, idx = nearest_neighbours(queries, refs, batch_size=2)
    assert list(idx) == [5, 17, 33] and np.allclose(dist, 0.01, atol=1e-5)
    with pytest.raises(ValueError):
        nearest_neighbours(queries[:, :8], refs)


def test_diversity_is_zero_for_copies_and_grows_with_variety():
    from cardigan_utils.metrics import diversity

    maps = np.zeros((10, 32, 32), np.uint8)
    maps[:, 8:24, 8:24] = 2
    maps[:, 12:20, 12:20] = 3
    assert diversity(maps, n_pairs=50) == pytest.approx(0.0, abs=1e-6)
    shifted = maps.copy()
    for i in range(10):
        shifted[i] = np.roll(maps[i], i, axis=1)
    assert 0.2 < diversity(shifted, n_pairs=200) < 1
    with pytest.raises(ValueError, match="at least two"):
        diversity(maps[:1])


def test_export_to_nnunet_passes_the_format_check_and_resumes(models, tmp_path):
    from cardigan_utils.data.export import check_nnunet_dataset
    from cardigan_utils.synthetic import to_nnunet

    big = _make(models, tmp_path / "big", n=30)
    small = _make(models, tmp_path / "small")
    out = to_nnunet(big, tmp_path / "raw", dataset_id=501, name="Synth", progress_bar=False)
    assert out.name == "Dataset501_Synth" and check_nnunet_dataset(out) == []
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["numTraining"] == 30 and spec["labels"] == {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
    assert spec["channel_names"] == {"0": "MRI"}
    with pytest.raises(FileExistsError, match="overwrite"):
        to_nnunet(small, tmp_path / "raw", dataset_id=501, name="Synth", progress_bar=False)
    # overwrite with a smaller set: no case of the bigger one survives
    to_nnunet(small, tmp_path / "raw", dataset_id=501, name="Synth", overwrite=True, progress_bar=False)
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 25 and check_nnunet_dataset(out) == []
    assert len(list((out / "labelsTr").iterdir())) == 25
    # an interrupted export (no dataset.json, one case half written) is completed
    (out / "dataset.json").unlink()
    (out / "labelsTr" / "synth_000007.nii.gz").unlink()
    to_nnunet(small, tmp_path / "raw", dataset_id=501, name="Synth", progress_bar=False)
    assert check_nnunet_dataset(out) == [] and len(list((out / "imagesTr").iterdir())) == 25
    label = nib.load(out / "labelsTr" / "synth_000007.nii.gz")
    assert np.array_equal(np.asarray(label.dataobj)[:, :, 0], load_synthetic(small)[1][7])


def test_acdc_layout_export_is_all_or_nothing(models, tmp_path, monkeypatch):
    import cardigan_utils.synthetic.export as export

    out = _make(models, tmp_path / "s")
    real_write = export.write_acdc_patient
    monkeypatch.setattr(export, "write_acdc_patient", interrupted_on_call(real_write, 2))  # at the second patient
    with pytest.raises(KeyboardInterrupt):
        to_acdc_layout(out, tmp_path / "acdc", slices_per_patient=10)
    assert not (tmp_path / "acdc").exists()  # only a .partial- folder, never a half dataset under the name
    monkeypatch.setattr(export, "write_acdc_patient", real_write)
    to_acdc_layout(out, tmp_path / "acdc", slices_per_patient=10)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("acdc")) == ["acdc"]
    assert len(list((tmp_path / "acdc" / "training").iterdir())) == 3
