"""Shared fixtures: the real ACDC and CAMUS folders (CARDIGAN_ACDC_DIR, CARDIGAN_CAMUS_DIR) and small synthetic cases."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cardigan_utils.data.case import Case

ROOT = Path(__file__).resolve().parents[1]


def interrupted_on_call(function, n: int):
    """``function`` wrapped to raise KeyboardInterrupt (what Ctrl-C or a killed job does) on its ``n``-th call."""
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return wrapper


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny convolutions run faster on one thread, and far faster than two on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The notebook sequence (teacher copies) run once at the smoke profile on the MRI phantom: ``(run_dir, done)``.

    Shared by the notebook tests and the lab tests, which run student copies in a copy of it.
    """
    from cardigan_utils import notebook

    run_dir = tmp_path_factory.mktemp("smoke_mri")
    done = notebook.run_sequence(run_dir, profile="smoke", dataset="phantom-mri", log=lambda line: None)
    return run_dir, done


@pytest.fixture(scope="session")
def acdc_dir() -> Path:
    """The real ACDC training folder; the test is skipped, saying why, when it is not set."""
    value = os.environ.get("CARDIGAN_ACDC_DIR", "")
    if not value or not Path(value).is_dir():
        pytest.skip(
            "real ACDC data not available: set CARDIGAN_ACDC_DIR to the ACDC training folder "
            "(CI and `make test` use ../shared/data/ACDC/training)"
        )
    return Path(value)


@pytest.fixture(scope="session")
def camus_dir() -> Path:
    """A CAMUS folder with ground truth (NIfTI layout); the test is skipped, saying why, when it is not set."""
    value = os.environ.get("CARDIGAN_CAMUS_DIR", "")
    if not value or not Path(value, "database_nifti").is_dir():
        pytest.skip(
            "real CAMUS data not available: set CARDIGAN_CAMUS_DIR to a CAMUS folder holding database_nifti/ "
            "(CI and `make test` use ../shared/data/CAMUS_224)"
        )
    return Path(value)


def disk_case(*, phase: str = "ED", pid: str = "patient001", shape=(40, 48, 4), spacing=(1.5, 1.5, 10.0), radius=8) -> Case:
    """A small MRI case: an LV disc, a myocardial ring and an RV crescent in every slice."""
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    cx, cy = shape[0] / 2, shape[1] / 2
    r = np.hypot(x - cx, y - cy)
    lab2d = np.zeros(shape[:2], np.uint8)
    lab2d[r < radius + 3] = 2
    lab2d[r < radius] = 3
    rv = (np.hypot(x - cx + radius + 4, y - cy) < radius) & (lab2d == 0)
    lab2d[rv] = 1
    label = np.repeat(lab2d[..., None], shape[2], axis=2)
    rng = np.random.default_rng(0)
    image = (np.choose(label, [20.0, 200.0, 60.0, 220.0]) + rng.normal(0, 5, shape)).astype(np.float32)
    return Case(image=image, label=label, spacing=spacing, patient_id=pid, phase=phase, modality="mri", dataset="test",
                meta={"frame": 1 if phase == "ED" else 9, "Group": "NOR"})


# ---------------------------------------------------------------------------------------------
# Reliability tests (marker ``reliability``): bad input is refused in one line, nothing is lost.


def snapshot(*folders) -> dict[str, str]:
    """SHA-256 of every file under ``folders`` (and of files given directly), by path."""
    import hashlib

    out = {}
    for folder in map(Path, folders):
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def refused(capsys, argv, *, mentions=(), unchanged=(), status=1) -> str:
    """Run ``cardigan <argv>``; it must exit with ``status``, print one ``cardigan: ...`` line on stderr
    (no traceback) that contains every string of ``mentions``, and change no file under ``unchanged``.

    Returns:
        The error line.
    """
    from cardigan_utils import cli

    before = snapshot(*unchanged)
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == status, f"exit {code} (expected {status}); stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cardigan: "), f"not one 'cardigan:' line: {err!r}"
    assert "Traceback" not in err
    for text in mentions:
        assert str(text) in lines[0], f"{text!r} not named in {lines[0]!r}"
    assert snapshot(*unchanged) == before, "an input file changed"
    return lines[0]


def tiny_segmenter(run, dataset: str, *, n_patients: int, steps: int, image_size: int = 64,
                   channels: tuple[int, ...] = (4, 8, 16), batch_size: int = 8):
    """A U-Net of a few steps on phantom slices: weights to segment with, not a good model."""
    from cardigan_utils.data import prepare_cache
    from cardigan_utils.segmentation import data_config, train_segmenter

    cache = prepare_cache(dataset, run_dir=run, image_size=image_size, n_patients=n_patients, progress=False)
    idx, val = cache.indices("train"), cache.indices("val")
    train_segmenter([(cache.images[idx], cache.labels[idx])], val=(cache.images[val], cache.labels[val]), run_dir=run,
                    channels=channels, num_res_units=1, max_epochs=1, batch_size=batch_size, steps_per_epoch=steps,
                    data=data_config(cache), device="cpu", progress_bar=False)
    return run / "segmenter.pt"
