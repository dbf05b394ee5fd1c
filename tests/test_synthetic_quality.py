"""Judging a synthetic set: the feature U-Net trained once per run, and FID / KID / MS-SSIM next to real vs real."""

import numpy as np
import pytest
from scipy import ndimage

from cardigan_utils.data import prepare_cache
from cardigan_utils.synthetic.quality import feature_network, feature_network_path, judge_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("quality")
    cache = prepare_cache("phantom-mri", run_dir=run_dir, image_size=64, n_patients=12, progress=False)
    model = feature_network(run_dir, cache, steps=40, batch_size=8, device="cpu", progress_bar=False)
    return run_dir, cache, model


def test_the_feature_network_is_trained_once_and_reloaded(judged):
    run_dir, cache, model = judged
    path = feature_network_path(run_dir, cache)
    assert path.exists() and path.name == "features_phantom-mri_64.pt" and not model.training
    stamp = path.stat().st_mtime_ns
    again = feature_network(run_dir, cache, steps=40, batch_size=8, device="cpu", progress_bar=False)
    assert path.stat().st_mtime_ns == stamp  # loaded, not trained again
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_real_images_judge_like_real_and_a_degraded_set_does_not(judged):
    _, cache, model = judged
    real = np.asarray(cache.images[cache.indices("train")])
    same, copies = judge_synthetic(real, cache, model=model)
    assert list(same.index) == ["FID", "KID", "MS-SSIM"] and list(same.columns) == ["synthetic", "real train"]
    # the real training slices as "synthetic": exactly the yardstick, and every one a copy
    assert np.allclose(same["synthetic"], same["real train"])
    assert copies.generated_fraction > 0.9
    # the same anatomy blurred, or with less contrast: further from the real test slices than real
    # train is (the feature U-Net has batch norm: an instance-normed one ignores contrast)
    blurred = np.stack([ndimage.gaussian_filter(x, 2) for x in real])
    fid = {}
    for name, bad in (("blurred", blurred), ("dim", real * 0.5 + 0.1), ("both", blurred * 0.5 + 0.1)):
        table, _ = judge_synthetic(bad, cache, model=model)
        fid[name] = table.loc["FID", "synthetic"]
        assert fid[name] > 1.3 * table.loc["FID", "real train"]
        assert table.loc["KID", "synthetic"] > table.loc["KID", "real train"]
    assert fid["both"] > fid["blurred"] and fid["dim"] > 3 * table.loc["FID", "real train"]
    assert table.loc["MS-SSIM", "synthetic"] > table.loc["MS-SSIM", "real train"]  # smoother images look alike
    assert 2 <= table.attrs["feature_dim"] <= 64


def test_too_few_images_are_refused(judged):
    _, cache, model = judged
    with pytest.raises(ValueError, match="too few images"):
        judge_synthetic(np.zeros((2, 64, 64), np.float32), cache, model=model)
