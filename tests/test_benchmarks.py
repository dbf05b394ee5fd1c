"""The GAN benchmarks run end to end on a tiny config and report what they promise (never timed here)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_spade_throughput_reports_kit_monai_and_ratio(capsys):
    import spade_throughput

    result = spade_throughput.main(["--size", "64", "--batch", "2", "--ngf", "4", "--hidden", "8", "--ndf", "8",
                                    "--out-channels", "1", "--warmup", "1", "--iters", "1", "--repeats", "1"])
    for impl in ("kit", "monai"):
        assert result[impl]["img_per_s"] > 0 and result[impl]["losses_finite"]
    assert result["ratio_vs_monai"] > 0 and result["kit"]["params_g_m"] > 0
    assert capsys.readouterr().out.count("\n") == 1  # one JSON line


def test_spade_throughput_ablation_times_each_speed_step(capsys):
    import spade_throughput

    result = spade_throughput.main(["--size", "64", "--batch", "2", "--ngf", "4", "--hidden", "8", "--ndf", "8",
                                    "--out-channels", "1", "--warmup", "1", "--iters", "1", "--repeats", "2", "--ablation"])
    for name in list(spade_throughput.ABLATION) + ["monai"]:
        assert result[name]["img_per_s"] > 0 and result[name]["losses_finite"], name
    for name in spade_throughput.ABLATION:
        assert result[f"ratio_vs_monai ({name})"] > 0
    # the lighter modulation has fewer generator weights than the paper's, the baseline as many as the paper's
    first, *_, last = spade_throughput.ABLATION.values()
    names = list(spade_throughput.ABLATION)
    assert result[names[-1]]["params_g_m"] < result[names[0]]["params_g_m"]
    assert first["sequential"] and not last["sequential"]
    assert capsys.readouterr().out.count("\n") == 1


def test_generate_throughput_reports_each_size(capsys):
    import generate_throughput

    results = generate_throughput.main(["--sizes", "64", "--ngf", "4", "--hidden", "8", "--z-dim", "8", "--batch", "4",
                                        "--repeats", "1"])
    assert [r["size"] for r in results] == [64] and results[0]["kit_pairs_per_s"] > 0 and results[0]["ratio_vs_monai"] > 0
    assert capsys.readouterr().out.count("\n") == 1


@pytest.mark.notebooks
def test_lab_profile_times_each_notebook_against_the_budget(tmp_path, capsys, monkeypatch):
    import lab_profile

    monkeypatch.setenv("CARDIGAN_BF16", "1")  # restored after the test; --no-bf16 sets it to 0
    result = lab_profile.main(["--profile", "smoke", "--only", "01", "--run-dir", str(tmp_path), "--no-bf16",
                               "--budget-s", "0.001"])
    first = result["notebooks"]["01_datasets"]
    assert first["seconds"] > 0 and first["fits"] is False and result["all_fit"] is False  # over a tiny budget
    assert first["result"]["n_patients"] == 12 and result["bf16"] is False
    assert capsys.readouterr().out.count("\n") == 1


def test_style_spread_reports_every_prior_against_the_real_test_images(tmp_path, capsys):
    import style_spread

    result = style_spread.main(["--dataset", "phantom-mri", "--n-patients", "3", "--image-size", "64", "--run-dir",
                                str(tmp_path), "--max-epochs", "1", "--batch-size", "4", "--ngf", "4", "--hidden", "8",
                                "--ndf", "8", "--z-dim", "8", "--bandwidths", "0.5", "--device", "cpu",
                                "--feature-steps", "4"])
    assert set(result["priors"]) == {"standard", "kde", "fitted", "kde_h0.5", "encoded"}
    assert set(result["fidelity"]) == {"synthetic", "real train"} and result["fidelity"]["synthetic"]["FID"] >= 0
    assert list(result["extrapolation"]) == ["1", "1.5", "2", "3"] and "mean_LV" in result["extrapolation"]["2"]
    assert result["style_density"]["n_codes"] > 0 and result["test_slices"] > 0
    for prior in result["priors"].values():
        assert {"mean_LV", "noise_MYO", "bias"} <= set(prior["ratio"]) and set(prior["w1"]) == {"background", "RV", "MYO", "LV"}
    assert (tmp_path / "style_spread" / "figures" / "per_image_means.png").is_file()
    assert capsys.readouterr().out.count("\n") == 1


def test_metric_agreement_ranks_every_metric_against_the_synthetic_only_dice(tmp_path, capsys):
    import metric_agreement

    result = metric_agreement.main(["--profile", "smoke", "--epochs", "1", "2", "3", "--seeds", "0", "--n-synthetic",
                                    "64", "--feature-steps", "2", "--run-dir", str(tmp_path), "--device", "cpu"])
    assert [s["epoch"] for s in result["snapshots"]] == [1, 2, 3]
    assert all(0 <= s["dice"] <= 1 and s["fid"] >= 0 and s["n_seeds"] == 1 for s in result["snapshots"])
    assert {"fid", "kid", "ms_ssim", "w1_LV", "w1_mean"} <= set(result["agreement"])
    assert all(a["n"] == 3 for a in result["agreement"].values())
    assert result["yardstick"]["ms_ssim_gap"] == 0.0 and result["yardstick"]["fid"] >= 0
    assert all((tmp_path / "snapshots" / f"epoch_{e:04d}" / "spade.pt").is_file() for e in (1, 2, 3))
    assert (tmp_path / "metric_agreement" / "agreement.csv").is_file()
    assert (tmp_path / "metric_agreement" / "figures" / "metrics_vs_dice.png").is_file()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith('{"benchmark": "metric_agreement"')
