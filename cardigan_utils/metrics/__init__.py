"""Measures, split by what they measure.

- :mod:`~cardigan_utils.metrics.overlap`: Dice per class and per slice, 3-D Dice / HD95 / volumes
  of segmentations;
- :mod:`~cardigan_utils.metrics.realism`: per-tissue intensity distances, nearest neighbours
  (the copy check) and shape diversity;
- :mod:`~cardigan_utils.metrics.fidelity`: what the field reports for generated images, measured
  with features of a U-Net trained on real images: Fréchet and kernel distances (FID, KID),
  MS-SSIM diversity, and a copy check that smoother images cannot fool;
- :mod:`~cardigan_utils.metrics.appearance`: per-image contrast, noise and bias field, and how
  widely they spread across a set (generated against real);
- :mod:`~cardigan_utils.metrics.dataset`: statistics of a slice cache.

The anatomical checks of shapes live with the shapes (:mod:`cardigan_utils.shapes.anatomy`);
``metrics.json`` is written by :func:`cardigan_utils.runs.write_metrics`.
"""

from .appearance import appearance_table, spread_comparison, spread_table
from .dataset import dataset_metrics, ed_es_table
from .fidelity import CopyCheck, copy_check, frechet_distance, image_features, kernel_distance, ms_ssim_diversity
from .overlap import cache_unlabelled, per_class_dice, segmentation_scores, slice_dice, unlabelled_structures, volume_scores
from .realism import diversity, echo_texture, intensity_distances, nearest_neighbours, sector_mask, speckle_snr

__all__ = [
    "CopyCheck",
    "copy_check",
    "frechet_distance",
    "image_features",
    "kernel_distance",
    "ms_ssim_diversity",
    "appearance_table",
    "cache_unlabelled",
    "unlabelled_structures",
    "dataset_metrics",
    "diversity",
    "ed_es_table",
    "intensity_distances",
    "echo_texture",
    "sector_mask",
    "speckle_snr",
    "nearest_neighbours",
    "per_class_dice",
    "segmentation_scores",
    "slice_dice",
    "spread_comparison",
    "spread_table",
    "volume_scores",
]
