"""The one home of every default: the profiles and each stage's defaults; devices, seeding, progress.

A stage's trainer takes its keyword defaults from :data:`STAGE_DEFAULTS`; each notebook's
``parameters`` cell and the ``cardigan`` command take theirs from :func:`profile_params`, which
lays a profile's sizes (``PROFILES[profile]``) over the stage's defaults. Anything passed
explicitly (papermill ``-p``, the ``cardigan`` command) wins.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    # notebook 02: the shape VAE (shapes.train_vae)
    "vae": {"latent_dim": 32, "channels": None, "max_epochs": 50, "batch_size": 32, "lr": 1e-3, "beta": 1e-3,
            "kl_warmup_epochs": 5, "augment": True, "val_interval": 1, "n_samples": 2000},
    # notebook 03: the SPADE generator (images.spade.train_spade)
    "spade": {"ngf": 32, "hidden_channels": 128, "z_dim": 0, "ndf": 64, "n_layers_d": 4, "num_scales": 2,
              "spectral_norm": True, "max_epochs": 20, "batch_size": 16, "lr_g": 1e-4, "lr_d": 4e-4,
              "betas": (0.0, 0.9), "fm_weight": 10.0, "kl_weight": 0.05, "sample_interval": 1, "n_fixed": 8,
              "compile": False},
    # notebook 04: the synthetic set (synthetic.generate_dataset)
    "generate": {"n_synthetic": 1000, "shard_size": 1000, "filter_plausible": True, "render_batch_size": 128},
    # notebook 05: the U-Net (segmentation.train_segmenter) and the study (study.run_study)
    "segment": {"channels": (16, 32, 64, 128, 256), "num_res_units": 2, "max_epochs": 20, "batch_size": 16,
                "steps_per_epoch": None, "lr": 1e-3, "weight_decay": 1e-5, "val_interval": 1, "augment": True,
                "fractions": (0.05, 0.25, 1.0), "seeds": (0, 1, 2), "mix_ratio": 1.0, "n_ood_patients": 20},
}
"""Each stage's defaults, whatever the profile. ``augment`` of the segment stage is what a single
``cardigan train segmenter`` uses (the study chooses it per regime)."""

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
"""Per-profile sizes. ``n_patients`` is the number of phantom patients generated. A section named
after a stage (``"vae"``) overrides the common values (and :data:`STAGE_DEFAULTS`) for that stage."""


def profile_params(profile: str, *, stage: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The parameters of a stage: its defaults, the profile's common values and section, ``overrides``.

    Args:
        profile: one of ``PROFILES``.
        stage: a stage of :data:`STAGE_DEFAULTS` (``"vae"``, ``"spade"``, ``"generate"``,
            ``"segment"``), or None for the profile's common values only.
        **overrides: explicit values; ``None`` means "use the profile's".

    Returns:
        A new flat dict of parameters (later sources win: stage defaults, the profile's common
        values, its stage section, the overrides).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    params: dict[str, Any] = {}
    if stage is not None:
        if stage not in STAGE_DEFAULTS:
            raise ValueError(f"profile {profile!r} has no {stage!r} section; the stages are {sorted(STAGE_DEFAULTS)}")
        params.update(STAGE_DEFAULTS[stage])
    params.update({k: v for k, v in PROFILES[profile].items() if not isinstance(v, dict)})
    if stage is not None:
        params.update(PROFILES[profile].get(stage, {}))
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def get_device(device: str | None = None):
    """The torch device to train on: CUDA if present, else Apple MPS, else CPU.

    Args:
        device: force one (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); None picks the best.

    Returns:
        A ``torch.device``.
    """
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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


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
    return tqdm(iterable, disable=not (enabled and progress_enabled()), **kwargs)
