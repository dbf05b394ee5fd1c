"""The study runner: run sources per regime, the tidy results table, continuing an interrupted study."""

import numpy as np
import pandas as pd
import pytest

from cardigan_utils import study
from cardigan_utils.data import prepare_cache
from conftest import interrupted_on_call

pytestmark = pytest.mark.usefixtures("one_torch_thread")
OOD_LAYOUTS = ("mnms", "mnms2", "sunnybrook")  # registered datasets whose phantom-written folders a study scores
FAST = dict(max_epochs=1, batch_size=8, steps_per_epoch=2, channels=(4, 8, 16), device="cpu", progress_bar=False)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    real = prepare_cache("phantom-mri", run_dir=root, image_size=64, n_patients=10, progress=False)
    # a stand-in synthetic cache: the real training slices under another name (the runner only reads arrays)
    synthetic = prepare_cache("phantom-mri", run_dir=root / "syn", image_size=64, n_patients=4, seed=7, progress=False)
    return real, synthetic


def test_training_patients_are_a_stratified_share(caches):
    real, _ = caches
    n_train = real.slices[real.slices.split == "train"].patient_id.nunique()
    assert len(study.training_patients(real, fraction=1.0, seed=0)) == n_train
    few = study.training_patients(real, fraction=0.3, seed=0)
    assert len(few) == max(1, round(0.3 * n_train))
    assert few != study.training_patients(real, fraction=0.3, seed=1) or n_train <= 2
    with pytest.raises(ValueError, match="fraction"):
        study.training_patients(real, fraction=0, seed=0)


def test_run_sources_per_regime(caches):
    real, synthetic = caches
    r = study.run_sources("real", real, synthetic, fraction=0.5, seed=0)
    assert len(r) == 1
    n_real = len(r[0][0])
    both = study.run_sources("real+synthetic", real, synthetic, fraction=0.5, seed=0, mix_ratio=0.5)
    assert len(both) == 2 and len(both[1][0]) == min(len(synthetic), round(0.5 * n_real))
    only = study.run_sources("synthetic", real, synthetic, fraction=0.5, seed=0)
    assert len(only) == 1 and len(only[0][0]) == min(len(synthetic), n_real)
    with pytest.raises(ValueError, match="needs the synthetic cache"):
        study.run_sources("synthetic", real, None, fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="regime"):
        study.run_sources("gan", real, synthetic, fraction=0.5, seed=0)


def test_study_table_and_continuing_after_an_interruption(caches, tmp_path, monkeypatch):
    real, synthetic = caches
    domains = {"in-domain": (real, real.indices("test"))}
    kw = dict(run_dir=tmp_path, domains=domains, regimes=("real", "real+aug+synthetic"), fractions=(0.5,),
              seeds=(0, 1), **FAST, log=lambda line: None)
    import cardigan_utils.segmentation as segmentation

    original = segmentation.train_segmenter
    monkeypatch.setattr(segmentation, "train_segmenter", interrupted_on_call(original, 3))  # the third run
    with pytest.raises(KeyboardInterrupt):
        study.run_study(real, synthetic, **kw)
    partial = pd.read_csv(tmp_path / "study" / "results.csv")
    assert set(map(tuple, partial[["regime", "seed"]].drop_duplicates().values)) == {("real", 0), ("real", 1)}
    monkeypatch.setattr(segmentation, "train_segmenter", original)
    lines = []
    table = study.run_study(real, synthetic, **{**kw, "log": lines.append})
    assert sum("already in" in line for line in lines) == 2
    runs = table[["regime", "fraction", "seed"]].drop_duplicates()
    assert len(runs) == 4 and not table.duplicated(["regime", "seed", "patient_id", "phase", "structure"]).any()
    assert {"regime", "fraction", "seed", "domain", "structure", "phase", "dice", "hd95_mm", "n_train"} <= set(table.columns)
    assert set(table.structure) == {"RV", "MYO", "LV"} and table.dice.between(0, 1).all()
    n_real = table[table.regime == "real"].n_train.iloc[0]
    assert table[table.regime == "real+aug+synthetic"].n_train.iloc[0] == n_real + min(len(synthetic), n_real)


def _table(effect=0.05, seeds=(0, 1, 2, 3), noise=0.01):
    """A results table with a known synthetic effect at the low fraction, as run_study writes it."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        base = 0.7 + rng.normal(0, 0.03)  # the seed's patients: shared by both regimes (paired)
        for regime, shift in (("real+aug", 0.0), ("real+aug+synthetic", effect)):
            for fraction, f_shift in ((0.05, 0.0), (1.0, 0.15)):
                for pid in ("p1", "p2"):
                    for phase in ("ED", "ES"):
                        for structure in ("RV", "MYO", "LV"):
                            rows.append(dict(regime=regime, fraction=fraction, seed=seed, domain="in-domain",
                                             patient_id=pid, phase=phase, view=float("nan"), structure=structure,
                                             dice=base + shift + f_shift + rng.normal(0, noise), hd95_mm=5.0,
                                             volume_pred_ml=120.0 if phase == "ED" else 50.0,
                                             volume_true_ml=100.0 if phase == "ED" else 50.0))
    return pd.DataFrame(rows)


def test_summary_and_paper_table():
    table = _table()
    summary = study.summary_table(table)
    assert list(summary.regime[:2]) == ["real+aug", "real+aug+synthetic"]  # REGIMES order, not alphabetical
    assert (summary.n_seeds == 4).all() and (summary["std"] > 0).all()
    low = summary[summary.fraction == 0.05].set_index("regime")["mean"]
    assert abs((low["real+aug+synthetic"] - low["real+aug"]) - 0.05) < 0.02
    shown = study.paper_table(summary)
    assert shown.loc["real+aug", ("in-domain", 5.0)].count("±") == 1


def test_fidelity_beside_dice_puts_each_measure_next_to_its_real_yardstick():
    table = _table().replace({"regime": {"real+aug": "real", "real+aug+synthetic": "synthetic"}})
    judged = {"synthetic": {"FID": 2.0, "KID": 0.02, "MS-SSIM": 0.3}, "real train": {"FID": 1.0, "KID": 0.01, "MS-SSIM": 0.25}}
    w1 = {"synthetic": {"RV": 0.02, "LV": 0.04}, "real": {"RV": 0.05, "LV": float("nan")}}
    shown = study.fidelity_beside_dice(table, judged=judged, w1=w1)
    assert list(shown.columns) == ["synthetic", "real"]
    assert shown.iloc[0].tolist() == [2.0, 1.0] and shown.iloc[2].tolist() == [0.3, 0.25]
    assert np.allclose(shown.iloc[3].tolist(), [0.03, 0.05])  # W1 means, NaN skipped
    dice = shown[shown.index.str.startswith("Dice")]
    assert len(dice) == 2 and "5%" in dice.index[0] and "100%" in dice.index[1]
    low = table[(table.fraction == 0.05)].groupby(["regime", "seed"]).dice.mean().groupby("regime").mean()
    assert np.isclose(dice.iloc[0]["synthetic"], low["synthetic"]) and np.isclose(dice.iloc[0]["real"], low["real"])
    assert dice.iloc[0]["synthetic"] - dice.iloc[0]["real"] > 0.03  # the planted effect, on the right side
    no_real = study.fidelity_beside_dice(table[table.regime == "synthetic"], judged=judged)
    assert len(no_real) == 3  # no Dice row without the real-only U-Nets beside them


def test_paired_difference_finds_a_real_effect_and_not_a_null_one():
    found = study.paired_difference(_table(effect=0.05), regime="real+aug+synthetic", baseline="real+aug",
                                    fraction=0.05, domain="in-domain")
    assert found["n_seeds"] == 4 and 0 < found["ci_low"] < 0.05 < found["ci_high"] < 0.1
    null = study.paired_difference(_table(effect=0.0), regime="real+aug+synthetic", baseline="real+aug",
                                   fraction=0.05, domain="in-domain")
    assert null["ci_low"] < 0 < null["ci_high"]
    one = study.paired_difference(_table(seeds=(0,)), regime="real+aug+synthetic", baseline="real+aug",
                                  fraction=0.05, domain="in-domain")
    assert one["n_seeds"] == 1 and pd.isna(one["ci_low"])
    with pytest.raises(ValueError, match="no seed"):
        study.paired_difference(_table(), regime="synthetic", baseline="real+aug", fraction=0.05, domain="in-domain")


def test_low_data_differences_cover_every_domain_with_both_regimes():
    table = _table(effect=0.05)
    other = table.assign(domain="vendor C", dice=table.dice - 0.1)
    only_aug = table[table.regime == "real+aug"].assign(domain="external")  # no synthetic run: left out
    both = pd.concat([table, other, only_aug])
    out = study.low_data_differences(both)
    assert list(out) == ["in-domain", "vendor C"]
    direct = study.paired_difference(both, regime="real+aug+synthetic", baseline="real+aug", fraction=0.05,
                                     domain="vendor C")
    assert out["vendor C"] == direct
    high = study.low_data_differences(both, fraction=1.0)
    assert abs(high["in-domain"]["mean"] - 0.05) < 0.02


def test_describe_study_states_the_verdict_from_the_numbers():
    better = " ".join(study.describe_study(_table(effect=0.05)))
    assert "real+aug+synthetic (" in better and ": better." in better
    worse = " ".join(study.describe_study(_table(effect=-0.05)))
    assert ": worse." in worse
    assert "one seed" in " ".join(study.describe_study(_table(seeds=(0,))))


def test_clinical_table_ejection_fraction():
    clinical = study.clinical_table(_table(seeds=(0,)))
    row = clinical.iloc[0]
    assert row.ef_true == pytest.approx(50.0) and row.ef_pred == pytest.approx(100 * 70 / 120)
    assert row.ef_error == pytest.approx(row.ef_pred - 50.0)


def test_disagreements_pick_the_slice_where_regimes_differ():
    import numpy as np

    truth = np.zeros((3, 16, 16), np.uint8)
    truth[:, 4:12, 4:12] = 3
    good = truth.copy()
    bad = truth.copy()
    bad[1] = 0  # regime "bad" misses slice 1 entirely
    idx, dice = study.disagreements({"good": good, "bad": bad}, truth, n=1)
    assert list(idx) == [1] and dice["bad"][1] == 0 and dice["good"][1] == 1


def test_out_of_domain_domains_hold_out_the_unseen_vendor(tmp_path):
    from cardigan_utils.data import load_cases

    cases = load_cases("phantom-mri", n_patients=6, vendors=("A", "B"))
    real = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=32, cases=cases, progress=False)
    domains = study.study_domains(real, run_dir=tmp_path, n_patients=2, progress=False)
    assert set(domains) == {"in-domain", "vendor C"}
    ood, idx = domains["vendor C"]
    assert set(ood.slices.vendor) == {"C"} and len(idx) == len(ood)
    assert not set(ood.slices.patient_id) & set(real.slices.patient_id)  # new anatomy too


@pytest.mark.parametrize("shift, modality, expected", [
    (0.05, "mri", "which agrees with the paper"), (0.0, "mri", "which differs from the paper"),
    (0.0, "echo", "no distinguishable change, which agrees with the paper"), (0.05, "echo", "which differs from the paper"),
])
def test_compare_with_papers_reads_the_interval(shift, modality, expected):
    from cardigan_utils.study import compare_with_papers

    rng = np.random.default_rng(0)
    rows = [{"regime": regime, "fraction": 0.05, "seed": seed, "domain": "in-domain", "structure": "LV",
             "dice": 0.7 + (shift if regime == "real+aug+synthetic" else 0.0) + rng.normal(0, 0.01)}
            for regime in ("real+aug", "real+aug+synthetic") for seed in range(5)]
    sentence = compare_with_papers(pd.DataFrame(rows), modality=modality)
    assert expected in sentence and ("cardiGAN" in sentence) == (modality == "echo")
    assert "95 % CI" in sentence and "5 seeds" in sentence


def test_registered_datasets_become_domains_per_vendor(tmp_path):
    from cardigan_utils.data import get_dataset, load_cases

    real = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=32, cases=load_cases("phantom-mri", n_patients=4),
                         progress=False)
    acdc = get_dataset("acdc").write_example(tmp_path / "ACDC", n_patients=2, seed=4)
    domains = study.study_domains(real, run_dir=tmp_path, n_patients=1, ood_datasets={"acdc": acdc}, progress=False)
    cache, idx = domains["acdc"]  # ACDC names no vendor: one domain, every patient
    assert cache.slices.patient_id.iloc[idx].nunique() == 2 and len(idx) == len(cache)
    by_vendor = study.vendor_domains(real, "phantom")
    assert set(by_vendor) == {f"phantom vendor {v}" for v in set(real.slices.vendor)}
    assert sorted(np.concatenate([i for _, i in by_vendor.values()]).tolist()) == list(range(len(real)))
    with pytest.raises(ValueError, match="camus is echo; give real mri datasets"):
        study.study_domains(real, run_dir=tmp_path, n_patients=1, ood_datasets={"camus": acdc}, progress=False)
    with pytest.raises(ValueError, match="phantom-echo is generated"):
        study.study_domains(real, run_dir=tmp_path, n_patients=1, ood_datasets={"phantom-echo": None}, progress=False)


def test_training_on_partly_labelled_truth_is_refused(tmp_path):
    import dataclasses

    from cardigan_utils.data import load_cases

    cases = []
    for c in load_cases("phantom-mri", n_patients=4):
        label = np.where(c.label == 1, 0, c.label).astype(np.uint8)  # no RV, as Sunnybrook
        cases.append(dataclasses.replace(c, label=label, labelled={"MYO": True, "LV": True}))
    partial = prepare_cache("phantom-mri", run_dir=tmp_path, image_size=32, cases=cases, name="partial", progress=False)
    with pytest.raises(ValueError, match="does not label RV on every slice"):
        study.run_study(partial, None, run_dir=tmp_path, domains={}, regimes=("real",), fractions=(1.0,), seeds=(0,),
                        **FAST, log=lambda line: None)
    assert not (tmp_path / "study").exists()


def test_a_study_scores_each_new_layout_per_vendor_and_only_what_is_labelled(caches, tmp_path):
    from cardigan_utils.data import get_dataset

    real, _ = caches
    sources = {name: get_dataset(name).write_example(tmp_path / name, n_patients=3, seed=2) for name in OOD_LAYOUTS}
    domains = study.study_domains(real, run_dir=tmp_path, n_patients=1, ood_datasets=sources, progress=False)
    lines = []
    table = study.run_study(real, None, run_dir=tmp_path, domains=domains, regimes=("real",), fractions=(1.0,),
                            seeds=(0,), **FAST, log=lines.append)
    for name in OOD_LAYOUTS:
        spec = get_dataset(name)
        cases = [c for p in spec.list_patients(sources[name]) for c in spec.read_patient(p)]
        vendors = {str(c.meta.get("vendor", "")) for c in cases}
        expected = {f"{name} vendor {v}" if v else name for v in vendors}
        assert expected <= set(domains) and expected <= set(table.domain)
        rows = table[table.domain.isin(expected)]
        assert set(rows.vendor.astype(str).replace("nan", "")) == vendors
        scored = {s for c in cases for s in c.labelled_structures}
        assert set(rows.structure) == scored  # Sunnybrook: MYO and LV only, never an RV row
        assert rows.dice.between(0, 1).all() and (rows.labelled_slices > 0).all()
        if scored != {"RV", "MYO", "LV"}:
            assert any(line.startswith(f"{name}") and "not labelled there, not scored" in line for line in lines)
