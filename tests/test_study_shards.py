"""The study split over processes: which runs a shard trains, the merge of the shards, `cardigan study`."""

import pandas as pd
import pytest

from cardigan_utils import cli, study
from cardigan_utils.data import prepare_cache
from conftest import interrupted_on_call

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(max_epochs=1, batch_size=8, steps_per_epoch=2, channels=(4, 8, 16), device="cpu", progress_bar=False)
RUNS = [(regime, fraction, seed) for regime in study.REGIMES for fraction in (0.05, 0.25, 1.0) for seed in (0, 1, 2)]


@pytest.fixture(scope="module")
def filled_run_dir(tmp_path_factory):
    """A run directory as notebooks 01 and 04 leave it: the slice cache and a synthetic cache."""
    root = tmp_path_factory.mktemp("shards")
    real = prepare_cache("phantom-mri", run_dir=root, image_size=64, n_patients=10, progress=False)
    # a stand-in for notebook 04's synthetic set: other phantom patients under the synthetic cache's name
    synthetic = prepare_cache("phantom-mri", run_dir=root, image_size=64, n_patients=4, seed=7,
                              name="synthetic-phantom-mri", progress=False)
    return root, real, synthetic


def test_shards_cover_every_run_once_whatever_the_order_given():
    for n_shards in (1, 2, 4, 7, 50):
        shards = [study.shard_runs(RUNS, shard=i, n_shards=n_shards) for i in range(n_shards)]
        assert sorted(run for shard in shards for run in shard) == sorted(RUNS)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # round-robin over regimes (REGIMES order), fractions and seeds ascending
    assert study.shard_runs(RUNS, shard=0, n_shards=4)[:2] == [("real", 0.05, 0), ("real", 0.25, 1)]
    shuffled = list(reversed(RUNS)) + RUNS[:3]  # another order, and duplicates: the same split
    assert study.shard_runs(shuffled, shard=1, n_shards=4) == study.shard_runs(RUNS, shard=1, n_shards=4)
    for shard, n_shards in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError, match="numbered from 0"):
            study.shard_runs(RUNS, shard=shard, n_shards=n_shards)
    with pytest.raises(ValueError, match="unknown regime"):
        study.shard_runs([("gan", 1.0, 0)], shard=0, n_shards=1)


def test_parse_shard():
    assert study.parse_shard("2/8") == (2, 8) and study.parse_shard(" 0 / 1 ") == (0, 1)
    for text in ("8/8", "1/0"):
        with pytest.raises(ValueError, match="numbered from 0"):
            study.parse_shard(text)
    for text in ("a/b", "2", "2/8/1", "-1/8", ""):
        with pytest.raises(ValueError, match="written i/n"):
            study.parse_shard(text)


def test_two_shards_and_a_merge_give_the_study_run_in_one_go(filled_run_dir, tmp_path, monkeypatch):
    _, real, synthetic = filled_run_dir
    kw = dict(domains={"in-domain": (real, real.indices("test"))}, regimes=("real", "real+aug+synthetic"),
              fractions=(0.5,), seeds=(0, 1), **FAST, log=lambda line: None)
    whole = study.run_study(real, synthetic, run_dir=tmp_path / "whole", **kw)

    sharded = tmp_path / "sharded"
    first = study.run_study(real, synthetic, run_dir=sharded, shard=(0, 2), **kw)
    assert set(map(tuple, first[["regime", "seed"]].drop_duplicates().values)) == {("real", 0), ("real+aug+synthetic", 0)}
    with pytest.raises(ValueError, match=r"results_shard1of2\.csv \(missing"):
        study.merge_shards(sharded)
    import cardigan_utils.segmentation as segmentation

    monkeypatch.setattr(segmentation, "train_segmenter", interrupted_on_call(segmentation.train_segmenter, 2))  # a killed job
    with pytest.raises(KeyboardInterrupt):
        study.run_study(real, synthetic, run_dir=sharded, shard=(1, 2), **kw)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"results_shard1of2\.csv \(unfinished"):
        study.merge_shards(sharded)
    lines = []
    study.run_study(real, synthetic, run_dir=sharded, shard=(1, 2), **{**kw, "log": lines.append})
    assert lines[0] == "real 0.5 seed 1: already in results_shard1of2.csv" and len(lines) == 2

    merged = study.merge_shards(sharded)
    assert not list((sharded / "study").glob("results_shard*"))  # folded into results.csv
    pd.testing.assert_frame_equal(study.summary_table(merged), study.summary_table(whole), check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(merged, whole, check_exact=False, atol=1e-6)  # row for row, in the same order
    lines = []
    again = study.run_study(real, synthetic, run_dir=sharded, shard=(0, 2), **{**kw, "log": lines.append})
    assert again.empty and lines == ["real 0.5 seed 0: already in results.csv",
                                     "real+aug+synthetic 0.5 seed 0: already in results.csv"]


def test_merge_keeps_a_row_once_and_refuses_arrays_of_different_sizes(tmp_path):
    row = dict(regime="real", fraction=1.0, seed=0, domain="in-domain", patient_id="p1", phase="ED", view="",
               structure="LV", dice=0.9)
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    pd.DataFrame([row]).to_csv(study_dir / "results.csv", index=False)
    pd.DataFrame([row, {**row, "structure": "RV"}]).to_csv(study_dir / "results_shard0of1.csv", index=False)
    (study_dir / "results_shard0of1.done").write_text("{}")
    assert sorted(study.merge_shards(tmp_path).structure) == ["LV", "RV"]

    pd.DataFrame([{**row, "seed": 1}]).to_csv(study_dir / "results_shard0of4.csv", index=False)
    pd.DataFrame([{**row, "seed": 2}]).to_csv(study_dir / "results_shard1of2.csv", index=False)
    with pytest.raises(ValueError, match=r"disagree on the number of shards \(results_shard0of4\.\*, results_shard1of2\.\*\)"):
        study.merge_shards(tmp_path)
    assert sorted(study.merge_shards(tmp_path, allow_missing=True).seed) == [0, 0, 1, 2]
    with pytest.raises(FileNotFoundError, match="no study results"):
        study.merge_shards(tmp_path / "empty")


def test_shards_building_the_same_cache_at_once_keep_the_first(tmp_path, monkeypatch):
    from cardigan_utils.data import cache as cache_module
    from cardigan_utils.data import load_cases

    cases = load_cases("phantom-mri", n_patients=2, progress=False)
    out = tmp_path / "cache" / "phantom-mri-vendorC_32"
    original = cache_module.case_slices
    first = {}

    def another_shard_finishes_first(*args, **kwargs):
        monkeypatch.setattr(cache_module, "case_slices", original)
        cache_module.build_cache(cases, out, image_size=32, progress=False)
        first["inode"] = out.stat().st_ino
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_module, "case_slices", another_shard_finishes_first)
    cache = cache_module.build_cache(cases, out, image_size=32, overwrite=True, progress=False)
    assert out.stat().st_ino == first["inode"] and len(cache) > 0  # the first cache kept, not swapped away
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary folder left


def test_cardigan_study_in_two_shards_then_merge(filled_run_dir, tmp_path, capsys, monkeypatch):
    root, _, _ = filled_run_dir
    monkeypatch.delenv("CARDIGAN_PROGRESS", raising=False)
    args = ["study", "--run-dir", str(root), "--profile", "smoke", "--regimes", "real", "real+aug+synthetic"]
    assert cli.main([*args, "--shard", "0/2"]) == 0
    out = capsys.readouterr()
    assert "[shard 0/2] real 1 seed 0: " in out.out and "mean Dice" in out.out and "results_shard0of2.csv" in out.out
    assert "U-Net" not in out.err  # no progress bars in a batch job
    assert cli.main([*args, "--shard", "1/2"]) == 0
    assert "[shard 1/2] real+aug+synthetic 1 seed 0: " in capsys.readouterr().out
    assert cli.main(["study", "--run-dir", str(root), "--merge"]) == 0
    out = capsys.readouterr().out
    assert "% real patients" in out and "real+aug+synthetic" in out and "2 run(s) in" in out
    assert "generalisation:" in out and "No out-of-domain results" in out  # notebook 05's table and verdict (in-domain only here)

    empty = tmp_path / "empty"
    assert cli.main(["study", "--run-dir", str(empty), "--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cardigan: no slice cache of phantom-mri at 64 px") and "01_datasets" in err
    assert cli.main(["study", "--run-dir", str(root), "--profile", "full"]) == 1
    assert "holds phantom-mri_64" in capsys.readouterr().err  # the profile's size is not the one built
    assert cli.main(["study", "--run-dir", str(root), "--shard", "2/2"]) == 1
    assert "numbered from 0" in capsys.readouterr().err
    assert cli.main(["study", "--run-dir", str(empty), "--merge"]) == 1
    assert "no study results" in capsys.readouterr().err
