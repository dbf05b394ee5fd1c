"""The segmentation U-Net: network, training with resume, prediction, and 3-D Dice / HD95 per volume."""

import numpy as np
import pandas as pd
import pytest
import torch

from cardigan_utils.data import prepare_cache
from cardigan_utils.metrics import segmentation_scores
from cardigan_utils.networks.unet import build_unet
from cardigan_utils.segmentation import load_segmenter, predict, train_segmenter
from conftest import interrupted_on_call

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(channels=(4, 8, 16), num_res_units=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return prepare_cache("phantom-mri", run_dir=tmp_path_factory.mktemp("seg"), image_size=64, n_patients=5, progress=False)


def _split(cache, split):
    idx = cache.indices(split)
    return np.asarray(cache.images[idx]), np.asarray(cache.labels[idx])


def test_unet_shapes_and_config():
    net = build_unet(channels=(4, 8, 16), num_res_units=1)
    out = net(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 4, 64, 64) and torch.isfinite(out).all()
    assert net.config == {"in_channels": 1, "num_classes": 4, "channels": [4, 8, 16], "num_res_units": 1, "dropout": 0.0,
                          "norm": "instance"}
    norms = {type(m).__name__ for m in build_unet(channels=(4, 8, 16), num_res_units=1, norm="batch").modules()}
    assert "BatchNorm2d" in norms and "InstanceNorm2d" not in norms


def test_training_learns_and_resume_equals_uninterrupted(cache, tmp_path):
    train, val = _split(cache, "train"), _split(cache, "val")
    kw = dict(val=val, **TINY, batch_size=8, steps_per_epoch=6, lr=3e-3, max_epochs=3, device="cpu",
              progress_bar=False, seed=2)
    whole = train_segmenter([train], run_dir=tmp_path / "a", **kw)
    # a no-op augmentation that interrupts the run at the third step of epoch 3
    killed_in_epoch_3 = interrupted_on_call(lambda x, y, generator: (x, y), 2 * 6 + 3)
    with pytest.raises(KeyboardInterrupt):
        train_segmenter([train], run_dir=tmp_path / "b", augment=killed_in_epoch_3, **kw)
    assert len(pd.read_csv(tmp_path / "b" / "segmenter_history.csv")) == 2
    resumed = train_segmenter([train], run_dir=tmp_path / "b", **kw)
    pd.testing.assert_frame_equal(whole.drop(columns="seconds"), resumed.drop(columns="seconds"))
    a = torch.load(tmp_path / "a" / "segmenter_last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "segmenter_last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.loss.iloc[-1] < whole.loss.iloc[0]
    assert {"val_dice_RV", "val_dice_MYO", "val_dice_LV", "val_dice_mean"} <= set(whole.columns)
    model, config = load_segmenter(tmp_path / "a" / "segmenter.pt", device="cpu")
    assert not model.training and config["train"]["sources"] == [len(train[0])]
    pred = predict(model, val[0][:5])
    assert pred.shape == (5, 64, 64) and pred.dtype == np.uint8 and pred.max() <= 3


def test_several_sources_and_augment_hook(cache, tmp_path):
    train, val = _split(cache, "train"), _split(cache, "val")
    seen = []

    def augment(x, y, generator):
        seen.append((x.shape, y.shape))
        return torch.flip(x, dims=[-1]), torch.flip(y, dims=[-1])

    hist = train_segmenter([train, (train[0][:7], train[1][:7])], val=val, run_dir=tmp_path, **TINY, max_epochs=1,
                           batch_size=8, augment=augment, device="cpu", progress_bar=False)
    assert len(seen) == (len(train[0]) + 7) // 8 and seen[0] == ((8, 1, 64, 64), (8, 64, 64))
    assert len(hist) == 1
    with pytest.raises(ValueError, match="sources"):
        train_segmenter([(train[0][:0], train[1][:0])], val=val, run_dir=tmp_path / "x", **TINY)


def test_scores_of_perfect_and_shifted_predictions(cache):
    idx = cache.indices("test")
    truth = np.asarray(cache.labels[idx])
    perfect = segmentation_scores(truth, cache, idx)
    assert set(perfect.structure) == {"RV", "MYO", "LV"}
    assert len(perfect) == 3 * cache.slices.iloc[idx].groupby(["patient_id", "phase"]).ngroups
    scored = perfect.dropna(subset=["dice"])
    assert np.allclose(scored.dice, 1.0) and np.allclose(scored.hd95_mm.dropna(), 0.0)
    assert np.allclose(perfect.volume_pred_ml, perfect.volume_true_ml)
    spacing = float(cache.slices.spacing_mm.iloc[idx[0]])
    shifted = segmentation_scores(np.roll(truth, 3, axis=2), cache, idx)
    lv = shifted[shifted.structure == "LV"]
    assert (lv.dice < 1).all() and np.allclose(lv.hd95_mm, 3 * spacing, rtol=0.15)
    empty = segmentation_scores(np.zeros_like(truth), cache, idx)
    assert (empty.dice.dropna() == 0).all() and empty.hd95_mm.isna().all()
    with pytest.raises(ValueError, match="predictions for"):
        segmentation_scores(truth[:2], cache, idx)
