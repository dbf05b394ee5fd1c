"""The study runner: run sources per regime, the tidy results table, continuing an interrupted study."""

import pandas as pd
import pytest

from cardigan_utils import study
from cardigan_utils.data import prepare_cache
from conftest import interrupted_on_call

pytestmark = pytest.mark.usefixtures("one_torch_thread")
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
    import cardigan_utils.train as train

    original = train.train_segmenter
    monkeypatch.setattr(train, "train_segmenter", interrupted_on_call(original, 3))  # the third run
    with pytest.raises(KeyboardInterrupt):
        study.run_study(real, synthetic, **kw)
    partial = pd.read_csv(tmp_path / "study" / "results.csv")
    assert set(map(tuple, partial[["regime", "seed"]].drop_duplicates().values)) == {("real", 0), ("real", 1)}
    monkeypatch.setattr(train, "train_segmenter", original)
    lines = []
    table = study.run_study(real, synthetic, **{**kw, "log": lines.append})
    assert sum("already in" in line for line in lines) == 2
    runs = table[["regime", "fraction", "seed"]].drop_duplicates()
    assert len(runs) == 4 and not table.duplicated(["regime", "seed", "patient_id", "phase", "structure"]).any()
    assert {"regime", "fraction", "seed", "domain", "structure", "phase", "dice", "hd95_mm", "n_train"} <= set(table.columns)
    assert set(table.structure) == {"RV", "MYO", "LV"} and table.dice.between(0, 1).all()
    n_real = table[table.regime == "real"].n_train.iloc[0]
    assert table[table.regime == "real+aug+synthetic"].n_train.iloc[0] == n_real + min(len(synthetic), n_real)
