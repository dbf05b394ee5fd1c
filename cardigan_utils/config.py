"""Profiles, device choice, seeding, run-directory paths and the progress-bar switch.

Each notebook's ``parameters`` cell takes its defaults from ``PROFILES[profile]``; anything passed
explicitly (papermill ``-p``, the ``cardigan`` command) wins.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

PROFILES: dict[str, dict[str, Any]] = {
    # tests and CI: the whole sequence in a few minutes on a 2-core CPU
    "smoke": {
        "image_size": 64, "n_patients": 12, "batch_size": 16, "max_epochs": 1,
        "vae": {"max_epochs": 2, "n_samples": 500},
        "spade": {"max_epochs": 1, "batch_size": 8, "ngf": 8, "hidden_channels": 32, "ndf": 16, "z_dim": 16},
        # two VAE epochs give almost no valid shape: the smoke run keeps them all
        "generate": {"n_synthetic": 200, "shard_size": 100, "filter_plausible": False},
        "segment": {"fractions": [1.0], "seeds": [0], "max_epochs": 1, "steps_per_epoch": 4, "batch_size": 16,
                    "channels": [8, 16, 32, 64], "mix_ratio": 1.0, "n_ood_patients": 2},
    },
    # `make demo` and classrooms: the whole sequence in about 15 minutes on a 2-core CPU
    "quick": {
        "image_size": 64, "n_patients": 40, "batch_size": 32, "max_epochs": 10,
        "vae": {"max_epochs": 25, "n_samples": 2000},
        "spade": {"max_epochs": 20, "batch_size": 16, "ngf": 16, "hidden_channels": 64, "ndf": 32, "z_dim": 64},
        "generate": {"n_synthetic": 2000, "shard_size": 500, "filter_plausible": True},
        # every regime trains for the same number of steps, whatever its data size
        "segment": {"fractions": [0.1, 1.0], "seeds": [0, 1], "max_epochs": 6, "steps_per_epoch": 25, "batch_size": 32,
                    "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 8},
    },
    # classroom labs: each notebook, exercises included, within 10 minutes on a 2-core laptop CPU even
    # without native bf16 (benchmarks/lab_profile.py; figures in benchmarks/RESULTS.md)
    "lab": {
        "image_size": 64, "n_patients": 30, "batch_size": 32, "max_epochs": 10,
        "vae": {"max_epochs": 25, "n_samples": 1000},
        "spade": {"max_epochs": 10, "batch_size": 16, "ngf": 16, "hidden_channels": 64, "ndf": 32, "z_dim": 64},
        "generate": {"n_synthetic": 1000, "shard_size": 500, "filter_plausible": True},
        "segment": {"fractions": [0.1, 1.0], "seeds": [0, 1], "max_epochs": 5, "steps_per_epoch": 25, "batch_size": 32,
                    "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 6},
    },
    # research on a GPU, paper scale
    "full": {
        "image_size": 128, "n_patients": 100, "batch_size": 32, "max_epochs": 200,
        "vae": {"max_epochs": 200, "n_samples": 10000},
        "spade": {"max_epochs": 200, "batch_size": 16, "ngf": 32, "hidden_channels": 128, "ndf": 64, "z_dim": 64},
        "generate": {"n_synthetic": 20000, "shard_size": 1000, "filter_plausible": True},
        "segment": {"fractions": [0.05, 0.25, 1.0], "seeds": [0, 1, 2, 3, 4], "max_epochs": 50, "steps_per_epoch": 200,
                    "batch_size": 32, "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 20},
    },
}
"""Per-profile defaults. ``n_patients`` is the number of phantom patients generated. A section
named after a notebook stage (``"vae"``) overrides the common values for that stage."""

DATASETS = ("phantom-mri", "phantom-echo", "acdc", "camus")

DATA_ENV = {"acdc": "CARDIGAN_ACDC_DIR", "camus": "CARDIGAN_CAMUS_DIR"}
"""Environment variables that point the kit at the official downloads."""


def profile_params(profile: str, *, stage: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The defaults of ``profile`` (and of its ``stage`` section) with ``overrides`` on top.

    Args:
        profile: one of ``PROFILES``.
        stage: a notebook stage with its own section (``"vae"``), or None for the common values.
        **overrides: explicit values; ``None`` means "use the profile's".

    Returns:
        A new flat dict of parameters.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    params = {k: v for k, v in PROFILES[profile].items() if not isinstance(v, dict)}
    if stage is not None:
        if stage not in PROFILES[profile]:
            raise ValueError(f"profile {profile!r} has no {stage!r} section")
        params.update(PROFILES[profile][stage])
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def get_device(device: str | None = None):
    """The torch device to train on: CUDA if present, else Apple MPS, else CPU.

    Args:
        device: force one (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); None picks the best.

    Returns:
        A ``torch.device``.
    """
    import torch

    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(device) -> bool:
    """Whether bf16 autocast pays on ``device``: CUDA, or a CPU with native bf16 (AVX-512 bf16 / AMX).

    On CPUs without it autocast emulates bf16 and runs slower than float32, so it stays off.
    ``CARDIGAN_BF16=0`` turns it off on a CPU that has it, to time what a laptop without native
    bf16 would take (``benchmarks/lab_profile.py``).

    Args:
        device: a ``torch.device``.

    Returns:
        True where bf16 autocast is the faster choice.
    """
    import torch

    if device.type == "cuda":
        return True
    if device.type == "cpu":
        if os.environ.get("CARDIGAN_BF16", "1").strip().lower() in ("0", "false", "no", "off"):
            return False
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices) and return a NumPy generator of that seed.

    Args:
        seed: the seed.

    Returns:
        ``np.random.default_rng(seed)`` for code that takes an explicit generator.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def dataset_dir(dataset: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Where a real dataset lives: ``data_dir`` if given, else its environment variable.

    Args:
        dataset: ``"acdc"`` or ``"camus"`` (phantoms need no folder and give None).
        data_dir: an explicit folder, wins over the environment.

    Returns:
        The folder, or None for phantoms.

    Raises:
        FileNotFoundError: a real dataset with neither ``data_dir`` nor its variable set.
    """
    if dataset.startswith("phantom"):
        return None
    if data_dir:
        return Path(data_dir).expanduser()
    var = DATA_ENV.get(dataset)
    if var and os.environ.get(var):
        return Path(os.environ[var]).expanduser()
    raise FileNotFoundError(
        f"dataset {dataset!r} needs its folder: pass data_dir=... or set {var} "
        "(see README: 'Using the official ACDC / CAMUS downloads')"
    )


def progress_enabled() -> bool:
    """Whether progress bars are shown: off when ``CARDIGAN_PROGRESS=0``.

    Returns:
        True unless the environment switches bars off (tqdm.auto ignores TQDM_DISABLE).
    """
    return os.environ.get("CARDIGAN_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def progress(iterable=None, *, enabled: bool = True, **kwargs):
    """``tqdm.auto.tqdm`` honouring the kit's switch (:func:`progress_enabled`).

    Args:
        iterable: what to iterate over.
        enabled: False hides this bar whatever the switch says.
        **kwargs: passed to tqdm (``desc``, ``total``, ``leave`` ...).

    Returns:
        A tqdm instance.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not (enabled and progress_enabled()), **kwargs)
