"""Stage 2: cardiac shapes. The shape VAE (:mod:`.vae`: train, evaluate, load), its latent space
(:mod:`.latent`), and the anatomical checks a shape must pass (:mod:`.anatomy`)."""

from .anatomy import (
    PLAUSIBILITY_CHECKS,
    PLAUSIBILITY_DEFAULTS,
    PLAUSIBILITY_STRUCTURES,
    plausibility_checks,
    plausibility_report,
    plausibility_summary,
    postprocess_masks,
    slice_level,
)
from .latent import LatentCodes, encode_cache, interpolate, principal_directions, project, reconstruct
from .vae import evaluate_vae, load_vae, train_vae

__all__ = [
    "PLAUSIBILITY_CHECKS",
    "PLAUSIBILITY_DEFAULTS",
    "PLAUSIBILITY_STRUCTURES",
    "LatentCodes",
    "encode_cache",
    "evaluate_vae",
    "interpolate",
    "load_vae",
    "plausibility_checks",
    "plausibility_report",
    "plausibility_summary",
    "postprocess_masks",
    "principal_directions",
    "project",
    "reconstruct",
    "slice_level",
    "train_vae",
]
