"""Issue 23: the regimes with strong augmentation."""

import pytest

from cardigan_utils import study
from cardigan_utils.augment import augment_batch, strong_augment_batch
from cardigan_utils.config import PROFILES, profile_params


def test_regimes_are_the_papers_five_then_the_strong_ones():
    assert study.REGIMES[:5] == ("real", "real+aug", "synthetic", "real+synthetic", "real+aug+synthetic")
    assert study.REGIMES[5:] == ("real+strong-aug", "real+strong-aug+synthetic")


@pytest.mark.parametrize("regime, real, augmentation, synthetic, baseline", [
    ("real", True, None, False, None), ("real+aug", True, "classical", False, None),
    ("synthetic", False, None, True, None), ("real+synthetic", True, None, True, "real"),
    ("real+aug+synthetic", True, "classical", True, "real+aug"),
    ("real+strong-aug", True, "strong", False, None),
    ("real+strong-aug+synthetic", True, "strong", True, "real+strong-aug"),
])
def test_regime_parts_read_each_part_whole(regime, real, augmentation, synthetic, baseline):
    assert study.regime_parts(regime) == study.Regime(real, augmentation, synthetic)
    assert study.synthetic_baseline(regime) == baseline
    hook = study.regime_augment(regime, modality="echo")
    expected = {None: None, "classical": augment_batch, "strong": strong_augment_batch}[augmentation]
    assert (hook is None) if expected is None else (hook.func is expected and hook.keywords == {"modality": "echo"})


def test_unknown_regimes_are_refused():
    with pytest.raises(ValueError, match="unknown regime"):
        study.regime_parts("real+strong-augmentation")
    with pytest.raises(ValueError, match="unknown regime"):
        study.run_study(None, None, run_dir="/nonexistent", domains={}, regimes=("real+gan",), fractions=(1.0,),
                        seeds=(0,), log=lambda line: None)


def test_profiles_choose_their_regimes():
    for name in PROFILES:
        regimes = profile_params(name, stage="segment")["regimes"]
        assert set(regimes) <= set(study.REGIMES) and list(regimes[:5]) == list(study.REGIMES[:5])
    # the demo and classroom profiles keep their time; CI and the research profiles run every regime
    assert tuple(profile_params("quick", stage="segment")["regimes"]) == study.REGIMES[:5]
    assert tuple(profile_params("lab", stage="segment")["regimes"]) == study.REGIMES[:5]
    for name in ("smoke", "study", "full"):
        assert tuple(profile_params(name, stage="segment")["regimes"]) == study.REGIMES


def test_a_strong_regime_trains_with_the_strong_augmentation(tmp_path, monkeypatch):
    import cardigan_utils.segmentation as segmentation
    from cardigan_utils.data import prepare_cache

    real = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=32, n_patients=4, progress=False)
    hooks = []
    original = segmentation.train_segmenter

    def recording(*args, **kwargs):
        hooks.append(kwargs["augment"])
        return original(*args, **kwargs)

    monkeypatch.setattr(segmentation, "train_segmenter", recording)
    table = study.run_study(real, None, run_dir=tmp_path, domains={"in-domain": (real, real.indices("test"))},
                            regimes=("real+aug", "real+strong-aug"), fractions=(1.0,), seeds=(0,), max_epochs=1,
                            batch_size=8, steps_per_epoch=2, channels=(4, 8, 16), device="cpu", progress_bar=False,
                            log=lambda line: None)
    assert [hook.func for hook in hooks] == [augment_batch, strong_augment_batch]
    assert set(table.regime) == {"real+aug", "real+strong-aug"}
