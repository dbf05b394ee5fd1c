import json
import time

import numpy as np
import pytest

from cardigan_utils.data.cache import SliceDataset, build_cache, cache_dir, load_cache, split_patients
from conftest import disk_case


def _cases(n=10):
    groups = ["NOR", "DCM"]
    out = []
    for i in range(n):
        for phase in ("ED", "ES"):
            c = disk_case(pid=f"patient{i:03d}", phase=phase, radius=8 if phase == "ED" else 6)
            c.meta["Group"] = groups[i % 2]
            out.append(c)
    return out


def test_split_is_by_patient_stratified_and_seeded():
    pats = [f"p{i}" for i in range(20)]
    strata = {p: "A" if i < 10 else "B" for i, p in enumerate(pats)}
    s = split_patients(pats, val_fraction=0.1, test_fraction=0.2, seed=1, strata=strata)
    assert sorted(s) == sorted(pats)
    assert [sum(v == k for v in s.values()) for k in ("train", "val", "test")] == [14, 2, 4]
    test = [p for p, v in s.items() if v == "test"]
    assert {strata[p] for p in test} == {"A", "B"}
    assert s == split_patients(pats, val_fraction=0.1, test_fraction=0.2, seed=1, strata=strata)
    assert s != split_patients(pats, val_fraction=0.1, test_fraction=0.2, seed=2, strata=strata)
    with pytest.raises(ValueError):
        split_patients(pats, val_fraction=0.5, test_fraction=0.5)


def test_build_load_and_dataset(tmp_path):
    out = cache_dir(tmp_path, "test", 32)
    cache = build_cache(_cases(), out, image_size=32, fov_mm=64.0, progress=False)
    assert cache.images.shape == (80, 32, 32) and cache.labels.dtype == np.uint8
    m = json.loads((out / "manifest.json").read_text())
    assert m["n_slices"] == 80 and m["patients"] == {"train": 7, "val": 1, "test": 2}
    # no patient is in two splits
    assert (cache.slices.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(cache.cases.columns) >= {"volume_LV_ml", "volume_RV_ml", "volume_MYO_ml", "n_slices"}
    ed = cache.cases[cache.cases.phase == "ED"]["volume_LV_ml"].to_numpy()
    es = cache.cases[cache.cases.phase == "ES"]["volume_LV_ml"].to_numpy()
    assert (ed > es).all()
    ds = SliceDataset(cache, split="train")
    item = ds[0]
    assert len(ds) == 56 and item["image"].shape == (1, 32, 32) and item["label"].dtype.is_floating_point is False
    assert len(cache.indices("test", phase="ED")) == 8


def test_rebuild_is_skipped_for_same_params_and_refused_for_others(tmp_path):
    out = tmp_path / "c"
    build_cache(_cases(4), out, image_size=32, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime
    time.sleep(0.01)
    build_cache(_cases(4), out, image_size=32, progress=False)
    assert (out / "manifest.json").stat().st_mtime == stamp
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_cache(_cases(4), out, image_size=16, progress=False)
    assert build_cache(_cases(4), out, image_size=16, overwrite=True, progress=False).images.shape[1] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no partial or old folders left


def test_changed_data_with_the_same_keys_is_not_mistaken_for_the_cache(tmp_path):
    out = tmp_path / "c"
    first = build_cache(_cases(4), out, image_size=32, progress=False)
    changed = _cases(4)
    changed[0].image[...] *= 2.0
    changed[0].label[changed[0].label == 1] = 0
    with pytest.raises(FileExistsError, match="other data or parameters"):
        build_cache(changed, out, image_size=32, progress=False)
    rebuilt = build_cache(changed, out, image_size=32, overwrite=True, progress=False)
    assert rebuilt.manifest["fingerprint"] != first.manifest["fingerprint"]
    assert rebuilt.cases.loc[0, "volume_RV_ml"] == 0


def test_a_folder_that_is_not_a_cache_is_never_replaced(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "vae.pt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a slice cache"):
        build_cache(_cases(2), tmp_path / "run", image_size=32, overwrite=True, progress=False)
    assert (tmp_path / "run" / "vae.pt").read_text() == "precious"


def test_load_cache_says_which_notebook_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_datasets"):
        load_cache(tmp_path)


@pytest.mark.acdc
def test_real_acdc_cache(acdc_dir, tmp_path):
    from cardigan_utils.data.acdc import read_acdc

    cases = read_acdc(acdc_dir, patients=[f"patient{i:03d}" for i in (1, 21, 41, 61, 81)], progress=False)
    cache = build_cache(cases, tmp_path / "acdc", image_size=64, progress=False)
    assert set(cache.slices.group) == {"DCM", "HCM", "MINF", "NOR", "RV"}
    # every kept slice has foreground and the LV is present in most
    assert all(cache.labels[i].any() for i in range(len(cache)))
    assert np.mean([(cache.labels[i] == 3).any() for i in range(len(cache))]) > 0.8


def test_a_copy_without_true_spacing_keeps_pixels_and_no_millimetres(tmp_path):
    """A derived CAMUS copy: areas, volumes and the pixel size are unknown (NaN), pixel counts kept."""
    import warnings

    from cardigan_utils.data import cache_spacing
    from cardigan_utils.data.camus import read_camus, write_camus_example
    from cardigan_utils.metrics import dataset_metrics

    root = write_camus_example(tmp_path / "copy", n_patients=3, layout="camus-copy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the derived-copy warning, tested in test_camus.py
        cases = read_camus(root)
    cache = build_cache(cases, tmp_path / "cache", image_size=64, progress=False)
    slices = cache.slices
    assert (~slices.spacing_known).all() and slices.spacing_mm.isna().all() and slices.area_LV.isna().all()
    assert (slices.pixels_LV > 0).all() and cache.cases.volume_LV_ml.isna().all() and (cache.cases.voxels_LV > 0).all()
    assert cache_spacing(cache) is None
    summary = dataset_metrics(cache)
    assert summary["lv_unit"] == "source pixels" and summary["lv_ed_mean"] > 0
    official = build_cache(read_camus(write_camus_example(tmp_path / "official", n_patients=3)), tmp_path / "cache2",
                           image_size=64, progress=False)
    assert official.slices.spacing_known.all() and 0.1 < cache_spacing(official) < 5
    assert dataset_metrics(official)["lv_unit"] == "cm²"
