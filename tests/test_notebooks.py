"""The notebook sequence end to end with papermill at the smoke profile, checking each metrics.json."""

import json

import pytest

from cardigan_utils import notebook
from cardigan_utils.config import PROFILES

pytestmark = pytest.mark.notebooks


def test_sequence_runs_every_notebook(smoke_run):
    run_dir, done = smoke_run
    assert [d["notebook"] for d in done] == [p.name for p in notebook.sequence()]
    for d in done:
        executed = json.loads((run_dir / "notebooks" / d["notebook"]).read_text())
        assert executed["metadata"]["papermill"]["parameters"]["profile"] == "smoke"


def test_01_metrics_and_figures(smoke_run):
    run_dir, _ = smoke_run
    m = json.loads((run_dir / "01_datasets" / "metrics.json").read_text())
    assert m["dataset"] == "phantom-mri" and m["image_size"] == PROFILES["smoke"]["image_size"]
    assert m["n_patients"] == PROFILES["smoke"]["n_patients"]
    assert all(m["patients"][s] >= 1 for s in ("train", "val", "test"))
    assert m["lv_ed_gt_es_fraction"] >= 0.9 and m["lv_ed_mean"] > m["lv_es_mean"] > 0
    # the blood pool is brighter than the myocardium in bright-blood cine MRI
    assert m["class_intensity"]["LV"] > m["class_intensity"]["MYO"]
    for fig in ("phantom_vs_real", "gallery", "overview", "ed_es_volumes"):
        assert (run_dir / "01_datasets" / "figures" / f"{fig}.png").stat().st_size > 10_000
    assert (run_dir / "cache" / f"phantom-mri_{PROFILES['smoke']['image_size']}" / "manifest.json").exists()


def test_02_metrics_and_checkpoint(smoke_run):
    run_dir, _ = smoke_run
    m = json.loads((run_dir / "02_shape_vae" / "metrics.json").read_text())
    assert m["epochs"] == PROFILES["smoke"]["vae"]["max_epochs"] and m["n_samples"] == PROFILES["smoke"]["vae"]["n_samples"]
    assert 0 < m["recon_dice_val_mean"] <= 1
    assert 0 <= m["valid_fraction"] <= 1 and 0 <= m["valid_fraction_postprocessed"] <= 1
    assert set(m["recon_dice_test"]) == {"RV", "MYO", "LV"}
    assert (run_dir / "vae.pt").exists() and (run_dir / "vae.json").exists()
    for fig in ("loss_curves", "reconstructions", "latent_space", "interpolation", "samples"):
        assert (run_dir / "02_shape_vae" / "figures" / f"{fig}.png").exists()


def test_03_metrics_and_checkpoint(smoke_run):
    run_dir, _ = smoke_run
    m = json.loads((run_dir / "03_spade_gan" / "metrics.json").read_text())
    assert m["epochs"] == PROFILES["smoke"]["spade"]["max_epochs"]
    assert m["model"]["ngf"] == PROFILES["smoke"]["spade"]["ngf"] and m["test_slices"] >= 1
    for key in ("w1_real_vs_generated", "w1_real_vs_real"):
        assert set(m[key]) == {"background", "RV", "MYO", "LV"}
        assert all(0 <= v <= 1 for v in m[key].values())
    assert (run_dir / "spade.pt").exists() and (run_dir / "spade.json").exists()
    assert (run_dir / "spade_samples" / "epoch_0001.png").exists()
    assert m["style_density"]["kind"] == "kde" and m["style_density"]["n_codes"] > 1  # new styles from the density
    assert set(m["spread_ratio"]) == {"N(0, I) styles ratio", "density styles ratio"}
    for fig in ("loss_curves", "samples_over_training", "real_vs_generated", "intensity_histograms", "appearance_spread"):
        assert (run_dir / "03_spade_gan" / "figures" / f"{fig}.png").stat().st_size > 10_000


def test_04_metrics_and_exports(smoke_run):
    from cardigan_utils.data import load_cache
    from cardigan_utils.data.export import check_nnunet_dataset

    run_dir, _ = smoke_run
    smoke = PROFILES["smoke"]
    m = json.loads((run_dir / "04_generate" / "metrics.json").read_text())
    assert m["n_synthetic"] == smoke["generate"]["n_synthetic"] and m["nnunet_problems"] == []
    assert set(m["w1_synthetic_vs_real"]) == {"background", "RV", "MYO", "LV"}
    assert 0 <= m["diversity"]["synthetic"] <= 1 and m["nn_distance_median"]["synthetic"] > 0
    cache = load_cache(run_dir / "cache" / f"synthetic-phantom-mri_{smoke['image_size']}")
    assert len(cache) == smoke["generate"]["n_synthetic"] and cache.manifest["synthetic"] is True
    dataset = run_dir / "nnUNet_raw" / "Dataset501_CardiGANPhantommri"
    assert check_nnunet_dataset(dataset) == []
    assert m["style_density"]["kind"] == "kde" and "mean_LV" in m["spread_ratio"]["the set (density styles) ratio"]
    for fig in ("synthetic_images", "synthetic_overlays", "nearest_real", "appearance_spread"):
        assert (run_dir / "04_generate" / "figures" / f"{fig}.png").stat().st_size > 10_000


def test_05_study_table_and_metrics(smoke_run):
    import pandas as pd

    from cardigan_utils.study import REGIMES

    run_dir, _ = smoke_run
    seg = PROFILES["smoke"]["segment"]
    results = pd.read_csv(run_dir / "study" / "results.csv")
    runs = results[["regime", "fraction", "seed"]].drop_duplicates()
    assert len(runs) == len(REGIMES) * len(seg["fractions"]) * len(seg["seeds"])
    # the phantom trains on scanners A and B: C is the unseen scanner, with patients of its own
    assert set(results.domain) == {"in-domain", "vendor C"}
    assert not set(results[results.domain == "vendor C"].patient_id) & set(results[results.domain == "in-domain"].patient_id)
    assert results.dice.between(0, 1).all()
    m = json.loads((run_dir / "05_segmentation" / "metrics.json").read_text())
    assert m["regimes"] == list(REGIMES) and len(m["mean_dice"]) == 2 * len(REGIMES) * len(seg["fractions"])
    assert set(m["low_data_synthetic_minus_aug"]) == {"in-domain", "vendor C"}
    assert set(m["seg_consistency"]["synthetic images"]) == {"RV", "MYO", "LV"}
    for fig in ("augmentation", "dice_vs_fraction", "dice_per_structure", "disagreements"):
        assert (run_dir / "05_segmentation" / "figures" / f"{fig}.png").stat().st_size > 10_000


def test_01_on_the_echo_phantom(tmp_path):
    notebook.run_sequence(tmp_path, profile="smoke", dataset="phantom-echo", only=["01"], log=lambda line: None)
    m = json.loads((tmp_path / "01_datasets" / "metrics.json").read_text())
    assert m["modality"] == "echo" and m["lv_ed_gt_es_fraction"] >= 0.9
    assert set(m["class_fraction"]) == {"background", "LV", "MYO", "LA"}


@pytest.mark.acdc
def test_01_on_real_acdc(acdc_dir, tmp_path):
    notebook.run_sequence(tmp_path, profile="smoke", dataset="acdc", data_dir=str(acdc_dir), only=["01"],
                        parameters={"n_patients": 6}, log=lambda line: None)
    m = json.loads((tmp_path / "01_datasets" / "metrics.json").read_text())
    assert m["dataset"] == "acdc" and m["n_patients"] == 6 and m["lv_ed_gt_es_fraction"] == 1.0
