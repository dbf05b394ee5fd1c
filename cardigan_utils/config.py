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

PAPER_REGIMES = ("real", "real+aug", "synthetic", "real+synthetic", "real+aug+synthetic")
"""The five regimes of Skandarani et al. (MIDL 2020)."""

ALL_REGIMES = PAPER_REGIMES + ("real+strong-aug", "real+strong-aug+synthetic")
"""Those and the two with domain-randomising augmentation (issue 23); ``study.REGIMES`` is this tuple."""

STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    # notebook 02: the shape VAE (shapes.train_vae)
    "vae": {"latent_dim": 32, "channels": None, "max_epochs": 50, "batch_size": 32, "lr": 1e-3, "beta": 1e-3,
            "kl_warmup_epochs": 5, "augment": True, "val_interval": 1, "n_samples": 2000,
            "valid_target": 0.95, "calibration_draws": 2000},
    # notebook 03: the SPADE generator (images.spade.train_spade)
    "spade": {"ngf": 32, "hidden_channels": 128, "z_dim": 0, "ndf": 64, "n_layers_d": 4, "num_scales": 2,
              "spectral_norm": True, "modulation_kernel": 1, "block_modulation": True, "max_epochs": 20,
              "batch_size": 16, "lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.0, 0.9), "fm_weight": 10.0, "kl_weight": 0.05,
              "simultaneous": True, "sample_interval": 1, "n_fixed": 8, "compile": False, "style_bandwidth": "cv"},
    # notebook 04: the synthetic set (synthetic.generate_dataset)
    "generate": {"n_synthetic": 1000, "shard_size": 1000, "filter_plausible": True, "render_batch_size": 128,
                 "style_extrapolation": 1.0, "feature_steps": 300},
    # notebook 05: the U-Net (segmentation.train_segmenter) and the study (study.run_study)
    "segment": {"channels": (16, 32, 64, 128, 256), "num_res_units": 2, "max_epochs": 20, "batch_size": 16,
                "steps_per_epoch": None, "lr": 1e-3, "weight_decay": 1e-5, "val_interval": 1, "augment": True,
                "fractions": (0.05, 0.25, 1.0), "seeds": (0, 1, 2), "mix_ratio": 1.0, "n_ood_patients": 20,
                "regimes": PAPER_REGIMES, "strong_augment_strength": 0.5},
}
"""Each stage's defaults, whatever the profile. ``augment`` of the segment stage is what a single
``cardigan train segmenter`` uses (the study chooses it per regime). ``regimes`` are the study's
(``study.REGIMES`` names them all): the paper's five by default; the profiles that study
generalisation (``study``, ``full``) and CI (``smoke``, a few seconds a run) add the two with strong
augmentation, which ``quick`` and ``lab`` leave out to keep their time (28 U-Nets instead of 20).
``strong_augment_strength`` is the ``strength`` of those two regimes' augmentation
(:func:`~cardigan_utils.augment.strong_augment_batch`): at 1, the literature's magnitudes, U-Nets
of the quick profile (150 steps, 64x64) lost 0.07-0.11 Dice in-domain and scored lower on the
unseen scanner too; at 0.5 they kept their in-domain Dice (phantom-mri, 10 % of the patients, 2 seeds)."""

PROFILES: dict[str, dict[str, Any]] = {
    # tests and CI: the whole sequence in a few minutes on a 2-core CPU
    "smoke": {
        "image_size": 64, "n_patients": 12, "batch_size": 16, "max_epochs": 1, "cell_timeout_s": 900,
        "vae": {"max_epochs": 2, "n_samples": 500, "calibration_draws": 300},
        "spade": {"max_epochs": 1, "batch_size": 8, "ngf": 8, "hidden_channels": 32, "ndf": 16, "z_dim": 16},
        # two VAE epochs give almost no valid shape: the smoke run keeps them all
        "generate": {"n_synthetic": 200, "shard_size": 100, "filter_plausible": False, "feature_steps": 8},
        "segment": {"fractions": [1.0], "seeds": [0], "max_epochs": 1, "steps_per_epoch": 4, "batch_size": 16,
                    "channels": [8, 16, 32, 64], "mix_ratio": 1.0, "n_ood_patients": 2, "regimes": ALL_REGIMES},
    },
    # `make demo` and classrooms: the study's sequence within 12 minutes on a 2-core CPU (exercises left out)
    "quick": {
        "image_size": 64, "n_patients": 40, "batch_size": 32, "max_epochs": 10, "cell_timeout_s": 1800,
        "vae": {"max_epochs": 25, "n_samples": 2000},
        "spade": {"max_epochs": 20, "batch_size": 16, "ngf": 16, "hidden_channels": 64, "ndf": 32, "z_dim": 64},
        "generate": {"n_synthetic": 2000, "shard_size": 500, "filter_plausible": True},
        # every regime trains for the same number of steps, whatever its data size
        # 125 U-Net steps (150 until 2026-12-07, when `make demo` took over 12 minutes; in its 20 runs
        # the 6th epoch of 25 steps raised validation Dice by 0.004 on average, -0.003 to +0.016)
        "segment": {"fractions": [0.1, 1.0], "seeds": [0, 1], "max_epochs": 5, "steps_per_epoch": 25, "batch_size": 32,
                    "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 8},
    },
    # classroom labs: each notebook, exercises included, within 10 minutes on a 2-core laptop CPU even
    # without native bf16 (benchmarks/lab_profile.py; figures in benchmarks/RESULTS.md)
    "lab": {
        "image_size": 64, "n_patients": 30, "batch_size": 32, "max_epochs": 10, "cell_timeout_s": 1800,
        "vae": {"max_epochs": 25, "n_samples": 1000},
        "spade": {"max_epochs": 10, "batch_size": 16, "ngf": 16, "hidden_channels": 64, "ndf": 32, "z_dim": 64},
        "generate": {"n_synthetic": 1000, "shard_size": 500, "filter_plausible": True},
        "segment": {"fractions": [0.1, 1.0], "seeds": [0, 1], "max_epochs": 5, "steps_per_epoch": 25, "batch_size": 32,
                    "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 6},
    },
    # the low-data study on a real dataset (ACDC, CAMUS) on a 2-core CPU: 200 patients, the paper's
    # 5 % and 25 % shares of the real training patients, 5 seeds, all seven regimes (70 U-Nets; 50 without
    # the two strong-augmentation ones, as in the figures of benchmarks/RESULTS.md)
    "study": {
        "image_size": 64, "n_patients": 200, "batch_size": 32, "max_epochs": 10, "cell_timeout_s": 7200,
        "vae": {"max_epochs": 25, "n_samples": 2000},
        "spade": {"max_epochs": 15, "batch_size": 16, "ngf": 16, "hidden_channels": 64, "ndf": 32, "z_dim": 64},
        "generate": {"n_synthetic": 2000, "shard_size": 500, "filter_plausible": True},
        "segment": {"fractions": [0.05, 0.25], "seeds": [0, 1, 2, 3, 4], "max_epochs": 6, "steps_per_epoch": 25,
                    "batch_size": 32, "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 8,
                    "regimes": ALL_REGIMES},
    },
    # research on a GPU, paper scale
    "full": {
        "image_size": 128, "n_patients": 100, "batch_size": 32, "max_epochs": 200, "cell_timeout_s": 86400,
        "vae": {"max_epochs": 200, "n_samples": 10000},
        "spade": {"max_epochs": 200, "batch_size": 16, "ngf": 32, "hidden_channels": 128, "ndf": 64, "z_dim": 64},
        "generate": {"n_synthetic": 20000, "shard_size": 1000, "filter_plausible": True},
        "segment": {"fractions": [0.05, 0.25, 1.0], "seeds": [0, 1, 2, 3, 4], "max_epochs": 50, "steps_per_epoch": 200,
                    "batch_size": 32, "channels": [16, 32, 64, 128, 256], "mix_ratio": 1.0, "n_ood_patients": 20,
                    "regimes": ALL_REGIMES},
    },
}
"""Per-profile sizes. ``n_patients`` is the number of phantom patients generated; ``cell_timeout_s``
is how long ``cardigan run`` lets one notebook cell run (about 10x the longest cell measured on a
2-core CPU, so only a stuck kernel meets it). A section named after a stage (``"vae"``) overrides
the common values (and :data:`STAGE_DEFAULTS`) for that stage."""


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
    return check_parameters(params)


IMAGE_SIZES = (64, 128, 256)
"""Slice sides the networks are built for (the SPADE generator and the VAE halve them five times)."""

# What each parameter may be: (kind, lowest, highest), bounds inclusive, None: unbounded. Checked
# where values enter (profile_params, hence every notebook's parameters cell, `cardigan train`,
# `cardigan generate`, `cardigan study`; and `cardigan run -p` before any notebook starts).
PARAMETER_RULES: dict[str, tuple[str, float | None, float | None]] = {
    "seed": ("int", 0, None),
    "n_patients": ("int", 1, None),
    "batch_size": ("int", 1, None),
    "max_epochs": ("int", 1, None),
    "val_interval": ("int", 1, None),
    "latent_dim": ("int", 1, None),
    "lr": ("float", 0, None),
    "beta": ("float", 0, None),
    "kl_warmup_epochs": ("int", 0, None),
    "n_samples": ("int", 1, None),
    "ngf": ("int", 1, None),
    "hidden_channels": ("int", 1, None),
    "ndf": ("int", 1, None),
    "z_dim": ("int", 0, None),
    "n_layers_d": ("int", 1, None),
    "num_scales": ("int", 1, None),
    "modulation_kernel": ("int", 1, None),
    "lr_g": ("float", 0, None),
    "lr_d": ("float", 0, None),
    "fm_weight": ("float", 0, None),
    "kl_weight": ("float", 0, None),
    "sample_interval": ("int", 1, None),
    "n_fixed": ("int", 1, None),
    "n_synthetic": ("int", 1, None),
    "shard_size": ("int", 1, None),
    "render_batch_size": ("int", 1, None),
    "num_res_units": ("int", 0, None),
    "steps_per_epoch": ("int", 1, None),
    "weight_decay": ("float", 0, None),
    "mix_ratio": ("float", 0, None),
    "strong_augment_strength": ("float", 0, None),
    "style_extrapolation": ("float", 0, None),
    "n_ood_patients": ("int", 1, None),
    "cell_timeout_s": ("float", 0, None),
    "fractions": ("float list", 0, 1),
    "seeds": ("int list", 0, None),
    "channels": ("int list", 1, None),
    "augment": ("bool", None, None),
    "spectral_norm": ("bool", None, None),
    "block_modulation": ("bool", None, None),
    "simultaneous": ("bool", None, None),
    "compile": ("bool", None, None),
    "filter_plausible": ("bool", None, None),
}
"""The type and range of every numeric or boolean parameter of the profiles and stages."""

_POSITIVE = {"lr", "lr_g", "lr_d", "mix_ratio", "fractions", "cell_timeout_s", "style_extrapolation"}  # > 0, not >= 0


def _rule_text(name: str) -> str:
    kind, low, high = PARAMETER_RULES[name]
    if kind == "bool":
        return "true or false"
    what = {"int": "an integer", "float": "a number", "int list": "a list of integers",
            "float list": "a list of numbers"}[kind]
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if name in _POSITIVE else '>='} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    return what + (" " + " and ".join(bounds) if bounds else "")


def _fits(name: str, value: Any) -> bool:
    kind, low, high = PARAMETER_RULES[name]
    if kind == "bool":
        return isinstance(value, bool)
    if kind.endswith("list"):
        if not isinstance(value, (list, tuple)) or not value:
            return False
        return all(_fits_one(name, kind.split()[0], v, low, high) for v in value)
    return _fits_one(name, kind, value, low, high)


def _fits_one(name: str, kind: str, value: Any, low, high) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == "int" and not isinstance(value, int):
        return False
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        return False
    if low is not None and (value <= low if name in _POSITIVE else value < low):
        return False
    return high is None or value <= high


def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Refuse a parameter of the wrong type or out of range, in one line naming it and what it may be.

    Args:
        params: parameters by name; names without a rule (``profile``, ``dataset``, ``run_dir`` ...)
            and ``None`` values (``channels=None``: by image size) pass as they are.

    Returns:
        ``params`` itself.

    Raises:
        ValueError: e.g. ``batch_size must be an integer >= 1, got 'abc'``.
    """
    for name, value in params.items():
        if name == "image_size" and value is not None and value not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {value!r}")
        if name == "betas" and not (isinstance(value, (list, tuple)) and len(value) == 2
                                    and all(_fits_one(name, "float", v, 0, 1) and v < 1 for v in value)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {value!r}")
        if name in PARAMETER_RULES and value is not None and not _fits(name, value):
            raise ValueError(f"{name} must be {_rule_text(name)}, got {value!r}")
    return params


def get_device(device: str | None = None):
    """The torch device to train on: CUDA if present, else Apple MPS, else CPU.

    Args:
        device: force one (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); None picks the best.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: a name that is no device, or a device this machine does not have.
    """
    if device:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device {device!r} is not a device name; use cpu, cuda, cuda:<n> or mps") from None
        if chosen.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if count == 0:
                raise ValueError(f"device {device!r} asked for, but this machine has no usable CUDA GPU; use cpu")
            if chosen.index is not None and chosen.index >= count:
                raise ValueError(f"device {device!r} asked for, but this machine has {count} CUDA GPU(s), "
                                 f"cuda:0 to cuda:{count - 1}")
        elif chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} asked for, but Apple MPS is not available here; use cpu")
        elif chosen.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device {device!r}: the kit runs on cpu, cuda or mps")
        return chosen
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
