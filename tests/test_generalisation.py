"""Issue 23: the regimes with strong augmentation, and the generalisation table and verdict on planted results."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cardigan_utils import study
from cardigan_utils.augment import augment_batch, strong_augment_batch
from cardigan_utils.config import PROFILES, profile_params

SEEDS = (0, 1, 2, 3, 4)
JITTER = (0.01, -0.01, 0.005, -0.005, 0.0)  # per-seed wobble of a gain: mean 0, so a planted gain is exact
SEED_BASE = (0.0, 0.02, -0.01, 0.015, -0.025)  # a seed's patients: shared by every regime of that seed (paired)


def _planted(dice: dict[tuple[str, str], float], *, gain_jitter=True, seeds=SEEDS, fraction=0.1) -> pd.DataFrame:
    """A results table as run_study writes it: every row of a run has the run's Dice, ``dice[regime, domain]``
    plus the seed's shift; regimes with synthetic images also wobble by ``JITTER`` (so gains have an interval)."""
    rows = []
    for (regime, domain), value in dice.items():
        synthetic = study.regime_parts(regime).synthetic
        for seed in seeds:
            run = value + SEED_BASE[seed] + (JITTER[seed] if synthetic and gain_jitter else 0.0)
            for pid in ("p1", "p2"):
                for phase in ("ED", "ES"):
                    for structure in ("RV", "MYO", "LV"):
                        rows.append(dict(regime=regime, fraction=fraction, seed=seed, domain=domain, patient_id=pid,
                                         phase=phase, view=float("nan"), structure=structure, dice=run, hd95_mm=5.0))
    return pd.DataFrame(rows)


HELPS = {  # the GAN helps out of domain on top of strong augmentation, not on top of classical augmentation
    ("real+aug", "in-domain"): 0.80, ("real+aug", "vendor C"): 0.60,
    ("real+aug+synthetic", "in-domain"): 0.83, ("real+aug+synthetic", "vendor C"): 0.60,
    ("real+strong-aug", "in-domain"): 0.79, ("real+strong-aug", "vendor C"): 0.71,
    ("real+strong-aug+synthetic", "in-domain"): 0.81, ("real+strong-aug+synthetic", "vendor C"): 0.76,
}
HARMS = {**HELPS, ("real+strong-aug+synthetic", "vendor C"): 0.67}  # synthetic images cost 0.04 out of domain


def _row(table, regime, domain):
    rows = table[(table.regime == regime) & (table.domain == domain)]
    assert len(rows) == 1
    return rows.iloc[0]


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
    hook = study.regime_augment(regime, modality="echo", strong_augment_strength=0.7)
    expected = {None: None, "classical": augment_batch, "strong": strong_augment_batch}[augmentation]
    settings = {"modality": "echo", **({"strength": 0.7} if augmentation == "strong" else {})}
    assert (hook is None) if expected is None else (hook.func is expected and hook.keywords == settings)


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
    assert hooks[1].keywords["strength"] == profile_params("quick", stage="segment")["strong_augment_strength"]
    assert set(table.regime) == {"real+aug", "real+strong-aug"}


def test_generalisation_table_drops_and_gains():
    results = _planted(HELPS)
    table = study.generalisation_table(results)
    assert len(table) == 8 and list(table.regime.unique()) == [r for r in study.REGIMES if r in {k[0] for k in HELPS}]
    assert list(table.domain[:2]) == ["in-domain", "vendor C"]  # in-domain first within each regime
    aug = _row(table, "real+aug", "vendor C")
    assert aug["drop"] == pytest.approx(0.20) and aug.relative_drop == pytest.approx(0.25)
    assert aug.drop_vs_reference == pytest.approx(1.0) and aug.n_seeds == 5
    strong = _row(table, "real+strong-aug", "vendor C")
    assert strong["drop"] == pytest.approx(0.08) and strong.drop_vs_reference == pytest.approx(0.4)
    assert _row(table, "real+strong-aug", "in-domain")["drop"] == pytest.approx(0.0)
    assert np.isnan(strong.synthetic_gain) and np.isnan(aug.synthetic_gain)  # no synthetic images to measure
    # the gain of synthetic images: planted, paired by seed, t interval as paired_difference computes it
    gain = _row(table, "real+strong-aug+synthetic", "vendor C")
    assert gain.synthetic_gain == pytest.approx(0.05) and gain.gain_n_seeds == 5
    half = stats.t.ppf(0.975, 4) * np.std(JITTER, ddof=1) / np.sqrt(5)
    assert gain.gain_ci_low == pytest.approx(0.05 - half) and gain.gain_ci_high == pytest.approx(0.05 + half)
    direct = study.paired_difference(results, regime="real+strong-aug+synthetic", baseline="real+strong-aug",
                                     fraction=0.1, domain="vendor C")
    assert (gain.gain_ci_low, gain.gain_ci_high) == (direct["ci_low"], direct["ci_high"])
    assert _row(table, "real+aug+synthetic", "vendor C").synthetic_gain == pytest.approx(0.0)
    assert _row(table, "real+aug+synthetic", "in-domain").synthetic_gain == pytest.approx(0.03)


def test_verdict_where_the_gan_helps_out_of_domain():
    lines = study.generalisation_verdict(study.generalisation_table(_planted(HELPS)))
    drops = next(line for line in lines if line.startswith("vendor C, 10 %"))
    assert "real+aug 0.200 (25.0 %)" in drops and "real+strong-aug 0.080 (10.1 %)" in drops
    assert drops.endswith("At most 0.5 of real+aug's drop (0.100): real+strong-aug, real+strong-aug+synthetic.")
    strong = next(line for line in lines if "added to real+strong-aug (" in line)
    assert "help on in-domain, vendor C" in strong and "vendor C +0.050 (95 % CI" in strong and "5 seeds" in strong
    classical = next(line for line in lines if "added to real+aug (" in line)
    assert "help on in-domain; change nothing distinguishable on vendor C" in classical


def test_verdict_where_the_gan_does_not_help_out_of_domain():
    lines = study.generalisation_verdict(study.generalisation_table(_planted(HARMS)))
    strong = next(line for line in lines if "added to real+strong-aug (" in line)
    assert "help on in-domain; harm on vendor C" in strong and "vendor C -0.040" in strong
    drops = next(line for line in lines if line.startswith("vendor C"))
    assert drops.endswith("real+strong-aug.")  # real+strong-aug+synthetic lost 0.14, more than half of 0.20
    # a gain of zero on average, wobbling by seed: no distinguishable change
    flat = {**HELPS, ("real+strong-aug+synthetic", "vendor C"): 0.71}
    strong = next(line for line in study.generalisation_verdict(study.generalisation_table(_planted(flat)))
                  if "added to real+strong-aug (" in line)
    assert "change nothing distinguishable on vendor C" in strong


def test_verdict_flags_a_drop_that_shrank_because_in_domain_fell():
    worse = {**HELPS, ("real+strong-aug", "in-domain"): 0.68, ("real+strong-aug", "vendor C"): 0.60}
    drops = next(line for line in study.generalisation_verdict(study.generalisation_table(_planted(worse)))
                 if line.startswith("vendor C"))
    assert "real+strong-aug (yet below real+aug on vendor C, 0.600 against 0.600" not in drops  # equal is not below
    worse[("real+strong-aug", "vendor C")] = 0.59
    drops = next(line for line in study.generalisation_verdict(study.generalisation_table(_planted(worse)))
                 if line.startswith("vendor C"))
    assert "real+strong-aug (yet below real+aug on vendor C, 0.590 against 0.600: its in-domain Dice fell)" in drops
    assert "real+strong-aug+synthetic." in drops  # 0.76 there: better than real+aug, no flag


def test_verdict_edge_cases():
    one_seed = study.generalisation_verdict(study.generalisation_table(_planted(HELPS, seeds=(0,))))
    assert any("cannot be judged from one seed on in-domain, vendor C" in line and "(one seed)" in line
               for line in one_seed)
    only_in = {k: v for k, v in HELPS.items() if k[1] == "in-domain"}
    assert study.generalisation_verdict(study.generalisation_table(_planted(only_in)))[0].startswith(
        "No out-of-domain results")
    no_loss = {**HELPS, ("real+aug", "vendor C"): 0.85}
    assert any("real+aug loses nothing here" in line for line in
               study.generalisation_verdict(study.generalisation_table(_planted(no_loss))))
    no_reference = {k: v for k, v in HELPS.items() if k[0] != "real+aug"}
    table = study.generalisation_table(_planted(no_reference))
    assert table.drop_vs_reference.isna().all()
    assert any("real+aug did not run" in line for line in study.generalisation_verdict(table))
    # two fractions: one sentence each
    both = pd.concat([_planted(HELPS), _planted(HELPS, fraction=1.0)])
    lines = study.generalisation_verdict(study.generalisation_table(both))
    assert sum(line.startswith("vendor C, 10 %") for line in lines) == 1
    assert sum(line.startswith("vendor C, 100 %") for line in lines) == 1
