"""Stage 2: cardiac shapes. The shape VAE (:mod:`.vae`: train, evaluate, load), its latent space
(:mod:`.latent`), the anatomical checks a shape must pass (:mod:`.anatomy`), the sampler that
returns only shapes that pass them (:mod:`.sampler`), and how close shapes are to real ones
(:mod:`.closeness`)."""

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
from .closeness import closeness_report, measure_distances, nearest_dice, phase_measures, shape_measures, slice_level_shares
from .latent import LatentCodes, encode_cache, interpolate, principal_directions, project, reconstruct
from .sampler import Bandwidth, ValidBank, calibrate_bandwidth, sample_valid_shapes, valid_bank, warp_codes
from .vae import evaluate_vae, load_vae, train_vae

__all__ = [
    "PLAUSIBILITY_CHECKS",
    "PLAUSIBILITY_DEFAULTS",
    "PLAUSIBILITY_STRUCTURES",
    "Bandwidth",
    "LatentCodes",
    "ValidBank",
    "calibrate_bandwidth",
    "closeness_report",
    "encode_cache",
    "evaluate_vae",
    "interpolate",
    "load_vae",
    "measure_distances",
    "nearest_dice",
    "phase_measures",
    "plausibility_checks",
    "plausibility_report",
    "plausibility_summary",
    "postprocess_masks",
    "principal_directions",
    "project",
    "reconstruct",
    "sample_valid_shapes",
    "shape_measures",
    "slice_level",
    "slice_level_shares",
    "train_vae",
    "valid_bank",
    "warp_codes",
]
